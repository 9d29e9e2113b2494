using System.Globalization;

namespace Kayak.Generator;

/// <summary>
/// Emits reflection-free sample builders for the round-trip tests: every field the version carries gets a
/// non-default value (so a Read that drops a field changes the re-written bytes), every other field stays default
/// (so Write must not throw UnsupportedVersionException).
/// </summary>
internal static class Samples
{
    public static string Generate(List<MessageSpec> all)
    {
        var w = new CodeWriter();
        w.Line(Emitter.Banner);
        w.Line("#nullable enable");
        w.Line();
        w.Line("namespace Kayak.Protocol.Tests.Generated;");
        w.Line();
        w.Open("public static partial class MessageSamples");
        w.Line("public sealed record Entry(string Name, short Lowest, short Highest, short FlexibleFrom, Func<short, IKafkaMessage> Sample, Func<IKafkaMessage> Create, Func<short, int> FieldCount)");
        w.Open();
        w.Line("public override string ToString() => Name;");
        w.Close();
        w.Line();
        w.Line("public static readonly Entry[] All =");
        w.Open();
        foreach (var m in all)
            w.Line($"new(\"{m.Name}\", {m.Valid.Lo}, {m.Valid.Hi}, {m.FlexibleFrom}, v => {m.Name}(v), () => new {Full(m, m.Root)}(), {m.Name}_FieldCount),");
        w.Close(";");
        int seed = 1;
        foreach (var m in all)
        {
            w.Line();
            w.Line("/// <summary>Number of top-level fields this version carries (0 means the sample must equal an empty message).</summary>");
            w.Open($"public static int {m.Name}_FieldCount(short version)");
            w.Line("int n = 0;");
            foreach (var f in m.Root.Fields)
            {
                var present = f.IsTagged ? f.Versions.Intersect(f.Tagged).Intersect(m.Flexible) : f.Versions;
                var c = Cond.In(present, m.Valid);
                if (!c.IsFalse) w.Line(c.IsTrue ? "n++;" : $"if ({c.Expr}) n++;");
            }
            w.Line("return n;");
            w.Close();
            foreach (var s in new[] { m.Root }.Concat(m.Structs))
            {
                w.Line();
                string cls = Full(m, s);
                string method = s.IsRoot ? m.Name : $"{m.Name}_{s.ClassName}";
                w.Open($"public static {cls} {method}(short version)");
                w.Line($"var m = new {cls}();");
                var ctx = s.IsRoot ? m.Valid : s.Versions.Intersect(m.Valid);
                foreach (var f in s.Fields)
                {
                    var present = f.IsTagged ? f.Versions.Intersect(f.Tagged).Intersect(m.Flexible) : f.Versions;
                    var c = Cond.In(present, ctx);
                    if (c.IsFalse) continue;
                    string value = Value(m, f, ref seed);
                    w.Line(c.IsTrue ? $"m.{f.Prop} = {value};" : $"if ({c.Expr}) m.{f.Prop} = {value};");
                }
                w.Line("return m;");
                w.Close();
            }
        }
        w.Close();
        return w.ToString();
    }

    private static string Full(MessageSpec m, StructSpec s) =>
        s.IsRoot ? $"global::{m.Namespace}.{m.Name}" : $"global::{m.Namespace}.{m.Name}.{s.ClassName}";

    private static string Value(MessageSpec m, FieldSpec f, ref int seed)
    {
        if (f.IsArray)
        {
            if (f.Struct is not null)
            {
                string make = $"{m.Name}_{f.Struct.ClassName}(version)";
                return $"new() {{ {make}, {make} }}";
            }
            string a = Scalar(f, f.ElemType, ref seed), b = Scalar(f, f.ElemType, ref seed);
            return $"new() {{ {a}, {b} }}";
        }
        if (f.Struct is not null) return $"{m.Name}_{f.Struct.ClassName}(version)";
        return Scalar(f, f.Type, ref seed);
    }

    private static string Scalar(FieldSpec f, string type, ref int seed)
    {
        int k = seed++;
        switch (type)
        {
            case "string": return $"\"s{k}-é\"";
            case "bytes": return $"new byte[] {{ 1, 2, {k % 200} }}";
            case "records": return $"new ReadOnlyMemory<byte>(new byte[] {{ 0, 1, 2, 3, {k % 200} }})";
            case "uuid": return $"new Uuid({k}, {k * 7 + 1})";
            case "bool": return !f.IsArray && Emitter.NumericDefault(f) == "true" ? "false" : "true";
            case "float64": return $"{k}.5";
            default:
                long v = k % 100 + 2;
                if (!f.IsArray && v == Emitter.NumericDefaultValue(f)) v++;
                return v.ToString(CultureInfo.InvariantCulture);
        }
    }
}
