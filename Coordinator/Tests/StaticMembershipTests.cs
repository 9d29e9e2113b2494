using NUnit.Framework;

namespace Kayak.Coordinator.Tests;

[TestFixture]
public class StaticMembershipTests
{
    private Harness _h = null!;

    [SetUp] public void SetUp() => _h = new Harness();
    [TearDown] public void TearDown() => _h.Dispose();

    /// <summary>Two static members, Stable at generation 1; returns their member ids.</summary>
    private (string A, string B) StableStaticPair()
    {
        var ja = _h.Join(instanceId: "ia", version: 5);
        var jb = _h.Join(instanceId: "ib", version: 5, clientId: "other");
        _h.Time.AdvanceMs(6000); // the second join extended the initial delay once
        Assert.That(ja.IsCompleted && jb.IsCompleted, Is.True);
        string a = ja.R().MemberId, b = jb.R().MemberId;
        Assert.That(a, Does.StartWith("ia-"), "static member ids start with the instance id");
        var sb = _h.Sync(b, 1, instanceId: "ib");
        _h.Sync(a, 1, new() { [a] = [0xA], [b] = [0xB] }, instanceId: "ia");
        Assert.That(sb.R().Assignment, Is.EqualTo(new byte[] { 0xB }));
        Assert.That(_h.State(), Is.EqualTo(GroupState.Stable));
        return (a, b);
    }

    [Test]
    public void RestartedStaticFollowerGetsOldAssignmentWithoutRebalance()
    {
        var (a, b) = StableStaticPair();
        var rejoin = _h.Join(instanceId: "ib", version: 5, clientId: "other");
        Assert.That(rejoin.IsCompleted, Is.True, "no rebalance: answered at once");
        var r = rejoin.R();
        Assert.Multiple(() =>
        {
            Assert.That(r.ErrorCode, Is.EqualTo(GroupErrors.None));
            Assert.That(r.GenerationId, Is.EqualTo(1));
            Assert.That(r.MemberId, Is.Not.EqualTo(b));
            Assert.That(r.Leader, Is.EqualTo(a));
            Assert.That(_h.State(), Is.EqualTo(GroupState.Stable));
        });
        var sync = _h.Sync(r.MemberId, 1, instanceId: "ib");
        Assert.That(sync.R().Assignment, Is.EqualTo(new byte[] { 0xB }));
        Assert.That(_h.Heartbeat(a, 1, "ia"), Is.EqualTo(GroupErrors.None), "the other member sees no rebalance");

        // The old incarnation is fenced.
        Assert.That(_h.Heartbeat(b, 1, "ib"), Is.EqualTo(GroupErrors.FencedInstanceId));
        Assert.That(Harness.CommitError(_h.Commit("t1", 0, 1, b, 1, instanceId: "ib")), Is.EqualTo(GroupErrors.FencedInstanceId));
    }

    [Test]
    public void RestartedStaticLeaderIsToldToSkipAssignmentFromV9()
    {
        var (a, _) = StableStaticPair();
        var rejoin = _h.Join(instanceId: "ia", version: 9);
        var r = rejoin.R();
        Assert.That(r.GenerationId, Is.EqualTo(1));
        Assert.That(r.Leader, Is.EqualTo(r.MemberId));
        Assert.That(r.SkipAssignment, Is.True);
        Assert.That(r.Members, Has.Count.EqualTo(2));
        Assert.That(_h.State(), Is.EqualTo(GroupState.Stable));
        Assert.That(r.MemberId, Is.Not.EqualTo(a));
    }

    [Test]
    public void StaticMemberWithNewProtocolTriggersRebalance()
    {
        StableStaticPair();
        var rejoin = _h.Join(instanceId: "ib", version: 5, clientId: "other", protocol: "roundrobin", more: ["range"]);
        // The selected protocol stays "range" (the other member only supports range): no rebalance.
        Assert.That(rejoin.IsCompleted, Is.True);
        Assert.That(_h.State(), Is.EqualTo(GroupState.Stable));
    }

    [Test]
    public void StaticMemberIsNotRemovedByRebalanceTimeoutButBySessionTimeout()
    {
        var (a, b) = StableStaticPair();
        // a's leader rejoin starts a rebalance; b keeps heartbeating but never rejoins.
        var rejoinA = _h.Join(a, instanceId: "ia", version: 5);
        Assert.That(_h.State(), Is.EqualTo(GroupState.PreparingRebalance));
        for (int elapsed = 5000; elapsed < Harness.Rebalance; elapsed += 5000)
        {
            _h.Time.AdvanceMs(5000);
            Assert.That(_h.Heartbeat(b, 1, "ib"), Is.EqualTo(GroupErrors.RebalanceInProgress));
        }
        Assert.That(rejoinA.IsCompleted, Is.False);
        _h.Time.AdvanceMs(5000);
        Assert.That(rejoinA.IsCompleted, Is.True);
        Assert.That(_h.Coordinator.Describe(Harness.Group)!.MemberIds, Has.Member(b), "static members survive the rebalance timeout");
        Assert.That(rejoinA.R().Members, Has.Count.EqualTo(2));
        // b is now silent (it missed the generation): its session timeout removes it.
        _h.Sync(a, 2, new() { [a] = [1] }, instanceId: "ia");
        _h.Time.AdvanceMs(Harness.Session);
        Assert.That(_h.Coordinator.Describe(Harness.Group)!.MemberIds, Has.No.Member(b));
    }

    [Test]
    public void AdminCanRemoveStaticMemberByInstanceId()
    {
        var (_, b) = StableStaticPair();
        var leave = _h.Leave("", instanceId: "ib");
        Assert.That(leave.Members[0].ErrorCode, Is.EqualTo(GroupErrors.None));
        Assert.That(_h.Coordinator.Describe(Harness.Group)!.MemberIds, Has.No.Member(b));
        Assert.That(_h.Leave("", instanceId: "nope").Members[0].ErrorCode, Is.EqualTo(GroupErrors.UnknownMemberId));
    }
}
