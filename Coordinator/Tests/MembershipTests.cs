using NUnit.Framework;

namespace Kayak.Coordinator.Tests;

[TestFixture]
public class MembershipTests
{
    private Harness _h = null!;

    [SetUp] public void SetUp() => _h = new Harness();
    [TearDown] public void TearDown() => _h.Dispose();

    [Test]
    public void FirstJoinWaitsForInitialDelayThenSyncMakesGroupStable()
    {
        var (id, join) = _h.JoinDynamic();
        Assert.That(id, Does.StartWith("client-"));
        Assert.That(_h.State(), Is.EqualTo(GroupState.PreparingRebalance));
        _h.Time.AdvanceMs(2999);
        Assert.That(join.IsCompleted, Is.False, "group.initial.rebalance.delay.ms has not passed");
        _h.Time.AdvanceMs(1);
        Assert.That(join.IsCompleted, Is.True);
        var j = join.R();
        Assert.Multiple(() =>
        {
            Assert.That(j.ErrorCode, Is.EqualTo(GroupErrors.None));
            Assert.That(j.GenerationId, Is.EqualTo(1));
            Assert.That(j.Leader, Is.EqualTo(id));
            Assert.That(j.ProtocolName, Is.EqualTo("range"));
            Assert.That(j.Members, Has.Count.EqualTo(1));
            Assert.That(_h.State(), Is.EqualTo(GroupState.CompletingRebalance));
        });
        var sync = _h.Sync(id, 1, new() { [id] = [9, 9] });
        Assert.That(sync.R().Assignment, Is.EqualTo(new byte[] { 9, 9 }));
        Assert.That(_h.State(), Is.EqualTo(GroupState.Stable));
        Assert.That(_h.Heartbeat(id, 1), Is.EqualTo(GroupErrors.None));
    }

    [Test]
    public void InitialDelayIsExtendedWhileMembersArriveButCappedByRebalanceTimeout()
    {
        var (a, joinA) = _h.JoinDynamic();
        _h.Time.AdvanceMs(2000);
        var (b, joinB) = _h.JoinDynamic(clientId: "other");
        _h.Time.AdvanceMs(1000); // first delay over, but a member arrived: wait another delay
        Assert.That(joinA.IsCompleted, Is.False);
        _h.Time.AdvanceMs(3000);
        Assert.That(joinA.IsCompleted && joinB.IsCompleted, Is.True);
        Assert.That(joinA.R().GenerationId, Is.EqualTo(1));
        Assert.That(joinB.R().GenerationId, Is.EqualTo(1));
        string leader = joinA.R().Leader;
        Assert.That(leader, Is.EqualTo(a));
        Assert.That(joinA.R().Members, Has.Count.EqualTo(2));
        Assert.That(joinB.R().Members, Is.Empty, "followers get no member metadata");
        Assert.That(b, Does.StartWith("other-"));
    }

    [Test]
    public void SecondMemberTriggersRebalanceAndFollowerSyncWaitsForLeader()
    {
        var (a, gen) = _h.StableSingle();
        var (b, joinB) = _h.JoinDynamic(clientId: "other");
        Assert.That(_h.State(), Is.EqualTo(GroupState.PreparingRebalance));
        Assert.That(joinB.IsCompleted, Is.False);
        Assert.That(_h.Heartbeat(a, gen), Is.EqualTo(GroupErrors.RebalanceInProgress));
        var rejoinA = _h.Join(a);
        // Everyone rejoined: the join phase completes without waiting for the rebalance timeout.
        Assert.That(rejoinA.IsCompleted && joinB.IsCompleted, Is.True);
        Assert.That(rejoinA.R().GenerationId, Is.EqualTo(gen + 1));
        Assert.That(rejoinA.R().Members, Has.Count.EqualTo(2));

        var syncB = _h.Sync(b, gen + 1);
        Assert.That(syncB.IsCompleted, Is.False, "followers wait for the leader's assignment");
        var syncA = _h.Sync(a, gen + 1, new() { [a] = [1], [b] = [2] });
        Assert.That(syncA.R().Assignment, Is.EqualTo(new byte[] { 1 }));
        Assert.That(syncB.IsCompleted, Is.True);
        Assert.That(syncB.R().Assignment, Is.EqualTo(new byte[] { 2 }));
        Assert.That(_h.State(), Is.EqualTo(GroupState.Stable));
    }

    [Test]
    public void LeaveTriggersRebalanceAndLastLeaveEmptiesGroup()
    {
        var (a, gen) = _h.StableSingle();
        var (b, joinB) = _h.JoinDynamic(clientId: "other");
        var rejoinA = _h.Join(a);
        _h.Sync(b, gen + 1);
        _h.Sync(a, gen + 1, new() { [a] = [1], [b] = [2] });

        var leave = _h.Leave(b);
        Assert.That(leave.Members[0].ErrorCode, Is.EqualTo(GroupErrors.None));
        Assert.That(_h.State(), Is.EqualTo(GroupState.PreparingRebalance));
        var again = _h.Join(a);
        Assert.That(again.IsCompleted, Is.True);
        Assert.That(again.R().GenerationId, Is.EqualTo(gen + 2));
        Assert.That(again.R().Members, Has.Count.EqualTo(1));
        _h.Sync(a, gen + 2, new() { [a] = [1] });

        // v0-2 LeaveGroup: single member, top-level error.
        var leaveA = _h.Leave(a, version: 1);
        Assert.That(leaveA.ErrorCode, Is.EqualTo(GroupErrors.None));
        Assert.That(_h.State(), Is.EqualTo(GroupState.Empty));
        Assert.That(_h.Coordinator.Describe(Harness.Group)!.GenerationId, Is.EqualTo(gen + 3));
        Assert.That(_h.Leave("nobody").Members[0].ErrorCode, Is.EqualTo(GroupErrors.UnknownMemberId));
        Assert.That(rejoinA.IsCompleted && joinB.IsCompleted, Is.True);
    }

    [Test]
    public void SessionTimeoutRemovesSilentMemberAndRebalances()
    {
        var (a, gen) = _h.StableSingle();
        var (b, joinB) = _h.JoinDynamic(clientId: "other");
        _h.Join(a);
        _h.Sync(b, gen + 1);
        _h.Sync(a, gen + 1, new() { [a] = [1], [b] = [2] });
        Assert.That(_h.State(), Is.EqualTo(GroupState.Stable));

        // a keeps heartbeating, b goes silent.
        for (int i = 0; i < 3; i++)
        {
            _h.Time.AdvanceMs(3000);
            Assert.That(_h.Heartbeat(a, gen + 1), Is.EqualTo(GroupErrors.None), $"heartbeat {i}");
        }
        Assert.That(_h.State(), Is.EqualTo(GroupState.Stable));
        _h.Time.AdvanceMs(1000); // b's session (10 s since its SyncGroup) runs out
        Assert.That(_h.Coordinator.Describe(Harness.Group)!.MemberIds, Is.EqualTo(new[] { a }));
        Assert.That(_h.State(), Is.EqualTo(GroupState.PreparingRebalance));
        Assert.That(_h.Heartbeat(b, gen + 1), Is.EqualTo(GroupErrors.UnknownMemberId));
        Assert.That(_h.Heartbeat(a, gen + 1), Is.EqualTo(GroupErrors.RebalanceInProgress));
    }

    [Test]
    public void RebalanceTimeoutRemovesMembersThatDoNotRejoin()
    {
        var (a, gen) = _h.StableSingle();
        var (b, joinB) = _h.JoinDynamic(clientId: "other");
        _h.Join(a);
        _h.Sync(b, gen + 1);
        _h.Sync(a, gen + 1, new() { [a] = [1], [b] = [2] });

        // b rejoins (e.g. its subscription changed); a never does, though it keeps heartbeating.
        var rejoinB = _h.Join(b, metadata: Harness.Subscription("t1", "t2"));
        Assert.That(_h.State(), Is.EqualTo(GroupState.PreparingRebalance));
        for (int elapsed = 0; elapsed < Harness.Rebalance - 5000; elapsed += 5000)
        {
            _h.Time.AdvanceMs(5000);
            Assert.That(_h.Heartbeat(a, gen + 1), Is.EqualTo(GroupErrors.RebalanceInProgress));
        }
        Assert.That(rejoinB.IsCompleted, Is.False);
        _h.Time.AdvanceMs(5000);
        Assert.That(rejoinB.IsCompleted, Is.True);
        Assert.That(rejoinB.R().GenerationId, Is.EqualTo(gen + 2));
        Assert.That(rejoinB.R().Leader, Is.EqualTo(b), "leadership moves to a member that rejoined");
        Assert.That(rejoinB.R().Members, Has.Count.EqualTo(1));
        Assert.That(_h.Heartbeat(a, gen + 1), Is.EqualTo(GroupErrors.UnknownMemberId));
    }

    [Test]
    public void MemberIdRequiredOnlyFromVersion4()
    {
        var v3 = _h.Join(version: 3);
        Assert.That(v3.IsCompleted, Is.False, "v3 joins straight away with a generated id");
        var v4 = _h.Join(version: 4);
        Assert.That(v4.R().ErrorCode, Is.EqualTo(GroupErrors.MemberIdRequired));
        Assert.That(v4.R().MemberId, Does.StartWith("client-"));
        // The pending id expires after the session timeout if it never comes back.
        _h.Time.AdvanceMs(3000);
        Assert.That(v3.IsCompleted, Is.True);
        Assert.That(v3.R().Members, Has.Count.EqualTo(1));
        _h.Time.AdvanceMs(Harness.Session);
        var late = _h.Join(v4.R().MemberId);
        Assert.That(late.R().ErrorCode, Is.EqualTo(GroupErrors.UnknownMemberId));
    }

    [Test]
    public void ErrorsWhereKafkaReturnsThem()
    {
        var (a, gen) = _h.StableSingle();
        Assert.Multiple(() =>
        {
            Assert.That(_h.Heartbeat(a, gen + 5), Is.EqualTo(GroupErrors.IllegalGeneration));
            Assert.That(_h.Heartbeat("ghost", gen), Is.EqualTo(GroupErrors.UnknownMemberId));
            Assert.That(_h.Heartbeat(a, gen, group: "nope"), Is.EqualTo(GroupErrors.UnknownMemberId));
            Assert.That(_h.Sync(a, gen + 1).R().ErrorCode, Is.EqualTo(GroupErrors.IllegalGeneration));
            Assert.That(_h.Join("ghost").R().ErrorCode, Is.EqualTo(GroupErrors.UnknownMemberId));
        });
        _h.JoinDynamic(clientId: "other");
        Assert.That(_h.Sync(a, gen).R().ErrorCode, Is.EqualTo(GroupErrors.RebalanceInProgress));
        Assert.That(_h.Commit("t1", 0, 5, a, gen).Topics[0].Partitions[0].ErrorCode, Is.EqualTo(GroupErrors.None),
            "commits of the current generation are accepted during PreparingRebalance (cooperative)");
    }

    [Test]
    public void InvalidJoinsAreRejected()
    {
        var bad = new Kayak.Protocol.Messages.JoinGroupRequest { GroupId = Harness.Group, SessionTimeoutMs = 10, ProtocolType = "consumer" };
        bad.Protocols.Add(new() { Name = "range", Metadata = [] });
        Assert.That(_h.Coordinator.JoinGroupAsync(bad, 5, new ClientInfo("c", "h")).R().ErrorCode, Is.EqualTo(GroupErrors.InvalidSessionTimeout));
        bad.SessionTimeoutMs = Harness.Session;
        bad.GroupId = "";
        Assert.That(_h.Coordinator.JoinGroupAsync(bad, 5, new ClientInfo("c", "h")).R().ErrorCode, Is.EqualTo(GroupErrors.InvalidGroupId));

        _h.StableSingle();
        var other = _h.Join(protocol: "roundrobin", version: 3);
        Assert.That(other.R().ErrorCode, Is.EqualTo(GroupErrors.InconsistentGroupProtocol));
    }

    [Test]
    public void ProtocolSelectionPicksCommonProtocolByVotes()
    {
        var a = _h.Join(version: 3, protocol: "cooperative-sticky", more: ["range"]);
        var b = _h.Join(version: 3, protocol: "range", more: ["cooperative-sticky"]);
        var c = _h.Join(version: 3, protocol: "cooperative-sticky", more: ["range"]);
        _h.Time.AdvanceMs(3000);
        Assert.That(a.IsCompleted, Is.False, "members joined during the initial delay: it is extended");
        _h.Time.AdvanceMs(3000);
        Assert.That(a.R().ProtocolName, Is.EqualTo("cooperative-sticky"));
        Assert.That(b.R().ProtocolName, Is.EqualTo("cooperative-sticky"));
        Assert.That(c.R().GenerationId, Is.EqualTo(1));
    }

    [Test]
    public void GroupMaxSizeIsEnforced()
    {
        using var h = new Harness(maxGroupSize: 1);
        h.JoinDynamic();
        var second = h.Join();
        Assert.That(second.R().ErrorCode, Is.EqualTo(GroupErrors.GroupMaxSizeReached));
    }

    [Test]
    public void SilentMemberDuringRebalanceIsRemovedBySessionTimeout()
    {
        var (a, gen) = _h.StableSingle();
        var (b, joinB) = _h.JoinDynamic(clientId: "other");
        // a neither rejoins nor heartbeats: its session expires, after which everyone left has
        // joined and the join phase completes with b alone, before the rebalance timeout.
        _h.Time.AdvanceMs(Harness.Session - 1);
        Assert.That(joinB.IsCompleted, Is.False);
        _h.Time.AdvanceMs(1);
        Assert.That(joinB.R().GenerationId, Is.EqualTo(gen + 1));
        Assert.That(_h.Coordinator.Describe(Harness.Group)!.MemberIds, Is.EqualTo(new[] { b }));
        Assert.That(_h.Heartbeat(a, gen), Is.EqualTo(GroupErrors.UnknownMemberId));
    }

    [Test]
    public void MemberThatNeverSyncsIsRemovedAfterRebalanceTimeout()
    {
        var (a, gen) = _h.StableSingle();
        var (b, joinB) = _h.JoinDynamic(clientId: "other");
        _h.Join(a);
        Assert.That(joinB.R().GenerationId, Is.EqualTo(gen + 1));
        _h.Sync(a, gen + 1, new() { [a] = [1], [b] = [2] });
        Assert.That(_h.State(), Is.EqualTo(GroupState.Stable));
        // b keeps heartbeating but never sends SyncGroup.
        for (int elapsed = 0; elapsed < Harness.Rebalance - 5000; elapsed += 5000)
        {
            _h.Time.AdvanceMs(5000);
            Assert.That(_h.Heartbeat(b, gen + 1), Is.EqualTo(GroupErrors.None));
            Assert.That(_h.Heartbeat(a, gen + 1), Is.EqualTo(GroupErrors.None));
        }
        _h.Time.AdvanceMs(5000);
        Assert.That(_h.Coordinator.Describe(Harness.Group)!.MemberIds, Is.EqualTo(new[] { a }));
        Assert.That(_h.Heartbeat(a, gen + 1), Is.EqualTo(GroupErrors.RebalanceInProgress));
    }

    [Test]
    public void RequestsBeforeLoadAnswerLoadInProgress()
    {
        var time = new ManualTimeProvider();
        using var coordinator = new GroupCoordinator(Harness.Options(time), new InMemoryGroupLog());
        var hb = coordinator.Heartbeat(new Kayak.Protocol.Messages.HeartbeatRequest { GroupId = "g", MemberId = "m" });
        Assert.That(hb.ErrorCode, Is.EqualTo(GroupErrors.CoordinatorLoadInProgress));
        coordinator.Load();
        hb = coordinator.Heartbeat(new Kayak.Protocol.Messages.HeartbeatRequest { GroupId = "g", MemberId = "m" });
        Assert.That(hb.ErrorCode, Is.EqualTo(GroupErrors.UnknownMemberId));
    }
}
