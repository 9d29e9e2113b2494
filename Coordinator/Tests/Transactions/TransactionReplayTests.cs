using Kayak.Coordinator.Transactions;
using Kayak.Protocol;
using Kayak.Protocol.CoordinatorRecords;
using NUnit.Framework;

namespace Kayak.Coordinator.Tests.Transactions;

/// <summary>
/// One write path for transactions: state changes only when a TransactionLog record that made it into the log is
/// replayed, and loading replays the same records through the same code, so a coordinator loaded from another's
/// log holds the same state (the group side's <see cref="ReplayTests"/>).
/// </summary>
public class TransactionReplayTests
{
    private const int Partitions = 5;

    /// <summary>
    /// Random producers (current and stale epochs), timers, expiry and refused appends against one coordinator on a
    /// manual clock; at checkpoints and at the end a fresh coordinator replays a copy of the log and must dump the same
    /// canonical state (<see cref="TxnCanonicalState"/>).
    /// </summary>
    [Test]
    public void ALoadedCoordinatorHasTheStateOfTheOneThatWroteTheLog([Range(1, 30)] int seed)
    {
        var sim = new Simulation(seed);
        for (int step = 0; step < 400; step++)
        {
            sim.Step();
            if (step % 50 == 49) sim.AssertReloadMatches($"seed {seed}, step {step}");
        }
        sim.AssertReloadMatches($"seed {seed}, end");
        Assert.That(sim.Log.Batches(Partitions), Is.GreaterThan(10), "the run wrote records worth comparing");
    }

    /// <summary>The random runs reach every kind of transition they are meant to cover.</summary>
    [Test]
    public void TheRandomRunsCoverEveryTransition()
    {
        var seen = new HashSet<string>();
        for (int seed = 1; seed <= 30; seed++)
        {
            var sim = new Simulation(seed);
            for (int step = 0; step < 400; step++) sim.Step();
            seen.UnionWith(sim.Seen);
        }
        Assert.That(seen, Is.SupersetOf(new[]
        {
            "Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit", "CompleteAbort", "expired", "rollover",
            "refused", "timed out", "fenced", "offsets",
        }));
    }

    /// <summary>
    /// An exhausted epoch rolls over to a new producer id; the previous id goes into a v1 record (tagged field), so
    /// after a restart the KIP-360 retry naming the old id still gets the current one back instead of PRODUCER_FENCED.
    /// </summary>
    [Test]
    public void ThePreviousProducerIdOfAnEpochRolloverSurvivesALoad()
    {
        var log = new InMemoryTransactionLog();
        var clock = new ManualClock();
        SeedExhausted(log, "old", producerId: 4242, epoch: short.MaxValue - 1, clock);
        var c = New(log, clock, new RecordingMarkers());
        c.Load();
        var rolled = c.InitProducerId("old", 10_000, 4242, short.MaxValue - 1);
        Assert.That((rolled.Error, rolled.ProducerEpoch), Is.EqualTo((ErrorCode.None, (short)0)));
        Assert.That(rolled.ProducerId, Is.Not.EqualTo(4242L));

        var reloaded = New(log, clock, new RecordingMarkers());
        reloaded.Load();
        Assert.That(TxnCanonicalState.Dump(reloaded), Is.EqualTo(TxnCanonicalState.Dump(c)));
        var retry = reloaded.InitProducerId("old", 10_000, 4242, short.MaxValue - 1);
        Assert.That((retry.Error, retry.ProducerId, retry.ProducerEpoch), Is.EqualTo((ErrorCode.None, rolled.ProducerId, (short)0)));
    }

    private static TransactionCoordinator New(ITransactionLog log, ManualClock clock, ITransactionMarkerWriter markers) =>
        new(new TransactionCoordinatorOptions { NumPartitions = Partitions, OffsetsTopicNumPartitions = 7, Time = clock, TransactionalIdExpirationMs = 60_000 },
            log, markers, new ProducerIdManager(null));

    /// <summary>A record as an earlier coordinator would have written it: an Empty transaction at <paramref name="epoch"/>.</summary>
    private static void SeedExhausted(InMemoryTransactionLog log, string id, long producerId, short epoch, ManualClock clock)
    {
        long now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        var value = new TransactionLogValue
        {
            ProducerId = producerId, ProducerEpoch = epoch, TransactionTimeoutMs = 10_000, TransactionStatus = (sbyte)TransactionState.Empty,
            TransactionLastUpdateTimestampMs = now, TransactionStartTimestampMs = -1,
        };
        log.Append(TransactionCoordinator.PartitionFor(id, Partitions), CoordinatorBatch.Encode(
            [new CoordinatorRecord(new TransactionLogKey { TransactionalId = id }, 0, value, 0)], now));
    }

    private sealed class Simulation
    {
        private static readonly string[] Ids = ["t0", "t1", "t2", "t3", "old"];
        private static readonly TxnPartition[] Topics = [new("a", 0), new("a", 1), new("b", 0), new("c", 2)];
        private readonly Random _rng;
        private readonly ManualClock _clock = new();
        private readonly FlakyMarkers _markers;
        private readonly TransactionCoordinator _c;
        /// <summary>What each producer believes its id and epoch are (its last InitProducerId answer).</summary>
        private readonly Dictionary<string, InitProducerIdResult> _producers = new();

        public FaultyTransactionLog Log { get; }
        public HashSet<string> Seen { get; } = new();

        public Simulation(int seed)
        {
            _rng = new Random(seed);
            var inner = new InMemoryTransactionLog();
            // One id starts two bumps short of exhaustion, so random runs reach the rollover.
            SeedExhausted(inner, "old", 9_000_000 + seed, short.MaxValue - 3, _clock);
            Log = new FaultyTransactionLog(inner);
            _markers = new FlakyMarkers(Log);
            _c = New(Log, _clock, _markers);
            _c.OffsetSink = new RecordingOffsets();
            _c.Load();
        }

        public void Step()
        {
            string id = Ids[_rng.Next(Ids.Length)];
            bool refuse = _rng.Next(12) == 0;
            if (refuse) Log.Fail = true;
            _markers.RefuseAfter = !refuse && _rng.Next(15) == 0;
            int refusedBefore = Log.Refused;
            try { Act(id); }
            finally
            {
                Log.Fail = false;
                _markers.RefuseAfter = false;
            }
            if (Log.Refused > refusedBefore) Seen.Add("refused");
            foreach (var t in _c.List([], []))
            {
                Seen.Add(t.State.ToString());
                if (_c.AllTransactions.Any(m => m.Live && m.PreviousProducerId >= 0)) Seen.Add("rollover");
            }
        }

        private void Act(string id)
        {
            _producers.TryGetValue(id, out var p);
            bool known = p.ProducerId > 0 || (p.ProducerId == 0 && p.Error == ErrorCode.None && _producers.ContainsKey(id));
            // A stale producer now and then: an epoch below the current one is fenced.
            short epoch = known && _rng.Next(10) == 0 ? (short)(p.ProducerEpoch - 1) : p.ProducerEpoch;
            switch (_rng.Next(10))
            {
                case 0:
                case 1:
                {
                    var r = _rng.Next(3) == 0 && known
                        ? _c.InitProducerId(id, 5_000 + _rng.Next(20_000), p.ProducerId, epoch)
                        : _c.InitProducerId(id, 5_000 + _rng.Next(20_000));
                    if (r.Error == ErrorCode.None) _producers[id] = r;
                    if (r.Error == ErrorCode.ProducerFenced) Seen.Add("fenced");
                    break;
                }
                case 2:
                case 3:
                {
                    var parts = new List<TxnPartition>();
                    for (int i = _rng.Next(1, 3); i > 0; i--) parts.Add(Topics[_rng.Next(Topics.Length)]);
                    _c.AddPartitions(id, p.ProducerId, epoch, parts);
                    break;
                }
                case 4:
                    if (_c.AddOffsets(id, p.ProducerId, epoch, "g" + _rng.Next(2)) == ErrorCode.None
                        && _c.TxnOffsetCommit(id, "g0", p.ProducerId, epoch, [new PendingTxnOffset("in", 0, _rng.Next(100), -1, null, 0)]) == ErrorCode.None)
                        Seen.Add("offsets");
                    break;
                case 5:
                case 6:
                    _c.EndTxn(id, p.ProducerId, epoch, commit: _rng.Next(2) == 0);
                    break;
                case 7:
                    _clock.Advance(_rng.Next(8_000));
                    break;
                case 8:
                    if (_rng.Next(8) == 0) _clock.Advance(60_000);
                    int before = _c.List([], []).Count;
                    if (_c.AbortTimedOutTransactions() > 0) Seen.Add("timed out");
                    if (_c.List([], []).Count < before) Seen.Add("expired");
                    break;
                default:
                    _c.CheckProduce(p.ProducerId, epoch, Topics[0].Topic, Topics[0].Partition);
                    break;
            }
        }

        public void AssertReloadMatches(string because)
        {
            var fresh = New(TxnCanonicalState.Copy(Log, Partitions), _clock, new RecordingMarkers());
            fresh.LoadState();
            Assert.That(TxnCanonicalState.Dump(fresh), Is.EqualTo(TxnCanonicalState.Dump(_c)), because);
        }
    }

    /// <summary>Writes markers; with <see cref="RefuseAfter"/> the log then refuses the Complete record (a transaction stays prepared).</summary>
    private sealed class FlakyMarkers(FaultyTransactionLog log) : ITransactionMarkerWriter
    {
        public bool RefuseAfter { get; set; }

        public ErrorCode WriteMarker(TxnPartition partition, long producerId, short producerEpoch, int coordinatorEpoch, bool commit)
        {
            if (RefuseAfter) log.Fail = true;
            return ErrorCode.None;
        }
    }
}
