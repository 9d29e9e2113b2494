using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using Kayak.Protocol.Records;
using Kayak.Storage;

// Restart benchmark (issue 15, K7): how long LogManager.Open takes after a clean stop and after kill -9, against the
// amount of data and the number of partitions, with the page cache dropped before each open.
//
// Each case: a child process writes the data through LogManager (segments roll and are fsynced in the background as in
// the broker), waits for those fsyncs, checkpoints the recovery points (what the broker's 60 s checkpoint task does),
// appends a tail (the data written since that checkpoint) and is killed with SIGKILL. Every timed open runs in a fresh
// child process after `sync; echo 3 > /proc/sys/vm/drop_caches`. The unclean rounds re-crash after their open
// (LogManager.SimulateCrash: no flush, no checkpoint, no marker), which leaves the same recovery range for the next
// round; then one clean close, and the clean rounds each close cleanly.
var inv = CultureInfo.InvariantCulture;
if (args.Length > 0 && args[0] == "--child-write") return ChildWrite(args[1], long.Parse(args[2], inv), int.Parse(args[3], inv), int.Parse(args[4], inv), long.Parse(args[5], inv));
if (args.Length > 0 && args[0] == "--child-open") return ChildOpen(args[1], args[2]);

string root = Arg("--dir") ?? "/tmp/kayak-restart-bench";
int rounds = int.Parse(Arg("--rounds") ?? "3", inv);
var cases = new List<(string Name, int Partitions, long PerPartition, int SegmentBytes, long Tail)>();
foreach (var gib in (Arg("--data-gib") ?? "1").Split(',', StringSplitOptions.RemoveEmptyEntries))
    cases.Add(($"{gib} GiB, 1 partition", 1, (long)(double.Parse(gib, inv) * (1L << 30)), 128 << 20, 16L << 20));
foreach (var p in (Arg("--partitions") ?? "1000,5000").Split(',', StringSplitOptions.RemoveEmptyEntries))
    cases.Add(($"{p} partitions × 512 KiB", int.Parse(p, inv), 512 << 10, 128 << 10, 16 << 10));

bool canDrop = DropCaches();
Console.WriteLine($"page cache drop: {(canDrop ? "yes (echo 3 > /proc/sys/vm/drop_caches before each open)" : "NOT possible: warm-cache figures")}");
Console.WriteLine($"rounds: {rounds}; opens time LogManager.Open in a fresh process (runtime start excluded)");
Console.WriteLine();
Console.WriteLine("| Case | Data | Segments | Clean open ms (rounds) | Unclean open ms (rounds) | Unclean/clean (medians) | Segments recovered | Producer-state segments replayed | Unclean open ms without snapshots (segments replayed) |");
Console.WriteLine("|---|---:|---:|---|---|---:|---:|---:|---:|");
foreach (var c in cases)
{
    string dir = Path.Combine(root, "data");
    if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
    Directory.CreateDirectory(dir);
    var writer = Child("--child-write", dir, (c.PerPartition - c.Tail).ToString(inv), c.Partitions.ToString(inv), c.SegmentBytes.ToString(inv), c.Tail.ToString(inv));
    string? ready = writer.StandardOutput.ReadLine();
    if (ready != "READY") throw new InvalidOperationException($"writer said '{ready}': {writer.StandardError.ReadToEnd()}");
    writer.Kill(); // SIGKILL: no flush, no trim, no checkpoint, no clean-shutdown marker
    writer.WaitForExit();
    long bytes = c.PerPartition * c.Partitions;
    int segments = Directory.EnumerateFiles(dir, "*.log", SearchOption.AllDirectories).Count();

    var unclean = new List<Result>();
    for (int r = 0; r < rounds; r++) unclean.Add(Open(dir, "crash"));
    // The old behaviour (before issue 15, K7): no producer snapshots, so the state was rebuilt from the whole log.
    foreach (var f in Directory.EnumerateFiles(dir, "*.snapshot", SearchOption.AllDirectories)) File.Delete(f);
    var noSnapshots = Open(dir, "crash");
    Open(dir, "close", drop: false); // one clean close (not timed) before the clean rounds
    var clean = new List<Result>();
    for (int r = 0; r < rounds; r++) clean.Add(Open(dir, "close"));
    double cm = Median(clean.Select(x => x.Ms)), um = Median(unclean.Select(x => x.Ms));
    Console.WriteLine($"| {c.Name} | {bytes / (double)(1 << 20):N0} MiB | {segments:N0} | {string.Join(" / ", clean.Select(x => x.Ms.ToString("N0", inv)))} " +
        $"| {string.Join(" / ", unclean.Select(x => x.Ms.ToString("N0", inv)))} | {um / cm:N2} | {unclean[0].Recovered:N0} | {unclean[0].Replayed:N0} | {noSnapshots.Ms:N0} ({noSnapshots.Replayed:N0}) |");
    Directory.Delete(dir, recursive: true);
}
return 0;

string? Arg(string name) { int i = Array.IndexOf(args, name); return i >= 0 && i + 1 < args.Length ? args[i + 1] : null; }

static double Median(IEnumerable<double> xs) { var a = xs.Order().ToArray(); return a.Length % 2 == 1 ? a[a.Length / 2] : (a[a.Length / 2 - 1] + a[a.Length / 2]) / 2; }

static bool DropCaches()
{
    try
    {
        Process.Start("sync")!.WaitForExit();
        File.WriteAllText("/proc/sys/vm/drop_caches", "3");
        return true;
    }
    catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.ComponentModel.Win32Exception) { return false; }
}

static Result Open(string dir, string then, bool drop = true)
{
    if (drop) DropCaches();
    var p = Child("--child-open", dir, then);
    string? line = p.StandardOutput.ReadLine();
    p.WaitForExit();
    var parts = line?.Split(' ') ?? [];
    if (parts.Length != 4 || parts[0] != "OPEN") throw new InvalidOperationException($"open said '{line}': {p.StandardError.ReadToEnd()}");
    var inv = CultureInfo.InvariantCulture;
    return new Result(double.Parse(parts[1], inv), int.Parse(parts[2], inv), int.Parse(parts[3], inv));
}

static Process Child(params string[] childArgs)
{
    var psi = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, RedirectStandardError = true };
    string self = typeof(Result).Assembly.Location;
    if (!Environment.ProcessPath!.EndsWith("Kayak.Restart", StringComparison.Ordinal)) psi.ArgumentList.Add(self); // run via `dotnet Kayak.Restart.dll`
    foreach (var a in childArgs) psi.ArgumentList.Add(a);
    return Process.Start(psi)!;
}

static LogOptions Options(string dir, int segmentBytes = 1 << 30) => new() { LogDirs = [dir], SegmentBytes = segmentBytes };

static int ChildWrite(string dir, long perPartition, int partitions, int segmentBytes, long tail)
{
    var m = new LogManager(Options(dir, segmentBytes));
    m.Open();
    var topic = m.CreateTopic("bench", partitions, new Dictionary<string, string> { ["segment.bytes"] = segmentBytes.ToString(CultureInfo.InvariantCulture) });
    var batch = BuildBatch(Math.Min(64 << 10, segmentBytes / 4));
    var parts = topic.Partitions;
    for (long written = 0; written < perPartition; written += batch.Length)
        foreach (var p in parts) p.Append(batch, 1);
    // The broker's checkpoint task after the rolls' background fsyncs: the recovery point is each active segment's base.
    foreach (var p in parts) p.WaitForRollFlushes();
    m.CheckpointRecoveryPoints();
    for (long written = 0; written < tail; written += batch.Length)
        foreach (var p in parts) p.Append(batch, 1);
    Console.WriteLine("READY");
    Console.Out.Flush();
    Thread.Sleep(Timeout.Infinite);
    return 0;
}

static int ChildOpen(string dir, string then)
{
    var sw = Stopwatch.StartNew();
    var m = new LogManager(Options(dir));
    m.Open();
    double ms = sw.Elapsed.TotalMilliseconds;
    int recovered = 0, replayed = 0;
    foreach (var t in m.Topics)
        foreach (var p in t.Partitions)
        {
            recovered += p.LastLoad.RecoveredSegments;
            replayed += p.LastLoad.ProducerStateReplayedSegments;
        }
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"OPEN {ms:F1} {recovered} {replayed}"));
    Console.Out.Flush();
    if (then == "crash") m.SimulateCrash(); else m.Dispose();
    return 0;
}

/// <summary>One uncompressed v2 batch of ~<paramref name="size"/> bytes (1 KiB random values) with a valid CRC-32C.</summary>
static byte[] BuildBatch(int size)
{
    var rnd = new Random(42);
    var value = new byte[1000];
    rnd.NextBytes(value);
    var records = new List<byte[]>();
    int total = RecordBatchHeader.Size;
    for (int i = 0; total < size - 1100; i++)
    {
        var body = new byte[1100];
        int n = 0;
        body[n++] = 0; // attributes
        n += Kayak.Protocol.VarInt.WriteVarLong(body.AsSpan(n), i); // timestamp delta
        n += Kayak.Protocol.VarInt.WriteVarInt(body.AsSpan(n), i); // offset delta
        n += Kayak.Protocol.VarInt.WriteVarInt(body.AsSpan(n), -1); // null key
        n += Kayak.Protocol.VarInt.WriteVarInt(body.AsSpan(n), value.Length);
        value.CopyTo(body, n); n += value.Length;
        n += Kayak.Protocol.VarInt.WriteVarInt(body.AsSpan(n), 0); // no headers
        var rec = new byte[Kayak.Protocol.VarInt.SizeOf(n) + n];
        int h = Kayak.Protocol.VarInt.WriteVarInt(rec, n);
        body.AsSpan(0, n).CopyTo(rec.AsSpan(h));
        records.Add(rec);
        total += rec.Length;
    }
    var buf = new byte[total];
    var s = buf.AsSpan();
    long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
    BinaryPrimitives.WriteInt32BigEndian(s[RecordBatchHeader.BatchLengthOffset..], total - RecordBatchHeader.LogOverhead);
    BinaryPrimitives.WriteInt32BigEndian(s[RecordBatchHeader.PartitionLeaderEpochOffset..], -1);
    s[RecordBatchHeader.MagicOffset] = 2;
    BinaryPrimitives.WriteInt32BigEndian(s[RecordBatchHeader.LastOffsetDeltaOffset..], records.Count - 1);
    BinaryPrimitives.WriteInt64BigEndian(s[RecordBatchHeader.BaseTimestampOffset..], now);
    BinaryPrimitives.WriteInt64BigEndian(s[RecordBatchHeader.MaxTimestampOffset..], now + records.Count - 1);
    BinaryPrimitives.WriteInt64BigEndian(s[RecordBatchHeader.ProducerIdOffset..], -1);
    BinaryPrimitives.WriteInt16BigEndian(s[RecordBatchHeader.ProducerEpochOffset..], -1);
    BinaryPrimitives.WriteInt32BigEndian(s[RecordBatchHeader.BaseSequenceOffset..], -1);
    BinaryPrimitives.WriteInt32BigEndian(s[RecordBatchHeader.RecordsCountOffset..], records.Count);
    int pos = RecordBatchHeader.Size;
    foreach (var r in records) { r.CopyTo(buf, pos); pos += r.Length; }
    BinaryPrimitives.WriteUInt32BigEndian(s[RecordBatchHeader.CrcOffset..], Crc32C.Compute(s[RecordBatchHeader.AttributesOffset..]));
    return buf;
}

internal readonly record struct Result(double Ms, int Recovered, int Replayed);
