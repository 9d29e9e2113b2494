using System.Diagnostics;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Kayak.Broker;
using Kayak.IntegrationTests.Drivers;
using Kayak.IntegrationTests.Infrastructure;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using NUnit.Framework;

namespace Kayak.IntegrationTests;

/// <summary>
/// KIP-848 group membership with Confluent.Kafka 2.16 consumers (group.protocol=consumer), beyond two members and a
/// clean leave: three members, partitions added to a subscribed topic, a member killed and fenced by
/// group.consumer.session.timeout.ms, a static member (group.instance.id) restarted without a rebalance, a new member
/// resuming an emptied group from its committed offsets, the group surviving a kill -9 of the broker, and the
/// "uniform" assignor named by the client.
/// Ownership is checked at every instant it changes: each member's assigned/revoked/lost callback updates one ledger
/// under a lock, and a partition in two members' sets at once is a violation. The ledger is causal: a member's revoke
/// callback returns before its client tells the coordinator it released the partition, and the coordinator hands the
/// partition to another member only after that.
/// </summary>
[TestFixture]
public sealed class ConsumerProtocolMembershipTests : BrokerTestBase
{
    private const int SessionTimeoutMs = 4000;
    private const int HeartbeatIntervalMs = 500;

    private static BrokerSettings Settings(int sessionTimeoutMs = SessionTimeoutMs, string? assignors = null)
    {
        var settings = GroupAssert.FastGroups();
        settings.Properties["group.consumer.min.heartbeat.interval.ms"] = "100";
        settings.Properties["group.consumer.heartbeat.interval.ms"] = HeartbeatIntervalMs.ToString();
        settings.Properties["group.consumer.min.session.timeout.ms"] = "1000";
        settings.Properties["group.consumer.session.timeout.ms"] = sessionTimeoutMs.ToString();
        if (assignors is not null) settings.Properties["group.consumer.assignors"] = assignors;
        return settings;
    }

    /// <summary>A consumer-protocol member that commits every record before its next poll (so a revocation, which runs
    /// inside poll, never hands over consumed but uncommitted records) and reports every assignment change to the ledger.</summary>
    private static PolledConsumer Member(string name, string bootstrap, string subscription, string group, OwnershipLedger? ledger,
        Action<ConsumerConfig>? configure = null) =>
        new(name, bootstrap, subscription, c =>
        {
            c.GroupId = group;
            c.GroupProtocol = GroupProtocol.Consumer;
            // librdkafka refuses the classic session/heartbeat settings with group.protocol=consumer: the broker decides.
            c.SessionTimeoutMs = null;
            c.HeartbeatIntervalMs = null;
            c.ClientId = ClientIdOf(group, name);
            configure?.Invoke(c);
        }, ledger is null ? null : ledger.Changed)
        {
            OnRecord = (consumer, r) => consumer.Commit([new TopicPartitionOffset(r.TopicPartition, r.Offset + 1)]),
        };

    private static string ClientIdOf(string group, string member) => $"{group}-{member}";

    private static ConsumerGroupDescribeResponse.DescribedGroup Describe(BrokerUnderTest broker, string group) =>
        GroupAssert.State(broker).Groups.ConsumerGroupDescribe(new() { GroupIds = [group] }).Groups.Single();

    private static string Show(ConsumerGroupDescribeResponse.DescribedGroup g) =>
        $"{g.GroupState} epoch {g.GroupEpoch}/{g.AssignmentEpoch} {g.AssignorName}: " + string.Join("; ", g.Members.Select(m =>
            $"{m.ClientId} inst={m.InstanceId} epoch={m.MemberEpoch} [{string.Join(",", m.Assignment.TopicPartitions.SelectMany(t => t.Partitions.Select(p => $"{t.TopicName}-{p}")))}]"));

    /// <summary>Each record produced is consumed exactly once: the (partition, offset) pairs of every member are 0..n-1 of each partition.</summary>
    private static void AssertConsumedExactlyOnce(IEnumerable<PolledConsumer> members, List<TestRecord> produced)
    {
        var consumed = members.SelectMany(m => m.Consumed).Select(r => (r.Partition.Value, r.Offset.Value)).ToList();
        Assert.That(consumed, Is.Unique, "a record consumed twice: a partition was read by two members");
        var expected = produced.GroupBy(r => r.Partition).SelectMany(g => Enumerable.Range(0, g.Count()).Select(o => (g.Key, (long)o)));
        Assert.That(consumed, Is.EquivalentTo(expected), "every record consumed, none skipped");
    }

    /// <summary>
    /// Three members split a 6-partition topic 2/2/2; the topic grows to 9 partitions and the coordinator, which sees
    /// the new partition count in the group's subscription metadata on the next heartbeat, bumps the group epoch and
    /// assigns all 9 (3/3/3); then one member is killed. Confluent.Kafka's Dispose without Close destroys the handle
    /// with RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE: no leave heartbeat (epoch -1), no commit, no callbacks — a crashed
    /// process. The test verifies that rather than assuming it: right after the dispose the coordinator still lists
    /// the member, the broker receives no ConsumerGroupHeartbeat from its client id afterwards, and the member is removed
    /// only once group.consumer.session.timeout.ms passed (Kafka's session timer, consumerGroupFenceMember), after which
    /// the two survivors own all 9 partitions. No partition is owned by two members at any instant, and every record is
    /// consumed exactly once thanks to the commits.
    /// </summary>
    [Test]
    [CancelAfter(240_000)]
    public async Task ThreeMembersSplitAGrowingTopicAndSurviveOneKilledBySessionTimeout()
    {
        var broker = await StartBrokerAsync(BrokerMode.InProcess, Settings());
        var topic = TopicName("members848");
        var group = "g848m-" + Guid.NewGuid().ToString("N")[..8];
        await broker.CreateTopicAsync(topic, 6, cancellationToken: Token);
        var produced = await GroupAssert.ProduceAsync(broker, topic, 300, 6, "a", Token);
        var ledger = new OwnershipLedger();

        using var a = Member("a", broker.BootstrapServers, topic, group, ledger);
        using var b = Member("b", broker.BootstrapServers, topic, group, ledger);
        using var c = Member("c", broker.BootstrapServers, topic, group, ledger);
        PolledConsumer[] all = [a, b, c];
        await GroupAssert.SplitAsync(all, 6, "three members", TimeSpan.FromSeconds(60), Token);
        Assert.That(all.Select(m => m.Partitions.Count), Is.All.EqualTo(2), "2/2/2");
        await GroupAssert.WaitUntilAsync(() => all.Sum(m => m.Consumed.Count) >= produced.Count, "the first records consumed",
            TimeSpan.FromSeconds(60), Token, () => string.Join("\n", all.Select(m => m.ToString())));

        using (var admin = ConfluentClients.Admin(broker.BootstrapServers))
            await admin.CreatePartitionsAsync([new PartitionsSpecification { Topic = topic, IncreaseTo = 9 }]);
        await GroupAssert.SplitAsync(all, 9, "the topic grew to 9 partitions", TimeSpan.FromSeconds(60), Token);
        Assert.That(all.Select(m => m.Partitions.Count), Is.All.EqualTo(3), "3/3/3");
        produced.AddRange(await GroupAssert.ProduceAsync(broker, topic, 180, 9, "b", Token));
        await GroupAssert.WaitUntilAsync(() => all.Sum(m => m.Consumed.Count) >= produced.Count, "records of all 9 partitions consumed",
            TimeSpan.FromSeconds(60), Token, () => string.Join("\n", all.Select(m => m.ToString())));

        // Watch what c's client sends once it is gone.
        var victim = ClientIdOf(group, "c");
        int heartbeatsAfterKill = 0;
        bool killed = false;
        ((InProcessBroker)broker).Instance!.Faults.OnRequest = r =>
        {
            if (Volatile.Read(ref killed) && r.ApiKey == ApiKey.ConsumerGroupHeartbeat && r.ClientId == victim)
                Interlocked.Increment(ref heartbeatsAfterKill);
            return RequestFault.None;
        };
        var cPartitions = c.Partitions.ToArray();
        var clock = Stopwatch.StartNew();
        await c.KillAsync();
        Volatile.Write(ref killed, true);
        ledger.Forget(c.Name); // c's process is gone: it reads nothing more
        var afterKill = Describe(broker, group);
        Assert.That(afterKill.Members.Select(m => m.ClientId), Does.Contain(victim),
            $"Dispose without Close sent no leave heartbeat: the coordinator still has the member. {Show(afterKill)}");

        await GroupAssert.WaitUntilAsync(() => Describe(broker, group).Members.All(m => m.ClientId != victim), "the killed member fenced",
            TimeSpan.FromSeconds(30), Token, () => Show(Describe(broker, group)));
        var removedAfter = clock.Elapsed;
        Assert.That(removedAfter, Is.GreaterThanOrEqualTo(TimeSpan.FromMilliseconds(SessionTimeoutMs - HeartbeatIntervalMs - 500)),
            "removed by the session timeout (its last heartbeat was at most one interval before the kill), not by a leave");
        Assert.That(Volatile.Read(ref heartbeatsAfterKill), Is.Zero, "the killed member sent nothing");

        await GroupAssert.SplitAsync([a, b], 9, "the survivors after the session timeout", TimeSpan.FromSeconds(60), Token);
        Assert.That(a.Partitions.Concat(b.Partitions), Is.SupersetOf(cPartitions), "the killed member's partitions were taken over");
        var cg = Describe(broker, group);
        Assert.That((cg.GroupState, cg.Members.Count), Is.EqualTo(("Stable", 2)), Show(cg));

        produced.AddRange(await GroupAssert.ProduceAsync(broker, topic, 90, 9, "c", Token));
        await GroupAssert.WaitUntilAsync(() => all.Sum(m => m.Consumed.Count) >= produced.Count, "records after the kill consumed",
            TimeSpan.FromSeconds(60), Token, () => string.Join("\n", all.Select(m => m.ToString())));
        Assert.That(ledger.Violations, Is.Empty, "a partition owned by two members at once");
        AssertConsumedExactlyOnce(all, produced);
        TestContext.Out.WriteLine($"killed member removed {removedAfter.TotalMilliseconds:F0} ms after the kill");
    }

    /// <summary>
    /// KIP-848 static membership: a member with group.instance.id that closes sends a leave heartbeat with member epoch
    /// -2 (librdkafka's static leave); Kafka's consumerGroupStaticMemberGroupLeave keeps the member and its assignment,
    /// only marking it left, so nobody else is given its partitions while its session timeout runs. A new consumer with
    /// the same instance id that joins in time replaces it (new member id) and gets exactly the same partitions back,
    /// without a group epoch bump — no rebalance. The other member never owns any of them in between.
    /// </summary>
    [Test]
    [CancelAfter(180_000)]
    public async Task AStaticMemberRestartedWithinTheSessionTimeoutGetsItsPartitionsBackWithoutARebalance()
    {
        var broker = await StartBrokerAsync(BrokerMode.InProcess, Settings(sessionTimeoutMs: 15_000));
        var topic = TopicName("static848");
        var group = "g848s-" + Guid.NewGuid().ToString("N")[..8];
        await broker.CreateTopicAsync(topic, 6, cancellationToken: Token);
        var produced = await GroupAssert.ProduceAsync(broker, topic, 120, 6, "a", Token);
        var ledger = new OwnershipLedger();
        Action<ConsumerConfig> Instance(string id) => c => c.GroupInstanceId = id;

        using var a = Member("a", broker.BootstrapServers, topic, group, ledger, Instance("instance-a"));
        using var b = Member("b", broker.BootstrapServers, topic, group, ledger, Instance("instance-b"));
        await GroupAssert.SplitAsync([a, b], 6, "two static members", TimeSpan.FromSeconds(60), Token);
        await GroupAssert.WaitUntilAsync(() => a.Consumed.Count + b.Consumed.Count >= produced.Count, "the first records consumed",
            TimeSpan.FromSeconds(60), Token, () => $"{a}\n{b}");
        var before = Describe(broker, group);
        var aPartitions = a.Partitions.Order().ToArray();
        var bPartitions = b.Partitions.Order().ToArray();
        int bAssignedBefore = b.AssignedEvents.Count;
        int bRevokedBefore = b.RevokedEvents.Count; // a and b join at once: whichever came first gave up half
        string oldMemberId = before.Members.Single(m => m.InstanceId == "instance-a").MemberId;

        await a.CloseAsync();
        ledger.Forget(a.Name);
        await GroupAssert.WaitUntilAsync(() => Describe(broker, group).Members.Any(m => m.InstanceId == "instance-a" && m.MemberEpoch == -2),
            "the static leave (member epoch -2)", TimeSpan.FromSeconds(10), Token, () => Show(Describe(broker, group)));
        var left = Describe(broker, group);
        Assert.That(left.Members.Single(m => m.InstanceId == "instance-a").Assignment.TopicPartitions.SelectMany(t => t.Partitions).Order(),
            Is.EqualTo(aPartitions), $"a static member that left keeps its assignment. {Show(left)}");
        Assert.That(left.GroupEpoch, Is.EqualTo(before.GroupEpoch), "a static leave does not rebalance");

        produced.AddRange(await GroupAssert.ProduceAsync(broker, topic, 60, 6, "b", Token));
        using var a2 = Member("a2", broker.BootstrapServers, topic, group, ledger, Instance("instance-a"));
        await GroupAssert.WaitUntilAsync(() => a2.Partitions.Order().SequenceEqual(aPartitions), "the restarted member gets its partitions back",
            TimeSpan.FromSeconds(30), Token, () => $"{a2}\n{b}\n{Show(Describe(broker, group))}");
        await GroupAssert.WaitUntilAsync(() => a.Consumed.Count + b.Consumed.Count + a2.Consumed.Count >= produced.Count,
            "records after the restart consumed", TimeSpan.FromSeconds(60), Token, () => $"{a2}\n{b}");

        var after = Describe(broker, group);
        var rejoined = after.Members.Single(m => m.InstanceId == "instance-a");
        Assert.That(rejoined.MemberId, Is.Not.EqualTo(oldMemberId), "the new consumer replaced the old member id");
        Assert.That((after.GroupEpoch, after.Members.Count), Is.EqualTo((before.GroupEpoch, 2)), $"no rebalance. {Show(after)}");
        Assert.That(a2.AssignedEvents.SelectMany(e => e).Order(), Is.EqualTo(aPartitions), "a2 was given only a's partitions, once");
        Assert.That(a2.RevokedEvents, Is.Empty);
        Assert.That(b.AssignedEvents.Skip(bAssignedBefore).SelectMany(e => e), Is.Empty, "b was given nothing while a was away");
        Assert.That((b.RevokedEvents.Count - bRevokedBefore, b.Partitions.Order()), Is.EqualTo((0, bPartitions)), "b kept its partitions");
        Assert.That(ledger.Violations, Is.Empty, "a partition owned by two members at once");
        AssertConsumedExactlyOnce([a, b, a2], produced);
    }

    /// <summary>
    /// Committed offsets outlive the members (Kafka keeps an empty group's offsets for offsets.retention.minutes): a
    /// member commits what it consumed and closes, the group becomes Empty with its offsets, and a new member of the
    /// same group starts from them — the new records only, none read twice, none skipped. ConsumerProtocolGroupTests
    /// only resumes within a live group (takeover), the migration test across protocols.
    /// </summary>
    [Test]
    [CancelAfter(180_000)]
    public async Task ANewMemberOfAnEmptiedGroupResumesFromTheCommittedOffsets()
    {
        var broker = await StartBrokerAsync(BrokerMode.InProcess, Settings());
        var topic = TopicName("resume848");
        var group = "g848r-" + Guid.NewGuid().ToString("N")[..8];
        await broker.CreateTopicAsync(topic, 6, cancellationToken: Token);
        var first = await GroupAssert.ProduceAsync(broker, topic, 60, 6, "a", Token);

        using var one = Member("one", broker.BootstrapServers, topic, group, null);
        await GroupAssert.WaitUntilAsync(() => one.Consumed.Count >= first.Count, "the first member consumed",
            TimeSpan.FromSeconds(60), Token, () => one.ToString());
        await one.CloseAsync();
        var empty = Describe(broker, group);
        Assert.That((empty.ErrorCode, empty.GroupState, empty.Members.Count), Is.EqualTo(((short)0, "Empty", 0)), Show(empty));
        using (var admin = ConfluentClients.Admin(broker.BootstrapServers))
        {
            var partitions = Enumerable.Range(0, 6).Select(p => new TopicPartition(topic, p)).ToList();
            var committed = (await admin.ListConsumerGroupOffsetsAsync([new ConsumerGroupTopicPartitions(group, partitions)])).Single();
            Assert.That(committed.Partitions.Select(p => p.Offset.Value), Is.All.EqualTo(10), "the empty group kept its commits");
        }

        var second = await GroupAssert.ProduceAsync(broker, topic, 60, 6, "b", Token);
        using var two = Member("two", broker.BootstrapServers, topic, group, null);
        await GroupAssert.WaitUntilAsync(() => two.Consumed.Count >= second.Count, "the new member consumed",
            TimeSpan.FromSeconds(60), Token, () => two.ToString());
        // Anything it read from before the commits would have come first (per partition, in offset order).
        Assert.That(two.Consumed.Select(r => ConfluentClients.FromUtf8(r.Message.Key)).Order(), Is.EqualTo(second.Select(r => r.Key).Order()),
            "only the records after the committed offsets");
        Assert.That(two.Consumed.Select(r => r.Offset.Value), Is.All.InRange(10L, 19L));
        AssertConsumedExactlyOnce([one, two], [.. first, .. second]);
    }

    /// <summary>
    /// KIP-848 group state is in __consumer_offsets in Kafka's records (ConsumerGroupMetadata, members, target and
    /// current assignments) and survives a kill -9 of the broker process: the coordinator replays them at start, so
    /// the member, still heartbeating with its epoch after the restart, keeps its partitions — no fencing
    /// (FENCED_MEMBER_EPOCH / UNKNOWN_MEMBER_ID would make librdkafka report them lost and rejoin at epoch 0), no
    /// revocation — and resumes from its commits. The session timeout (30 s) outlasts the restart, as it would a
    /// broker bounce in Kafka.
    /// </summary>
    [Test]
    [CancelAfter(180_000)]
    public async Task TheGroupSurvivesAKill9OfTheBroker_TheMemberKeepsItsPartitionsAndResumes()
    {
        var broker = await StartBrokerAsync(BrokerMode.Process, Settings(sessionTimeoutMs: 30_000));
        var topic = TopicName("kill848");
        var group = "g848k-" + Guid.NewGuid().ToString("N")[..8];
        await broker.CreateTopicAsync(topic, 6, cancellationToken: Token);
        var first = await GroupAssert.ProduceAsync(broker, topic, 60, 6, "a", Token);
        using var a = Member("a", broker.BootstrapServers, topic, group, null);
        await GroupAssert.WaitUntilAsync(() => a.Consumed.Count >= first.Count && a.Partitions.Count == 6, "the member consumed the first records",
            TimeSpan.FromSeconds(60), Token, () => a.ToString());
        int revoked = a.RevokedEvents.Count, assigned = a.AssignedEvents.Count;
        int membersBefore;
        using (var admin = ConfluentClients.Admin(broker.BootstrapServers))
            membersBefore = (await admin.DescribeConsumerGroupsAsync([group])).ConsumerGroupDescriptions.Single().Members.Count;

        await broker.KillAsync();
        await broker.StartAgainAsync(Token);

        var second = await GroupAssert.ProduceAsync(broker, topic, 60, 6, "b", Token);
        await GroupAssert.WaitUntilAsync(() => a.Consumed.Count >= first.Count + second.Count, "the member consumed after the restart",
            TimeSpan.FromSeconds(90), Token, () => a.ToString());
        Assert.That(a.LostEvents, Is.Empty, "never fenced: its member epoch was replayed");
        Assert.That((a.RevokedEvents.Count, a.AssignedEvents.Count), Is.EqualTo((revoked, assigned)), "no reassignment across the restart");
        AssertConsumedExactlyOnce([a], [.. first, .. second]);
        using (var admin = ConfluentClients.Admin(broker.BootstrapServers))
        {
            var g = (await admin.DescribeConsumerGroupsAsync([group])).ConsumerGroupDescriptions.Single();
            Assert.That((g.Error.Code, g.GroupType, g.State, g.Members.Count, membersBefore), Is.EqualTo((Confluent.Kafka.ErrorCode.NoError, ConsumerGroupType.Consumer, ConsumerGroupState.Stable, 1, 1)));
            Assert.That(g.Members.Single().Assignment.TopicPartitions, Has.Count.EqualTo(6));
            var committed = (await admin.ListConsumerGroupOffsetsAsync([new ConsumerGroupTopicPartitions(group,
                Enumerable.Range(0, 6).Select(p => new TopicPartition(topic, p)).ToList())])).Single();
            Assert.That(committed.Partitions.Select(p => p.Offset.Value), Is.All.EqualTo(20), "every commit kept");
        }
        await a.CloseAsync();
    }

    /// <summary>
    /// group.remote.assignor=uniform names the server-side assignor in ConsumerGroupHeartbeat (ServerAssignor), which
    /// the coordinator uses although its own default is "range" (group.consumer.assignors=range,uniform, first one
    /// is the default). Two topics of 3 partitions tell them apart: range splits each topic on its own, giving the
    /// first member 2 of each (4/2); uniform balances the 6 partitions 3/3.
    /// </summary>
    [Test]
    [CancelAfter(180_000)]
    public async Task TheUniformAssignorNamedByTheClientBalancesSixPartitionsThreeAndThree()
    {
        var broker = await StartBrokerAsync(BrokerMode.InProcess, Settings(assignors: "range,uniform"));
        string prefix = "uni" + Guid.NewGuid().ToString("N")[..6];
        var group = "g848u-" + Guid.NewGuid().ToString("N")[..8];
        await broker.CreateTopicAsync(prefix + "-x", 3, cancellationToken: Token);
        await broker.CreateTopicAsync(prefix + "-y", 3, cancellationToken: Token);
        Action<ConsumerConfig> uniform = c => c.GroupRemoteAssignor = "uniform";

        using var a = Member("a", broker.BootstrapServers, "^" + prefix + "-.*", group, null, uniform);
        using var b = Member("b", broker.BootstrapServers, "^" + prefix + "-.*", group, null, uniform);
        static int Owned(ConsumerGroupDescribeResponse.Member m) => m.Assignment.TopicPartitions.Sum(t => t.Partitions.Count);
        await GroupAssert.WaitUntilAsync(() =>
            {
                var g = Describe(broker, group);
                return g.GroupState == "Stable" && g.Members.Count == 2 && g.Members.Sum(Owned) == 6 && g.Members.All(m => m.MemberEpoch == g.GroupEpoch);
            }, "two members reconciled to all 6 partitions", TimeSpan.FromSeconds(60), Token, () => $"{Show(Describe(broker, group))}\n{a}\n{b}");

        var cg = Describe(broker, group);
        Assert.That(cg.AssignorName, Is.EqualTo("uniform"), Show(cg));
        Assert.That(cg.Members.Select(Owned), Is.EqualTo(new[] { 3, 3 }), $"uniform balances across topics: {Show(cg)}");
        // The clients agree (their assignments by topic; PolledConsumer.Partitions is partition numbers of one topic).
        var clientSide = new List<TopicPartition>();
        foreach (var m in new[] { a, b })
        {
            var assigned = await m.RunAsync(c => c.Assignment.ToList());
            Assert.That(assigned, Has.Count.EqualTo(3), $"{m.Name}'s client owns 3: {string.Join(",", assigned)}");
            clientSide.AddRange(assigned);
        }
        Assert.That(clientSide, Is.Unique.And.Count.EqualTo(6));
    }

    /// <summary>
    /// Who owns which partition at every instant, updated from inside the members' assignment callbacks (on their poll
    /// threads) under one lock; a partition found in two members' sets when one of them changes is a violation.
    /// </summary>
    private sealed class OwnershipLedger
    {
        private readonly Lock gate = new();
        private readonly Dictionary<string, int[]> owned = new();
        private readonly List<string> violations = [];

        public void Changed(PolledConsumer member)
        {
            lock (gate)
            {
                var now = member.Partitions.ToArray();
                owned[member.Name] = now;
                foreach (var (other, theirs) in owned)
                    if (other != member.Name)
                        foreach (var p in theirs.Intersect(now))
                            violations.Add($"partition {p} owned by {member.Name} and {other} at once");
            }
        }

        /// <summary>The member stopped consuming for good (closed or killed): it owns nothing any more.</summary>
        public void Forget(string name)
        {
            lock (gate)
                owned.Remove(name);
        }

        public IReadOnlyList<string> Violations
        {
            get
            {
                lock (gate)
                    return [.. violations];
            }
        }
    }
}
