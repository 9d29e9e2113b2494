using System.Buffers.Binary;
using NUnit.Framework;
using Kayak.Protocol;

namespace Kayak.Storage.Tests;

/// <summary>
/// The partition side of KIP-890 part 1: a client's transactional batch is appended only into the producer's open
/// transaction here, or with the partition's current verification guard; the marker clears both under the append
/// lock, so a batch that was checked before the marker and appended after it is refused.
/// </summary>
public class ProducerStateVerificationTests
{
    private TempLogs _tmp = null!;

    [SetUp] public void SetUp() => _tmp = new TempLogs();
    [TearDown] public void TearDown() => _tmp.Dispose();

    private byte[] TxnBatch(long pid, short epoch, int seq, int count = 3)
    {
        var b = BatchBuilder.Build(count, _tmp.Time.NowMs);
        BinaryPrimitives.WriteInt64BigEndian(b.AsSpan(43), pid);
        BinaryPrimitives.WriteInt16BigEndian(b.AsSpan(51), epoch);
        BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(53), seq);
        BinaryPrimitives.WriteInt16BigEndian(b.AsSpan(21), 0x10);
        BatchBuilder.FixCrc(b);
        return b;
    }

    private static PartitionLog Partition(LogManager m)
    {
        if (!m.TryGetTopic("t", out var t)) t = m.CreateTopic("t", 1, new Dictionary<string, string>());
        return t.Partitions[0];
    }

    private static ErrorCode Refused(PartitionLog p, byte[] batch, VerificationGuard? guard)
    {
        var e = Assert.Throws<ProducerStateException>(() => p.AppendFromClient(batch, 1, guard))!;
        return e.Code;
    }

    [Test]
    public void FirstBatchNeedsTheGuardLaterBatchesTheOpenTransaction()
    {
        using var m = _tmp.Open();
        var p = Partition(m);
        Assert.That(Refused(p, TxnBatch(7, 0, 0), null), Is.EqualTo(ErrorCode.InvalidTxnState), "unverified first batch");
        var guard = p.MaybeStartTransactionVerification(7, 0);
        Assert.That(guard, Is.Not.Null);
        Assert.That(p.MaybeStartTransactionVerification(7, 0), Is.SameAs(guard), "one guard per producer until used");
        p.AppendFromClient(TxnBatch(7, 0, 0), 1, guard);
        Assert.That(p.ProducerState.PendingVerifications, Is.Zero, "the first batch used the guard up");
        Assert.That(p.MaybeStartTransactionVerification(7, 0), Is.Null, "transaction open here: nothing to verify");
        p.AppendFromClient(TxnBatch(7, 0, 3), 1, null);
        Assert.That(p.LastStableOffset, Is.Zero);
    }

    [Test]
    public void BatchCheckedBeforeTheMarkerIsRefusedAfterIt()
    {
        using var m = _tmp.Open();
        var p = Partition(m);
        p.AppendFromClient(TxnBatch(7, 0, 0), 1, p.MaybeStartTransactionVerification(7, 0));
        // The late batch's Produce found the transaction open here (no guard needed), then the marker won the lock.
        Assert.That(p.MaybeStartTransactionVerification(7, 0), Is.Null);
        p.AppendEndTxnMarker(7, 0, 0, commit: true);
        Assert.That(Refused(p, TxnBatch(7, 0, 3), null), Is.EqualTo(ErrorCode.InvalidTxnState));
        Assert.That((p.LastStableOffset, p.LogEndOffset), Is.EqualTo((4L, 4L)), "nothing after the marker");

        // Same with a guard taken before the marker (the coordinator confirmed before EndTxn): the marker cleared it.
        var guard = p.MaybeStartTransactionVerification(7, 0);
        p.AppendEndTxnMarker(7, 0, 0, commit: false);
        Assert.That(Refused(p, TxnBatch(7, 0, 3), guard), Is.EqualTo(ErrorCode.InvalidTxnState));
        // A later transaction's guard is a new one: the stale guard stays useless (Kafka's ABA case).
        var next = p.MaybeStartTransactionVerification(7, 0);
        Assert.That(next, Is.Not.SameAs(guard));
        Assert.That(Refused(p, TxnBatch(7, 0, 3), guard), Is.EqualTo(ErrorCode.InvalidTxnState));
        p.AppendFromClient(TxnBatch(7, 0, 3), 1, next);
        Assert.That(p.LastStableOffset, Is.EqualTo(5));
    }

    [Test]
    public void RetryOfAnAppendedBatchStillGetsItsOffsetsAfterTheMarker()
    {
        using var m = _tmp.Open();
        var p = Partition(m);
        var first = p.AppendFromClient(TxnBatch(7, 0, 0), 1, p.MaybeStartTransactionVerification(7, 0));
        p.AppendEndTxnMarker(7, 0, 0, commit: true);
        var retry = p.AppendFromClient(TxnBatch(7, 0, 0), 1, null);
        Assert.That((retry.IsDuplicate, retry.BaseOffset), Is.EqualTo((true, first.BaseOffset)));
    }

    [Test]
    public void CoordinatorWritesAndIdempotentBatchesNeedNoGuard()
    {
        using var m = _tmp.Open();
        var p = Partition(m);
        // Append (not from a client): the transaction coordinator checked the transaction itself (TxnOffsetCommit).
        p.Append(TxnBatch(7, 0, 0), 1);
        Assert.That(p.LastStableOffset, Is.Zero);
        var idempotent = BatchBuilder.Build(2, _tmp.Time.NowMs);
        BinaryPrimitives.WriteInt64BigEndian(idempotent.AsSpan(43), 8);
        BatchBuilder.FixCrc(idempotent);
        p.AppendFromClient(idempotent, 1, null);
    }

    [Test]
    public void UnusedGuardsExpireWithProducerIdExpiration()
    {
        using var m = _tmp.Open();
        var p = Partition(m);
        var guard = p.MaybeStartTransactionVerification(7, 0);
        _tmp.Time.Advance(1000);
        p.RemoveExpiredProducers(1000);
        Assert.That(p.ProducerState.PendingVerifications, Is.Zero);
        Assert.That(Refused(p, TxnBatch(7, 0, 0), guard), Is.EqualTo(ErrorCode.InvalidTxnState));
    }
}
