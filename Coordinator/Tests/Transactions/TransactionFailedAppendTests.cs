using Kayak.Coordinator.Transactions;
using Kayak.Protocol;
using Kayak.Storage;
using NUnit.Framework;

namespace Kayak.Coordinator.Tests.Transactions;

/// <summary>
/// A TransactionLog record that <c>__transaction_state</c> refuses changes no state (the group side's
/// <see cref="FailedAppendTests"/>): each transition runs once against a refusing log (COORDINATOR_NOT_AVAILABLE,
/// Kafka's mapping of append failures, and the dumped state is as before) and once against a healthy one, where
/// the same call does change it, so the first half could fail.
/// </summary>
public class TransactionFailedAppendTests
{
    private const int Partitions = 5;
    private static readonly TxnPartition A0 = new("a", 0), B1 = new("b", 1);
    private ManualClock _clock = null!;
    private FaultyTransactionLog _log = null!;
    private RecordingMarkers _markers = null!;
    private TransactionCoordinator _c = null!;
    private InitProducerIdResult _t;
    /// <summary>One allocator for every coordinator of a test, as the broker's persisted block file is.</summary>
    private ProducerIdManager _ids = null!;

    [SetUp]
    public void SetUp()
    {
        _clock = new ManualClock();
        _log = new FaultyTransactionLog(new InMemoryTransactionLog());
        _markers = new RecordingMarkers();
        _ids = new ProducerIdManager(null);
        _c = New(_markers);
        _t = _c.InitProducerId("t", 10_000);
        Assert.That(_t.Error, Is.EqualTo(ErrorCode.None));
    }

    private TransactionCoordinator New(ITransactionMarkerWriter markers)
    {
        var c = new TransactionCoordinator(new TransactionCoordinatorOptions
        {
            NumPartitions = Partitions, OffsetsTopicNumPartitions = 7, Time = _clock, TransactionalIdExpirationMs = 100_000,
        }, _log, markers, _ids);
        c.Load();
        return c;
    }

    /// <summary>Runs <paramref name="act"/> against a refusing log and checks it changed nothing; returns the state before.</summary>
    private string RefusedChangesNothing(Action act)
    {
        string before = TxnCanonicalState.Dump(_c);
        int batches = _log.Batches(Partitions);
        int markers = _markers.Written.Count;
        _log.Fail = true;
        act();
        _log.Fail = false;
        Assert.That(_log.Refused, Is.GreaterThan(0), "the operation tried to write");
        Assert.That(_log.Batches(Partitions), Is.EqualTo(batches));
        Assert.That(_markers.Written, Has.Count.EqualTo(markers), "no marker for a transition that was not written");
        Assert.That(TxnCanonicalState.Dump(_c), Is.EqualTo(before), "a refused record changed state");
        return before;
    }

    /// <summary>The state after a write equals what a fresh coordinator loads from the log.</summary>
    private void AssertReloadMatches()
    {
        var fresh = new TransactionCoordinator(new TransactionCoordinatorOptions { NumPartitions = Partitions, OffsetsTopicNumPartitions = 7, Time = _clock },
            TxnCanonicalState.Copy(_log, Partitions), new RecordingMarkers(), new ProducerIdManager(null));
        fresh.LoadState();
        Assert.That(TxnCanonicalState.Dump(fresh), Is.EqualTo(TxnCanonicalState.Dump(_c)));
    }

    [Test]
    public void InitProducerIdOfANewTransactionalId()
    {
        RefusedChangesNothing(() => Assert.That(_c.InitProducerId("n", 10_000).Error, Is.EqualTo(ErrorCode.CoordinatorNotAvailable)));
        Assert.That(_c.Describe("n"), Is.Null);
        var n = _c.InitProducerId("n", 10_000);
        Assert.That(n.Error, Is.EqualTo(ErrorCode.None));
        Assert.That(_c.Describe("n")!.ProducerId, Is.EqualTo(n.ProducerId));
        AssertReloadMatches();
    }

    [Test]
    public void InitProducerIdBumpingTheEpoch()
    {
        RefusedChangesNothing(() => Assert.That(_c.InitProducerId("t", 10_000).Error, Is.EqualTo(ErrorCode.CoordinatorNotAvailable)));
        Assert.That(_c.AddPartitions("t", _t.ProducerId, _t.ProducerEpoch, [A0]), Is.EqualTo(ErrorCode.None), "the old epoch still holds");
        Assert.That(_c.EndTxn("t", _t.ProducerId, _t.ProducerEpoch, commit: false), Is.EqualTo(ErrorCode.None));
        Assert.That(_c.InitProducerId("t", 10_000).ProducerEpoch, Is.EqualTo((short)(_t.ProducerEpoch + 1)));
        AssertReloadMatches();
    }

    [Test]
    public void InitProducerIdFencingAnOngoingTransaction()
    {
        Assert.That(_c.AddPartitions("t", _t.ProducerId, _t.ProducerEpoch, [A0]), Is.EqualTo(ErrorCode.None));
        RefusedChangesNothing(() => Assert.That(_c.InitProducerId("t", 10_000).Error, Is.EqualTo(ErrorCode.CoordinatorNotAvailable)));
        Assert.That(_c.Describe("t")!.State, Is.EqualTo(TransactionState.Ongoing));
        var fenced = _c.InitProducerId("t", 10_000);
        Assert.That(fenced.ProducerEpoch, Is.EqualTo((short)(_t.ProducerEpoch + 2)), "one bump for the abort, one for the new instance");
        Assert.That(_markers.Written, Is.EqualTo(new[] { (A0, _t.ProducerId, (short)(_t.ProducerEpoch + 1), false) }));
        AssertReloadMatches();
    }

    [Test]
    public void AddPartitions()
    {
        RefusedChangesNothing(() => Assert.That(_c.AddPartitions("t", _t.ProducerId, _t.ProducerEpoch, [A0, B1]), Is.EqualTo(ErrorCode.CoordinatorNotAvailable)));
        Assert.That(_c.CheckProduce(_t.ProducerId, _t.ProducerEpoch, "a", 0), Is.EqualTo(ErrorCode.InvalidTxnState), "not in a transaction");
        Assert.That(_c.AddPartitions("t", _t.ProducerId, _t.ProducerEpoch, [A0, B1]), Is.EqualTo(ErrorCode.None));
        Assert.That(_c.CheckProduce(_t.ProducerId, _t.ProducerEpoch, "a", 0), Is.EqualTo(ErrorCode.None));
        AssertReloadMatches();
    }

    [Test]
    public void AddOffsets()
    {
        RefusedChangesNothing(() => Assert.That(_c.AddOffsets("t", _t.ProducerId, _t.ProducerEpoch, "g"), Is.EqualTo(ErrorCode.CoordinatorNotAvailable)));
        Assert.That(_c.AddOffsets("t", _t.ProducerId, _t.ProducerEpoch, "g"), Is.EqualTo(ErrorCode.None));
        Assert.That(_c.Describe("t")!.Partitions, Has.Count.EqualTo(1));
        AssertReloadMatches();
    }

    [Test]
    public void EndTxnWhosePrepareIsRefusedStaysOngoing()
    {
        Assert.That(_c.AddPartitions("t", _t.ProducerId, _t.ProducerEpoch, [A0]), Is.EqualTo(ErrorCode.None));
        RefusedChangesNothing(() => Assert.That(_c.EndTxn("t", _t.ProducerId, _t.ProducerEpoch, commit: true), Is.EqualTo(ErrorCode.CoordinatorNotAvailable)));
        Assert.That(_c.CheckProduce(_t.ProducerId, _t.ProducerEpoch, "a", 0), Is.EqualTo(ErrorCode.None), "still open for produce");
        Assert.That(_c.EndTxn("t", _t.ProducerId, _t.ProducerEpoch, commit: true), Is.EqualTo(ErrorCode.None));
        Assert.That(_c.Describe("t")!.State, Is.EqualTo(TransactionState.CompleteCommit));
        Assert.That(_markers.Written, Is.EqualTo(new[] { (A0, _t.ProducerId, _t.ProducerEpoch, true) }));
        AssertReloadMatches();
    }

    /// <summary>Markers written, then the Complete record refused: the commit was decided, the timer finishes it.</summary>
    [Test]
    public void EndTxnWhoseCompleteIsRefusedIsFinishedByTheTimer()
    {
        var markers = new RefuseAfterMarker(_log);
        _c = New(markers);
        Assert.That(_c.AddPartitions("t", _t.ProducerId, _t.ProducerEpoch, [A0]), Is.EqualTo(ErrorCode.None));
        Assert.That(_c.EndTxn("t", _t.ProducerId, _t.ProducerEpoch, commit: true), Is.EqualTo(ErrorCode.None), "decided once PrepareCommit is in the log");
        Assert.That(_log.Refused, Is.EqualTo(1));
        Assert.That(_c.Describe("t")!.State, Is.EqualTo(TransactionState.PrepareCommit));
        AssertReloadMatches();
        Assert.That(_c.EndTxn("t", _t.ProducerId, _t.ProducerEpoch, commit: true), Is.EqualTo(ErrorCode.ConcurrentTransactions));
        Assert.That(_c.AddPartitions("t", _t.ProducerId, _t.ProducerEpoch, [B1]), Is.EqualTo(ErrorCode.ConcurrentTransactions));

        _log.Fail = false;
        markers.Armed = false;
        Assert.That(_c.AbortTimedOutTransactions(), Is.EqualTo(0), "finished, not aborted");
        Assert.That(_c.Describe("t")!.State, Is.EqualTo(TransactionState.CompleteCommit));
        Assert.That(markers.Written.Select(m => m.Commit), Is.EqualTo(new[] { true, true }), "the retry writes the (idempotent) marker again");
        Assert.That(_c.EndTxn("t", _t.ProducerId, _t.ProducerEpoch, commit: true), Is.EqualTo(ErrorCode.None));
        AssertReloadMatches();
    }

    [Test]
    public void TimeoutAbort()
    {
        Assert.That(_c.AddPartitions("t", _t.ProducerId, _t.ProducerEpoch, [A0]), Is.EqualTo(ErrorCode.None));
        _clock.Advance(10_000);
        RefusedChangesNothing(() => Assert.That(_c.AbortTimedOutTransactions(), Is.EqualTo(0)));
        Assert.That(_c.AbortTimedOutTransactions(), Is.EqualTo(1));
        var d = _c.Describe("t")!;
        Assert.That((d.State, d.ProducerEpoch), Is.EqualTo((TransactionState.CompleteAbort, (short)(_t.ProducerEpoch + 1))));
        AssertReloadMatches();
    }

    [Test]
    public void ExpiryTombstone()
    {
        _clock.Advance(100_000);
        RefusedChangesNothing(() => _c.AbortTimedOutTransactions());
        Assert.That(_c.Describe("t"), Is.Not.Null);
        _c.AbortTimedOutTransactions();
        Assert.That(_c.Describe("t"), Is.Null);
        Assert.That(_c.CheckProduce(_t.ProducerId, _t.ProducerEpoch, "a", 0), Is.EqualTo(ErrorCode.InvalidTxnState));
        AssertReloadMatches();
    }

    /// <summary>Kafka's TransactionStateManager maps the log's append error to the coordinator's (nothing changes either way).</summary>
    [TestCase(ErrorCode.KafkaStorageError, ErrorCode.NotCoordinator)]
    [TestCase(ErrorCode.MessageTooLarge, ErrorCode.UnknownServerError)]
    [TestCase(ErrorCode.UnknownTopicOrPartition, ErrorCode.CoordinatorNotAvailable)]
    [TestCase(ErrorCode.CorruptMessage, ErrorCode.CorruptMessage)]
    public void TheAppendErrorBecomesKafkasCoordinatorError(ErrorCode storage, ErrorCode expected)
    {
        _log.Error = () => new StorageErrorException(storage, "simulated");
        RefusedChangesNothing(() =>
        {
            Assert.That(_c.InitProducerId("n", 10_000).Error, Is.EqualTo(expected));
            Assert.That(_c.AddPartitions("t", _t.ProducerId, _t.ProducerEpoch, [A0]), Is.EqualTo(expected));
        });
        Assert.That(_c.AddPartitions("t", _t.ProducerId, _t.ProducerEpoch, [A0]), Is.EqualTo(ErrorCode.None));
        Assert.That(_c.EndTxn("t", _t.ProducerId, _t.ProducerEpoch, commit: true), Is.EqualTo(ErrorCode.None));
    }

    /// <summary>A timed-out transaction whose markers fail stays prepared and does not keep the timer from aborting the others.</summary>
    [Test]
    public void TheTimerAbortsOtherTransactionsWhenOnesMarkersFail()
    {
        var markers = new FailingTopic("a");
        _c = New(markers);
        Assert.That(_c.AddPartitions("t", _t.ProducerId, _t.ProducerEpoch, [A0]), Is.EqualTo(ErrorCode.None));
        // Several others, so some come after t in the timer's pass whatever the map's order.
        string[] others = ["u0", "u1", "u2", "u3", "u4", "u5"];
        foreach (var id in others)
        {
            var u = _c.InitProducerId(id, 10_000);
            Assert.That(_c.AddPartitions(id, u.ProducerId, u.ProducerEpoch, [B1]), Is.EqualTo(ErrorCode.None));
        }
        _clock.Advance(10_000);
        Assert.Throws<IOException>(() => _c.AbortTimedOutTransactions(), "the failure is reported");
        Assert.That(_c.Describe("t")!.State, Is.EqualTo(TransactionState.PrepareAbort), "decided, markers pending");
        foreach (var id in others) Assert.That(_c.Describe(id)!.State, Is.EqualTo(TransactionState.CompleteAbort), $"{id} is not held up by t");
        AssertReloadMatches();

        markers.Topic = null;
        Assert.That(_c.AbortTimedOutTransactions(), Is.EqualTo(0), "finished, not aborted again");
        Assert.That(_c.Describe("t")!.State, Is.EqualTo(TransactionState.CompleteAbort));
        AssertReloadMatches();
    }

    private sealed class FailingTopic(string? topic) : ITransactionMarkerWriter
    {
        public string? Topic { get; set; } = topic;

        public ErrorCode WriteMarker(TxnPartition partition, long producerId, short producerEpoch, int coordinatorEpoch, bool commit) =>
            partition.Topic == Topic ? throw new IOException("simulated marker failure") : ErrorCode.None;
    }

    /// <summary>Writes markers, then makes the log refuse what follows (the Complete record).</summary>
    private sealed class RefuseAfterMarker(FaultyTransactionLog log) : ITransactionMarkerWriter
    {
        public bool Armed { get; set; } = true;
        public List<(TxnPartition Partition, long Pid, short Epoch, bool Commit)> Written { get; } = new();

        public ErrorCode WriteMarker(TxnPartition partition, long producerId, short producerEpoch, int coordinatorEpoch, bool commit)
        {
            Written.Add((partition, producerId, producerEpoch, commit));
            if (Armed) log.Fail = true;
            return ErrorCode.None;
        }
    }
}
