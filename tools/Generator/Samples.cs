namespace Kayak.Generator;

internal static class Samples
{
    public static string Generate(List<MessageSpec> all) => "// placeholder\n";
}
