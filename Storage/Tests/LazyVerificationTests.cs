using System.Buffers.Binary;
using NUnit.Framework;
using Kayak.Protocol;

namespace Kayak.Storage.Tests;

/// <summary>
/// Issue 15: a segment the load trusts without reading it (after a clean shutdown, or below the recovery point after a
/// crash) has each batch CRC-checked on its first read. A damaged batch is never served: a read ends before it, a read
/// that starts at it is CORRUPT_MESSAGE, the batches after it stay readable, nothing is deleted, and a WARN names the file.
/// </summary>
public class LazyVerificationTests
{
    private TempLogs _tmp = null!;
    private CapturingLogger _logger = null!;

    [SetUp] public void SetUp() { _tmp = new TempLogs(); _logger = new CapturingLogger(); }
    [TearDown] public void TearDown() => _tmp.Dispose();

    private LogManager Open() => _tmp.Open(_tmp.Options(o => new LogOptions
    {
        LogDirs = o.LogDirs, Time = o.Time, SegmentBytes = o.SegmentBytes, SegmentIndexBytes = o.SegmentIndexBytes,
        IndexIntervalBytes = o.IndexIntervalBytes, Logger = _logger,
    }));

    private string Seg(long baseOffset) => Path.Combine(_tmp.Root, "t-0", $"{baseOffset:D20}.log");
    private static PartitionLog Partition(LogManager m) => m.TryGetTopic("t", out var t) ? t.Partitions[0] : throw new AssertionException("no topic");

    /// <summary>20 batches of 3 records, 3 batches per 1000-byte segment; the batch length in bytes.</summary>
    private int Write(Dictionary<string, string>? extra = null, bool crash = false)
    {
        var cfg = new Dictionary<string, string> { ["segment.bytes"] = "1000" };
        foreach (var (k, v) in extra ?? []) cfg[k] = v;
        var b = BatchBuilder.Build(3, 1000, valueSize: 40);
        var m = Open();
        var p = m.CreateTopic("t", 1, cfg).Partitions[0];
        for (int i = 0; i < 20; i++) p.Append(b, 1);
        if (crash)
        {
            p.WaitForRollFlushes();
            m.CheckpointRecoveryPoints();
            m.SimulateCrash();
        }
        else m.Dispose();
        _logger.Clear();
        return b.Length;
    }

    /// <summary>Flips one byte in the records of the second batch of the first segment (offsets 3–5).</summary>
    private void FlipSecondBatch(int batchLength)
    {
        using var fs = new FileStream(Seg(0), FileMode.Open);
        fs.Position = batchLength + 70;
        int v = fs.ReadByte();
        fs.Position--;
        fs.WriteByte((byte)(v ^ 0x10));
    }

    [TestCase(false, TestName = "AfterACleanShutdown")]
    [TestCase(true, TestName = "BelowTheRecoveryPointAfterACrash")]
    public void DamagedBatchInATrustedSegment_IsNeverServed_AndTheRestStaysReadable(bool crash)
    {
        int len = Write(crash: crash);
        FlipSecondBatch(len);
        long sizeBefore = new FileInfo(Seg(0)).Length;

        using var m = Open();
        var p = Partition(m);
        Assert.That(_logger.Warnings, Is.Empty, "the load still trusts the segment (no read at start)");
        Assert.That(p.LogEndOffset, Is.EqualTo(60));

        using (var first = p.Read(0, 1 << 20))
            Assert.That(first.Data.Length, Is.EqualTo(len), "the read ends before the damaged batch");
        var e = Assert.Throws<StorageErrorException>(() => p.Read(3, 1 << 20).Dispose())!;
        Assert.That(e.Code, Is.EqualTo(ErrorCode.CorruptMessage));
        Assert.That(e.Code, Is.EqualTo(Kayak.Protocol.ErrorCode.CorruptMessage));
        Assert.Throws<StorageErrorException>(() => p.Read(4, 1 << 20).Dispose(), "an offset inside the damaged batch");
        using (var after = p.Read(6, 1 << 20))
        {
            Assert.That(BinaryPrimitives.ReadInt64BigEndian(after.Data.Span), Is.EqualTo(6), "the batch after it is served");
            Assert.That(BatchBuilder.CrcValid(after.Data.Span[..len]), Is.True);
        }
        Assert.That(_logger.Warnings, Has.Count.EqualTo(1), "one WARN however often the batch is read");
        Assert.That(_logger.Warnings[0], Does.Contain($"Found an invalid batch in log segment {Seg(0)} of t-0 at byte offset {len}").And.Contains("CRC-32C mismatch"));
        Assert.That(new FileInfo(Seg(0)).Length, Is.EqualTo(sizeBefore), "nothing deleted or truncated");
        Assert.That(p.LogEndOffset, Is.EqualTo(60));
    }

    [Test]
    public void UndamagedTrustedSegments_AreCheckedOnce_AndThenReadWithoutChecks()
    {
        Write();
        using var m = Open();
        var p = Partition(m);
        Assert.That(p.Segments.Count(s => s.HasUnverifiedBytes), Is.EqualTo(p.SegmentCount), "every loaded segment starts unchecked");
        // Reads in an order that leaves gaps at first: the ranges merge as they fill.
        foreach (long start in new long[] { 30, 0, 45, 12 })
            using (p.Read(start, 1 << 20)) { }
        for (long next = 0; next < p.LogEndOffset;)
        {
            using var s = p.Read(next, 1 << 20);
            next = LastOffsetOf(s.Data.Span) + 1;
        }
        Assert.That(p.Segments.Where(s => s.HasUnverifiedBytes).Select(s => s.BaseOffset), Is.Empty, "every byte checked once, the markers dropped");
        Assert.That(_logger.Warnings, Is.Empty);
    }

    [Test]
    public void AppendsAfterTheLoad_ToATrustedActiveSegment_AreServedWithItsOldBatches()
    {
        Write();
        using var m = Open();
        var p = Partition(m);
        var b = BatchBuilder.Build(3, 5000, valueSize: 40);
        p.Append(b, 1);
        using (var s = p.Read(60, 1 << 20))
            Assert.That(BinaryPrimitives.ReadInt64BigEndian(s.Data.Span), Is.EqualTo(60));
        // One read spanning the old (checked now) and the new (checked by the append) bytes of the active segment.
        long activeBase = p.Segments[^1].BaseOffset;
        using (var all = p.Read(activeBase, 1 << 20))
            Assert.That(LastOffsetOf(all.Data.Span), Is.EqualTo(62));
    }

    [Test]
    public void TheCleaner_LeavesAPartitionWithADamagedTrustedSegmentAsItIs()
    {
        int len = Write(new Dictionary<string, string> { ["cleanup.policy"] = "compact" });
        FlipSecondBatch(len);
        byte[] before = File.ReadAllBytes(Seg(0));
        using var m = Open();
        Assert.That(m.RunCompaction(), Is.EqualTo(0));
        Assert.That(m.RunCompaction(), Is.EqualTo(0));
        Assert.That(File.ReadAllBytes(Seg(0)), Is.EqualTo(before), "the damaged batch is not rewritten under a fresh CRC");
        Assert.That(_logger.Warnings.Count(w => w.StartsWith("Not compacting t-0", StringComparison.Ordinal)), Is.EqualTo(1));
        Assert.Throws<StorageErrorException>(() => Partition(m).Read(3, 1 << 20).Dispose());
    }

    private static long LastOffsetOf(ReadOnlySpan<byte> batches)
    {
        long last = -1;
        while (batches.Length >= 12)
        {
            int size = 12 + BinaryPrimitives.ReadInt32BigEndian(batches[8..]);
            last = BatchBuilder.LastOffset(batches);
            batches = batches[size..];
        }
        return last;
    }
}
