using Kayak.Protocol;
using Kayak.Protocol.Messages;
using NUnit.Framework;

namespace Kayak.Coordinator.Tests.ConsumerGroups;

/// <summary>
/// Classic and KIP-848 protocols on one group id, as Kafka 4.0's GroupMetadataManager: an empty classic group becomes
/// a consumer group when a consumer-protocol member joins, an empty consumer group a classic one when a classic
/// member joins, committed offsets kept both ways and a reload ending in the same state. Groups with members migrate
/// online (OnlineMigrationTests).
/// </summary>
public class MigrationTests
{
    [Test]
    public void AGroupGoesFromClassicToConsumerAndBackKeepingItsOffsets()
    {
        using var d = new ConsumerGroupDriver();
        d.CreateTopic("t", 2);
        var h = d.H;

        var (classicId, generation) = h.StableSingle();
        Assert.That(Harness.CommitError(h.Commit("t", 0, 10, classicId, generation)), Is.EqualTo(GroupErrors.None));
        var member = d.Add("c1", ["t"]);
        // The online upgrade needs the members' assignments in the consumer protocol's format; [1, 2, 3] is not.
        Assert.That(d.Heartbeat(member).ErrorCode, Is.EqualTo((short)ErrorCode.GroupIdNotFound), "the classic group's member blocks the upgrade");
        d.Members.Clear();
        h.Leave(classicId);
        Assert.That(h.State(), Is.EqualTo(GroupState.Empty));

        member = d.Add("c1", ["t"]);
        d.Stabilise();
        Assert.That(Type(h), Is.EqualTo("consumer"));
        Assert.That(h.Fetched("t", 0), Is.EqualTo(10), "the classic group's offset is the consumer group's");
        var commit = h.Commit("t", 1, 20, "c1", member.Epoch, version: 9);
        Assert.That(Harness.CommitError(commit), Is.EqualTo(GroupErrors.None));
        Assert.That(h.Join().R().ErrorCode, Is.EqualTo((short)ErrorCode.MemberIdRequired), "a classic member joins the consumer group (online migration)");
        Assert.That(Type(h), Is.EqualTo("consumer"));
        AssertReloadedSame(h);

        d.Leave(member);
        var (again, _) = h.StableSingle();
        Assert.That(again, Is.Not.Empty);
        Assert.That(Type(h), Is.EqualTo("classic"));
        Assert.That((h.Fetched("t", 0), h.Fetched("t", 1)), Is.EqualTo((10L, 20L)));
        var describe = h.Coordinator.ConsumerGroupDescribe(new ConsumerGroupDescribeRequest { GroupIds = [Harness.Group] }).Groups[0];
        Assert.That(describe.ErrorCode, Is.EqualTo((short)ErrorCode.GroupIdNotFound), "a classic group again");
        AssertReloadedSame(h);
    }

    private static string Type(Harness h) =>
        h.Coordinator.ListGroups(new ListGroupsRequest(), 5).Groups.Single(g => g.GroupId == Harness.Group).GroupType;

    private static void AssertReloadedSame(Harness h)
    {
        using var reloaded = new Harness(h.Log, new ManualTimeProvider());
        Assert.That(Type(reloaded), Is.EqualTo(Type(h)));
        Assert.That(reloaded.Fetched("t", 0), Is.EqualTo(h.Fetched("t", 0)));
        Assert.That(reloaded.Fetched("t", 1), Is.EqualTo(h.Fetched("t", 1)));
    }

    [TestCase("classic", 1)]
    [TestCase("consumer", 1)]
    [TestCase("CONSUMER", 1)]
    [TestCase("share", 0)]
    public void ListGroupsFiltersByType(string filter, int expected)
    {
        using var d = new ConsumerGroupDriver();
        d.CreateTopic("t", 1);
        d.Add("c1", ["t"]);
        d.Stabilise();
        d.H.StableSingle(group: "classic-group");
        var listed = d.H.Coordinator.ListGroups(new ListGroupsRequest { TypesFilter = [filter] }, 5).Groups;
        Assert.That(listed, Has.Count.EqualTo(expected));
        if (expected == 1)
            Assert.That(listed[0].GroupId, Is.EqualTo(filter.Equals("classic", StringComparison.OrdinalIgnoreCase) ? "classic-group" : Harness.Group));
    }
}
