using Kayak.Protocol.Messages;
using NUnit.Framework;

namespace Kayak.Coordinator.Tests;

[TestFixture]
public class OffsetTests
{
    private Harness _h = null!;

    [SetUp] public void SetUp() => _h = new Harness();
    [TearDown] public void TearDown() => _h.Dispose();

    [Test]
    public void SimpleConsumerCommitsToUnknownGroupAndFetchesBack()
    {
        Assert.That(Harness.CommitError(_h.Commit("t1", 0, 42, group: "simple")), Is.EqualTo(GroupErrors.None));
        Assert.That(_h.Fetched("t1", 0, "simple"), Is.EqualTo(42));
        Assert.That(_h.Fetched("t1", 1, "simple"), Is.EqualTo(-1), "uncommitted partition");
        Assert.That(_h.Fetched("t1", 0, "unknown-group"), Is.EqualTo(-1));
        Assert.That(_h.State("simple"), Is.EqualTo(GroupState.Empty));
    }

    [Test]
    public void MemberCommitsAreValidated()
    {
        var (a, gen) = _h.StableSingle();
        Assert.Multiple(() =>
        {
            Assert.That(Harness.CommitError(_h.Commit("t1", 0, 5, a, gen)), Is.EqualTo(GroupErrors.None));
            Assert.That(Harness.CommitError(_h.Commit("t1", 0, 6, a, gen + 1)), Is.EqualTo(GroupErrors.IllegalGeneration));
            Assert.That(Harness.CommitError(_h.Commit("t1", 0, 6, "ghost", gen)), Is.EqualTo(GroupErrors.UnknownMemberId));
            // A simple (generation -1) commit to a group with members is refused.
            Assert.That(Harness.CommitError(_h.Commit("t1", 0, 6)), Is.EqualTo(GroupErrors.UnknownMemberId));
            // Generation >= 0 for a group that does not exist.
            Assert.That(Harness.CommitError(_h.Commit("t1", 0, 6, "x", 3, group: "nope")), Is.EqualTo(GroupErrors.IllegalGeneration));
            Assert.That(Harness.CommitError(_h.Commit("t1", 0, 6, "x", 3, group: "nope", version: 9)), Is.EqualTo(GroupErrors.GroupIdNotFound));
        });
        Assert.That(_h.Fetched("t1", 0), Is.EqualTo(5));
    }

    [Test]
    public void CommitDuringCompletingRebalanceIsRebalanceInProgress()
    {
        var (id, join) = _h.JoinDynamic();
        _h.Time.AdvanceMs(3000);
        int gen = join.R().GenerationId;
        Assert.That(_h.State(), Is.EqualTo(GroupState.CompletingRebalance));
        Assert.That(Harness.CommitError(_h.Commit("t1", 0, 1, id, gen)), Is.EqualTo(GroupErrors.RebalanceInProgress));
    }

    [Test]
    public void MetadataLongerThanLimitIsRejectedPerPartition()
    {
        var request = new OffsetCommitRequest { GroupId = "s", GenerationIdOrMemberEpoch = -1 };
        var t = new OffsetCommitRequest.OffsetCommitRequestTopic { Name = "t1" };
        t.Partitions.Add(new() { PartitionIndex = 0, CommittedOffset = 1, CommittedMetadata = new string('x', 4097) });
        t.Partitions.Add(new() { PartitionIndex = 1, CommittedOffset = 2, CommittedMetadata = new string('x', 4096) });
        request.Topics.Add(t);
        var response = _h.Coordinator.CommitOffsets(request, 8);
        Assert.That(response.Topics[0].Partitions[0].ErrorCode, Is.EqualTo(GroupErrors.OffsetMetadataTooLarge));
        Assert.That(response.Topics[0].Partitions[1].ErrorCode, Is.EqualTo(GroupErrors.None));
        Assert.That(_h.Fetched("t1", 0, "s"), Is.EqualTo(-1));
        Assert.That(_h.Fetched("t1", 1, "s"), Is.EqualTo(2));
    }

    [Test]
    public void FetchAllAndMultipleGroups()
    {
        _h.Commit("t1", 0, 10, group: "ga");
        _h.Commit("t2", 3, 30, group: "ga", metadata: "meta");
        _h.Commit("t1", 0, 99, group: "gb");

        var all = _h.Coordinator.FetchOffsets(new OffsetFetchRequest { GroupId = "ga", Topics = null }, 7);
        var pairs = all.Topics.SelectMany(t => t.Partitions.Select(p => (t.Name, p.PartitionIndex, p.CommittedOffset, p.Metadata))).OrderBy(x => x.Name).ToList();
        Assert.That(pairs, Is.EqualTo(new[] { ("t1", 0, 10L, (string?)""), ("t2", 3, 30L, (string?)"meta") }));

        var multi = new OffsetFetchRequest();
        multi.Groups.Add(new OffsetFetchRequest.OffsetFetchRequestGroup { GroupId = "ga", Topics = [new() { Name = "t1", PartitionIndexes = [0] }] });
        multi.Groups.Add(new OffsetFetchRequest.OffsetFetchRequestGroup { GroupId = "gb", Topics = null });
        var r = _h.Coordinator.FetchOffsets(multi, 8);
        Assert.That(r.Groups, Has.Count.EqualTo(2));
        Assert.That(r.Groups[0].Topics[0].Partitions[0].CommittedOffset, Is.EqualTo(10));
        Assert.That(r.Groups[1].Topics[0].Partitions[0].CommittedOffset, Is.EqualTo(99));
    }

    [Test]
    public void V1CommitTimestampAndV2RetentionAreKept()
    {
        var v1 = new OffsetCommitRequest { GroupId = "s", GenerationIdOrMemberEpoch = -1 };
        v1.Topics.Add(new() { Name = "t", Partitions = [new() { PartitionIndex = 0, CommittedOffset = 1, CommitTimestamp = _h.Time.NowMs - 5 }] });
        _h.Coordinator.CommitOffsets(v1, 1);
        Assert.That(_h.Coordinator.CommittedOffsets("s")[("t", 0)].CommitTimestamp, Is.EqualTo(_h.Time.NowMs - 5));

        var v2 = new OffsetCommitRequest { GroupId = "s", GenerationIdOrMemberEpoch = -1, RetentionTimeMs = 1000 };
        v2.Topics.Add(new() { Name = "t", Partitions = [new() { PartitionIndex = 1, CommittedOffset = 1 }] });
        _h.Coordinator.CommitOffsets(v2, 2);
        Assert.That(_h.Coordinator.CommittedOffsets("s")[("t", 1)].ExpireTimestamp, Is.EqualTo(_h.Time.NowMs + 1000));
        // The explicit expire timestamp applies even though the default retention is an hour.
        _h.Time.AdvanceMs(1000);
        Assert.That(_h.Coordinator.ExpireOffsets(), Is.EqualTo(1));
        Assert.That(_h.Fetched("t", 1, "s"), Is.EqualTo(-1));
    }

    [Test]
    public void OffsetsOfEmptyGroupExpireAfterRetentionAndGroupIsDeleted()
    {
        var (a, gen) = _h.StableSingle();
        _h.Commit("t1", 0, 7, a, gen);
        _h.Time.AdvanceMs(2 * 60 * 60 * 1000 / 2); // an hour while the group is active: nothing expires
        Assert.That(_h.Heartbeat(a, gen), Is.Not.EqualTo(GroupErrors.None), "the member timed out meanwhile");
        // The group emptied when a's session expired; retention counts from then.
        Assert.That(_h.State(), Is.EqualTo(GroupState.Empty));
        Assert.That(_h.Fetched("t1", 0), Is.EqualTo(7));
        _h.Time.AdvanceMs(60 * 60 * 1000); // the periodic check runs on the manual clock
        Assert.That(_h.Fetched("t1", 0), Is.EqualTo(-1));
        Assert.That(_h.State(), Is.EqualTo(GroupState.Dead), "an empty group without offsets is removed");
    }

    [Test]
    public void LagIsLogEndMinusCommitted()
    {
        _h.Commit("t1", 0, 10, group: "s");
        _h.Commit("t1", 1, 50, group: "s");
        var lag = _h.Coordinator.DescribeLag("s", (topic, p) => p == 0 ? 25 : -1).OrderBy(l => l.Partition).ToList();
        Assert.That(lag[0], Is.EqualTo(new PartitionLag("t1", 0, 10, 25, 15)));
        Assert.That(lag[1], Is.EqualTo(new PartitionLag("t1", 1, 50, -1, -1)));
    }

    [Test]
    public void UnknownPartitionsAreRejectedBeforeGroupChecks()
    {
        var request = new OffsetCommitRequest { GroupId = "s", GenerationIdOrMemberEpoch = -1 };
        request.Topics.Add(new() { Name = "known", Partitions = [new() { PartitionIndex = 0, CommittedOffset = 1 }, new() { PartitionIndex = 9, CommittedOffset = 1 }] });
        var r = _h.Coordinator.CommitOffsets(request, 8, (topic, p) => topic == "known" && p < 3);
        Assert.That(r.Topics[0].Partitions.Select(p => p.ErrorCode), Is.EqualTo(new[] { GroupErrors.None, GroupErrors.UnknownTopicOrPartition }));
        Assert.That(_h.Coordinator.CommittedOffsets("s").Keys, Is.EqualTo(new[] { ("known", 0) }));
    }
}
