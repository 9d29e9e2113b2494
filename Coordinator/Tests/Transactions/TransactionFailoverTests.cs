using Kayak.Coordinator.Transactions;
using Kayak.Protocol;
using NUnit.Framework;

namespace Kayak.Coordinator.Tests.Transactions;

/// <summary>
/// Transaction coordinator failover (issue 14): a coordinator serves a __transaction_state partition only while it
/// leads it; a new leader loads the partition from the (replicated) log, answering COORDINATOR_LOAD_IN_PROGRESS
/// meanwhile, and completes the transactions it finds prepared (Kafka's onElection); the old one answers NOT_COORDINATOR.
/// </summary>
public class TransactionFailoverTests
{
    private const string Id = "txn-failover";
    private static readonly TxnPartition Data = new("orders", 0);

    private static TransactionCoordinator New(InMemoryTransactionLog log, ITransactionMarkerWriter markers, IProducerIdAllocator ids,
        ManualClock clock, Func<int, int> epochOf) =>
        new(new TransactionCoordinatorOptions { NumPartitions = 5, OffsetsTopicNumPartitions = 7, Time = clock, TransactionalIdExpirationMs = 100_000 },
            log, markers, ids) { LeaderEpochOf = epochOf };

    [Test]
    public void NewLeaderLoadsThePartitionAndCompletesAPreparedCommit()
    {
        var log = new InMemoryTransactionLog();
        var clock = new ManualClock();
        var ids = new ProducerIdManager(null);
        var oldMarkers = new RecordingMarkers();
        var newMarkers = new RecordingMarkers();
        int oldEpoch = 0, newEpoch = -1;
        var old = New(log, oldMarkers, ids, clock, _ => oldEpoch);
        var next = New(log, newMarkers, ids, clock, _ => newEpoch);
        old.Load();
        next.Load(); // a follower loads nothing

        var init = old.InitProducerId(Id, 60_000);
        Assert.That(init.Error, Is.EqualTo(ErrorCode.None));
        Assert.That(next.InitProducerId(Id, 60_000).Error, Is.EqualTo(ErrorCode.NotCoordinator), "a follower is not the coordinator");
        Assert.That(old.AddPartitions(Id, init.ProducerId, init.ProducerEpoch, [Data]), Is.EqualTo(ErrorCode.None));
        // The old coordinator dies between PrepareCommit and its markers.
        oldMarkers.Fail = true;
        Assert.That(old.EndTxn(Id, init.ProducerId, init.ProducerEpoch, commit: true), Is.EqualTo(ErrorCode.None));
        Assert.That(old.Describe(Id)!.State, Is.EqualTo(TransactionState.PrepareCommit));

        // Election: the old leader resigns, the new one loads on its first request and finishes the commit.
        oldEpoch = -1;
        newEpoch = 1;
        Assert.That(old.EndTxn(Id, init.ProducerId, init.ProducerEpoch, commit: true), Is.EqualTo(ErrorCode.NotCoordinator));
        Assert.That(old.Describe(Id), Is.Null, "the resigned coordinator forgot the id");
        Assert.That(next.InitProducerId(Id, 60_000).Error, Is.EqualTo(ErrorCode.CoordinatorLoadInProgress));
        next.WaitForLoads();
        Assert.That(newMarkers.Written, Is.EqualTo(new[] { (Data, init.ProducerId, init.ProducerEpoch, true) }), "onElection writes the markers");
        Assert.That(next.Describe(Id)!.State, Is.EqualTo(TransactionState.CompleteCommit));

        // A new producer instance with the same transactional.id fences the old one on the new coordinator.
        var again = next.InitProducerId(Id, 60_000);
        Assert.That(again.Error, Is.EqualTo(ErrorCode.None));
        Assert.That(again.ProducerId, Is.EqualTo(init.ProducerId));
        Assert.That(again.ProducerEpoch, Is.GreaterThan(init.ProducerEpoch));
        Assert.That(next.AddPartitions(Id, again.ProducerId, again.ProducerEpoch, [Data]), Is.EqualTo(ErrorCode.None));
        Assert.That(next.EndTxn(Id, again.ProducerId, again.ProducerEpoch, commit: true), Is.EqualTo(ErrorCode.None));
        Assert.That(newMarkers.Written, Has.Count.EqualTo(2));
    }

    [Test]
    public void TimerPassActsOnAnElectionWithoutAClientRequest()
    {
        var log = new InMemoryTransactionLog();
        var clock = new ManualClock();
        var ids = new ProducerIdManager(null);
        var oldMarkers = new RecordingMarkers { };
        int oldEpoch = 3, newEpoch = -1;
        var old = New(log, oldMarkers, ids, clock, _ => oldEpoch);
        old.Load();
        var init = old.InitProducerId(Id, 60_000);
        Assert.That(old.AddPartitions(Id, init.ProducerId, init.ProducerEpoch, [Data]), Is.EqualTo(ErrorCode.None));
        oldMarkers.Fail = true;
        Assert.That(old.EndTxn(Id, init.ProducerId, init.ProducerEpoch, commit: false), Is.EqualTo(ErrorCode.None));

        var newMarkers = new RecordingMarkers();
        var next = New(log, newMarkers, ids, clock, _ => newEpoch);
        next.Load();
        Assert.That(newMarkers.Written, Is.Empty);
        oldEpoch = -1;
        newEpoch = 4;
        old.AbortTimedOutTransactions(); // resigns: nothing written by the old coordinator
        next.AbortTimedOutTransactions(); // elected: starts the load
        next.WaitForLoads();
        Assert.That(newMarkers.Written, Is.EqualTo(new[] { (Data, init.ProducerId, init.ProducerEpoch, false) }));
        Assert.That(next.Describe(Id)!.State, Is.EqualTo(TransactionState.CompleteAbort));
        Assert.That(old.Describe(Id), Is.Null);
    }

    /// <summary>
    /// A marker carries the leader epoch under which the coordinator loaded the transactional id's __transaction_state
    /// partition (Kafka's coordinatorEpoch), so a partition leader can tell the new coordinator's markers from a deposed
    /// one's; a single broker (no leadership) writes 0.
    /// </summary>
    [Test]
    public void MarkersCarryTheStatePartitionsLeaderEpoch()
    {
        var log = new InMemoryTransactionLog();
        var clock = new ManualClock();
        var ids = new ProducerIdManager(null);
        var oldMarkers = new RecordingMarkers();
        var newMarkers = new RecordingMarkers();
        int oldEpoch = 4, newEpoch = -1;
        var old = New(log, oldMarkers, ids, clock, _ => oldEpoch);
        var next = New(log, newMarkers, ids, clock, _ => newEpoch);
        old.Load();
        next.Load();
        old.WaitForLoads();
        var init = old.InitProducerId(Id, 60_000);
        Assert.That(init.Error, Is.EqualTo(ErrorCode.None));
        Assert.That(old.AddPartitions(Id, init.ProducerId, init.ProducerEpoch, [Data]), Is.EqualTo(ErrorCode.None));
        Assert.That(old.EndTxn(Id, init.ProducerId, init.ProducerEpoch, commit: true), Is.EqualTo(ErrorCode.None));
        Assert.That(oldMarkers.CoordinatorEpochs, Is.EqualTo(new[] { 4 }));

        oldEpoch = -1;
        newEpoch = 5;
        Assert.That(next.InitProducerId(Id, 60_000).Error, Is.EqualTo(ErrorCode.CoordinatorLoadInProgress));
        next.WaitForLoads();
        var again = next.InitProducerId(Id, 60_000);
        Assert.That(again.Error, Is.EqualTo(ErrorCode.None));
        Assert.That(next.AddPartitions(Id, again.ProducerId, again.ProducerEpoch, [Data]), Is.EqualTo(ErrorCode.None));
        Assert.That(next.EndTxn(Id, again.ProducerId, again.ProducerEpoch, commit: false), Is.EqualTo(ErrorCode.None));
        Assert.That(newMarkers.CoordinatorEpochs, Is.EqualTo(new[] { 5 }));

        var single = new RecordingMarkers();
        var alone = new TransactionCoordinator(new TransactionCoordinatorOptions { NumPartitions = 5, OffsetsTopicNumPartitions = 7, Time = clock },
            new InMemoryTransactionLog(), single, ids);
        alone.Load();
        var s = alone.InitProducerId(Id, 60_000);
        Assert.That(alone.AddPartitions(Id, s.ProducerId, s.ProducerEpoch, [Data]), Is.EqualTo(ErrorCode.None));
        Assert.That(alone.EndTxn(Id, s.ProducerId, s.ProducerEpoch, commit: true), Is.EqualTo(ErrorCode.None));
        Assert.That(single.CoordinatorEpochs, Is.EqualTo(new[] { TransactionCoordinator.CoordinatorEpoch }));
    }
}
