using System.Collections.Concurrent;
using Kayak.Coordinator.Transactions;
using Kayak.Protocol;
using NUnit.Framework;

namespace Kayak.Coordinator.Tests.Transactions;

/// <summary>
/// The coordinator locks per transactional id: one transaction's EndTxn, held while it writes its markers, does not
/// hold up other transactions, and concurrent requests of many ids leave a log that replays to the same state.
/// </summary>
[CancelAfter(60_000)]
public class TransactionConcurrencyTests
{
    private sealed class ConcurrentMarkers : ITransactionMarkerWriter
    {
        public ConcurrentQueue<(TxnPartition Partition, long Pid, short Epoch, bool Commit)> Written { get; } = new();

        public ErrorCode WriteMarker(TxnPartition partition, long producerId, short producerEpoch, int coordinatorEpoch, bool commit)
        {
            Written.Enqueue((partition, producerId, producerEpoch, commit));
            return ErrorCode.None;
        }
    }

    /// <summary>Holds the EndTxn of one transactional id before its markers until released.</summary>
    private sealed class HoldOne(string transactionalId) : ITransactionMarkerHook
    {
        public ManualResetEventSlim Reached { get; } = new();
        public ManualResetEventSlim Release { get; } = new();

        public void BeforeMarkers(string id, long producerId, short producerEpoch, bool commit)
        {
            if (id != transactionalId) return;
            Reached.Set();
            Release.Wait();
        }
    }

    private static TransactionCoordinator New(InMemoryTransactionLog log, ITransactionMarkerWriter markers, ITransactionMarkerHook? hook = null) =>
        new(new TransactionCoordinatorOptions { NumPartitions = 3, OffsetsTopicNumPartitions = 7, MarkerHook = hook }, log, markers, new ProducerIdManager(null));

    private static readonly TxnPartition A0 = new("a", 0);

    [Test]
    public void EndTxnHeldBeforeItsMarkersDoesNotHoldUpAnotherTransaction()
    {
        var markers = new ConcurrentMarkers();
        var hook = new HoldOne("slow");
        var c = New(new InMemoryTransactionLog(), markers, hook);
        var slow = c.InitProducerId("slow", 60_000);
        Assert.That(c.AddPartitions("slow", slow.ProducerId, slow.ProducerEpoch, [A0]), Is.EqualTo(ErrorCode.None));
        var held = Task.Run(() => c.EndTxn("slow", slow.ProducerId, slow.ProducerEpoch, commit: true));
        try
        {
            Assert.That(hook.Reached.Wait(TimeSpan.FromSeconds(30)), Is.True, "EndTxn reached the hook");
            // Another transaction goes through a whole cycle, and the produce path's verification answers, while the
            // first EndTxn is still between PrepareCommit and its markers. With one coordinator-wide lock this waits
            // for the release below; the bound only turns that wait into a failure instead of a hang.
            var other = Task.Run(() =>
            {
                var fast = c.InitProducerId("fast", 60_000);
                var add = c.AddPartitions("fast", fast.ProducerId, fast.ProducerEpoch, [A0]);
                var produce = c.CheckProduce(fast.ProducerId, fast.ProducerEpoch, "a", 0);
                var end = c.EndTxn("fast", fast.ProducerId, fast.ProducerEpoch, commit: false);
                int timedOut = c.AbortTimedOutTransactions();
                return (add, produce, end, timedOut, c.Describe("fast")!.State);
            });
            Assert.That(other.Wait(TimeSpan.FromSeconds(30)), Is.True, "the other transaction waited for the held EndTxn");
            Assert.That(other.Result, Is.EqualTo((ErrorCode.None, ErrorCode.None, ErrorCode.None, 0, TransactionState.CompleteAbort)));
            // The held transaction's own requests answer too: it is being completed (Kafka's CONCURRENT_TRANSACTIONS,
            // which the produce path turns into the retriable NOT_ENOUGH_REPLICAS).
            var own = Task.Run(() => (
                c.CheckProduce(slow.ProducerId, slow.ProducerEpoch, "a", 0),
                c.EndTxn("slow", slow.ProducerId, slow.ProducerEpoch, commit: true),
                c.InitProducerId("slow", 60_000).Error,
                c.Describe("slow")!.State));
            Assert.That(own.Wait(TimeSpan.FromSeconds(30)), Is.True, "the held transaction's requests waited for its markers");
            Assert.That(own.Result, Is.EqualTo((ErrorCode.ConcurrentTransactions, ErrorCode.ConcurrentTransactions, ErrorCode.ConcurrentTransactions, TransactionState.PrepareCommit)));
            Assert.That(held.IsCompleted, Is.False);
        }
        finally { hook.Release.Set(); }
        Assert.That(held.Result, Is.EqualTo(ErrorCode.None));
        Assert.That(c.Describe("slow")!.State, Is.EqualTo(TransactionState.CompleteCommit));
        Assert.That(markers.Written.Select(m => (m.Pid, m.Commit)), Is.EquivalentTo(new[] { (c.Describe("fast")!.ProducerId, false), (slow.ProducerId, true) }));
    }

    [Test]
    public void ConcurrentTransactionsOfManyIdsReplayToTheSameState()
    {
        var log = new InMemoryTransactionLog();
        var markers = new ConcurrentMarkers();
        var c = New(log, markers);
        const int ids = 6, rounds = 150;
        var errors = new ConcurrentQueue<string>();
        var workers = Enumerable.Range(0, ids).Select(n => new Thread(() =>
        {
            string id = "t" + n;
            var p = c.InitProducerId(id, 60_000);
            for (int r = 0; r < rounds; r++)
            {
                var parts = new[] { new TxnPartition("a", r % 3), new TxnPartition("b", n) };
                var add = c.AddPartitions(id, p.ProducerId, p.ProducerEpoch, parts);
                var end = c.EndTxn(id, p.ProducerId, p.ProducerEpoch, commit: r % 2 == 0);
                if (add != ErrorCode.None || end != ErrorCode.None) errors.Enqueue($"{id} round {r}: add {add}, end {end}");
                // Now and then a restart of the producer: a new epoch, fencing the old one.
                if (r % 50 == 25) p = c.InitProducerId(id, 60_000);
            }
        })).ToList();
        // Meanwhile the timers and the admin APIs read and sweep every transaction.
        using var stop = new CancellationTokenSource();
        var sweeper = new Thread(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                c.AbortTimedOutTransactions();
                foreach (var d in c.List([], []))
                    if (d.State == TransactionState.Ongoing && d.Partitions.Count == 0) errors.Enqueue($"{d.TransactionalId} ongoing without partitions");
            }
        });
        sweeper.Start();
        foreach (var w in workers) w.Start();
        foreach (var w in workers) w.Join();
        stop.Cancel();
        sweeper.Join();

        Assert.That(errors, Is.Empty);
        // Two markers per EndTxn, none lost or doubled.
        Assert.That(markers.Written, Has.Count.EqualTo(ids * rounds * 2));
        var before = Enumerable.Range(0, ids).Select(n => c.Describe("t" + n)!).Select(d => (d.ProducerId, d.ProducerEpoch, d.State)).ToList();
        Assert.That(before.Select(d => d.State), Is.All.EqualTo(TransactionState.CompleteAbort), "round 149 aborts");
        // Each id's records reached the log in the order its requests ran: a reload sees the last state of each.
        var reloaded = New(log, new ConcurrentMarkers());
        reloaded.Load();
        var after = Enumerable.Range(0, ids).Select(n => reloaded.Describe("t" + n)!).Select(d => (d.ProducerId, d.ProducerEpoch, d.State)).ToList();
        Assert.That(after, Is.EqualTo(before));
    }
}
