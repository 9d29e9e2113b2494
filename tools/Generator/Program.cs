using System.Text;

namespace Kayak.Generator;

internal static class Program
{
    private static int Main(string[] args)
    {
        string root = FindRepoRoot();
        string specs = Path.GetFullPath(Path.Combine(root, "..", "shared", "kafka-message-specs"));
        string output = root;
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--specs" && i + 1 < args.Length) specs = Path.GetFullPath(args[++i]);
            else if (args[i] == "--out" && i + 1 < args.Length) output = Path.GetFullPath(args[++i]);
            else { Console.Error.WriteLine("usage: Kayak.Generator [--specs DIR] [--out REPO_ROOT]"); return 2; }
        }
        var messages = new List<MessageSpec>();
        foreach (var f in Directory.GetFiles(specs, "*.json").OrderBy(p => p, StringComparer.Ordinal))
            messages.Add(SpecParser.Load(f, "Kayak.Protocol.Messages"));
        string coord = Path.Combine(specs, "coordinator-records");
        var records = new List<MessageSpec>();
        if (Directory.Exists(coord))
            foreach (var f in Directory.GetFiles(coord, "*.json").OrderBy(p => p, StringComparer.Ordinal))
                records.Add(SpecParser.Load(f, "Kayak.Protocol.CoordinatorRecords"));

        string msgDir = Path.Combine(output, "Protocol", "Messages");
        string recDir = Path.Combine(output, "Protocol", "CoordinatorRecords");
        string testDir = Path.Combine(output, "Protocol", "Tests", "Generated");
        foreach (var d in new[] { msgDir, recDir, testDir })
        {
            Directory.CreateDirectory(d);
            foreach (var old in Directory.GetFiles(d, "*.g.cs")) File.Delete(old);
        }
        foreach (var m in messages) Write(Path.Combine(msgDir, m.Name + ".g.cs"), Emitter.Generate(m));
        foreach (var m in records) Write(Path.Combine(recDir, m.Name + ".g.cs"), Emitter.Generate(m));
        Write(Path.Combine(msgDir, "ApiKey.g.cs"), Tables.ApiKeyEnum(messages));
        Write(Path.Combine(msgDir, "ApiMessageTypes.g.cs"), Tables.ApiMessageTypes(messages));
        Write(Path.Combine(testDir, "MessageSamples.g.cs"), Samples.Generate(messages.Concat(records).ToList()));
        Console.WriteLine($"Generated {messages.Count} messages and {records.Count} coordinator records from {specs}.");
        return 0;
    }

    private static void Write(string path, string text) => File.WriteAllText(path, text, new UTF8Encoding(false));

    private static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(Directory.GetCurrentDirectory());
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Kayak.slnx"))) dir = dir.Parent;
        return dir?.FullName ?? Directory.GetCurrentDirectory();
    }
}
