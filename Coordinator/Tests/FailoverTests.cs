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
}
