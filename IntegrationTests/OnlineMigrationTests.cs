using System.Collections.Concurrent;
using Confluent.Kafka;
using Kayak.IntegrationTests.Drivers;
using Kayak.IntegrationTests.Infrastructure;
using NUnit.Framework;

namespace Kayak.IntegrationTests;

/// <summary>
/// KIP-848 online migration with Confluent.Kafka 2.16 (group.consumer.migration.policy=bidirectional, Kafka 4.0's
/// default): a classic consumer owns a 6-partition topic, a consumer-protocol consumer joins the same group id, which
/// becomes a consumer group with the classic member inside it (it keeps JoinGroup/SyncGroup/Heartbeat); both receive
/// records and no partition is owned by both at any instant; when the consumer-protocol member leaves the group is a
/// classic group again and the classic member takes every partition back.
/// </summary>
[TestFixture]
public sealed class OnlineMigrationTests : BrokerTestBase
{
    private const int Partitions = 6;

    private static PolledConsumer Member(string name, string bootstrap, string topic, string group, GroupProtocol protocol,
        PartitionAssignmentStrategy? strategy = null, string? instanceId = null) =>
        new(name, bootstrap, topic, c =>
        {
            c.GroupId = group;
            c.GroupProtocol = protocol;
            if (strategy is { } s) c.PartitionAssignmentStrategy = s;
            if (instanceId is not null) c.GroupInstanceId = instanceId;
            if (protocol == GroupProtocol.Consumer)
            {
                c.SessionTimeoutMs = null;
                c.HeartbeatIntervalMs = null;
            }
        })
        {
            OnRecord = (consumer, r) =>
            {
                // A commit racing a rebalance may be refused (the next owner then re-reads from the last commit).
                try { consumer.Commit([new TopicPartitionOffset(r.TopicPartition, r.Offset + 1)]); }
                catch (KafkaException) { }
            },
        };

    /// <summary>
    /// Samples both members' ownership (kept by their assignment callbacks) as often as possible until cancelled,
    /// queueing every partition seen owned by both.
    /// </summary>
    private static Task SampleOverlaps(PolledConsumer first, Func<PolledConsumer?> second, ConcurrentQueue<string> overlaps, CancellationToken stop) =>
        Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                if (second() is { } m)
                {
                    var both = first.Partitions.Intersect(m.Partitions).ToArray();
                    if (both.Length > 0) overlaps.Enqueue($"[{string.Join(",", both)}] at {DateTime.UtcNow:O}");
                }
                try { await Task.Delay(5, stop); }
                catch (OperationCanceledException) { }
            }
        });

    [Test]
    [CancelAfter(240_000)]
    public Task AClassicAndAConsumerProtocolMemberShareAGroupThatGoesBackToClassicWhenTheLatterLeaves() =>
        JoinSplitAndLeaveAsync("online848", new("classic", GroupProtocol.Classic, null), new("modern", GroupProtocol.Consumer, null));

    /// <summary>
    /// The other direction: the group is a consumer group (a group.protocol=consumer member owns everything) and a
    /// classic member using the cooperative-sticky assignor joins it (Kafka's classicGroupJoinToConsumerGroup): the
    /// server-side assignor splits the partitions, the consumer-protocol member gives up its share before the classic
    /// one gets it, both read, and the classic member's LeaveGroup hands its partitions back; the group stays a
    /// consumer group throughout.
    /// </summary>
    [Test]
    [CancelAfter(240_000)]
    public Task ACooperativeStickyClassicMemberJoinsAConsumerProtocolGroupSharesItsPartitionsAndLeavesCleanly() =>
        JoinSplitAndLeaveAsync("coopin848", new("modern", GroupProtocol.Consumer, null),
            new("classic", GroupProtocol.Classic, PartitionAssignmentStrategy.CooperativeSticky));

    private readonly record struct MemberKind(string Name, GroupProtocol Protocol, PartitionAssignmentStrategy? Strategy);

    /// <summary>
    /// <paramref name="first"/> owns the topic alone (the group has its protocol's type), <paramref name="second"/>
    /// joins with the other protocol: the group is (or becomes, online) a consumer group with both inside, the partitions
    /// split 3/3 with none owned by both at any sampled instant, each reads its half of new records; then the second
    /// member closes (LeaveGroup or the leave heartbeat), the first owns everything again, the group is of the first's
    /// type again (downgraded when it was classic) and reads on.
    /// </summary>
    private async Task JoinSplitAndLeaveAsync(string name, MemberKind first, MemberKind second)
    {
        var settings = GroupAssert.FastGroups();
        settings.Properties["group.consumer.min.heartbeat.interval.ms"] = "100";
        settings.Properties["group.consumer.heartbeat.interval.ms"] = "500";
        var broker = await StartBrokerAsync(BrokerMode.InProcess, settings);
        var topic = TopicName(name);
        var group = "g-" + Guid.NewGuid().ToString("N")[..8];
        await broker.CreateTopicAsync(topic, Partitions, cancellationToken: Token);
        using var admin = ConfluentClients.Admin(broker.BootstrapServers);
        var alone = first.Protocol == GroupProtocol.Classic ? ConsumerGroupType.Classic : ConsumerGroupType.Consumer;

        async Task<(ConsumerGroupType Type, int Members)> DescribeAsync()
        {
            var d = (await admin.DescribeConsumerGroupsAsync([group])).ConsumerGroupDescriptions.Single();
            return (d.GroupType, d.Members.Count);
        }

        await GroupAssert.ProduceAsync(broker, topic, 30, Partitions, "a", Token);
        using var stays = Member(first.Name, broker.BootstrapServers, topic, group, first.Protocol, first.Strategy);
        await GroupAssert.WaitUntilAsync(() => stays.Partitions.Count == Partitions && stays.Consumed.Count >= 30,
            $"the {first.Name} member owns and read everything", TimeSpan.FromSeconds(60), Token, () => stays.ToString());
        Assert.That(await DescribeAsync(), Is.EqualTo((alone, 1)));

        // From here on, sample both members' ownership (kept by their assignment callbacks) as often as possible.
        var overlaps = new ConcurrentQueue<string>();
        using var sampling = CancellationTokenSource.CreateLinkedTokenSource(Token);
        PolledConsumer? joins = null;
        var sampler = SampleOverlaps(stays, () => joins, overlaps, sampling.Token);
        joins = Member(second.Name, broker.BootstrapServers, topic, group, second.Protocol, second.Strategy);
        try
        {
            await GroupAssert.SplitAsync([stays, joins], Partitions, $"{first.Name} + {second.Name}", TimeSpan.FromSeconds(90), Token);
            Assert.That(await DescribeAsync(), Is.EqualTo((ConsumerGroupType.Consumer, 2)), "a consumer group with the classic member inside");
            // A cooperative client is only handed partitions nobody owns; it never lost any on the way.
            if (second.Strategy == PartitionAssignmentStrategy.CooperativeSticky) Assert.That(joins.LostEvents, Is.Empty, joins.ToString());

            int staysBefore = stays.Consumed.Count, joinsBefore = joins.Consumed.Count;
            var produced = await GroupAssert.ProduceAsync(broker, topic, 60, Partitions, "b", Token);
            var keys = produced.Select(r => r.Key).ToHashSet();
            int Read(PolledConsumer c) => c.Consumed.Count(r => keys.Contains(ConfluentClients.FromUtf8(r.Message.Key)));
            await GroupAssert.WaitUntilAsync(() => Read(stays) + Read(joins) >= 60, "the split group read the new records",
                TimeSpan.FromSeconds(60), Token, () => $"{stays}\n{joins}");
            Assert.That((Read(stays), Read(joins)), Is.EqualTo((30, 30)), "each member read its three partitions' records, once");
            Assert.That(stays.Consumed.Count > staysBefore && joins.Consumed.Count > joinsBefore, Is.True);

            await joins.CloseAsync();
            await GroupAssert.WaitUntilAsync(() => stays.Partitions.Count == Partitions, $"the {first.Name} member owns everything again",
                TimeSpan.FromSeconds(60), Token, () => stays.ToString());
        }
        finally
        {
            sampling.Cancel();
            await sampler;
            joins.Dispose();
        }
        Assert.That(overlaps, Is.Empty, "a partition owned by both members");
        Assert.That(await DescribeAsync(), Is.EqualTo((alone, 1)), $"the {second.Name} member left: the group is of the {first.Name} member's type again");

        var last = await GroupAssert.ProduceAsync(broker, topic, 12, Partitions, "c", Token);
        var lastKeys = last.Select(r => r.Key).ToHashSet();
        await GroupAssert.WaitUntilAsync(() => stays.Consumed.Count(r => lastKeys.Contains(ConfluentClients.FromUtf8(r.Message.Key))) >= 12,
            "the group reads on", TimeSpan.FromSeconds(60), Token, () => stays.ToString());
        await stays.CloseAsync();
    }

    /// <summary>
    /// KIP-848 downgrade by static member replacement (Kafka's validateOnlineDowngradeWithReplacedMemberId): a static
    /// consumer-protocol member (group.instance.id) owns the topic and closes, which keeps its place for its instance id;
    /// the application comes back as a classic consumer under the same group.instance.id. Its JoinGroup replaces the
    /// last consumer-protocol member, so the group becomes a classic group in that write, the new member holding the old
    /// one's partitions, and it reads on.
    /// </summary>
    [Test]
    [CancelAfter(240_000)]
    public async Task AStaticConsumerProtocolMemberRestartedAsAClassicOneTurnsTheGroupClassic()
    {
        var settings = GroupAssert.FastGroups();
        settings.Properties["group.consumer.min.heartbeat.interval.ms"] = "100";
        settings.Properties["group.consumer.heartbeat.interval.ms"] = "500";
        var broker = await StartBrokerAsync(BrokerMode.InProcess, settings);
        var topic = TopicName("staticdown848");
        var group = "gs-" + Guid.NewGuid().ToString("N")[..8];
        await broker.CreateTopicAsync(topic, Partitions, cancellationToken: Token);
        using var admin = ConfluentClients.Admin(broker.BootstrapServers);

        async Task<(ConsumerGroupType Type, int Members)> DescribeAsync()
        {
            var d = (await admin.DescribeConsumerGroupsAsync([group])).ConsumerGroupDescriptions.Single();
            return (d.GroupType, d.Members.Count);
        }

        await GroupAssert.ProduceAsync(broker, topic, 30, Partitions, "a", Token);
        using (var modern = Member("modern", broker.BootstrapServers, topic, group, GroupProtocol.Consumer, instanceId: "app-1"))
        {
            await GroupAssert.WaitUntilAsync(() => modern.Partitions.Count == Partitions && modern.Consumed.Count >= 30,
                "the static consumer-protocol member owns and read everything", TimeSpan.FromSeconds(60), Token, () => modern.ToString());
            Assert.That(await DescribeAsync(), Is.EqualTo((ConsumerGroupType.Consumer, 1)));
            await modern.CloseAsync();
        }
        Assert.That(await DescribeAsync(), Is.EqualTo((ConsumerGroupType.Consumer, 1)), "a static member's close keeps its place");

        using var classic = Member("classic", broker.BootstrapServers, topic, group, GroupProtocol.Classic, instanceId: "app-1");
        await GroupAssert.WaitUntilAsync(() => classic.Partitions.Count == Partitions, "the classic member took the static member's partitions",
            TimeSpan.FromSeconds(60), Token, () => classic.ToString());
        Assert.That(await DescribeAsync(), Is.EqualTo((ConsumerGroupType.Classic, 1)), "downgraded by the replacement");

        var produced = await GroupAssert.ProduceAsync(broker, topic, 12, Partitions, "b", Token);
        var keys = produced.Select(r => r.Key).ToHashSet();
        await GroupAssert.WaitUntilAsync(() => classic.Consumed.Count(r => keys.Contains(ConfluentClients.FromUtf8(r.Message.Key))) >= 12,
            "the classic group reads on", TimeSpan.FromSeconds(60), Token, () => classic.ToString());
        await classic.CloseAsync();
    }
}
