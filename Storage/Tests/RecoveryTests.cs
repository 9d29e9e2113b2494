using System.Buffers.Binary;
using Microsoft.Extensions.Logging;
using NUnit.Framework;

namespace Kayak.Storage.Tests;

/// <summary>
/// Issue 15, K7 and K11: every recovery action is logged (WARN when data is dropped, INFO when routine, as Kafka's
/// LogLoader), a bad batch in the recovery range ends the log there with no offset gap, and a restart after a crash
/// works only on the segments after the recovery point.
/// </summary>
public class RecoveryTests
{
    private TempLogs _tmp = null!;
    private CapturingLogger _logger = null!;

    [SetUp] public void SetUp() { _tmp = new TempLogs(); _logger = new CapturingLogger(); }
    [TearDown] public void TearDown() => _tmp.Dispose();

    private static readonly Dictionary<string, string> SmallSegments = new() { ["segment.bytes"] = "1000" };

    private LogManager Open() => _tmp.Open(_tmp.Options(o => new LogOptions
    {
        LogDirs = o.LogDirs, Time = o.Time, SegmentBytes = o.SegmentBytes, SegmentIndexBytes = o.SegmentIndexBytes,
        IndexIntervalBytes = o.IndexIntervalBytes, Logger = _logger,
    }));

    private string PartDir => Path.Combine(_tmp.Root, "t-0");
    private string Seg(long baseOffset, string ext) => Path.Combine(PartDir, $"{baseOffset:D20}.{ext}");
    private static PartitionLog Partition(LogManager m) => m.TryGetTopic("t", out var t) ? t.Partitions[0] : throw new AssertionException("no topic");

    /// <summary>20 batches of 3 records (3 batches per 1000-byte segment), then a crash; optionally the recovery point checkpointed after the rolls.</summary>
    private (byte[] Batch, long[] Bases) WriteSegmentsAndCrash(int batches, bool checkpoint, int extraInActive = 0)
    {
        var b = BatchBuilder.Build(3, 1000, valueSize: 40);
        var m = Open();
        var p = m.CreateTopic("t", 1, SmallSegments).Partitions[0];
        for (int i = 0; i < batches; i++) p.Append(b, 1);
        if (checkpoint)
        {
            // What the broker's 60 s checkpoint task does after the rolls' background fsyncs.
            p.WaitForRollFlushes();
            m.CheckpointRecoveryPoints();
        }
        for (int i = 0; i < extraInActive; i++) p.Append(b, 1);
        var bases = p.Segments.Select(s => s.BaseOffset).ToArray();
        m.SimulateCrash();
        _logger.Clear();
        return (b, bases);
    }

    private static void AssertContiguous(PartitionLog p)
    {
        long next = p.LogStartOffset;
        while (next < p.LogEndOffset)
        {
            using var s = p.Read(next, 1);
            var span = s.Data.Span;
            Assert.That(BinaryPrimitives.ReadInt64BigEndian(span), Is.EqualTo(next), "each batch starts where the previous one ended");
            Assert.That(BatchBuilder.CrcValid(span[..(BinaryPrimitives.ReadInt32BigEndian(span[8..]) + 12)]), Is.True);
            next = BatchBuilder.LastOffset(span) + 1;
        }
        Assert.That(next, Is.EqualTo(p.LogEndOffset));
    }

    [Test]
    public void CorruptBatchInTheRecoveryRange_TruncatesTheLogThere_AndDeletesTheLaterSegments()
    {
        var (b, bases) = WriteSegmentsAndCrash(20, checkpoint: false); // recovery point 0: every segment is recovered
        Assert.That(bases, Has.Length.GreaterThan(4));
        long corruptBase = bases[1] + 3; // the second batch of the second segment
        using (var fs = new FileStream(Seg(bases[1], "log"), FileMode.Open)) { fs.Position = b.Length + 70; fs.WriteByte(0xEE); }
        long segmentLength = new FileInfo(Seg(bases[1], "log")).Length;

        using var m = Open();
        var p = Partition(m);
        Assert.That(p.LogEndOffset, Is.EqualTo(corruptBase), "the log ends at the first bad batch");
        Assert.That(p.SegmentCount, Is.EqualTo(2));
        foreach (var later in bases.Skip(2))
            Assert.That(File.Exists(Seg(later, "log")) || File.Exists(Seg(later, "index")) || File.Exists(Seg(later, "snapshot")), Is.False, $"segment {later} is gone");
        AssertContiguous(p);
        Assert.That(p.Append(b, 1).BaseOffset, Is.EqualTo(corruptBase), "appends continue without a gap");
        Assert.That(p.LastLoad.DeletedSegments, Is.EqualTo(bases.Length - 2));

        Assert.That(_logger.Warnings, Has.One.Contains($"Found invalid messages in log segment {Seg(bases[1], "log")} at byte offset {b.Length}")
            .And.Contains("CRC-32C mismatch").And.Contains($"dropped {segmentLength - b.Length} bytes of data"));
        Assert.That(_logger.Warnings, Has.One.Contains($"Corruption found in segment {bases[1]} of t-0, truncating to offset {corruptBase}")
            .And.Contains($"deleting the {bases.Length - 2} later segments"));
    }

    [Test]
    public void CorruptBatchBelowTheRecoveryPoint_IsNotScanned()
    {
        var (b, bases) = WriteSegmentsAndCrash(20, checkpoint: true, extraInActive: 1);
        using (var fs = new FileStream(Seg(0, "log"), FileMode.Open)) { fs.Position = b.Length + 70; fs.WriteByte(0xEE); }
        using var m = Open();
        var p = Partition(m);
        Assert.That(p.LogEndOffset, Is.EqualTo(63), "Kafka recovers only from the recovery point: the flipped byte is found by a fetch (CORRUPT_MESSAGE), not here");
        Assert.That(p.SegmentCount, Is.EqualTo(bases.Length));
        Assert.That(_logger.Warnings, Is.Empty);
    }

    [Test]
    public void CrashWithRolledSegments_RecoversOnlyTheSegmentsAfterTheRecoveryPoint()
    {
        var (_, bases) = WriteSegmentsAndCrash(38, checkpoint: true, extraInActive: 1);
        Assert.That(bases, Has.Length.GreaterThanOrEqualTo(10));
        using var m = Open();
        var p = Partition(m);
        Assert.That(p.LogEndOffset, Is.EqualTo(117));
        AssertContiguous(p);
        Assert.That(_logger.Infos.Count(l => l.StartsWith("Recovering unflushed segment", StringComparison.Ordinal)), Is.EqualTo(1));
        Assert.That(_logger.Infos, Has.One.StartsWith($"Recovering unflushed segment {bases[^1]} of t-0"));
        Assert.That(p.LastLoad.RecoveredSegments, Is.EqualTo(1));
        Assert.That(p.LastLoad.RebuiltSegments, Is.EqualTo(0));
        // Producer state: from the roll snapshot at the active segment's base, not a replay of all segments.
        Assert.That(p.LastLoad.ProducerSnapshotOffset, Is.EqualTo(bases[^1]));
        Assert.That(p.LastLoad.ProducerStateReplayedSegments, Is.EqualTo(1));
        Assert.That(_logger.Infos, Has.One.Contains($"from the snapshot at offset {bases[^1]}, replaying 1 segments"));
        Assert.That(p.RecoveryPoint, Is.EqualTo(bases[^1]), "the recovery point stays at the checkpoint: the recovered segment was not fsynced");
        Assert.That(_logger.Warnings, Is.Empty);
    }

    [Test]
    public void RecoveredSegments_KeepTheirIndexFiles_WhenTheRebuiltIndexIsTheSame()
    {
        // Kafka's LogSegment.recover rebuilds the indexes; here an unchanged index file is not rewritten at all (no
        // delete + create per recovered segment), and a damaged one is rewritten in place with the rebuilt entries.
        var (_, bases) = WriteSegmentsAndCrash(20, checkpoint: false);
        string rolledIndex = Seg(bases[1], "index"), rolledTimeIndex = Seg(bases[1], "timeindex"), damaged = Seg(bases[2], "index");
        var before = (Index: File.ReadAllBytes(rolledIndex), Time: File.ReadAllBytes(rolledTimeIndex), Damaged: File.ReadAllBytes(damaged));
        var writeTimes = (File.GetLastWriteTimeUtc(rolledIndex), File.GetLastWriteTimeUtc(rolledTimeIndex));
        Assert.That(before.Damaged, Is.Not.Empty);
        File.WriteAllBytes(damaged, [.. before.Damaged, 1, 2, 3, 4, 5, 6, 7, 8]); // an entry pointing past the log
        using var m = Open();
        var p = Partition(m);
        Assert.That(p.LastLoad.RecoveredSegments, Is.EqualTo(bases.Length));
        Assert.That(File.ReadAllBytes(rolledIndex), Is.EqualTo(before.Index));
        Assert.That(File.ReadAllBytes(rolledTimeIndex), Is.EqualTo(before.Time));
        Assert.That((File.GetLastWriteTimeUtc(rolledIndex), File.GetLastWriteTimeUtc(rolledTimeIndex)), Is.EqualTo(writeTimes), "identical indexes are not rewritten");
        Assert.That(File.ReadAllBytes(damaged), Is.EqualTo(before.Damaged), "the damaged index is rebuilt and trimmed to its entries");
        AssertContiguous(p);
        using var read = p.Read(bases[2] + 1, 1);
        Assert.That(read.Data.Length, Is.GreaterThan(0), "lookups go through the rebuilt index");
    }

    [Test]
    public void ParallelRecovery_LoadsEveryPartition_AndFsyncsTheRecoveredSegmentsAfterOpen()
    {
        // Kafka's num.recovery.threads.per.data.dir: partitions recovered concurrently, each one's segments in order;
        // the recovered segments' fsync is queued per log dir and only then does the recovery point move.
        var b = BatchBuilder.Build(3, 1000, valueSize: 40);
        var m = Open();
        var parts = m.CreateTopic("t", 6, SmallSegments).Partitions;
        for (int i = 0; i < 10; i++) foreach (var p in parts) p.Append(b, 1);
        var ends = parts.Select(p => p.LogEndOffset).ToArray();
        var segments = parts.Select(p => p.Segments.Length).ToArray();
        m.SimulateCrash();
        using var m2 = _tmp.Open(_tmp.Options(o => new LogOptions
        {
            LogDirs = o.LogDirs, Time = o.Time, SegmentBytes = o.SegmentBytes, SegmentIndexBytes = o.SegmentIndexBytes,
            IndexIntervalBytes = o.IndexIntervalBytes, Logger = _logger, RecoveryThreadsPerDataDir = 3,
        }));
        Assert.That(m2.TryGetTopic("t", out var t), Is.True);
        for (int i = 0; i < parts.Count; i++)
        {
            var p = t!.Partitions[i];
            Assert.That(p.LastLoad.RecoveredSegments, Is.EqualTo(segments[i]), "no checkpoint: every segment is in the recovery range");
            Assert.That(p.LogEndOffset, Is.EqualTo(ends[i]));
            AssertContiguous(p);
            p.WaitForRollFlushes();
            Assert.That(p.HasPendingRecoveredFlush, Is.False);
            Assert.That(p.RecoveryPoint, Is.EqualTo(p.Segments[^1].BaseOffset), "after the fsync the recovery point moves to the active segment, not past it");
        }
    }

    [Test]
    public void CrashWithoutACheckpoint_RecoversEverySegment_AndReplaysTheWholeLog()
    {
        var (_, bases) = WriteSegmentsAndCrash(13, checkpoint: false);
        using var m = Open();
        var p = Partition(m);
        Assert.That(p.LastLoad.RecoveredSegments, Is.EqualTo(bases.Length));
        Assert.That(p.LastLoad.ProducerSnapshotOffset, Is.EqualTo(-1), "the roll snapshots are skipped: their segments are all recovered");
        Assert.That(p.LastLoad.ProducerStateReplayedSegments, Is.EqualTo(bases.Length));
        Assert.That(Directory.GetFiles(PartDir, "*.snapshot"), Has.Length.EqualTo(bases.Length - 1), "kept for the next load");
        // Not the log end (the recovered active segment is not on disk yet); the recovered inactive ones are fsynced in
        // the background, after which the recovery point moves to the active segment.
        p.WaitForRollFlushes();
        Assert.That(p.RecoveryPoint, Is.EqualTo(bases[^1]));
        Assert.That(p.LogEndOffset, Is.GreaterThan(bases[^1]));
    }

    [Test]
    public void AbortedTransactionBelowTheRecoveryPoint_SurvivesASnapshotLoad()
    {
        var m = Open();
        var p = m.CreateTopic("t", 1, SmallSegments).Partitions[0];
        var txn = BatchBuilder.Build(3, 1000, valueSize: 40);
        BinaryPrimitives.WriteInt64BigEndian(txn.AsSpan(43), 9); // producer id
        BinaryPrimitives.WriteInt16BigEndian(txn.AsSpan(51), 0); // epoch
        BinaryPrimitives.WriteInt32BigEndian(txn.AsSpan(53), 0); // base sequence
        BinaryPrimitives.WriteInt16BigEndian(txn.AsSpan(21), 0x10); // transactional
        BatchBuilder.FixCrc(txn);
        p.Append(txn, 1);
        p.AppendEndTxnMarker(9, 0, 0, commit: false);
        var plain = BatchBuilder.Build(3, 1000, valueSize: 40);
        for (int i = 0; i < 20; i++) p.Append(plain, 1);
        p.WaitForRollFlushes();
        m.CheckpointRecoveryPoints();
        m.SimulateCrash();

        using var m2 = Open();
        var p2 = Partition(m2);
        Assert.That(p2.LastLoad.ProducerSnapshotOffset, Is.GreaterThan(0));
        var aborted = new List<AbortedTransaction>();
        p2.CollectAbortedTransactions(0, p2.LogEndOffset, aborted);
        Assert.That(aborted, Is.EqualTo(new[] { new AbortedTransaction(9, 0, 3, 4) }));
        Assert.That(p2.ProducerState.TryGet(9, out var e) && e.ProducerEpoch == 0, Is.True, "producer 9 comes from the snapshot");
    }

    [Test]
    public void TornTail_IsLoggedWithFilePositionAndBytes()
    {
        var (b, _) = WriteSegmentsAndCrash(2, checkpoint: false);
        using (var fs = new FileStream(Seg(0, "log"), FileMode.Open)) fs.SetLength(b.Length + b.Length / 2);
        using var m = Open();
        Assert.That(Partition(m).LogEndOffset, Is.EqualTo(3));
        Assert.That(_logger.Warnings, Has.One.Contains($"Found invalid messages in log segment {Seg(0, "log")} at byte offset {b.Length}")
            .And.Contains("runs past the end of the file").And.Contains($"dropped {b.Length / 2} bytes of data"));
    }

    [Test]
    public void PreallocatedTail_IsNotReportedAsCorruption()
    {
        WriteSegmentsAndCrash(2, checkpoint: false);
        using var m = Open();
        Assert.That(Partition(m).LogEndOffset, Is.EqualTo(6));
        Assert.That(_logger.Warnings, Is.Empty);
        Assert.That(_logger.Infos, Has.One.StartsWith("Recovering unflushed segment 0 of t-0"));
    }

    [Test]
    public void Leftovers_OrphanIndexes_AndIndexRebuilds_AreLogged()
    {
        using (var m = Open())
        {
            var p = m.CreateTopic("t", 1, SmallSegments).Partitions[0];
            for (int i = 0; i < 10; i++) p.Append(BatchBuilder.Build(3, 1000, valueSize: 40), 1);
        }
        var logs = Directory.GetFiles(PartDir, "*.log").Order().ToArray();
        File.WriteAllBytes(Seg(0, "log.cleaned"), new byte[7]);
        File.WriteAllBytes(Seg(3, "log.deleted"), new byte[5]);
        File.WriteAllText(Path.Combine(PartDir, "kayak-topic.json.tmp"), "{");
        File.WriteAllBytes(Seg(99999, "index"), new byte[8]);
        File.Delete(Path.ChangeExtension(logs[1], ".index"));
        File.WriteAllBytes(Path.ChangeExtension(logs[2], ".timeindex"), [1, 2, 3]);
        _logger.Clear();

        using (var m = Open()) AssertContiguous(Partition(m));
        Assert.That(_logger.Warnings, Has.One.Contains($"Deleting stray temporary file {Seg(0, "log.cleaned")} (7 bytes)"));
        Assert.That(_logger.Warnings, Has.One.Contains($"Deleting stray temporary file {Seg(3, "log.deleted")} (5 bytes)"));
        Assert.That(_logger.Warnings, Has.One.Contains("kayak-topic.json.tmp (1 bytes)"));
        Assert.That(_logger.Warnings, Has.One.Contains($"Found an orphaned index file {Seg(99999, "index")}"));
        Assert.That(_logger.Warnings, Has.One.Contains($"Could not find the index files of log file {logs[1]}"));
        Assert.That(_logger.Warnings, Has.One.Contains($"Found a corrupted index file corresponding to log file {logs[2]}"));
        Assert.That(File.Exists(Seg(99999, "index")), Is.False);
    }

    [Test]
    public void InterruptedSwap_IsCompletedAndLogged()
    {
        using (var m = Open())
        {
            var p = m.CreateTopic("t", 1, SmallSegments).Partitions[0];
            for (int i = 0; i < 7; i++) p.Append(BatchBuilder.Build(3, 1000, valueSize: 40), 1);
        }
        var logs = Directory.GetFiles(PartDir, "*.log").Order().ToArray();
        Assert.That(logs, Has.Length.EqualTo(2));
        // A swap covering both segments (their batches concatenated), as the cleaner leaves one before renaming.
        File.WriteAllBytes(Seg(0, "log.swap"), [.. File.ReadAllBytes(logs[0]), .. File.ReadAllBytes(logs[1])]);
        _logger.Clear();
        using var m2 = Open();
        var p2 = Partition(m2);
        AssertContiguous(p2);
        Assert.That(p2.LogEndOffset, Is.EqualTo(21));
        Assert.That(_logger.Infos, Has.One.Contains($"Found log file {Seg(0, "log.swap")}").And.Contains("offsets 0 to 20"));
        Assert.That(_logger.Infos, Has.One.Contains($"Deleting segment {logs[1]}"));
    }
}
