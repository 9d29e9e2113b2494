using BenchmarkDotNet.Attributes;
using Kayak.Storage;

namespace Kayak.Micro;

/// <summary>
/// PartitionLog.Append of one 1 MB batch: framing check, copy into the mapped active segment, offset assignment and
/// sparse index entries. Segments are 64 MB and retention keeps 128 MB, applied between iterations (so 64 appends per
/// iteration stay on disk-backed pages the way a broker's do, without filling the disk).
/// </summary>
[InvocationCount(64, 1)]
public class AppendBenchmarks : IBytesPerOperation, IDisposable
{
    private string _dir = "";
    private LogManager? _logs;
    private PartitionLog? _log;
    private byte[] _batch = [];

    public long BytesPerOperation => _batch.Length == 0 ? 1 << 20 : _batch.Length;

    [GlobalSetup]
    public void Setup()
    {
        _batch = Data.Batch(1 << 20);
        _dir = Directory.CreateTempSubdirectory("kayak-micro-append-").FullName;
        _logs = new LogManager(new LogOptions { LogDirs = [_dir] });
        _logs.Open();
        var topic = _logs.CreateTopic("bench", 1, new Dictionary<string, string>
        {
            [TopicConfig.SegmentBytesConfig] = (64 << 20).ToString(),
            [TopicConfig.RetentionBytesConfig] = (128 << 20).ToString(),
            [TopicConfig.MaxMessageBytesConfig] = (2 << 20).ToString(),
        });
        _log = topic.GetPartition(0)!;
    }

    [Benchmark]
    public long Append() => _log!.Append(_batch, 1).LastOffset;

    [IterationCleanup]
    public void Retention() => _logs!.RunRetention();

    [GlobalCleanup]
    public void Dispose()
    {
        _logs?.Dispose();
        _logs = null;
        try { Directory.Delete(_dir, true); } catch (IOException) { }
        GC.SuppressFinalize(this);
    }
}

/// <summary>
/// PartitionLog.Read of a consumer's fetch range (max 1 MB, librdkafka's default max.partition.fetch.bytes) from a
/// 64 MB log of 16 KB batches, at rotating offsets: index lookup, batch walk and a zero-copy slice of the mapping.
/// </summary>
public class ReadBenchmarks : IBytesPerOperation, IDisposable
{
    private string _dir = "";
    private LogManager? _logs;
    private PartitionLog? _log;
    private long[] _offsets = [];
    private int _next;

    public long BytesPerOperation => 1 << 20;

    [GlobalSetup]
    public void Setup()
    {
        var batch = Data.Batch(16 << 10);
        _dir = Directory.CreateTempSubdirectory("kayak-micro-read-").FullName;
        _logs = new LogManager(new LogOptions { LogDirs = [_dir] });
        _logs.Open();
        var topic = _logs.CreateTopic("bench", 1, new Dictionary<string, string>());
        _log = topic.GetPartition(0)!;
        while (_log.Size < (64L << 20)) _log.Append(batch, 1);
        // Offsets spread over the log, stopping 1 MB short of the end so every read is a full range.
        long span = _log.LogEndOffset - (_log.LogEndOffset * (1 << 20) / _log.Size) - 1;
        var rng = new Random(3);
        _offsets = new long[1024];
        for (int i = 0; i < _offsets.Length; i++) _offsets[i] = rng.NextInt64(0, span);
    }

    [Benchmark]
    public int Read()
    {
        long offset = _offsets[_next++ & (_offsets.Length - 1)];
        using var slice = _log!.Read(offset, 1 << 20);
        return slice.Data.Length;
    }

    [GlobalCleanup]
    public void Dispose()
    {
        _logs?.Dispose();
        _logs = null;
        try { Directory.Delete(_dir, true); } catch (IOException) { }
        GC.SuppressFinalize(this);
    }
}

/// <summary>
/// Issue 15's lazy CRC check: reading a whole 64 MB partition of 16 KB batches in 1 MB fetches right after a clean
/// restart (every batch of the trusted segments is CRC-checked on this first read) against the same read once checked.
/// </summary>
public class TrustedFirstReadBenchmarks : IBytesPerOperation, IDisposable
{
    private string _dir = "";
    private LogManager? _logs;
    private PartitionLog? _log;

    public long BytesPerOperation => 64L << 20;

    [GlobalSetup]
    public void Setup()
    {
        var batch = Data.Batch(16 << 10);
        _dir = Directory.CreateTempSubdirectory("kayak-micro-firstread-").FullName;
        using (var logs = new LogManager(new LogOptions { LogDirs = [_dir] }))
        {
            logs.Open();
            var p = logs.CreateTopic("bench", 1, new Dictionary<string, string> { ["segment.bytes"] = (16 << 20).ToString() }).GetPartition(0)!;
            while (p.Size < (64L << 20)) p.Append(batch, 1);
        }
        Reopen();
    }

    private void Reopen()
    {
        _logs?.Dispose();
        _logs = new LogManager(new LogOptions { LogDirs = [_dir] });
        _logs.Open();
        _logs.TryGetTopic("bench", out var t);
        _log = t!.GetPartition(0)!;
    }

    [IterationSetup(Target = nameof(FirstReadAfterCleanStart))]
    public void ReopenClean() => Reopen();

    /// <summary>The first read after a clean start: CRC check of every batch included.</summary>
    [Benchmark]
    public long FirstReadAfterCleanStart() => ReadAll();

    /// <summary>The same read once every batch was checked (the usual case).</summary>
    [Benchmark(Baseline = true)]
    public long ReadChecked() => ReadAll();

    private long ReadAll()
    {
        long total = 0;
        for (long offset = 0; offset < _log!.LogEndOffset;)
        {
            using var slice = _log.Read(offset, 1 << 20);
            total += slice.Data.Length;
            var rest = slice.Data.Span;
            long last = offset;
            while (rest.Length >= 61)
            {
                int size = 12 + System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(rest[8..]);
                last = System.Buffers.Binary.BinaryPrimitives.ReadInt64BigEndian(rest) + System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(rest[23..]);
                rest = rest[size..];
            }
            offset = last + 1;
        }
        return total;
    }

    [GlobalCleanup]
    public void Dispose()
    {
        _logs?.Dispose();
        _logs = null;
        try { Directory.Delete(_dir, true); } catch (IOException) { }
        GC.SuppressFinalize(this);
    }
}
