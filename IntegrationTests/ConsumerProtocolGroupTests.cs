using Confluent.Kafka;
using Kayak.IntegrationTests.Infrastructure;
using NUnit.Framework;

namespace Kayak.IntegrationTests;

/// <summary>
/// KIP-848 consumer groups with real clients: Confluent.Kafka 2.16 consumers with <c>group.protocol=consumer</c> speak
/// ConsumerGroupHeartbeat to the broker, which assigns partitions server-side ("uniform") and hands a partition to a
/// new owner only after the old one revoked it.
/// </summary>
[TestFixture]
public sealed class ConsumerProtocolGroupTests : BrokerTestBase
{
    private const int Partitions = 6;

    private static PolledConsumer Member(string name, string bootstrap, string topic, string group) =>
        new(name, bootstrap, topic, c =>
        {
            c.GroupId = group;
            c.GroupProtocol = GroupProtocol.Consumer;
            // librdkafka refuses the classic protocol's session and heartbeat settings with group.protocol=consumer:
            // the coordinator decides them (group.consumer.session.timeout.ms / heartbeat.interval.ms).
            c.SessionTimeoutMs = null;
            c.HeartbeatIntervalMs = null;
        })
        {
            // Commit every record before the next poll: a revocation (which runs inside poll) then never hands over a
            // partition with consumed but uncommitted records, so each record is consumed exactly once.
            OnRecord = (consumer, r) => consumer.Commit([new TopicPartitionOffset(r.TopicPartition, r.Offset + 1)]),
        };

    /// <summary>
    /// Two consumers split a 6-partition topic (no partition owned by both), consume every record exactly once with
    /// commits across the rebalance, and when one closes (leaving with epoch -1) the other takes all partitions.
    /// </summary>
    [Test]
    [CancelAfter(180_000)]
    public async Task TwoConsumersShareTheTopicAndOneTakesOverWhenTheOtherCloses()
    {
        var broker = await StartBrokerAsync(BrokerMode.InProcess, GroupAssert.FastGroups());
        var topic = TopicName("kip848");
        var group = "g848-" + Guid.NewGuid().ToString("N")[..8];
        await broker.CreateTopicAsync(topic, Partitions, cancellationToken: Token);
        var produced = await GroupAssert.ProduceAsync(broker, topic, 300, Partitions, "a", Token);

        using var a = Member("a", broker.BootstrapServers, topic, group);
        await GroupAssert.SplitAsync([a], Partitions, "one consumer-protocol member", TimeSpan.FromSeconds(60), Token);
        using var b = Member("b", broker.BootstrapServers, topic, group);
        await GroupAssert.SplitAsync([a, b], Partitions, "second member joined", TimeSpan.FromSeconds(60), Token);

        var cg = GroupAssert.State(broker).Groups.ConsumerGroupDescribe(new() { GroupIds = [group] }).Groups.Single();
        Assert.That((cg.ErrorCode, cg.GroupState, cg.Members.Count), Is.EqualTo(((short)0, "Stable", 2)), "the coordinator's view");

        produced.AddRange(await GroupAssert.ProduceAsync(broker, topic, 300, Partitions, "b", Token));
        await GroupAssert.WaitUntilAsync(() => a.Consumed.Count + b.Consumed.Count >= produced.Count, "all records consumed",
            TimeSpan.FromSeconds(60), Token, () => $"{a}\n{b}");
        Assert.That(b.Consumed, Is.Not.Empty, "b consumed its share");

        await b.CloseAsync();
        await GroupAssert.SplitAsync([a], Partitions, "b closed", TimeSpan.FromSeconds(60), Token);
        produced.AddRange(await GroupAssert.ProduceAsync(broker, topic, 60, Partitions, "c", Token));
        await GroupAssert.WaitUntilAsync(() => a.Consumed.Count + b.Consumed.Count >= produced.Count, "records after the close consumed",
            TimeSpan.FromSeconds(60), Token, () => $"{a}\n{b}");

        var consumed = a.Consumed.Concat(b.Consumed).Select(r => (r.Partition.Value, r.Offset.Value)).ToList();
        Assert.That(consumed, Is.Unique, "a record consumed twice: a partition was owned by both members");
        Assert.That(consumed, Has.Count.EqualTo(produced.Count));
        var expected = produced.GroupBy(r => r.Partition).SelectMany(g => Enumerable.Range(0, g.Count()).Select(o => (g.Key, (long)o)));
        Assert.That(consumed, Is.EquivalentTo(expected));
        Assert.That(a.LastError, Does.Not.Contain("Error").And.Not.Contain("FENCED"), a.LastError);
    }
}
