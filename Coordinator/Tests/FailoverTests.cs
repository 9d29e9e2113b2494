using NUnit.Framework;
using Kayak.Protocol.Messages;

namespace Kayak.Coordinator.Tests;

/// <summary>
/// Coordinator failover (issue 14): a coordinator serves a __consumer_offsets partition only while it leads it, and a
/// new leader epoch reloads the partition from the log (which replication filled while it followed).
/// </summary>
[TestFixture]
public class FailoverTests
{
    private static OffsetFetchResponse Fetch(GroupCoordinator c) =>
        c.FetchOffsets(new OffsetFetchRequest
        {
            GroupId = Harness.Group,
            Topics = [new OffsetFetchRequest.OffsetFetchRequestTopic { Name = "t", PartitionIndexes = [0] }],
        }, 7);

    /// <summary>Polls through COORDINATOR_LOAD_IN_PROGRESS, as a client retries, until the load has finished.</summary>
    private static OffsetFetchResponse FetchLoaded(GroupCoordinator c)
    {
        var r = Fetch(c);
        for (int i = 0; i < 500 && r.ErrorCode == GroupErrors.CoordinatorLoadInProgress; i++)
        {
            Thread.Sleep(10);
            r = Fetch(c);
        }
        return r;
    }

    [Test]
    public void NewLeaderReloadsCommittedOffsetsAndResignationUnloads()
    {
        var log = new InMemoryGroupLog();
        using var leader = new Harness(log);
        int followerEpoch = -1;
        using var follower = new GroupCoordinator(Harness.Options(new ManualTimeProvider()), log) { LeaderEpochOf = _ => followerEpoch };
        follower.Load();

        Assert.That(Harness.CommitError(leader.Commit("t", 0, 5)), Is.EqualTo(GroupErrors.None));
        Assert.That(Fetch(follower).ErrorCode, Is.EqualTo(GroupErrors.NotCoordinator), "a follower is not the coordinator");

        // Elected: the first request starts the load and is told to retry.
        followerEpoch = 1;
        Assert.That(Fetch(follower).ErrorCode, Is.EqualTo(GroupErrors.CoordinatorLoadInProgress));
        var loaded = FetchLoaded(follower);
        Assert.That(loaded.ErrorCode, Is.EqualTo(GroupErrors.None));
        Assert.That(loaded.Topics[0].Partitions[0].CommittedOffset, Is.EqualTo(5));

        // Resigned, then elected again under a later epoch: what was written meanwhile is loaded, nothing stale kept.
        followerEpoch = -1;
        Assert.That(Fetch(follower).ErrorCode, Is.EqualTo(GroupErrors.NotCoordinator));
        Assert.That(Harness.CommitError(leader.Commit("t", 0, 9)), Is.EqualTo(GroupErrors.None));
        followerEpoch = 2;
        var reloaded = FetchLoaded(follower);
        Assert.That(reloaded.ErrorCode, Is.EqualTo(GroupErrors.None));
        Assert.That(reloaded.Topics[0].Partitions[0].CommittedOffset, Is.EqualTo(9));
    }

    [Test]
    public void SameEpochIsServedWithoutReload()
    {
        var log = new InMemoryGroupLog();
        using var leader = new Harness(log);
        Assert.That(Harness.CommitError(leader.Commit("t", 0, 3)), Is.EqualTo(GroupErrors.None));
        using var c = new GroupCoordinator(Harness.Options(new ManualTimeProvider()), log) { LeaderEpochOf = _ => 4 };
        c.Load();
        // Loaded at startup under epoch 4: served at once.
        var r = Fetch(c);
        Assert.That(r.ErrorCode, Is.EqualTo(GroupErrors.None));
        Assert.That(r.Topics[0].Partitions[0].CommittedOffset, Is.EqualTo(3));
    }

    /// <summary>
    /// Kafka's onResignation: the parked JoinGroup of a group whose partition moved away is answered NOT_COORDINATOR
    /// (the member then looks the coordinator up again) and a KIP-848 member's session timer no longer writes here.
    /// </summary>
    [Test]
    public void ResignationAnswersParkedJoinAndStopsConsumerGroupTimers()
    {
        var h = new Harness();
        using var _ = h;
        int epoch = 1;
        h.Coordinator.LeaderEpochOf = _ => epoch;
        Assert.That(FetchLoaded(h.Coordinator).ErrorCode, Is.EqualTo(GroupErrors.None));
        var (_, parked) = h.JoinDynamic(); // waits out group.initial.rebalance.delay.ms
        Assert.That(parked.IsCompleted, Is.False);

        ConsumerTopicResolver resolve = (string name, out Kayak.Protocol.Uuid id, out int count) =>
        {
            id = new Kayak.Protocol.Uuid(0x7700, 1);
            count = 1;
            return name == "t1";
        };
        ConsumerGroupHeartbeatResponse Beat() => h.Coordinator.ConsumerGroupHeartbeat(new ConsumerGroupHeartbeatRequest
        {
            GroupId = "cg", MemberId = "m1", MemberEpoch = 0, RebalanceTimeoutMs = 30_000, SubscribedTopicNames = ["t1"], TopicPartitions = [],
        }, 1, new ClientInfo("c", "/127.0.0.1"), resolve, ["t1"]);
        var joined = Beat();
        for (int i = 0; i < 500 && joined.ErrorCode == GroupErrors.CoordinatorLoadInProgress; i++)
        {
            Thread.Sleep(10);
            joined = Beat();
        }
        Assert.That(joined.ErrorCode, Is.EqualTo(GroupErrors.None));
        Assert.That(h.Coordinator.Describe("cg"), Is.Not.Null);

        epoch = -1;
        Assert.That(Fetch(h.Coordinator).ErrorCode, Is.EqualTo(GroupErrors.NotCoordinator));
        Assert.That(parked.IsCompleted, Is.True, "the parked JoinGroup is answered at resignation");
        Assert.That(parked.Result.ErrorCode, Is.EqualTo(GroupErrors.NotCoordinator));
        Assert.That(Beat().ErrorCode, Is.EqualTo(GroupErrors.NotCoordinator));
        Assert.That(h.Coordinator.Describe("cg"), Is.Null, "the consumer group is unloaded");
        int batches = h.Log.Batches(h.Coordinator.PartitionFor("cg")).Count;
        h.Time.AdvanceMs(120_000); // past the member's session timeout: its timer would fence it with records
        Assert.That(h.Log.Batches(h.Coordinator.PartitionFor("cg")).Count, Is.EqualTo(batches), "nothing written for a group led elsewhere");
    }
}
