using Kayak.Broker.Cluster;
using Kayak.Broker.Config;
using Kayak.Coordinator.Tests;
using Kayak.Protocol;
using Kayak.Storage;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>
/// Issue 14: the leader's follower tracking on a manual clock (Kafka's Partition.updateFollowerFetchState,
/// maybeIncrementLeaderHW, maybeExpandIsr, maybeShrinkIsr) and the controller's elections, without sockets.
/// </summary>
public class ReplicaTrackerTests
{
    private string _dir = "";
    private ManualTimeProvider _time = null!;
    private LogManager _logs = null!;
    private ClusterController _controller = null!;
    private PartitionLog _log = null!;
    private ReplicaTracker _tracker = null!;
    private const long LagMs = 30_000;

    [SetUp]
    public void SetUp()
    {
        _dir = Path.Combine(Path.GetTempPath(), "kayak-tracker-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
        _time = new ManualTimeProvider();
        _logs = new LogManager(new LogOptions { LogDirs = [Path.Combine(_dir, "broker-1")], Time = _time, Replicated = true });
        _logs.Open();
        var topic = _logs.CreateTopic("t", 1, new Dictionary<string, string>());
        _log = topic.Partitions[0];
        // The controller's metadata as CreateTopics leaves it: replicas 1, 2, 3, leader 1 at epoch 0, all in sync.
        new ClusterMetadata("cluster", new Dictionary<string, TopicAssignment>
        {
            ["t"] = new("t", topic.TopicId, [new PartitionAssignment([1, 2, 3], 1, 0, [1, 2, 3])]),
        }).Save(Path.Combine(_dir, ClusterMetadata.FileName));
        _controller = new ClusterController(_dir);
        for (int n = 1; n <= 3; n++) _controller.SetLive(n, [new ListenerEndpoint("PLAINTEXT", "127.0.0.1", 9091 + n)]);
        _tracker = new ReplicaTracker(_controller, 1, _time, LagMs);
    }

    [TearDown]
    public void TearDown()
    {
        _logs.Dispose();
        try { Directory.Delete(_dir, recursive: true); }
        catch (IOException) { }
    }

    private void Append(int records)
    {
        using var b = new Kayak.Protocol.Records.RecordBatchBuilder(new Kayak.Protocol.Records.RecordBatchOptions());
        for (int i = 0; i < records; i++) b.Append(_time.NowMs, null, new byte[] { 1 });
        _log.AppendFromClient(b.ToArray(), 1, null, partitionLeaderEpoch: 0);
        _tracker.UpdateHighWatermark(_log);
    }

    private PartitionAssignment Partition => _controller.Topic("t")!.Partitions[0];

    private void Shrink() => _tracker.ShrinkIsrs((name, p) => name == "t" && p == 0 ? _log : null);

    [Test]
    public void HighWatermark_IsTheIsrsSmallestLogEnd_AndLaggingFollowersLeaveAndRejoin()
    {
        Append(5);
        Assert.That(_log.HighWatermark, Is.EqualTo(0), "no follower has fetched yet");
        Assert.That(_tracker.FollowerFetched(_log, 2, 0, 5), Is.EqualTo(ErrorCode.None));
        Assert.That(_log.HighWatermark, Is.EqualTo(0), "follower 3's position is unknown: it holds the high watermark back");
        _tracker.FollowerFetched(_log, 3, 0, 3);
        Assert.That(_log.HighWatermark, Is.EqualTo(3), "the smallest log end offset of the ISR");
        _tracker.FollowerFetched(_log, 3, 0, 5);
        Assert.That(_log.HighWatermark, Is.EqualTo(5));

        // Follower 2 keeps fetching to the end; follower 3 goes silent.
        Append(5);
        _time.AdvanceMs(1_000);
        _tracker.FollowerFetched(_log, 2, 0, 10);
        Assert.That(_log.HighWatermark, Is.EqualTo(5));
        _time.AdvanceMs(LagMs - 1_000);
        Shrink();
        Assert.That(Partition.Isr, Is.EqualTo(new[] { 1, 2, 3 }), "exactly replica.lag.time.max.ms: not yet");
        _time.AdvanceMs(1);
        Shrink();
        Assert.That(Partition.Isr, Is.EqualTo(new[] { 1, 2 }), "follower 3 not caught up for longer than replica.lag.time.max.ms");
        Assert.That(Partition.LeaderEpoch, Is.EqualTo(0), "an ISR change keeps the leader epoch");
        Assert.That(_log.HighWatermark, Is.EqualTo(10), "the smaller ISR has everything");
        Assert.That(ClusterMetadata.LoadOrCreate(Path.Combine(_dir, ClusterMetadata.FileName)).Topics["t"].Partitions[0].Isr,
            Is.EqualTo(new[] { 1, 2 }), "persisted by the controller");

        // Behind the high watermark it stays out; at it, it is back (maybeExpandIsr).
        _tracker.FollowerFetched(_log, 3, 0, 7);
        Assert.That(Partition.Isr, Is.EqualTo(new[] { 1, 2 }));
        _tracker.FollowerFetched(_log, 3, 0, 10);
        Assert.That(Partition.Isr, Is.EqualTo(new[] { 1, 2, 3 }));

        // A follower behind the leader's end that still reaches what the leader had at its previous fetch counts as
        // caught up as of that previous fetch (Kafka's lastCaughtUpTimeMs rule).
        Append(2);
        _time.AdvanceMs(LagMs - 10);
        _tracker.FollowerFetched(_log, 2, 0, 10);
        _tracker.FollowerFetched(_log, 3, 0, 12);
        _time.AdvanceMs(20);
        Shrink();
        Assert.That(Partition.Isr, Is.EqualTo(new[] { 1, 3 }), "follower 2 last caught up more than the lag ago");

        // Both followers silent: the ISR is the leader alone, whose appends are committed at once.
        _time.AdvanceMs(LagMs + 1);
        Shrink();
        Assert.That(Partition.Isr, Is.EqualTo(new[] { 1 }));
        Append(3);
        Assert.That(_log.HighWatermark, Is.EqualTo(_log.LogEndOffset));
    }

    [Test]
    public void FollowerFetches_AreChecked_ForReplicaAndLeaderEpoch()
    {
        Assert.That(_tracker.FollowerFetched(_log, 4, 0, 0), Is.EqualTo(ErrorCode.NotLeaderOrFollower), "not a replica");
        Assert.That(_tracker.FollowerFetched(_log, 2, 1, 0), Is.EqualTo(ErrorCode.UnknownLeaderEpoch), "an epoch the leader does not have yet");
        var other = new ReplicaTracker(_controller, 2, _time, LagMs);
        Assert.That(other.FollowerFetched(_log, 3, 0, 0), Is.EqualTo(ErrorCode.NotLeaderOrFollower), "broker 2 does not lead");
    }

    [Test]
    public void Controller_ElectsFromTheIsr_WithTheNextEpoch_OrLeavesThePartitionOffline()
    {
        _controller.Detach(1);
        Assert.That((Partition.Leader, Partition.LeaderEpoch, Partition.Isr), Is.EqualTo((2, 1, new[] { 2, 3 })));
        Assert.That(_tracker.FollowerFetched(_log, 2, 1, 0), Is.EqualTo(ErrorCode.NotLeaderOrFollower), "the old leader no longer leads");
        Assert.That(_controller.ChangeIsr("t", 0, 1, 0, [1, 2, 3]), Is.False, "a stale leader's ISR change is refused");
        _controller.Detach(3);
        Assert.That((Partition.Leader, Partition.LeaderEpoch, Partition.Isr), Is.EqualTo((2, 1, new[] { 2 })));
        Assert.That(_controller.ChangeIsr("t", 0, 2, 1, [1, 2]), Is.False, "a stopped broker is not added to the ISR (KIP-841)");
        _controller.Detach(2);
        Assert.That((Partition.Leader, Partition.Isr), Is.EqualTo((-1, new[] { 2 })), "no in-sync replica left: offline, the last ISR member kept");
        _controller.SetLive(1, [new ListenerEndpoint("PLAINTEXT", "127.0.0.1", 9092)]);
        Assert.That(Partition.Leader, Is.EqualTo(-1), "broker 1 is not in the ISR: no unclean election");
        _controller.SetLive(2, [new ListenerEndpoint("PLAINTEXT", "127.0.0.1", 9093)]);
        Assert.That((Partition.Leader, Partition.LeaderEpoch), Is.EqualTo((2, 3)), "the last ISR member leads again, at a new epoch");
    }
}
