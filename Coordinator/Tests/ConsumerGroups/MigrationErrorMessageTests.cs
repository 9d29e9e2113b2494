using Kayak.Protocol;
using Kayak.Protocol.Messages;
using NUnit.Framework;
using static Kayak.Coordinator.Tests.ConsumerGroups.OnlineMigrationTests;

namespace Kayak.Coordinator.Tests.ConsumerGroups;

/// <summary>
/// The ConsumerGroupHeartbeat error messages of the migration paths, in Kafka 4.0's GroupMetadataManager wording (the
/// only migration responses that carry a message: JoinGroup, SyncGroup, Heartbeat and OffsetCommit have none).
/// </summary>
public class MigrationErrorMessageTests
{
    [Test]
    public void AClassicGroupWithAMalformedEmbeddedProtocolIsNotUpgradedWithKafkasMessage()
    {
        using var d = new ConsumerGroupDriver(t => Options(t));
        d.CreateTopic("t", 4);
        // A classic member whose "consumer" protocol metadata is no ConsumerProtocolSubscription.
        d.H.StableSingle(assignment: Assignment("t", 0, 1, 2, 3), metadata: [0, 1, 0x7f, 0x7f]);
        var r = d.Heartbeat(d.Add("c1", ["t"]));
        Assert.That(r.ErrorCode, Is.EqualTo((short)ErrorCode.GroupIdNotFound));
        Assert.That(r.ErrorMessage, Is.EqualTo(
            $"Cannot upgrade the classic group {Harness.Group} to consumer group because the embedded consumer protocol is malformed."));
        Assert.That(Type(d.H), Is.EqualTo("classic"));
    }

    [Test]
    public void AStaticLeaveWithAnotherMembersInstanceIdIsFencedWithKafkasMessage()
    {
        using var d = new ConsumerGroupDriver(t => Options(t));
        d.CreateTopic("t", 4);
        var s = d.Add("s", ["t"], instanceId: "i1");
        d.Stabilise();
        var r = d.H.Coordinator.ConsumerGroupHeartbeat(new ConsumerGroupHeartbeatRequest
        {
            GroupId = Harness.Group, MemberId = "other", MemberEpoch = -1, InstanceId = "i1",
        }, 1, new ClientInfo("c", "/127.0.0.1"), d.Resolve);
        Assert.That(r.ErrorCode, Is.EqualTo((short)ErrorCode.FencedInstanceId));
        Assert.That(r.ErrorMessage, Is.EqualTo("Static member other with instance id i1 was fenced by member s."));
        Assert.That(d.State!.Members.ContainsKey(s.Id), Is.True);
    }
}
