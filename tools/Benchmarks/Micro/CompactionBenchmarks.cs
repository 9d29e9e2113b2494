using System.Text;
using BenchmarkDotNet.Attributes;
using Kayak.Protocol.Records;
using Kayak.Storage;

namespace Kayak.Micro;

/// <summary>
/// One log-cleaner pass (LogManager.RunCompaction) per codec over a freshly written compacted partition: 400 batches
/// of 50 keyed records (~120-byte values of words, so every codec compresses), 2,000 distinct keys overwritten 10
/// times, 1 MB segments; the pass maps keys, decompresses, filters, recompresses and merges the segments. The GB/s
/// column is input bytes (the log as stored, i.e. compressed) per second; each invocation cleans a new log, written in
/// the iteration setup (not timed).
/// </summary>
[InvocationCount(1, 1)]
public class CompactionBenchmarks : IBytesPerOperation
{
    private const int Batches = 400, RecordsPerBatch = 50, Keys = 2_000;
    // The column makes its own instance without setup; in-process runs share this.
    private static readonly Dictionary<CompressionType, long> InputBytes = [];

    private List<byte[]> _batches = [];
    private string _dir = "";
    private LogManager? _logs;

    [Params(CompressionType.None, CompressionType.Gzip, CompressionType.Snappy, CompressionType.Lz4, CompressionType.Zstd)]
    public CompressionType Codec { get; set; }

    public long BytesPerOperation => InputBytes.TryGetValue(Codec, out long n) ? n : 1;

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(11);
        string[] words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo", "lima"];
        _batches = new List<byte[]>(Batches);
        long ts = 1_700_000_000_000;
        for (int b = 0; b < Batches; b++)
        {
            using var builder = new RecordBatchBuilder(new RecordBatchOptions { Compression = Codec });
            for (int r = 0; r < RecordsPerBatch; r++)
            {
                var value = new StringBuilder();
                while (value.Length < 120) value.Append(words[rng.Next(words.Length)]).Append(' ').Append(rng.Next(1000)).Append(' ');
                builder.Append(ts + b, Encoding.ASCII.GetBytes("key-" + rng.Next(Keys)), Encoding.ASCII.GetBytes(value.ToString()));
            }
            _batches.Add(builder.ToArray());
        }
        InputBytes[Codec] = _batches.Sum(b => (long)b.Length);
        Console.WriteLine($"// compaction input, {Codec}: {InputBytes[Codec]} bytes stored, {Batches * RecordsPerBatch} records");
    }

    [IterationSetup]
    public void WriteLog()
    {
        _dir = Directory.CreateTempSubdirectory("kayak-micro-compact-").FullName;
        var clock = new ManualClock();
        _logs = new LogManager(new LogOptions { LogDirs = [_dir], Time = clock });
        _logs.Open();
        var p = _logs.CreateTopic("compacted", 1, new Dictionary<string, string>
        {
            ["cleanup.policy"] = "compact",
            [TopicConfig.SegmentBytesConfig] = (1 << 20).ToString(System.Globalization.CultureInfo.InvariantCulture),
            [TopicConfig.SegmentMsConfig] = "1000",
        }).GetPartition(0)!;
        foreach (var b in _batches) p.Append(b, 1);
        // segment.ms passes: one more record rolls the segment, leaving every written batch cleanable.
        clock.Advance(2_000);
        using var last = new RecordBatchBuilder();
        last.Append(0, Encoding.ASCII.GetBytes("end"), []);
        p.Append(last.ToArray(), 1);
    }

    [Benchmark]
    public long Clean() => _logs!.RunCompaction();

    [IterationCleanup]
    public void DeleteLog()
    {
        _logs?.Dispose();
        _logs = null;
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }
}

/// <summary>A clock the benchmark moves by hand (segment.ms rolls without waiting).</summary>
internal sealed class ManualClock : TimeProvider
{
    private long _ms = 1_700_000_000_000;
    public void Advance(long ms) => _ms += ms;
    public override DateTimeOffset GetUtcNow() => DateTimeOffset.FromUnixTimeMilliseconds(_ms);
}
