using Kayak.Coordinator.Transactions;
using Kayak.Protocol;
using NUnit.Framework;

namespace Kayak.Coordinator.Tests.Transactions;

internal sealed class ManualClock : TimeProvider
{
    private long _nowMs = 1_700_000_000_000;
    public void Advance(long ms) => Interlocked.Add(ref _nowMs, ms);
    public override DateTimeOffset GetUtcNow() => DateTimeOffset.FromUnixTimeMilliseconds(Interlocked.Read(ref _nowMs));
}

internal sealed class RecordingMarkers : ITransactionMarkerWriter
{
    public List<(TxnPartition Partition, long Pid, short Epoch, bool Commit)> Written { get; } = new();
    /// <summary>The coordinator epoch of each marker in <see cref="Written"/>.</summary>
    public List<int> CoordinatorEpochs { get; } = new();
    public bool Fail { get; set; }

    public ErrorCode WriteMarker(TxnPartition partition, long producerId, short producerEpoch, int coordinatorEpoch, bool commit)
    {
        if (Fail) throw new IOException("simulated crash while writing markers");
        Written.Add((partition, producerId, producerEpoch, commit));
        CoordinatorEpochs.Add(coordinatorEpoch);
        return ErrorCode.None;
    }
}

internal sealed class RecordingOffsets : ITxnOffsetSink
{
    public List<(string Group, long Pid, PendingTxnOffset Offset)> Stored { get; } = new();
    public List<(int Partition, long Pid, bool Commit)> Completed { get; } = new();

    public ErrorCode StoreTransactionalOffsets(string groupId, long producerId, short producerEpoch, IReadOnlyList<PendingTxnOffset> offsets)
    {
        foreach (var o in offsets) Stored.Add((groupId, producerId, o));
        return ErrorCode.None;
    }

    public void CompleteTransaction(int offsetsPartition, long producerId, short producerEpoch, bool commit) =>
        Completed.Add((offsetsPartition, producerId, commit));
}

public class TransactionCoordinatorTests
{
    private ManualClock _clock = null!;
    private InMemoryTransactionLog _log = null!;
    private RecordingMarkers _markers = null!;
    private ProducerIdManager _ids = null!;

    [SetUp]
    public void SetUp()
    {
        _clock = new ManualClock();
        _log = new InMemoryTransactionLog();
        _markers = new RecordingMarkers();
        _ids = new ProducerIdManager(null);
    }

    private TransactionCoordinator NewCoordinator()
    {
        var c = new TransactionCoordinator(new TransactionCoordinatorOptions { NumPartitions = 5, OffsetsTopicNumPartitions = 7, Time = _clock, TransactionalIdExpirationMs = 100_000 }, _log, _markers, _ids);
        c.Load();
        return c;
    }

    private static readonly TxnPartition A0 = new("a", 0), B1 = new("b", 1);

    [Test]
    public void PartitionForMatchesJavaStringHashCode()
    {
        // "hello".hashCode() == 99162322 in Java; a negative hash is masked, not negated.
        Assert.That(TransactionCoordinator.PartitionFor("hello", 50), Is.EqualTo(99162322 % 50));
        int h = 0;
        foreach (char ch in "polygenelubricants") h = unchecked(31 * h + ch);
        Assert.That(h, Is.EqualTo(int.MinValue)); // a known Java string whose hashCode is Integer.MIN_VALUE
        Assert.That(TransactionCoordinator.PartitionFor("polygenelubricants", 50), Is.EqualTo(0));
    }

    [Test]
    public void IdempotentProducersGetFreshIdsAtEpochZero()
    {
        var c = NewCoordinator();
        var a = c.InitProducerId(null, 0);
        var b = c.InitProducerId(null, 0);
        Assert.That((a.Error, a.ProducerEpoch, b.Error, b.ProducerEpoch), Is.EqualTo((ErrorCode.None, (short)0, ErrorCode.None, (short)0)));
        Assert.That(b.ProducerId, Is.Not.EqualTo(a.ProducerId));
    }

    [Test]
    public void InitProducerIdValidatesInput()
    {
        var c = NewCoordinator();
        Assert.That(c.InitProducerId("", 1000).Error, Is.EqualTo(ErrorCode.InvalidRequest));
        Assert.That(c.InitProducerId("t", 0).Error, Is.EqualTo(ErrorCode.InvalidTransactionTimeout));
        Assert.That(c.InitProducerId("t", 900_001).Error, Is.EqualTo(ErrorCode.InvalidTransactionTimeout));
    }

    [Test]
    public void CommitWritesMarkersToEveryPartitionAndCompletes()
    {
        var c = NewCoordinator();
        var p = c.InitProducerId("t", 60_000);
        Assert.That(c.AddPartitions("t", p.ProducerId, p.ProducerEpoch, [A0]), Is.EqualTo(ErrorCode.None));
        Assert.That(c.AddPartitions("t", p.ProducerId, p.ProducerEpoch, [B1, A0]), Is.EqualTo(ErrorCode.None));
        Assert.That(c.Describe("t")!.State, Is.EqualTo(TransactionState.Ongoing));
        Assert.That(c.CheckProduce(p.ProducerId, p.ProducerEpoch, "a", 0), Is.EqualTo(ErrorCode.None));
        Assert.That(c.CheckProduce(p.ProducerId, p.ProducerEpoch, "a", 1), Is.EqualTo(ErrorCode.InvalidTxnState));

        Assert.That(c.EndTxn("t", p.ProducerId, p.ProducerEpoch, commit: true), Is.EqualTo(ErrorCode.None));
        Assert.That(_markers.Written, Is.EquivalentTo(new[] { (A0, p.ProducerId, p.ProducerEpoch, true), (B1, p.ProducerId, p.ProducerEpoch, true) }));
        var d = c.Describe("t")!;
        Assert.That((d.State, d.Partitions.Count), Is.EqualTo((TransactionState.CompleteCommit, 0)));
        // A retried commit succeeds; aborting a committed transaction does not.
        Assert.That(c.EndTxn("t", p.ProducerId, p.ProducerEpoch, commit: true), Is.EqualTo(ErrorCode.None));
        Assert.That(c.EndTxn("t", p.ProducerId, p.ProducerEpoch, commit: false), Is.EqualTo(ErrorCode.InvalidTxnState));
        Assert.That(_markers.Written, Has.Count.EqualTo(2));
        Assert.That(c.CheckProduce(p.ProducerId, p.ProducerEpoch, "a", 0), Is.EqualTo(ErrorCode.InvalidTxnState));
    }

    [Test]
    public void EndTxnErrors()
    {
        var c = NewCoordinator();
        var p = c.InitProducerId("t", 60_000);
        Assert.That(c.EndTxn("t", p.ProducerId, p.ProducerEpoch, commit: true), Is.EqualTo(ErrorCode.InvalidTxnState)); // Empty
        Assert.That(c.EndTxn("nope", p.ProducerId, p.ProducerEpoch, commit: true), Is.EqualTo(ErrorCode.InvalidProducerIdMapping));
        Assert.That(c.EndTxn("t", p.ProducerId + 1, p.ProducerEpoch, commit: true), Is.EqualTo(ErrorCode.InvalidProducerIdMapping));
        Assert.That(c.AddPartitions("t", p.ProducerId, (short)(p.ProducerEpoch + 1), [A0]), Is.EqualTo(ErrorCode.ProducerFenced));
    }

    [Test]
    public void SecondInstanceFencesTheFirstAndAbortsItsTransaction()
    {
        var c = NewCoordinator();
        var first = c.InitProducerId("t", 60_000);
        c.AddPartitions("t", first.ProducerId, first.ProducerEpoch, [A0]);
        var second = c.InitProducerId("t", 60_000);
        Assert.That(second.ProducerId, Is.EqualTo(first.ProducerId));
        Assert.That(second.ProducerEpoch, Is.EqualTo((short)(first.ProducerEpoch + 2)));
        // The open transaction was aborted with the fencing epoch.
        Assert.That(_markers.Written, Is.EqualTo(new[] { (A0, first.ProducerId, (short)(first.ProducerEpoch + 1), false) }));
        Assert.That(c.EndTxn("t", first.ProducerId, first.ProducerEpoch, commit: true), Is.EqualTo(ErrorCode.ProducerFenced));
        Assert.That(c.CheckProduce(first.ProducerId, first.ProducerEpoch, "a", 0), Is.EqualTo(ErrorCode.InvalidProducerEpoch));
        // KIP-360: a client presenting a stale id/epoch is fenced.
        Assert.That(c.InitProducerId("t", 60_000, first.ProducerId, first.ProducerEpoch).Error, Is.EqualTo(ErrorCode.ProducerFenced));
        Assert.That(c.InitProducerId("t", 60_000, second.ProducerId, second.ProducerEpoch).ProducerEpoch, Is.EqualTo((short)(second.ProducerEpoch + 1)));
    }

    [Test]
    public void TimedOutTransactionIsAbortedWithABumpedEpoch()
    {
        var c = NewCoordinator();
        var p = c.InitProducerId("t", 10_000);
        c.AddPartitions("t", p.ProducerId, p.ProducerEpoch, [A0]);
        _clock.Advance(9_999);
        Assert.That(c.AbortTimedOutTransactions(), Is.EqualTo(0));
        _clock.Advance(1);
        Assert.That(c.AbortTimedOutTransactions(), Is.EqualTo(1));
        Assert.That(_markers.Written, Is.EqualTo(new[] { (A0, p.ProducerId, (short)(p.ProducerEpoch + 1), false) }));
        Assert.That(c.Describe("t")!.State, Is.EqualTo(TransactionState.CompleteAbort));
        Assert.That(c.EndTxn("t", p.ProducerId, p.ProducerEpoch, commit: true), Is.EqualTo(ErrorCode.ProducerFenced));
    }

    [Test]
    public void IdleTransactionalIdsExpire()
    {
        var c = NewCoordinator();
        c.InitProducerId("t", 10_000);
        _clock.Advance(100_000);
        c.AbortTimedOutTransactions();
        Assert.That(c.Describe("t"), Is.Null);
        Assert.That(NewCoordinator().Describe("t"), Is.Null, "the tombstone is persisted");
    }

    [Test]
    public void StateIsReloadedFromTheLog()
    {
        var c = NewCoordinator();
        var p = c.InitProducerId("t", 60_000);
        c.AddPartitions("t", p.ProducerId, p.ProducerEpoch, [A0, B1]);
        var other = c.InitProducerId("u", 30_000);

        var reloaded = NewCoordinator();
        var d = reloaded.Describe("t")!;
        Assert.That((d.ProducerId, d.ProducerEpoch, d.State, d.TimeoutMs), Is.EqualTo((p.ProducerId, p.ProducerEpoch, TransactionState.Ongoing, 60_000)));
        Assert.That(d.Partitions, Is.EquivalentTo(new[] { A0, B1 }));
        Assert.That(reloaded.Describe("u")!.State, Is.EqualTo(TransactionState.Empty));
        Assert.That(reloaded.EndTxn("t", p.ProducerId, p.ProducerEpoch, commit: false), Is.EqualTo(ErrorCode.None));
        Assert.That(_markers.Written, Has.Count.EqualTo(2));
        Assert.That(other.ProducerId, Is.Not.EqualTo(p.ProducerId));
    }

    [Test]
    public void StopBetweenPrepareAndCompleteIsFinishedOnLoad()
    {
        var c = NewCoordinator();
        var p = c.InitProducerId("t", 60_000);
        c.AddPartitions("t", p.ProducerId, p.ProducerEpoch, [A0]);
        _markers.Fail = true;
        Assert.That(c.EndTxn("t", p.ProducerId, p.ProducerEpoch, commit: true), Is.EqualTo(ErrorCode.None), "decided once PrepareCommit is in the log");
        Assert.That(c.Describe("t")!.State, Is.EqualTo(TransactionState.PrepareCommit));
        _markers.Fail = false;

        var reloaded = NewCoordinator();
        Assert.That(_markers.Written, Is.EqualTo(new[] { (A0, p.ProducerId, p.ProducerEpoch, true) }));
        Assert.That(reloaded.Describe("t")!.State, Is.EqualTo(TransactionState.CompleteCommit));
    }

    /// <summary>
    /// A marker that cannot be written after PrepareCommit: EndTxn answers NONE (Kafka completes markers
    /// asynchronously), the transaction stays prepared and busy, and the timer's next pass writes the markers.
    /// </summary>
    [Test]
    public void AFailingMarkerWriteAnswersNoneAndTheNextTimerPassWritesTheMarkers()
    {
        var c = NewCoordinator();
        var p = c.InitProducerId("t", 60_000);
        c.AddPartitions("t", p.ProducerId, p.ProducerEpoch, [A0, B1]);
        _markers.Fail = true;
        Assert.That(c.EndTxn("t", p.ProducerId, p.ProducerEpoch, commit: true), Is.EqualTo(ErrorCode.None));
        Assert.That(_markers.Written, Is.Empty);
        Assert.That(c.Describe("t")!.State, Is.EqualTo(TransactionState.PrepareCommit));
        Assert.That(c.AddPartitions("t", p.ProducerId, p.ProducerEpoch, [A0]), Is.EqualTo(ErrorCode.ConcurrentTransactions), "still completing");
        Assert.Throws<IOException>(() => c.AbortTimedOutTransactions(), "a pass that still cannot write reports it");
        Assert.That(c.Describe("t")!.State, Is.EqualTo(TransactionState.PrepareCommit));

        _markers.Fail = false;
        Assert.That(c.AbortTimedOutTransactions(), Is.EqualTo(0), "finished, not aborted");
        Assert.That(_markers.Written, Is.EquivalentTo(new[] { (A0, p.ProducerId, p.ProducerEpoch, true), (B1, p.ProducerId, p.ProducerEpoch, true) }));
        Assert.That(c.Describe("t")!.State, Is.EqualTo(TransactionState.CompleteCommit));
        Assert.That(c.EndTxn("t", p.ProducerId, p.ProducerEpoch, commit: true), Is.EqualTo(ErrorCode.None), "the retry finds it committed");
        Assert.That(NewCoordinator().Describe("t")!.State, Is.EqualTo(TransactionState.CompleteCommit), "persisted");
    }

    [Test]
    public void TransactionalOffsetsAreMaterializedOnlyOnCommit()
    {
        var c = NewCoordinator();
        var sink = new RecordingOffsets();
        c.OffsetSink = sink;
        var p = c.InitProducerId("t", 60_000);
        var offsets = new[] { new PendingTxnOffset("in", 0, 42, -1, null, 0) };
        Assert.That(c.TxnOffsetCommit("t", "g", p.ProducerId, p.ProducerEpoch, offsets), Is.EqualTo(ErrorCode.InvalidTxnState), "AddOffsetsToTxn first");
        Assert.That(c.AddOffsets("t", p.ProducerId, p.ProducerEpoch, "g"), Is.EqualTo(ErrorCode.None));
        Assert.That(c.Describe("t")!.Partitions, Is.EqualTo(new[] { new TxnPartition("__consumer_offsets", TransactionCoordinator.PartitionFor("g", 7)) }));
        Assert.That(c.TxnOffsetCommit("t", "g", p.ProducerId, p.ProducerEpoch, offsets), Is.EqualTo(ErrorCode.None));
        Assert.That(sink.Stored, Is.EqualTo(new[] { ("g", p.ProducerId, offsets[0]) }), "stored (pending) at once");
        c.EndTxn("t", p.ProducerId, p.ProducerEpoch, commit: false);
        int partition = TransactionCoordinator.PartitionFor("g", 7);
        Assert.That(sink.Completed, Is.EqualTo(new[] { (partition, p.ProducerId, false) }));

        c.AddOffsets("t", p.ProducerId, p.ProducerEpoch, "g");
        c.TxnOffsetCommit("t", "g", p.ProducerId, p.ProducerEpoch, offsets);
        c.EndTxn("t", p.ProducerId, p.ProducerEpoch, commit: true);
        Assert.That(sink.Completed, Is.EqualTo(new[] { (partition, p.ProducerId, false), (partition, p.ProducerId, true) }));
        Assert.That(_markers.Written, Is.Empty, "the group coordinator writes the __consumer_offsets markers itself");
    }

    [Test]
    public void ListFiltersByStateProducerAndDuration()
    {
        var c = NewCoordinator();
        var t = c.InitProducerId("t", 60_000);
        var u = c.InitProducerId("u", 60_000);
        c.AddPartitions("t", t.ProducerId, t.ProducerEpoch, [A0]);
        _clock.Advance(5_000);
        Assert.That(c.List(["Ongoing"], []).Select(x => x.TransactionalId), Is.EqualTo(new[] { "t" }));
        Assert.That(c.List([], [u.ProducerId]).Select(x => x.TransactionalId), Is.EqualTo(new[] { "u" }));
        Assert.That(c.List(["Ongoing"], [], 4_999).Select(x => x.TransactionalId), Is.EqualTo(new[] { "t" }));
        Assert.That(c.List(["Ongoing"], [], 5_000), Is.Empty, "strictly longer than the filter");
    }

    [Test]
    public void ProducerIdsNeverRepeatAcrossRestarts()
    {
        string path = Path.Combine(Path.GetTempPath(), "kayak-pid-" + Guid.NewGuid().ToString("N"));
        try
        {
            var first = new ProducerIdManager(path);
            long a = first.NextProducerId(), b = first.NextProducerId();
            Assert.That(b, Is.EqualTo(a + 1));
            var second = new ProducerIdManager(path); // restart without a clean shutdown
            Assert.That(second.NextProducerId(), Is.GreaterThan(b));
        }
        finally { File.Delete(path); }
    }
}
