using System.Text.Json.Nodes;
using Confluent.Kafka;
using Kayak.IntegrationTests.Infrastructure;
using NUnit.Framework;

namespace Kayak.IntegrationTests;

/// <summary>
/// Consumer groups with real clients: members split a 6-partition topic and re-split when one joins, leaves cleanly or
/// dies (session timeout); static members restart without a rebalance; cooperative-sticky rebalances incrementally.
/// </summary>
[TestFixture]
public sealed class GroupsRebalanceTests : BrokerTestBase
{
    private const int Partitions = 6;

    private static JsonObject MemberRequest(BrokerUnderTest broker, string topic, string group) => new()
    {
        ["bootstrap"] = broker.BootstrapServers,
        ["topic"] = topic,
        ["group"] = group,
        ["session_timeout_ms"] = 3000,
        ["heartbeat_interval_ms"] = 300,
    };

    /// <summary>
    /// Confluent.Kafka and kafka-python in one group (both offer the "range" assignor): alone, joined, a second
    /// kafka-python member joins and leaves with LeaveGroup, then one is killed and the session timeout removes it.
    /// </summary>
    [Test]
    [CancelAfter(90_000)]
    public async Task MixedClientsSplitAndResplitOnJoinLeaveAndKill()
    {
        var broker = await StartBrokerAsync(BrokerMode.InProcess, GroupAssert.FastGroups());
        var topic = TopicName("grp");
        var group = "g-" + Guid.NewGuid().ToString("N")[..8];
        await broker.CreateTopicAsync(topic, Partitions, cancellationToken: Token);

        using var a = new PolledConsumer("confluent-a", broker.BootstrapServers, topic, c =>
        {
            c.GroupId = group;
            c.SessionTimeoutMs = 3000;
            c.HeartbeatIntervalMs = 300;
            c.PartitionAssignmentStrategy = PartitionAssignmentStrategy.Range;
        });
        await GroupAssert.SplitAsync([a], Partitions, "one Confluent member", cancellationToken: Token);

        await using var b = ScriptGroupMember.Start("kafka-python", "python-b", MemberRequest(broker, topic, group));
        await GroupAssert.SplitAsync([a, b], Partitions, "kafka-python joined", cancellationToken: Token);

        await using var c = ScriptGroupMember.Start("kafka-python", "python-c", MemberRequest(broker, topic, group));
        await GroupAssert.SplitAsync([a, b, c], Partitions, "second kafka-python joined", cancellationToken: Token);
        Assert.That(GroupAssert.State(broker).Groups.Describe(group)!.MemberIds, Has.Count.EqualTo(3), "members the coordinator sees");

        await c.CloseAsync();
        await GroupAssert.SplitAsync([a, b], Partitions, "python-c left cleanly", cancellationToken: Token);

        await b.KillAsync();
        // kafka-python-b's session timeout is 3 s: the coordinator expires it and rebalances onto the survivor.
        await GroupAssert.SplitAsync([a], Partitions, "python-b killed (session timeout)", TimeSpan.FromSeconds(20), Token);
        var snapshot = GroupAssert.State(broker).Groups.Describe(group)!;
        Assert.That(snapshot.MemberIds, Has.Count.EqualTo(1), "only the Confluent member remains");
        Assert.That(snapshot.State, Is.EqualTo(Kayak.Coordinator.GroupState.Stable));
        await a.CloseAsync();
    }

    /// <summary>kafkajs members (their RoundRobinAssigner protocol is kafkajs-only) split, re-split on leave and on kill.</summary>
    [Test]
    [CancelAfter(90_000)]
    public async Task KafkaJsMembersSplitAndResplitOnLeaveAndKill()
    {
        var broker = await StartBrokerAsync(BrokerMode.InProcess, GroupAssert.FastGroups());
        var topic = TopicName("grpjs");
        var group = "gjs-" + Guid.NewGuid().ToString("N")[..8];
        await broker.CreateTopicAsync(topic, Partitions, cancellationToken: Token);

        await using var a = ScriptGroupMember.Start("kafkajs", "js-a", MemberRequest(broker, topic, group));
        await GroupAssert.SplitAsync([a], Partitions, "one kafkajs member", cancellationToken: Token);
        await using var b = ScriptGroupMember.Start("kafkajs", "js-b", MemberRequest(broker, topic, group));
        await GroupAssert.SplitAsync([a, b], Partitions, "second kafkajs member", cancellationToken: Token);
        await using var c = ScriptGroupMember.Start("kafkajs", "js-c", MemberRequest(broker, topic, group));
        await GroupAssert.SplitAsync([a, b, c], Partitions, "third kafkajs member", cancellationToken: Token);

        await c.CloseAsync();
        await GroupAssert.SplitAsync([a, b], Partitions, "js-c disconnected", cancellationToken: Token);
        await b.KillAsync();
        await GroupAssert.SplitAsync([a], Partitions, "js-b killed (session timeout)", TimeSpan.FromSeconds(20), Token);
        await a.CloseAsync();
    }

    /// <summary>
    /// KIP-345: a static member (group.instance.id) that restarts within its session timeout gets its old assignment
    /// back with no rebalance: the other member sees no new assignment and the generation does not move.
    /// </summary>
    [Test]
    [CancelAfter(90_000)]
    public async Task StaticMemberRestartsWithoutRebalance()
    {
        var broker = await StartBrokerAsync(BrokerMode.InProcess, GroupAssert.FastGroups());
        var topic = TopicName("static");
        var group = "gs-" + Guid.NewGuid().ToString("N")[..8];
        await broker.CreateTopicAsync(topic, Partitions, cancellationToken: Token);

        void Static(ConsumerConfig c, string instance)
        {
            c.GroupId = group;
            c.GroupInstanceId = instance;
            c.SessionTimeoutMs = 10_000;
            c.PartitionAssignmentStrategy = PartitionAssignmentStrategy.Range;
        }
        using var a = new PolledConsumer("static-a", broker.BootstrapServers, topic, c => Static(c, "instance-a"));
        var b = new PolledConsumer("static-b", broker.BootstrapServers, topic, c => Static(c, "instance-b"));
        try
        {
            await GroupAssert.SplitAsync([a, b], Partitions, "two static members", cancellationToken: Token);
            // Let any join that was still settling finish, then take the baseline.
            await Task.Delay(500, Token);
            await GroupAssert.SplitAsync([a, b], Partitions, "two static members (settled)", cancellationToken: Token);
            var coordinator = GroupAssert.State(broker).Groups;
            var before = coordinator.Describe(group)!;
            var aCallbacks = a.AssignedCallbacks;
            var aPartitions = a.Partitions.ToArray();
            var bPartitions = b.Partitions.ToArray();

            // A static member's Close does not send LeaveGroup (KIP-345), so the group keeps its slot.
            await b.CloseAsync();
            b.Dispose();
            b = new PolledConsumer("static-b2", broker.BootstrapServers, topic, c => Static(c, "instance-b"));
            await GroupAssert.WaitUntilAsync(() => b.Partitions.Count > 0, "restarted static member's assignment", TimeSpan.FromSeconds(20), Token, () => b.ToString());

            Assert.That(b.Partitions, Is.EquivalentTo(bPartitions), "restarted static member gets its old partitions");
            var after = coordinator.Describe(group)!;
            Assert.That(after.GenerationId, Is.EqualTo(before.GenerationId), "generation unchanged: no rebalance");
            Assert.That(after.State, Is.EqualTo(Kayak.Coordinator.GroupState.Stable));
            Assert.That(after.MemberIds, Has.Count.EqualTo(2));
            Assert.That(a.AssignedCallbacks, Is.EqualTo(aCallbacks), "the other member was not rebalanced");
            Assert.That(a.Partitions, Is.EquivalentTo(aPartitions));
        }
        finally
        {
            b.Dispose();
        }
    }

    /// <summary>
    /// KIP-429: with cooperative-sticky a joining member only takes partitions the existing member gives up; the
    /// existing member never has everything revoked and keeps the rest throughout.
    /// </summary>
    [Test]
    [CancelAfter(90_000)]
    public async Task CooperativeStickyRebalancesIncrementally()
    {
        var broker = await StartBrokerAsync(BrokerMode.InProcess, GroupAssert.FastGroups());
        var topic = TopicName("coop");
        var group = "gc-" + Guid.NewGuid().ToString("N")[..8];
        await broker.CreateTopicAsync(topic, Partitions, cancellationToken: Token);

        void Coop(ConsumerConfig c)
        {
            c.GroupId = group;
            c.PartitionAssignmentStrategy = PartitionAssignmentStrategy.CooperativeSticky;
        }
        using var a = new PolledConsumer("coop-a", broker.BootstrapServers, topic, Coop);
        await GroupAssert.SplitAsync([a], Partitions, "one cooperative member", cancellationToken: Token);
        var revokedBefore = a.RevokedEvents.Count;

        using var b = new PolledConsumer("coop-b", broker.BootstrapServers, topic, Coop);
        await GroupAssert.SplitAsync([a, b], Partitions, "second cooperative member", cancellationToken: Token);

        var revoked = a.RevokedEvents.Skip(revokedBefore).SelectMany(x => x).ToList();
        Assert.That(revoked, Has.Count.EqualTo(3), $"only the partitions handed over are revoked ({a})");
        Assert.That(revoked.Intersect(a.Partitions), Is.Empty, "a keeps every partition it was not asked to give up");
        Assert.That(revoked, Is.EquivalentTo(b.Partitions), "b gets exactly what a gave up");
        Assert.That(a.LostEvents, Is.Empty, "no partitions lost");

        // Leaving works the same way: b's partitions move back to a without a's being revoked.
        var aRevoked = a.RevokedEvents.Count;
        await b.CloseAsync();
        await GroupAssert.SplitAsync([a], Partitions, "b left", cancellationToken: Token);
        Assert.That(a.RevokedEvents.Count, Is.EqualTo(aRevoked), "a gives nothing up when b leaves");
        Assert.That(GroupAssert.State(broker).Groups.Describe(group)!.ProtocolName, Is.EqualTo("cooperative-sticky"));
    }
}
