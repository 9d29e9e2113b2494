using Kayak.Protocol.Messages;
using NUnit.Framework;

namespace Kayak.Coordinator.Tests;

[TestFixture]
public class AdminTests
{
    private Harness _h = null!;

    [SetUp] public void SetUp() => _h = new Harness();
    [TearDown] public void TearDown() => _h.Dispose();

    [Test]
    public void DeleteGroupsOnlyDeletesEmptyGroups()
    {
        _h.StableSingle();
        _h.Commit("t1", 0, 1, group: "empty");
        var r = _h.Coordinator.DeleteGroups(new DeleteGroupsRequest { GroupsNames = [Harness.Group, "empty", "missing"] });
        Assert.That(r.Results.Select(x => x.ErrorCode), Is.EqualTo(new[] { GroupErrors.NonEmptyGroup, GroupErrors.None, GroupErrors.GroupIdNotFound }));
        Assert.That(_h.Fetched("t1", 0, "empty"), Is.EqualTo(-1));
        Assert.That(_h.Coordinator.Describe("empty"), Is.Null);
    }

    /// <summary>
    /// A member whose session ran out is gone for DeleteGroups even if its timer has not fired yet (timers run late;
    /// librdkafka's test suite waits exactly session.timeout.ms after a static member's close, then deletes the group).
    /// </summary>
    [Test]
    public void DeleteGroups_RightAtTheSessionDeadline_DoesNotWaitForALateTimer()
    {
        var (a, gen) = _h.StableSingle();
        _h.Commit("t1", 0, 5, a, gen); // the member's last contact: the session runs from here
        _h.Time.AdvanceWithoutFiring(Harness.Session - 1);
        var early = _h.Coordinator.DeleteGroups(new DeleteGroupsRequest { GroupsNames = [Harness.Group] });
        Assert.That(early.Results[0].ErrorCode, Is.EqualTo(GroupErrors.NonEmptyGroup), "1 ms before the deadline the member is alive");
        _h.Time.AdvanceWithoutFiring(1);
        var r = _h.Coordinator.DeleteGroups(new DeleteGroupsRequest { GroupsNames = [Harness.Group] });
        Assert.That(r.Results[0].ErrorCode, Is.EqualTo(GroupErrors.None), "at the deadline the member has expired, fired or not");
        Assert.That(_h.Fetched("t1", 0), Is.EqualTo(-1));
    }

    [Test]
    public void OffsetDeleteRespectsSubscriptions()
    {
        var (a, gen) = _h.StableSingle(metadata: Harness.Subscription("t1"));
        _h.Commit("t1", 0, 1, a, gen);
        _h.Commit("t2", 0, 2, a, gen);
        var request = new OffsetDeleteRequest { GroupId = Harness.Group };
        request.Topics.Add(new() { Name = "t1", Partitions = [new() { PartitionIndex = 0 }] });
        request.Topics.Add(new() { Name = "t2", Partitions = [new() { PartitionIndex = 0 }] });
        var r = _h.Coordinator.DeleteOffsets(request);
        Assert.That(r.ErrorCode, Is.EqualTo(GroupErrors.None));
        Assert.That(r.Topics[0].Partitions[0].ErrorCode, Is.EqualTo(GroupErrors.GroupSubscribedToTopic));
        Assert.That(r.Topics[1].Partitions[0].ErrorCode, Is.EqualTo(GroupErrors.None));
        Assert.That(_h.Fetched("t1", 0), Is.EqualTo(1));
        Assert.That(_h.Fetched("t2", 0), Is.EqualTo(-1));

        Assert.That(_h.Coordinator.DeleteOffsets(new OffsetDeleteRequest { GroupId = "missing" }).ErrorCode, Is.EqualTo(GroupErrors.GroupIdNotFound));
        // Once empty, any offset may go.
        _h.Leave(a);
        Assert.That(_h.State(), Is.EqualTo(GroupState.Empty));
        request.Topics.RemoveAt(1);
        Assert.That(_h.Coordinator.DeleteOffsets(request).Topics[0].Partitions[0].ErrorCode, Is.EqualTo(GroupErrors.None));
        Assert.That(_h.Fetched("t1", 0), Is.EqualTo(-1));
    }

    [Test]
    public void ListGroupsFiltersByState()
    {
        _h.StableSingle();
        _h.Commit("t1", 0, 1, group: "simple");
        var all = _h.Coordinator.ListGroups(new ListGroupsRequest(), 4);
        Assert.That(all.Groups.Select(g => (g.GroupId, g.GroupState, g.ProtocolType)).OrderBy(x => x.GroupId),
            Is.EqualTo(new[] { (Harness.Group, "Stable", "consumer"), ("simple", "Empty", "") }));
        var stable = _h.Coordinator.ListGroups(new ListGroupsRequest { StatesFilter = ["stable"] }, 4);
        Assert.That(stable.Groups.Select(g => g.GroupId), Is.EqualTo(new[] { Harness.Group }));
        var consumerType = _h.Coordinator.ListGroups(new ListGroupsRequest { TypesFilter = ["consumer"] }, 5);
        Assert.That(consumerType.Groups, Is.Empty, "all groups here are classic");
        var v3 = _h.Coordinator.ListGroups(new ListGroupsRequest(), 3);
        Assert.That(v3.Groups.All(g => g.GroupState == ""), Is.True);
    }

    [Test]
    public void DescribeGroupsShowsMembersAndAssignmentsWhenStable()
    {
        var (a, _) = _h.StableSingle(assignment: [7]);
        var r = _h.Coordinator.DescribeGroups(new DescribeGroupsRequest { Groups = [Harness.Group, "missing"] });
        var g = r.Groups[0];
        Assert.Multiple(() =>
        {
            Assert.That(g.GroupState, Is.EqualTo("Stable"));
            Assert.That(g.ProtocolType, Is.EqualTo("consumer"));
            Assert.That(g.ProtocolData, Is.EqualTo("range"));
            Assert.That(g.Members.Single().MemberId, Is.EqualTo(a));
            Assert.That(g.Members.Single().ClientHost, Is.EqualTo("/127.0.0.1"));
            Assert.That(g.Members.Single().MemberAssignment, Is.EqualTo(new byte[] { 7 }));
            Assert.That(r.Groups[1].GroupState, Is.EqualTo("Dead"));
            Assert.That(r.Groups[1].ErrorCode, Is.EqualTo(GroupErrors.None));
        });
    }
}
