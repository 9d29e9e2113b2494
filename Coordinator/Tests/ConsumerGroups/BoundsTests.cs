using Kayak.Protocol;
using Kayak.Protocol.Messages;
using NUnit.Framework;

namespace Kayak.Coordinator.Tests.ConsumerGroups;

/// <summary>
/// KIP-848 groups under misbehaving members, on the manual clock: a member that never acknowledges its revocation is
/// fenced after its rebalance timeout and the others get its partitions (Kafka's rebalance timeout); a member that
/// goes silent is removed after the session timeout; zombies with stale epochs get Kafka's errors; churn of many
/// members leaves no state behind; group.consumer.max.size bounds the members.
/// </summary>
public class BoundsTests
{
    [Test]
    public void AMemberThatNeverRevokesLosesItsPartitionsAfterTheRebalanceTimeout()
    {
        using var d = new ConsumerGroupDriver();
        d.CreateTopic("t", 8);
        var stubborn = d.Add("stubborn", ["t"]);
        Assert.That(d.Heartbeat(stubborn, rebalanceTimeoutMs: 20_000).ErrorCode, Is.EqualTo(0));
        var all = stubborn.Owned[d.IdOf("t")].ToArray();
        Assert.That(all, Has.Length.EqualTo(8));

        var others = new[] { d.Add("a", ["t"]), d.Add("b", ["t"]) };
        foreach (var m in others) d.Heartbeat(m);
        // The stubborn member keeps heartbeating but always reports everything as still owned.
        int stubbornEpoch = stubborn.Epoch;
        for (int i = 0; i < 25; i++)
        {
            var r = Stubborn(d, stubbornEpoch, all);
            foreach (var m in others) Assert.That(d.Heartbeat(m).ErrorCode, Is.EqualTo(0));
            if (r.ErrorCode != 0)
            {
                Assert.That(r.ErrorCode, Is.EqualTo((short)ErrorCode.UnknownMemberId), "fenced, then unknown");
                break;
            }
            Assert.That(others.Sum(m => m.Owned.Values.Sum(s => s.Count)), Is.EqualTo(0), "nothing handed out while it still owns it all");
            d.H.Time.AdvanceMs(1_000);
        }
        Assert.That(d.State!.Members.Keys, Is.EquivalentTo(new[] { "a", "b" }), "fenced after its rebalance timeout");
        d.Members.Remove("stubborn");
        d.Stabilise();
        Assert.That(others.Select(m => m.Owned[d.IdOf("t")].Count), Is.EqualTo(new[] { 4, 4 }));

        // The zombie's stale epoch is refused; joining afresh works.
        Assert.That(Stubborn(d, stubbornEpoch, all).ErrorCode, Is.EqualTo((short)ErrorCode.UnknownMemberId));
        var back = d.Add("stubborn", ["t"]);
        d.Stabilise();
        Assert.That(back.Owned.Values.Sum(s => s.Count), Is.InRange(2, 3));
    }

    private static ConsumerGroupHeartbeatResponse Stubborn(ConsumerGroupDriver d, int epoch, int[] owned) =>
        d.H.Coordinator.ConsumerGroupHeartbeat(new ConsumerGroupHeartbeatRequest
        {
            GroupId = Harness.Group, MemberId = "stubborn", MemberEpoch = epoch,
            TopicPartitions = [new ConsumerGroupHeartbeatRequest.TopicPartitionsData { TopicId = d.IdOf("t"), Partitions = owned.ToList() }],
        }, 1, new ClientInfo("c", "/127.0.0.1"), d.Resolve);

    [Test]
    public void StaleAndFutureEpochsAreFencedWithoutDisturbingTheGroup()
    {
        using var d = new ConsumerGroupDriver();
        d.CreateTopic("t", 4);
        var a = d.Add("a", ["t"]);
        var b = d.Add("b", ["t"]);
        d.Stabilise();
        var c = d.Add("c", ["t"]);
        d.Heartbeat(c);
        d.Leave(c); // two more epochs: a stale one now exists that is not the previous epoch
        d.Stabilise();
        Assert.That(a.Epoch, Is.GreaterThanOrEqualTo(4));
        int groupEpoch = d.State!.GroupEpoch;
        foreach (int epoch in new[] { a.Epoch + 1, a.Epoch + 100, a.Epoch - 2 })
        {
            var r = d.H.Coordinator.ConsumerGroupHeartbeat(new ConsumerGroupHeartbeatRequest { GroupId = Harness.Group, MemberId = "a", MemberEpoch = epoch },
                1, new ClientInfo("c", "/127.0.0.1"), d.Resolve);
            Assert.That(r.ErrorCode, Is.EqualTo((short)ErrorCode.FencedMemberEpoch), $"epoch {epoch}");
        }
        Assert.That(d.State!.GroupEpoch, Is.EqualTo(groupEpoch), "a fenced heartbeat changes nothing");
        d.Stabilise();
        Assert.That(a.Owned.Values.Sum(s => s.Count) + b.Owned.Values.Sum(s => s.Count), Is.EqualTo(4));
    }

    [Test]
    public void ChurnLeavesNoStateBehind()
    {
        using var d = new ConsumerGroupDriver();
        d.CreateTopic("t", 6);
        d.CreateTopic("u", 3);
        var random = new Random(3);
        for (int i = 0; i < 200; i++)
        {
            var m = d.Add($"m{i}", random.Next(2) == 0 ? ["t"] : null, regex: random.Next(2) == 0 ? $"(t|u{i % 5})" : null);
            if (m.Topics is null && m.Regex is null) m.Topics = ["u"];
            Assert.That(d.Heartbeat(m).ErrorCode, Is.EqualTo(0));
            if (d.Members.Count > 5)
            {
                var victim = d.Members.Values.ElementAt(random.Next(d.Members.Count));
                if (random.Next(2) == 0) d.Leave(victim);
                else
                {
                    // Silent: only its session timeout removes it.
                    d.Members.Remove(victim.Id);
                }
            }
        }
        d.H.Time.AdvanceMs(46_000); // past group.consumer.session.timeout.ms for the silent ones (and for all)
        var cg = d.State!;
        Assert.That(cg.Members, Is.Empty);
        Assert.That(cg.Target, Is.Empty);
        Assert.That(cg.Owners, Is.Empty);
        Assert.That(cg.StaticMembers, Is.Empty);
        // One more member prunes the compiled regexes to the ones in use.
        var last = d.Add("last", regex: "t");
        d.Members.Clear();
        d.Members["last"] = last;
        d.Stabilise();
        Assert.That(cg.RegexCache.Keys, Is.EquivalentTo(new[] { "t" }));
    }

    [Test]
    public void TheMaxSizeBoundsMembersButNotTheOnesAlreadyIn()
    {
        using var d = new ConsumerGroupDriver(time => new GroupCoordinatorOptions { Time = time, ConsumerGroupMaxSize = 2 });
        d.CreateTopic("t", 4);
        var a = d.Add("a", ["t"]);
        var b = d.Add("b", ["t"]);
        d.Stabilise();
        var c = d.Add("c", ["t"]);
        var refused = d.Heartbeat(c);
        Assert.That(refused.ErrorCode, Is.EqualTo((short)ErrorCode.GroupMaxSizeReached));
        d.Members.Remove("c");
        d.Stabilise();
        d.Leave(a);
        c.Joined = false;
        d.Members["c"] = c;
        d.Stabilise();
        Assert.That(d.State!.Members.Keys, Is.EquivalentTo(new[] { "b", "c" }));
    }

    [Test]
    public void AStaticMemberComingBackToAFullGroupTakesItsOldPlace()
    {
        using var d = new ConsumerGroupDriver(time => new GroupCoordinatorOptions { Time = time, ConsumerGroupMaxSize = 2 });
        d.CreateTopic("t", 4);
        d.Add("a", ["t"]);
        d.Add("s1", ["t"], instanceId: "static");
        d.Stabilise();
        var leave = d.H.Coordinator.ConsumerGroupHeartbeat(new ConsumerGroupHeartbeatRequest
        {
            GroupId = Harness.Group, MemberId = "s1", MemberEpoch = -2, InstanceId = "static",
        }, 1, new ClientInfo("c", "/127.0.0.1"), d.Resolve);
        Assert.That(leave.ErrorCode, Is.EqualTo(0));
        d.Members.Remove("s1");
        Assert.That(d.Heartbeat(d.Add("other", ["t"])).ErrorCode, Is.EqualTo((short)ErrorCode.GroupMaxSizeReached), "the static member holds its place");
        d.Members.Remove("other");
        var back = d.Add("s2", ["t"], instanceId: "static");
        Assert.That(d.Heartbeat(back).ErrorCode, Is.EqualTo(0));
        d.Stabilise();
        Assert.That(d.State!.Members.Keys, Is.EquivalentTo(new[] { "a", "s2" }));
    }
}
