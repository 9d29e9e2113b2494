using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Kayak.IntegrationTests.Drivers;
using Kayak.IntegrationTests.Infrastructure;
using NUnit.Framework;

namespace Kayak.IntegrationTests;

/// <summary>
/// Classic and KIP-848 consumer groups side by side with Confluent.Kafka 2.16: the AdminClient lists them by type
/// (ListGroups v5 types filter), describes each (librdkafka sends ConsumerGroupDescribe, and DescribeGroups for the
/// classic group it answers GROUP_ID_NOT_FOUND for), reads their committed offsets so lag can be computed against the
/// high watermark; and one group id moves from classic consumers to consumer-protocol consumers and back with its
/// committed offsets (an empty group changes type, as Kafka 4.0 does).
/// </summary>
[TestFixture]
public sealed class ConsumerProtocolAdminAndMigrationTests : BrokerTestBase
{
    private const int Partitions = 3;

    private static BrokerSettings Settings()
    {
        var settings = GroupAssert.FastGroups();
        settings.Properties["group.consumer.min.heartbeat.interval.ms"] = "100";
        settings.Properties["group.consumer.heartbeat.interval.ms"] = "500";
        return settings;
    }

    private static PolledConsumer Member(string name, string bootstrap, string topic, string group, GroupProtocol protocol) =>
        new(name, bootstrap, topic, c =>
        {
            c.GroupId = group;
            c.GroupProtocol = protocol;
            if (protocol == GroupProtocol.Consumer)
            {
                c.SessionTimeoutMs = null;
                c.HeartbeatIntervalMs = null;
            }
        })
        {
            OnRecord = (consumer, r) => consumer.Commit([new TopicPartitionOffset(r.TopicPartition, r.Offset + 1)]),
        };

    [Test]
    [CancelAfter(240_000)]
    public async Task TheAdminClientListsDescribesAndMeasuresLagOfBothGroupTypes()
    {
        var broker = await StartBrokerAsync(BrokerMode.InProcess, Settings());
        var topic = TopicName("admin848");
        string suffix = Guid.NewGuid().ToString("N")[..8];
        string consumerGroup = "gc-" + suffix, classicGroup = "gk-" + suffix;
        await broker.CreateTopicAsync(topic, Partitions, cancellationToken: Token);
        await GroupAssert.ProduceAsync(broker, topic, 30, Partitions, "a", Token);

        using var modern = Member("modern", broker.BootstrapServers, topic, consumerGroup, GroupProtocol.Consumer);
        using var classic = Member("classic", broker.BootstrapServers, topic, classicGroup, GroupProtocol.Classic);
        await GroupAssert.WaitUntilAsync(() => modern.Consumed.Count >= 30 && classic.Consumed.Count >= 30, "both groups consumed all",
            TimeSpan.FromSeconds(90), Token, () => $"{modern}\n{classic}");

        using var admin = ConfluentClients.Admin(broker.BootstrapServers);
        var consumerOnly = await admin.ListConsumerGroupsAsync(new ListConsumerGroupsOptions { MatchTypes = [ConsumerGroupType.Consumer] });
        var classicOnly = await admin.ListConsumerGroupsAsync(new ListConsumerGroupsOptions { MatchTypes = [ConsumerGroupType.Classic] });
        Assert.That(consumerOnly.Valid.Select(g => g.GroupId), Does.Contain(consumerGroup).And.Not.Contain(classicGroup));
        Assert.That(classicOnly.Valid.Select(g => g.GroupId), Does.Contain(classicGroup).And.Not.Contain(consumerGroup));
        Assert.That(consumerOnly.Valid.Single(g => g.GroupId == consumerGroup).Type, Is.EqualTo(ConsumerGroupType.Consumer));
        Assert.That(classicOnly.Valid.Single(g => g.GroupId == classicGroup).Type, Is.EqualTo(ConsumerGroupType.Classic));

        var described = await admin.DescribeConsumerGroupsAsync([consumerGroup, classicGroup]);
        var c = described.ConsumerGroupDescriptions.Single(g => g.GroupId == consumerGroup);
        var k = described.ConsumerGroupDescriptions.Single(g => g.GroupId == classicGroup);
        Assert.That((c.Error.Code, c.GroupType, c.State, c.PartitionAssignor), Is.EqualTo((ErrorCode.NoError, ConsumerGroupType.Consumer, ConsumerGroupState.Stable, "uniform")));
        Assert.That(c.Members.Single().Assignment.TopicPartitions, Has.Count.EqualTo(Partitions));
        Assert.That(c.Members.Single().Assignment.TopicPartitions.Select(tp => tp.Topic).Distinct(), Is.EqualTo(new[] { topic }));
        Assert.That((k.Error.Code, k.GroupType, k.State), Is.EqualTo((ErrorCode.NoError, ConsumerGroupType.Classic, ConsumerGroupState.Stable)));
        Assert.That(k.Members.Single().Assignment.TopicPartitions, Has.Count.EqualTo(Partitions));

        // Lag: close both, produce more, committed offsets against the high watermark.
        await modern.CloseAsync();
        await classic.CloseAsync();
        await GroupAssert.ProduceAsync(broker, topic, 9, Partitions, "b", Token);
        var partitions = Enumerable.Range(0, Partitions).Select(p => new TopicPartition(topic, p)).ToList();
        var latest = await admin.ListOffsetsAsync(partitions.Select(tp => new TopicPartitionOffsetSpec { TopicPartition = tp, OffsetSpec = OffsetSpec.Latest() }));
        var highWatermarks = latest.ResultInfos.ToDictionary(r => r.TopicPartitionOffsetError.Partition.Value, r => r.TopicPartitionOffsetError.Offset.Value);
        foreach (var group in new[] { consumerGroup, classicGroup })
        {
            var committed = await admin.ListConsumerGroupOffsetsAsync([new ConsumerGroupTopicPartitions(group, partitions)]);
            var lag = committed.Single().Partitions.ToDictionary(p => p.Partition.Value, p => highWatermarks[p.Partition.Value] - p.Offset.Value);
            Assert.That(lag.Values, Is.All.EqualTo(3), $"{group}: 10 of 13 records consumed and committed per partition");
        }
    }

    [Test]
    [CancelAfter(240_000)]
    public async Task OneGroupIdGoesFromClassicToConsumerProtocolAndBackKeepingItsOffsets()
    {
        var broker = await StartBrokerAsync(BrokerMode.InProcess, Settings());
        var topic = TopicName("mig848");
        var group = "gm-" + Guid.NewGuid().ToString("N")[..8];
        await broker.CreateTopicAsync(topic, Partitions, cancellationToken: Token);
        using var admin = ConfluentClients.Admin(broker.BootstrapServers);

        async Task<ConsumerGroupType> TypeAsync() =>
            (await admin.ListConsumerGroupsAsync()).Valid.Single(g => g.GroupId == group).Type;

        async Task RunPhaseAsync(string name, GroupProtocol protocol, string prefix, int count)
        {
            var produced = await GroupAssert.ProduceAsync(broker, topic, count, Partitions, prefix, Token);
            using var consumer = Member(name, broker.BootstrapServers, topic, group, protocol);
            await GroupAssert.WaitUntilAsync(() => consumer.Consumed.Count >= count, $"{name} consumed its records",
                TimeSpan.FromSeconds(90), Token, () => consumer.ToString());
            Assert.That(await TypeAsync(), Is.EqualTo(protocol == GroupProtocol.Consumer ? ConsumerGroupType.Consumer : ConsumerGroupType.Classic));
            await consumer.CloseAsync();
            // Only this phase's records: the committed offsets of the previous phase carried over.
            Assert.That(consumer.Consumed.Select(r => ConfluentClients.FromUtf8(r.Message.Key)).Order(),
                Is.EqualTo(produced.Select(r => r.Key).Order()), name);
        }

        await RunPhaseAsync("classic-1", GroupProtocol.Classic, "p1", 30);
        await RunPhaseAsync("consumer", GroupProtocol.Consumer, "p2", 12);
        Assert.That(await TypeAsync(), Is.EqualTo(ConsumerGroupType.Consumer), "an empty consumer group stays one until a classic member joins");
        await RunPhaseAsync("classic-2", GroupProtocol.Classic, "p3", 6);
    }
}
