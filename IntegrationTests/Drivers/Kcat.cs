using System.Globalization;
using System.Text;
using System.Text.Json;
using Kayak.IntegrationTests.Infrastructure;
using NUnit.Framework;

namespace Kayak.IntegrationTests.Drivers;

/// <summary>Options for one kcat invocation.</summary>
public sealed class KcatOptions
{
    /// <summary>-X property=value pairs (librdkafka settings).</summary>
    public Dictionary<string, string> Settings { get; } = new();

    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(60);
}

/// <summary>
/// Drives the kcat CLI (librdkafka underneath, Debian's build): -P with -K key delimiter, -H headers, -z codec, -p
/// partition; -C with -J JSON output and -e to exit at the end of every partition; -L metadata.
/// </summary>
public sealed class Kcat : IClientDriver
{
    public string Name => "kcat";

    /// <summary>kcat binary: $KAYAK_KCAT, else kcat on PATH.</summary>
    public static string Executable => Environment.GetEnvironmentVariable("KAYAK_KCAT") is { Length: > 0 } k ? k : "kcat";

    private static List<string> Common(string bootstrap, KcatOptions? options)
    {
        var args = new List<string> { "-b", bootstrap, "-X", "api.version.request=true", "-X", "socket.timeout.ms=10000" };
        if (options is not null)
        {
            foreach (var (key, value) in options.Settings)
            {
                args.Add("-X");
                args.Add($"{key}={value}");
            }
        }
        return args;
    }

    /// <summary>Runs kcat with the given arguments after the common -b/-X ones; fails the test on a non-zero exit.</summary>
    public static async Task<ProcessResult> RunAsync(string bootstrap, IEnumerable<string> arguments, string? stdin = null, KcatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var args = Common(bootstrap, options);
        args.AddRange(arguments);
        var result = await ProcessRunner.RunAsync(new ProcessSpec
        {
            FileName = Executable,
            Arguments = args,
            StandardInput = stdin,
            Timeout = options?.Timeout ?? TimeSpan.FromSeconds(60),
        }, cancellationToken);
        return result.EnsureSuccess();
    }

    public Task<IReadOnlyList<ProducedRecord>> ProduceAsync(string bootstrap, string topic, IReadOnlyList<TestRecord> records, ProduceOptions? options = null, CancellationToken cancellationToken = default)
        => ProduceAsync(bootstrap, topic, records, options, null, cancellationToken);

    /// <summary>
    /// One kcat -P per (partition, header set), since -p and -H apply to a whole invocation. Records are lines
    /// "key\tvalue"; kcat reports no offsets, so the deliveries carry Offset -1.
    /// </summary>
    public async Task<IReadOnlyList<ProducedRecord>> ProduceAsync(string bootstrap, string topic, IReadOnlyList<TestRecord> records, ProduceOptions? options, KcatOptions? kcatOptions, CancellationToken cancellationToken = default)
    {
        options ??= new ProduceOptions();
        var groups = new List<(int Partition, IReadOnlyList<TestHeader> Headers, StringBuilder Lines)>();
        foreach (var r in records)
        {
            if (r.Key is null || r.Key.Contains('\t') || r.Key.Contains('\n') || r.Value.Contains('\t') || r.Value.Contains('\n'))
                throw new ArgumentException("kcat driver needs a key and tab/newline-free text", nameof(records));
            var group = groups.FindIndex(g => g.Partition == r.Partition && g.Headers.SequenceEqual(r.Headers));
            if (group < 0)
            {
                groups.Add((r.Partition, r.Headers, new StringBuilder()));
                group = groups.Count - 1;
            }
            groups[group].Lines.Append(r.Key).Append('\t').Append(r.Value).Append('\n');
        }

        foreach (var (partition, headers, lines) in groups)
        {
            var args = new List<string> { "-P", "-t", topic, "-p", partition.ToString(CultureInfo.InvariantCulture), "-K", "\t", "-X", $"acks={options.Acks}" };
            foreach (var h in headers)
            {
                args.Add("-H");
                args.Add($"{h.Key}={h.Value}");
            }
            if (options.Compression is not null)
            {
                args.Add("-z");
                args.Add(options.Compression);
            }
            var result = await RunAsync(bootstrap, args, lines.ToString(), kcatOptions, cancellationToken);
            // kcat exits 0 even when some deliveries failed; it reports them on stderr.
            if (result.Stderr.Contains("Delivery failed", StringComparison.OrdinalIgnoreCase) || result.Stderr.Contains("ERROR", StringComparison.Ordinal))
                Assert.Fail("kcat produce reported errors:\n" + result.Describe());
        }

        var acks = new List<ProducedRecord>(records.Count);
        foreach (var r in records)
            acks.Add(new ProducedRecord(r.Partition, -1));
        return acks;
    }

    public Task<IReadOnlyList<ConsumedRecord>> ConsumeAllAsync(string bootstrap, string topic, CancellationToken cancellationToken = default)
        => ConsumeAsync(bootstrap, topic, null, cancellationToken);

    /// <summary>kcat -C -o beginning -e -J over every partition; parses one JSON object per line.</summary>
    public async Task<IReadOnlyList<ConsumedRecord>> ConsumeAsync(string bootstrap, string topic, KcatOptions? kcatOptions, CancellationToken cancellationToken = default)
    {
        var result = await RunAsync(bootstrap, ["-C", "-t", topic, "-o", "beginning", "-e", "-J", "-Z"], null, kcatOptions, cancellationToken);
        if (result.Stderr.Contains("ERROR", StringComparison.Ordinal))
            Assert.Fail("kcat consume reported errors:\n" + result.Describe());
        var records = new List<ConsumedRecord>();
        foreach (var line in result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            records.Add(ParseJsonRecord(line));
        return records;
    }

    /// <summary>kcat -J record: {"topic","partition","offset","tstype","ts","broker","headers":[k,v,...],"key","payload"}.</summary>
    public static ConsumedRecord ParseJsonRecord(string line)
    {
        using var doc = JsonDocument.Parse(line);
        var root = doc.RootElement;
        var headers = new List<TestHeader>();
        if (root.TryGetProperty("headers", out var h) && h.ValueKind == JsonValueKind.Array)
        {
            for (var i = 0; i + 1 < h.GetArrayLength(); i += 2)
                headers.Add(new TestHeader(h[i].GetString() ?? "", h[i + 1].GetString() ?? ""));
        }
        static string? Str(JsonElement e, string name) =>
            e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
        return new ConsumedRecord(
            Str(root, "topic") ?? "",
            root.GetProperty("partition").GetInt32(),
            root.GetProperty("offset").GetInt64(),
            Str(root, "key"),
            Str(root, "payload"),
            headers,
            root.TryGetProperty("ts", out var ts) ? ts.GetInt64() : -1);
    }

    /// <summary>kcat -L -J: topic name → partition count (and the raw JSON for further checks).</summary>
    public static async Task<(Dictionary<string, int> Topics, string Json)> MetadataAsync(string bootstrap, string? topic = null, CancellationToken cancellationToken = default)
    {
        var args = new List<string> { "-L", "-J" };
        if (topic is not null)
        {
            args.Add("-t");
            args.Add(topic);
        }
        var result = await RunAsync(bootstrap, args, null, null, cancellationToken);
        using var doc = JsonDocument.Parse(result.Stdout);
        var topics = new Dictionary<string, int>();
        foreach (var t in doc.RootElement.GetProperty("topics").EnumerateArray())
            topics[t.GetProperty("topic").GetString() ?? ""] = t.GetProperty("partitions").GetArrayLength();
        return (topics, result.Stdout);
    }
}
