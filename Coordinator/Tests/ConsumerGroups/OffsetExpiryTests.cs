using Kayak.Protocol.Messages;
using NUnit.Framework;

namespace Kayak.Coordinator.Tests.ConsumerGroups;

/// <summary>
/// Offset expiry of KIP-848 consumer groups (Kafka's ConsumerGroup.offsetExpirationCondition): an offset expires
/// offsets.retention.minutes (an hour in the harness) after its commit unless a member subscribes to its topic; once
/// the group is empty and every offset has expired the group itself is deleted, on reload too.
/// </summary>
public class OffsetExpiryTests
{
    private const long Hour = 60 * 60 * 1000;

    [Test]
    public void OffsetsOfUnsubscribedTopicsExpireAndAnEmptyGroupGoes()
    {
        using var d = new ConsumerGroupDriver(time => Harness.Options(time));
        d.CreateTopic("t", 1);
        d.CreateTopic("old", 1);
        var m = d.Add("m1", ["t"]);
        d.Stabilise();
        var h = d.H;
        Assert.That(Harness.CommitError(h.Commit("t", 0, 5, "m1", m.Epoch, version: 9)), Is.EqualTo(GroupErrors.None));
        Assert.That(Harness.CommitError(h.Commit("old", 0, 3, "m1", m.Epoch, version: 9)), Is.EqualTo(GroupErrors.None));

        // An hour with the member heartbeating; the retention check runs on its own timer meanwhile.
        KeepAlive(d, Hour);
        h.Coordinator.ExpireOffsets();
        Assert.That((h.Fetched("t", 0), h.Fetched("old", 0)), Is.EqualTo((5L, -1L)), "only the offset of the topic nobody subscribes to");

        d.Leave(m);
        Assert.That(h.Coordinator.ExpireOffsets(), Is.EqualTo(1), "an empty group subscribes to nothing: the hour has passed");
        Assert.That(h.Coordinator.ListGroups(new ListGroupsRequest(), 5).Groups, Is.Empty, "the group without offsets is deleted");
        using var reloaded = new Harness(h.Log, new ManualTimeProvider());
        Assert.That(reloaded.Coordinator.ListGroups(new ListGroupsRequest(), 5).Groups, Is.Empty);
    }

    [Test]
    public void AnEmptyGroupKeepsOffsetsYoungerThanTheRetention()
    {
        using var d = new ConsumerGroupDriver(time => Harness.Options(time));
        d.CreateTopic("t", 1);
        var m = d.Add("m1", ["t"]);
        d.Stabilise();
        d.H.Commit("t", 0, 5, "m1", m.Epoch, version: 9);
        d.Leave(m);
        d.H.Time.AdvanceMs(Hour - 1);
        Assert.That(d.H.Coordinator.ExpireOffsets(), Is.EqualTo(0));
        Assert.That(d.H.Fetched("t", 0), Is.EqualTo(5));
        Assert.That(d.H.Coordinator.ListGroups(new ListGroupsRequest(), 5).Groups.Single().GroupType, Is.EqualTo("consumer"));
    }

    /// <summary>Runs the clock in heartbeat-sized steps so the members' sessions do not expire.</summary>
    private static void KeepAlive(ConsumerGroupDriver d, long ms)
    {
        for (long t = 0; t < ms; t += 5_000)
        {
            d.H.Time.AdvanceMs(5_000);
            foreach (var member in d.Members.Values) Assert.That(d.Heartbeat(member).ErrorCode, Is.EqualTo(0));
        }
    }
}
