using Kayak.Coordinator.ConsumerGroups;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using NUnit.Framework;

namespace Kayak.Coordinator.Tests.ConsumerGroups;

/// <summary>
/// The KIP-848 state machine on a manual clock: join, a second member taking half the partitions only after the first
/// revoked them, leave, session expiry, static members, fencing, commits with member epochs, and a reload of the log
/// reaching the same state. After every heartbeat the ownership invariant is checked: no partition is assigned to or
/// pending revocation at two members.
/// </summary>
public class ConsumerGroupTests
{
    private const string Topic = "t";
    private static readonly Uuid TopicId = new(0x1234, 0x5678);
    private const int Partitions = 6;

    private sealed class Group : IDisposable
    {
        public readonly Harness H;
        public int TopicPartitions = Partitions;
        public Group(InMemoryGroupLog? log = null, ManualTimeProvider? time = null) => H = new Harness(log, time);

        public bool Resolve(string name, out Uuid id, out int count)
        {
            id = name == Topic ? TopicId : Uuid.Zero;
            count = name == Topic ? TopicPartitions : 0;
            return name == Topic;
        }

        public ConsumerGroupHeartbeatResponse Heartbeat(string memberId, int epoch, int[]? owned = null, string? instanceId = null,
            bool join = false, int rebalanceTimeoutMs = 30_000, short version = 1)
        {
            var request = new ConsumerGroupHeartbeatRequest { GroupId = Harness.Group, MemberId = memberId, MemberEpoch = epoch, InstanceId = instanceId };
            if (join || epoch == 0)
            {
                request.RebalanceTimeoutMs = rebalanceTimeoutMs;
                request.SubscribedTopicNames = [Topic];
                request.TopicPartitions = [];
            }
            if (owned is not null)
                request.TopicPartitions = [new ConsumerGroupHeartbeatRequest.TopicPartitionsData { TopicId = TopicId, Partitions = owned.ToList() }];
            var response = H.Coordinator.ConsumerGroupHeartbeat(request, version, new ClientInfo("c", "/127.0.0.1"), Resolve);
            AssertNoPartitionOwnedTwice();
            return response;
        }

        public ConsumerGroupState State
        {
            get
            {
                var g = H.Coordinator.AllGroups.Single(g => g.GroupId == Harness.Group);
                lock (g.Lock) return g.Consumer!;
            }
        }

        public void AssertNoPartitionOwnedTwice()
        {
            var g = H.Coordinator.AllGroups.SingleOrDefault(g => g.GroupId == Harness.Group);
            if (g?.Consumer is not { } cg) return;
            lock (g.Lock)
            {
                var seen = new Dictionary<(Uuid, int), string>();
                foreach (var m in cg.Members.Values)
                    foreach (var tp in m.Assigned.All().Concat(m.PendingRevocation.All()))
                    {
                        Assert.That(seen.TryAdd(tp, m.MemberId), Is.True, $"partition {tp.Item2} owned by {seen.GetValueOrDefault(tp)} and {m.MemberId}");
                    }
            }
        }

        public void Dispose() => H.Dispose();
    }

    private static int[] Assigned(ConsumerGroupHeartbeatResponse r) =>
        r.Assignment is null ? [] : r.Assignment.TopicPartitions.SelectMany(t => t.Partitions).Order().ToArray();

    [Test]
    public void TheFirstMemberGetsEveryPartitionAtEpochOne()
    {
        using var g = new Group();
        var r = g.Heartbeat("m1", 0);
        Assert.That(r.ErrorCode, Is.EqualTo(0));
        Assert.That(r.MemberId, Is.EqualTo("m1"));
        Assert.That(r.MemberEpoch, Is.EqualTo(1));
        Assert.That(r.HeartbeatIntervalMs, Is.EqualTo(5000));
        Assert.That(Assigned(r), Is.EqualTo(new[] { 0, 1, 2, 3, 4, 5 }));
        Assert.That(g.State.StateName, Is.EqualTo("Stable"));
    }

    [Test]
    public void AV0JoinGetsAMemberIdFromTheCoordinator()
    {
        using var g = new Group();
        var r = g.Heartbeat("", 0, version: 0);
        Assert.That(r.ErrorCode, Is.EqualTo(0));
        Assert.That(r.MemberId, Is.Not.Empty);
        Assert.That(g.Heartbeat("", 0, version: 1).ErrorCode, Is.EqualTo((short)ErrorCode.InvalidRequest), "v1 members bring their id (KIP-1082)");
    }

    /// <summary>The core of KIP-848: the new member gets its partitions only after the old owner revoked them.</summary>
    [Test]
    public void ASecondMemberGetsHalfOnlyAfterTheFirstRevokedThem()
    {
        using var g = new Group();
        Assert.That(g.Heartbeat("m1", 0).MemberEpoch, Is.EqualTo(1));

        var join = g.Heartbeat("m2", 0);
        Assert.That(join.MemberEpoch, Is.EqualTo(2), "m2 is at the new epoch");
        Assert.That(Assigned(join), Is.Empty, "everything is still owned by m1");
        Assert.That(g.State.StateName, Is.EqualTo("Reconciling"));

        // m1 is told to keep three partitions; it stays at epoch 1 until it revoked the other three.
        var revoke = g.Heartbeat("m1", 1);
        Assert.That(revoke.MemberEpoch, Is.EqualTo(1));
        var kept = Assigned(revoke);
        Assert.That(kept, Has.Length.EqualTo(3));
        Assert.That(Assigned(g.Heartbeat("m2", 2)), Is.Empty, "m1 has not confirmed the revocation yet");

        var done = g.Heartbeat("m1", 1, owned: kept);
        Assert.That(done.MemberEpoch, Is.EqualTo(2));
        Assert.That(Assigned(done), Is.EqualTo(kept));

        var second = g.Heartbeat("m2", 2);
        Assert.That(second.MemberEpoch, Is.EqualTo(2));
        Assert.That(Assigned(second), Is.EqualTo(new[] { 0, 1, 2, 3, 4, 5 }.Except(kept).ToArray()));
        Assert.That(g.State.StateName, Is.EqualTo("Stable"));
    }

    private static void TwoStableMembers(Group g, out int[] m1, out int[] m2)
    {
        g.Heartbeat("m1", 0);
        g.Heartbeat("m2", 0);
        m1 = Assigned(g.Heartbeat("m1", 1));
        g.Heartbeat("m1", 1, owned: m1);
        m2 = Assigned(g.Heartbeat("m2", 2));
        Assert.That(m1.Length + m2.Length, Is.EqualTo(Partitions));
    }

    [Test]
    public void AMemberThatLeavesHandsItsPartitionsToTheOther()
    {
        using var g = new Group();
        TwoStableMembers(g, out var m1, out _);
        var leave = g.Heartbeat("m2", -1);
        Assert.That(leave.ErrorCode, Is.EqualTo(0));
        Assert.That(leave.MemberEpoch, Is.EqualTo(-1));
        var r = g.Heartbeat("m1", 2, owned: m1);
        Assert.That(r.MemberEpoch, Is.EqualTo(3), "the leave bumped the group epoch; the new target has that epoch");
        Assert.That(Assigned(r), Is.EqualTo(new[] { 0, 1, 2, 3, 4, 5 }));
    }

    [Test]
    public void AnExpiredSessionRemovesTheMember()
    {
        using var g = new Group();
        TwoStableMembers(g, out var m1, out _);
        g.H.Time.AdvanceMs(30_000);
        Assert.That(g.Heartbeat("m1", 2).ErrorCode, Is.EqualTo(0));
        g.H.Time.AdvanceMs(20_000); // m2 silent for 50 s > 45 s; m1 for 20 s
        Assert.That(g.State.Members.Keys, Is.EquivalentTo(new[] { "m1" }));
        var r = g.Heartbeat("m1", 2, owned: m1);
        Assert.That(Assigned(r), Is.EqualTo(new[] { 0, 1, 2, 3, 4, 5 }));
        Assert.That(g.Heartbeat("m2", 2).ErrorCode, Is.EqualTo((short)ErrorCode.UnknownMemberId));
    }

    [Test]
    public void AMemberThatDoesNotRevokeWithinItsRebalanceTimeoutIsRemoved()
    {
        using var g = new Group();
        g.Heartbeat("m1", 0, rebalanceTimeoutMs: 10_000);
        g.Heartbeat("m2", 0);
        Assert.That(Assigned(g.Heartbeat("m1", 1)), Has.Length.EqualTo(3)); // m1 must revoke three now
        g.H.Time.AdvanceMs(5_000);
        g.Heartbeat("m2", 2);
        g.H.Time.AdvanceMs(6_000);
        Assert.That(g.State.Members.Keys, Is.EquivalentTo(new[] { "m2" }), "m1 kept its partitions past its rebalance timeout");
        Assert.That(g.Heartbeat("m1", 1).ErrorCode, Is.EqualTo((short)ErrorCode.UnknownMemberId));
    }

    [Test]
    public void WrongEpochsAreFenced()
    {
        using var g = new Group();
        g.Heartbeat("m1", 0);
        Assert.That(g.Heartbeat("m1", 7).ErrorCode, Is.EqualTo((short)ErrorCode.FencedMemberEpoch));
        Assert.That(g.Heartbeat("nobody", 1).ErrorCode, Is.EqualTo((short)ErrorCode.UnknownMemberId));
        g.Heartbeat("m2", 0);
        var kept = Assigned(g.Heartbeat("m1", 1));
        g.Heartbeat("m1", 1, owned: kept); // m1 at epoch 2, previous 1
        // The previous epoch is accepted with a subset of the assignment (a lost response), not with more.
        Assert.That(g.Heartbeat("m1", 1, owned: kept).ErrorCode, Is.EqualTo(0));
        Assert.That(g.Heartbeat("m1", 1, owned: [0, 1, 2, 3, 4, 5]).ErrorCode, Is.EqualTo((short)ErrorCode.FencedMemberEpoch));
    }

    [Test]
    public void InvalidRequestsGetKafkasErrors()
    {
        using var g = new Group();
        var request = new ConsumerGroupHeartbeatRequest { GroupId = Harness.Group, MemberId = "m", MemberEpoch = 0, SubscribedTopicNames = [Topic] };
        var r = g.H.Coordinator.ConsumerGroupHeartbeat(request, 1, default, g.Resolve);
        Assert.That(r.ErrorCode, Is.EqualTo((short)ErrorCode.InvalidRequest), "no rebalance timeout on join");
        request.RebalanceTimeoutMs = 1000;
        request.ServerAssignor = "sticky";
        var unsupported = g.H.Coordinator.ConsumerGroupHeartbeat(request, 1, default, g.Resolve);
        Assert.That(unsupported.ErrorCode, Is.EqualTo((short)ErrorCode.UnsupportedAssignor));
        Assert.That(unsupported.ErrorMessage, Is.EqualTo("ServerAssignor sticky is not supported. Supported assignors: uniform, range."));
        request.ServerAssignor = null;
        foreach (var bad in new[] { "t(", "(a)\\1", "(?=t)t", "(?>t)", "[z-a]", "(?x)t", "(?U)t*" })
        {
            request.SubscribedTopicRegex = bad;
            Assert.That(g.H.Coordinator.ConsumerGroupHeartbeat(request, 1, default, g.Resolve).ErrorCode,
                Is.EqualTo((short)ErrorCode.InvalidRegularExpression), bad);
        }
    }

    [Test]
    public void AStaticMemberComesBackToItsPartitionsWithoutARebalance()
    {
        using var g = new Group();
        g.Heartbeat("a", 0, instanceId: "i1");
        g.Heartbeat("b", 0, instanceId: "i2");
        var kept = Assigned(g.Heartbeat("a", 1, instanceId: "i1"));
        g.Heartbeat("a", 1, owned: kept, instanceId: "i1");
        var bParts = Assigned(g.Heartbeat("b", 2, instanceId: "i2"));
        int epoch = g.State.GroupEpoch;

        Assert.That(g.Heartbeat("b", -2, instanceId: "i2").MemberEpoch, Is.EqualTo(-2));
        Assert.That(g.Heartbeat("b2", 0, instanceId: "i1").ErrorCode, Is.EqualTo((short)ErrorCode.UnreleasedInstanceId), "i1 is active");
        var back = g.Heartbeat("b2", 0, instanceId: "i2");
        Assert.That(back.ErrorCode, Is.EqualTo(0));
        Assert.That(Assigned(back), Is.EqualTo(bParts));
        Assert.That(g.State.GroupEpoch, Is.EqualTo(epoch), "no rebalance");
        Assert.That(g.State.Members.Keys, Is.EquivalentTo(new[] { "a", "b2" }));
    }

    [Test]
    public void TransactionalCommitsCarryTheMemberEpoch()
    {
        // KIP-848 with KIP-447: TxnOffsetCommit sends the member epoch in its generation field; any version.
        using var g = new Group();
        g.Heartbeat("m1", 0);
        var groups = g.H.Coordinator;
        Assert.That(groups.ValidateTxnOffsetCommit(Harness.Group, "m1", 1, null), Is.EqualTo(ErrorCode.None));
        Assert.That(groups.ValidateTxnOffsetCommit(Harness.Group, "m1", 0, null), Is.EqualTo(ErrorCode.StaleMemberEpoch));
        Assert.That(groups.ValidateTxnOffsetCommit(Harness.Group, "m1", 2, null), Is.EqualTo(ErrorCode.StaleMemberEpoch));
        Assert.That(groups.ValidateTxnOffsetCommit(Harness.Group, "x", 1, null), Is.EqualTo(ErrorCode.UnknownMemberId));
        Assert.That(groups.ValidateTxnOffsetCommit(Harness.Group, "", -1, null), Is.EqualTo(ErrorCode.UnknownMemberId), "the group is not empty");
        g.Heartbeat("m1", -1);
        Assert.That(groups.ValidateTxnOffsetCommit(Harness.Group, "", -1, null), Is.EqualTo(ErrorCode.None), "empty again: anonymous commits pass");
    }

    [Test]
    public void CommitsCarryTheMemberEpoch()
    {
        using var g = new Group();
        g.Heartbeat("m1", 0);
        Assert.That(Harness.CommitError(g.H.Commit(Topic, 0, 10, "m1", 1, version: 9)), Is.EqualTo(0));
        Assert.That(Harness.CommitError(g.H.Commit(Topic, 0, 10, "m1", 0, version: 9)), Is.EqualTo((short)ErrorCode.StaleMemberEpoch));
        Assert.That(Harness.CommitError(g.H.Commit(Topic, 0, 10, "m1", 1, version: 8)), Is.EqualTo((short)ErrorCode.UnsupportedVersion));
        Assert.That(Harness.CommitError(g.H.Commit(Topic, 0, 10, "x", 1, version: 9)), Is.EqualTo((short)ErrorCode.UnknownMemberId));
        Assert.That(Harness.CommitError(g.H.Commit(Topic, 0, 10, "", -1, version: 9)), Is.EqualTo((short)ErrorCode.UnknownMemberId), "the group is not empty");
        Assert.That(g.H.Fetched(Topic, 0), Is.EqualTo(10));

        var fetch = new OffsetFetchRequest { Groups = [new OffsetFetchRequest.OffsetFetchRequestGroup { GroupId = Harness.Group, MemberId = "m1", MemberEpoch = 0, Topics = null }] };
        Assert.That(g.H.Coordinator.FetchOffsets(fetch, 9).Groups[0].ErrorCode, Is.EqualTo((short)ErrorCode.StaleMemberEpoch));
        fetch.Groups[0].MemberEpoch = 1;
        Assert.That(g.H.Coordinator.FetchOffsets(fetch, 9).Groups[0].ErrorCode, Is.EqualTo(0));
    }

    [Test]
    public void ClassicApisSeeAConsumerGroup()
    {
        using var g = new Group();
        g.Heartbeat("m1", 0);
        // KIP-848 online migration: a classic consumer joins the consumer group (after the KIP-394 handshake); another
        // protocol type is inconsistent with it (Kafka's supportsClassicProtocols).
        Assert.That(g.H.Join().Result.ErrorCode, Is.EqualTo((short)ErrorCode.MemberIdRequired));
        var connect = new JoinGroupRequest { GroupId = Harness.Group, SessionTimeoutMs = Harness.Session, RebalanceTimeoutMs = Harness.Rebalance, ProtocolType = "connect" };
        connect.Protocols.Add(new JoinGroupRequest.JoinGroupRequestProtocol { Name = "default", Metadata = [0, 1] });
        Assert.That(g.H.Coordinator.JoinGroupAsync(connect, 7, new ClientInfo("c", "/127.0.0.1")).Result.ErrorCode,
            Is.EqualTo((short)ErrorCode.InconsistentGroupProtocol));
        var listed = g.H.Coordinator.ListGroups(new ListGroupsRequest(), 5).Groups.Single();
        Assert.That((listed.GroupType, listed.GroupState, listed.ProtocolType), Is.EqualTo(("consumer", "Stable", "consumer")));
        Assert.That(g.H.Coordinator.DeleteGroups(new DeleteGroupsRequest { GroupsNames = [Harness.Group] }).Results[0].ErrorCode,
            Is.EqualTo((short)ErrorCode.NonEmptyGroup));
        var d = g.H.Coordinator.ConsumerGroupDescribe(new ConsumerGroupDescribeRequest { GroupIds = [Harness.Group] }).Groups.Single();
        Assert.That((d.GroupState, d.GroupEpoch, d.AssignmentEpoch, d.AssignorName), Is.EqualTo(("Stable", 1, 1, "uniform")));
        Assert.That(d.Members.Single().Assignment.TopicPartitions.Single().Partitions, Has.Count.EqualTo(6));

        g.Heartbeat("m1", -1);
        Assert.That(g.H.Coordinator.DeleteGroups(new DeleteGroupsRequest { GroupsNames = [Harness.Group] }).Results[0].ErrorCode, Is.EqualTo(0));
        Assert.That(g.H.Coordinator.ListGroups(new ListGroupsRequest(), 5).Groups, Is.Empty);
    }

    /// <summary>One write path: a coordinator loading the log has the state of the one that wrote it, mid-rebalance too.</summary>
    [Test]
    public void AReloadedCoordinatorHasTheSameConsumerGroup()
    {
        using var g = new Group();
        g.Heartbeat("m1", 0);
        g.Heartbeat("m2", 0, instanceId: "s");
        g.Heartbeat("m1", 1); // m1 now pending revocation of three partitions
        AssertReloadMatches(g);
        var kept = Assigned(g.Heartbeat("m1", 1));
        g.Heartbeat("m1", 1, owned: kept);
        g.Heartbeat("m2", 2, instanceId: "s");
        g.Heartbeat("m3", 0);
        AssertReloadMatches(g);
        g.Heartbeat("m2", -2, instanceId: "s");
        g.Heartbeat("m3", -1);
        AssertReloadMatches(g);
    }

    private static void AssertReloadMatches(Group g)
    {
        using var reloaded = new Group(g.H.Log, new ManualTimeProvider());
        Assert.That(Dump(reloaded.State), Is.EqualTo(Dump(g.State)));
    }

    private static string Dump(ConsumerGroupState cg)
    {
        static string Set(TopicPartitions p) => string.Join(",", p.All().Select(tp => tp.Partition).Order());
        var lines = new List<string> { $"epoch {cg.GroupEpoch} assignment {cg.AssignmentEpoch} topics {string.Join(",", cg.SubscriptionMetadata.Values)}" };
        foreach (var m in cg.Members.Values.OrderBy(m => m.MemberId, StringComparer.Ordinal))
            lines.Add($"{m.MemberId} {m.InstanceId} {m.MemberEpoch}/{m.PreviousMemberEpoch} {m.State} [{Set(m.Assigned)}] -[{Set(m.PendingRevocation)}] " +
                      $"target [{Set(cg.TargetOf(m.MemberId))}] {string.Join(",", m.SubscribedTopicNames)} {m.RebalanceTimeoutMs}");
        lines.Add("owners " + string.Join(",", cg.Owners.OrderBy(o => o.Key.Partition).Select(o => $"{o.Key.Partition}:{o.Value}")));
        return string.Join("\n", lines);
    }
}
