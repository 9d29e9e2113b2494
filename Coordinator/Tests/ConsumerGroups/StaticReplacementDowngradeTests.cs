using Kayak.Protocol;
using Kayak.Protocol.Messages;
using NUnit.Framework;
using static Kayak.Coordinator.Tests.ConsumerGroups.OnlineMigrationTests;

namespace Kayak.Coordinator.Tests.ConsumerGroups;

/// <summary>
/// KIP-848 online downgrade by static member replacement, as Kafka 4.0's classicGroupJoinToConsumerGroup step 4
/// (validateOnlineDowngradeWithReplacedMemberId, convertToClassicGroup with the joining member): a classic JoinGroup
/// under the instance id of the group's last consumer-protocol member turns the group into a classic group in the same
/// write, Stable at the group epoch, the joining member holding the replaced one's target assignment, no rebalance.
/// </summary>
public class StaticReplacementDowngradeTests
{
    /// <summary>
    /// A consumer group of a static consumer-protocol member "s" (instance i1) and a dynamic classic member, partitions
    /// split between them and both reconciled. Returns the classic member and its generation.
    /// </summary>
    private static (string ClassicId, int Generation) MixedGroup(ConsumerGroupDriver d)
    {
        var h = d.H;
        var s = d.Add("s", ["t"], instanceId: "i1");
        d.Stabilise();
        var first = h.Join(metadata: Harness.Subscription("t")).R();
        Assert.That(first.ErrorCode, Is.EqualTo(GroupErrors.MemberIdRequired));
        string classicId = first.MemberId;
        var join = h.Join(classicId, metadata: Harness.Subscription("t")).R();
        h.Sync(classicId, join.GenerationId).R();
        d.Heartbeat(s);
        d.Heartbeat(s);
        Assert.That(h.Heartbeat(classicId, join.GenerationId), Is.EqualTo(GroupErrors.RebalanceInProgress));
        var rejoin = h.Join(classicId, metadata: Harness.Subscription("t")).R();
        Assert.That(Partitions(h.Sync(classicId, rejoin.GenerationId).R().Assignment), Has.Count.EqualTo(2));
        d.Heartbeat(s);
        Assert.That(d.State!.StateName, Is.EqualTo("Stable"));
        return (classicId, rejoin.GenerationId);
    }

    [Test]
    public void AClassicStaticMemberReplacingTheLastConsumerMemberDowngradesTheGroupWithoutARebalance()
    {
        using var d = new ConsumerGroupDriver(t => Options(t));
        d.CreateTopic("t", 4);
        var h = d.H;
        var (classicId, generation) = MixedGroup(d);
        var cg = d.State!;
        int epoch = cg.GroupEpoch;
        var replacedTarget = cg.TargetOf("s").All().Select(p => p.Partition).ToHashSet();
        int partition = h.Coordinator.PartitionFor(Harness.Group);
        int batches = h.Log.Batches(partition).Count;

        // "s" restarts as a classic consumer under the same instance id (unknown member id: static, no handshake).
        var join = h.Join(instanceId: "i1", metadata: Harness.Subscription("t")).R();
        Assert.That(join.ErrorCode, Is.EqualTo(GroupErrors.None));
        Assert.That(Type(h), Is.EqualTo("classic"));
        Assert.That(h.Log.Batches(partition), Has.Count.EqualTo(batches + 1), "the replacement and the downgrade are one batch");
        var g = h.Coordinator.Describe(Harness.Group)!;
        Assert.That(g.State, Is.EqualTo(GroupState.Stable), "no rebalance after a replacement downgrade");
        Assert.That(g.GenerationId, Is.EqualTo(epoch), "the group epoch is the generation");
        Assert.That(join.GenerationId, Is.EqualTo(epoch));
        Assert.That(g.MemberIds, Is.EqualTo(new[] { classicId, join.MemberId }), "the joining member comes last");
        Assert.That(g.LeaderId, Is.EqualTo(classicId));

        // The joining member takes the replaced member's partitions; the classic member keeps its own and its generation.
        var sync = h.Sync(join.MemberId, join.GenerationId, instanceId: "i1").R();
        Assert.That(sync.ErrorCode, Is.EqualTo(GroupErrors.None));
        Assert.That(Partitions(sync.Assignment), Is.EquivalentTo(replacedTarget));
        Assert.That(h.Heartbeat(classicId, generation), Is.EqualTo(GroupErrors.None));
        Assert.That(h.Coordinator.ConsumerGroupDescribe(new ConsumerGroupDescribeRequest { GroupIds = [Harness.Group] }).Groups[0].ErrorCode,
            Is.EqualTo((short)ErrorCode.GroupIdNotFound));
        using var reloaded = new Harness(h.Log, new ManualTimeProvider());
        Assert.That(Summary(reloaded), Is.EqualTo(Summary(h)));
    }

    [Test]
    public void WithTheUpgradePolicyTheReplacedGroupStaysAConsumerGroup()
    {
        using var d = new ConsumerGroupDriver(t => Options(t, "upgrade"));
        d.CreateTopic("t", 4);
        var h = d.H;
        var (classicId, _) = MixedGroup(d);
        var join = h.Join(instanceId: "i1", metadata: Harness.Subscription("t")).R();
        Assert.That(join.ErrorCode, Is.EqualTo(GroupErrors.None));
        Assert.That(Type(h), Is.EqualTo("consumer"));
        Assert.That(d.State!.Members.Keys, Is.EquivalentTo(new[] { classicId, join.MemberId }));
        Assert.That(d.State!.Members.Values.All(m => m.UsesClassicProtocol), Is.True);
    }
}
