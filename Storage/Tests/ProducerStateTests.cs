using System.Buffers.Binary;
using NUnit.Framework;
using Kayak.Protocol;

namespace Kayak.Storage.Tests;

public class ProducerStateTests
{
    private TempLogs _tmp = null!;

    [SetUp] public void SetUp() => _tmp = new TempLogs();
    [TearDown] public void TearDown() => _tmp.Dispose();

    /// <summary>A batch of <paramref name="count"/> records from producer <paramref name="pid"/> starting at <paramref name="seq"/>.</summary>
    private byte[] Batch(long pid, short epoch, int seq, int count = 3, bool transactional = false)
    {
        var b = BatchBuilder.Build(count, _tmp.Time.NowMs);
        BinaryPrimitives.WriteInt64BigEndian(b.AsSpan(43), pid);
        BinaryPrimitives.WriteInt16BigEndian(b.AsSpan(51), epoch);
        BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(53), seq);
        if (transactional) BinaryPrimitives.WriteInt16BigEndian(b.AsSpan(21), 0x10);
        BatchBuilder.FixCrc(b);
        return b;
    }

    private static PartitionLog Partition(LogManager m, string topic = "t")
    {
        if (!m.TryGetTopic(topic, out var t)) t = m.CreateTopic(topic, 1, new Dictionary<string, string>());
        return t.Partitions[0];
    }

    private static ErrorCode Refused(PartitionLog p, byte[] batch)
    {
        var e = Assert.Throws<ProducerStateException>(() => p.Append(batch, 1))!;
        return e.Code;
    }

    [Test]
    public void RetriedBatchGetsItsOriginalOffsetsAndIsNotAppendedTwice()
    {
        using var m = _tmp.Open();
        var p = Partition(m);
        var first = p.Append(Batch(7, 0, 0), 1);
        var second = p.Append(Batch(7, 0, 3), 1);
        Assert.That(second.BaseOffset, Is.EqualTo(3));
        var retry = p.Append(Batch(7, 0, 0), 1);
        Assert.That(retry.IsDuplicate, Is.True);
        Assert.That((retry.BaseOffset, retry.LastOffset), Is.EqualTo((first.BaseOffset, first.LastOffset)));
        Assert.That(p.LogEndOffset, Is.EqualTo(6));
    }

    [Test]
    public void OnlyTheLastFiveBatchesAreRemembered()
    {
        using var m = _tmp.Open();
        var p = Partition(m);
        for (int i = 0; i < 6; i++) p.Append(Batch(7, 0, i * 3), 1);
        // Batch 0 fell out of the window: it is neither a duplicate nor in sequence.
        Assert.That(Refused(p, Batch(7, 0, 0)), Is.EqualTo(ErrorCode.OutOfOrderSequenceNumber));
        Assert.That(p.Append(Batch(7, 0, 3), 1).IsDuplicate, Is.True);
    }

    [Test]
    public void SequenceGapIsOutOfOrderAndNothingIsWritten()
    {
        using var m = _tmp.Open();
        var p = Partition(m);
        p.Append(Batch(7, 0, 0), 1);
        Assert.That(Refused(p, Batch(7, 0, 4)), Is.EqualTo(ErrorCode.OutOfOrderSequenceNumber));
        Assert.That(p.LogEndOffset, Is.EqualTo(3));
        Assert.That(p.Append(Batch(7, 0, 3), 1).BaseOffset, Is.EqualTo(3));
    }

    [Test]
    public void EpochRules()
    {
        using var m = _tmp.Open();
        var p = Partition(m);
        p.Append(Batch(7, 1, 0), 1);
        Assert.That(Refused(p, Batch(7, 0, 3)), Is.EqualTo(ErrorCode.InvalidProducerEpoch));
        // A bumped epoch must restart at sequence 0.
        Assert.That(Refused(p, Batch(7, 2, 3)), Is.EqualTo(ErrorCode.OutOfOrderSequenceNumber));
        Assert.That(p.Append(Batch(7, 2, 0), 1).IsDuplicate, Is.False);
        // An unknown producer may start anywhere (KIP-360).
        Assert.That(p.Append(Batch(8, 0, 42), 1).IsDuplicate, Is.False);
    }

    [Test]
    public void TransactionsMoveTheLastStableOffsetAndAbortsAreIndexed()
    {
        using var m = _tmp.Open();
        var p = Partition(m);
        p.Append(Batch(-1, -1, -1), 1);                       // 0..2 plain
        p.Append(Batch(7, 0, 0, transactional: true), 1);     // 3..5 txn of 7
        p.Append(Batch(9, 0, 0, transactional: true), 1);     // 6..8 txn of 9
        Assert.That(p.LastStableOffset, Is.EqualTo(3));
        Assert.That(p.HighWatermark, Is.EqualTo(9));
        Assert.That(Refused(p, Batch(7, 0, 3)), Is.EqualTo(ErrorCode.InvalidTxnState));

        var abort = p.AppendEndTxnMarker(7, 0, 0, commit: false); // 9
        Assert.That(abort.BaseOffset, Is.EqualTo(9));
        Assert.That(p.LastStableOffset, Is.EqualTo(6));
        p.AppendEndTxnMarker(9, 0, 0, commit: true);              // 10
        Assert.That(p.LastStableOffset, Is.EqualTo(11));

        var aborted = new List<AbortedTransaction>();
        p.CollectAbortedTransactions(0, 11, aborted);
        Assert.That(aborted, Is.EqualTo(new[] { new AbortedTransaction(7, 3, 9, 6) }));
        aborted.Clear();
        p.CollectAbortedTransactions(10, 11, aborted);
        Assert.That(aborted, Is.Empty);

        var index = File.ReadAllBytes(Path.Combine(p.Dir, "00000000000000000000.txnindex"));
        Assert.That(index, Has.Length.EqualTo(AbortedTransaction.EntrySize));
        Assert.That(AbortedTransaction.Read(index), Is.EqualTo(new AbortedTransaction(7, 3, 9, 6)));
    }

    [Test]
    public void StaleMarkerIsFenced()
    {
        using var m = _tmp.Open();
        var p = Partition(m);
        p.Append(Batch(7, 3, 0, transactional: true), 1);
        var e = Assert.Throws<ProducerStateException>(() => p.AppendEndTxnMarker(7, 2, 0, commit: true))!;
        Assert.That(e.Code, Is.EqualTo(ErrorCode.ProducerFenced));
        Assert.That(p.LastStableOffset, Is.EqualTo(0));
    }

    [Test]
    public void MarkerOfAnOlderCoordinatorEpochIsFenced()
    {
        using var m = _tmp.Open();
        var p = Partition(m);
        p.Append(Batch(7, 3, 0, transactional: true), 1);
        p.AppendEndTxnMarker(7, 3, 5, commit: true); // the coordinator under __transaction_state leader epoch 5
        long open = p.LogEndOffset;
        p.Append(Batch(7, 3, 3, transactional: true), 1);
        long end = p.LogEndOffset;
        // A deposed coordinator (epoch 4) must not end the transaction its successor now runs.
        var e = Assert.Throws<ProducerStateException>(() => p.AppendEndTxnMarker(7, 3, 4, commit: false))!;
        Assert.That(e.Code, Is.EqualTo(ErrorCode.TransactionCoordinatorFenced));
        Assert.That(e.Message, Does.Contain("4 (zombie), 5 (current)"));
        Assert.That((p.LogEndOffset, p.LastStableOffset), Is.EqualTo((end, open)), "nothing appended, the transaction still open");
        // The same or a newer coordinator epoch ends it.
        p.AppendEndTxnMarker(7, 3, 5, commit: true);
        Assert.That(p.LastStableOffset, Is.EqualTo(p.LogEndOffset));
    }

    [Test]
    public void ReadCommittedReadStopsAtTheLastStableOffset()
    {
        using var m = _tmp.Open();
        var p = Partition(m);
        p.Append(Batch(-1, -1, -1), 1);
        p.Append(Batch(7, 0, 0, transactional: true), 1);
        p.Append(Batch(-1, -1, -1), 1);
        using (var all = p.Read(0, 1 << 20)) Assert.That(BatchBuilder.Split(all.Data.Span).Count(), Is.EqualTo(3));
        using (var committed = p.Read(0, 1 << 20, p.LastStableOffset)) Assert.That(BatchBuilder.Split(committed.Data.Span).Count(), Is.EqualTo(1));
        using (var none = p.Read(3, 1 << 20, p.LastStableOffset)) Assert.That(none.IsEmpty, Is.True);
    }

    [TestCase(true)]
    [TestCase(false)]
    public void StateSurvivesRestart(bool clean)
    {
        var m = _tmp.Open();
        var p = Partition(m);
        p.Append(Batch(7, 0, 0), 1);                           // 0..2
        p.Append(Batch(9, 0, 0, transactional: true), 1);      // 3..5
        p.AppendEndTxnMarker(9, 0, 0, commit: false);          // 6
        p.Append(Batch(9, 1, 0, transactional: true), 1);      // 7..9 open
        p.Flush();
        string dir = p.Dir;
        if (clean) m.Dispose(); else m.SimulateCrash();
        // A clean close snapshots the producer state at the log end offset; a crash leaves the log to rescan.
        Assert.That(File.Exists(Path.Combine(dir, "00000000000000000010.snapshot")), Is.EqualTo(clean));

        using var m2 = _tmp.Open();
        var p2 = Partition(m2);
        // Kept after a clean load: a crash later on starts its producer-state replay from it instead of offset 0.
        Assert.That(File.Exists(Path.Combine(dir, "00000000000000000010.snapshot")), Is.EqualTo(clean));
        Assert.That(p2.LastStableOffset, Is.EqualTo(7));
        Assert.That(p2.Append(Batch(7, 0, 0), 1).IsDuplicate, Is.True);
        Assert.That(Refused(p2, Batch(7, 0, 5)), Is.EqualTo(ErrorCode.OutOfOrderSequenceNumber));
        var aborted = new List<AbortedTransaction>();
        p2.CollectAbortedTransactions(0, 100, aborted);
        Assert.That(aborted, Is.EqualTo(new[] { new AbortedTransaction(9, 3, 6, 7) }));
        Assert.That(File.ReadAllBytes(Path.Combine(p2.Dir, "00000000000000000000.txnindex")), Has.Length.EqualTo(AbortedTransaction.EntrySize));
        p2.AppendEndTxnMarker(9, 1, 0, commit: true);
        Assert.That(p2.LastStableOffset, Is.EqualTo(p2.LogEndOffset));
    }

    [Test]
    public void CorruptSnapshotFallsBackToRebuildingFromTheLog()
    {
        var m = _tmp.Open();
        var p = Partition(m);
        p.Append(Batch(7, 0, 0), 1);
        string dir = p.Dir;
        m.Dispose();
        var snapshot = Path.Combine(dir, "00000000000000000003.snapshot");
        var bytes = File.ReadAllBytes(snapshot);
        bytes[^1] ^= 0xFF;
        File.WriteAllBytes(snapshot, bytes);

        using var m2 = _tmp.Open();
        Assert.That(Partition(m2).Append(Batch(7, 0, 0), 1).IsDuplicate, Is.True);
    }

    [Test]
    public void IdleProducersExpireWithTheFakeClock()
    {
        using var m = _tmp.Open();
        var p = Partition(m);
        p.Append(Batch(7, 0, 0), 1);
        p.Append(Batch(8, 0, 0, transactional: true), 1);
        // Expiry counts from the producer's last record timestamp (now + 2 for a 3-record batch).
        _tmp.Time.Advance(990);
        Assert.That(p.RemoveExpiredProducers(1000), Is.EqualTo(0));
        _tmp.Time.Advance(20);
        // Producer 8 has an open transaction and stays.
        Assert.That(p.RemoveExpiredProducers(1000), Is.EqualTo(1));
        Assert.That(p.ActiveProducers().Select(e => e.ProducerId), Is.EqualTo(new[] { 8L }));
        Assert.That(p.Append(Batch(7, 0, 100), 1).IsDuplicate, Is.False);
    }

    private static byte[] Keyed(long pid, short epoch, int seq, bool transactional, long ts, string key, string value)
    {
        var b = KeyedBatch.Build(ts, (key, value));
        BinaryPrimitives.WriteInt64BigEndian(b.AsSpan(43), pid);
        BinaryPrimitives.WriteInt16BigEndian(b.AsSpan(51), epoch);
        BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(53), seq);
        if (transactional) BinaryPrimitives.WriteInt16BigEndian(b.AsSpan(21), 0x10);
        BatchBuilder.FixCrc(b);
        return b;
    }

    [Test]
    public void CompactionIgnoresAbortedRecordsAndOpenTransactions()
    {
        using var m = _tmp.Open();
        var p = m.CreateTopic("c", 1, new Dictionary<string, string> { ["cleanup.policy"] = "compact" }).Partitions[0];
        long now = _tmp.Time.NowMs;
        p.Append(Keyed(5, 0, 0, false, now, "a", "good"), 1);          // 0 (idempotent producer 5)
        p.Append(Keyed(7, 0, 0, true, now, "a", "aborted"), 1);        // 1
        p.AppendEndTxnMarker(7, 0, 0, commit: false);                   // 2
        p.Append(Keyed(8, 0, 0, false, now, "b", "b1"), 1);            // 3
        p.Roll();
        p.Append(Keyed(9, 0, 0, false, now, "b", "b2"), 1);            // 4 supersedes b@3
        p.Append(Keyed(10, 0, 0, true, now, "a", "open"), 1);          // 5, open transaction
        p.Roll();
        p.Append(Keyed(11, 0, 0, false, now, "z", "active"), 1);       // 6
        // Only the first segment is below the LSO (5); nothing in it is superseded by committed data there.
        Assert.That(m.RunCompaction(), Is.EqualTo(0));
        p.AppendEndTxnMarker(10, 0, 0, commit: true);                   // 7
        Assert.That(m.RunCompaction(), Is.EqualTo(2), "a@0 (by the committed a@5) and b@3");

        // Producer 8's only batch was emptied but kept: its sequence state survives a reload.
        using var slice = p.Read(3, 1 << 20);
        var first = BatchBuilder.Split(slice.Data.Span).First();
        Assert.That((first.BaseOffset, BinaryPrimitives.ReadInt32BigEndian(first.Bytes.AsSpan(57))), Is.EqualTo((3L, 0)));
        var aborted = new List<AbortedTransaction>();
        p.CollectAbortedTransactions(0, 10, aborted);
        Assert.That(aborted.Single().ProducerId, Is.EqualTo(7));
    }
}
