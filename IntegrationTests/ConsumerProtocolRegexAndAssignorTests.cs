using Confluent.Kafka;
using Kayak.IntegrationTests.Infrastructure;
using NUnit.Framework;

namespace Kayak.IntegrationTests;

/// <summary>
/// KIP-848 beyond topic names with Confluent.Kafka 2.16 (group.protocol=consumer): a regex subscription resolved by
/// the broker (SubscribedTopicRegex) that picks up a topic created after the consumer joined, and the server-side
/// "range" assignor chosen with group.remote.assignor. The broker runs with group.consumer.heartbeat.interval.ms
/// lowered through its config registry, which the clients obey.
/// </summary>
[TestFixture]
public sealed class ConsumerProtocolRegexAndAssignorTests : BrokerTestBase
{
    private static BrokerSettings Settings()
    {
        var settings = GroupAssert.FastGroups();
        settings.Properties["group.consumer.min.heartbeat.interval.ms"] = "100";
        settings.Properties["group.consumer.heartbeat.interval.ms"] = "500";
        return settings;
    }

    private static PolledConsumer Member(string name, string bootstrap, string subscription, string group, string? assignor = null) =>
        new(name, bootstrap, subscription, c =>
        {
            c.GroupId = group;
            c.GroupProtocol = GroupProtocol.Consumer;
            c.SessionTimeoutMs = null;
            c.HeartbeatIntervalMs = null;
            if (assignor is not null) c.Set("group.remote.assignor", assignor);
        });

    [Test]
    [CancelAfter(180_000)]
    public async Task ARegexSubscriptionPicksUpATopicCreatedLater()
    {
        var broker = await StartBrokerAsync(BrokerMode.InProcess, Settings());
        string prefix = "orders" + Guid.NewGuid().ToString("N")[..6];
        var group = "g848re-" + Guid.NewGuid().ToString("N")[..8];
        await broker.CreateTopicAsync(prefix + "-eu", 2, cancellationToken: Token);
        await broker.CreateTopicAsync("other" + prefix, 2, cancellationToken: Token);
        var first = await GroupAssert.ProduceAsync(broker, prefix + "-eu", 20, 2, "eu", Token);
        await GroupAssert.ProduceAsync(broker, "other" + prefix, 20, 2, "other", Token);

        using var consumer = Member("re", broker.BootstrapServers, "^" + prefix + "-.*", group);
        await GroupAssert.WaitUntilAsync(() => consumer.Consumed.Count >= first.Count, "records of the existing matching topic",
            TimeSpan.FromSeconds(60), Token, () => consumer.ToString());

        await broker.CreateTopicAsync(prefix + "-us", 3, cancellationToken: Token);
        var later = await GroupAssert.ProduceAsync(broker, prefix + "-us", 30, 3, "us", Token);
        await GroupAssert.WaitUntilAsync(() => consumer.Consumed.Count(r => r.Topic == prefix + "-us") >= later.Count,
            "records of the topic created after the subscription", TimeSpan.FromSeconds(60), Token, () => consumer.ToString());

        Assert.That(consumer.Consumed.Select(r => r.Topic).Distinct(), Is.EquivalentTo(new[] { prefix + "-eu", prefix + "-us" }),
            "only the matching topics, never the other one");
        var cg = GroupAssert.State(broker).Groups.ConsumerGroupDescribe(new() { GroupIds = [group] }).Groups.Single();
        Assert.That(cg.ErrorCode, Is.EqualTo((short)0));
        Assert.That(cg.Members.Single().SubscribedTopicRegex, Is.EqualTo("(^" + prefix + "-.*)"),
            "librdkafka 2.16 sends its regexes to the broker, each in parentheses, joined by |");
        Assert.That(cg.Members.Single().Assignment.TopicPartitions.Select(t => t.TopicName),
            Is.EquivalentTo(new[] { prefix + "-eu", prefix + "-us" }));
    }

    [Test]
    [CancelAfter(180_000)]
    public async Task TheRangeAssignorSplitsEachTopicInContiguousRanges()
    {
        var broker = await StartBrokerAsync(BrokerMode.InProcess, Settings());
        var topic = TopicName("range848");
        var group = "g848rg-" + Guid.NewGuid().ToString("N")[..8];
        await broker.CreateTopicAsync(topic, 5, cancellationToken: Token);

        using var a = Member("a", broker.BootstrapServers, topic, group, "range");
        await GroupAssert.SplitAsync([a], 5, "one member", TimeSpan.FromSeconds(60), Token);
        using var b = Member("b", broker.BootstrapServers, topic, group, "range");
        await GroupAssert.SplitAsync([a, b], 5, "two members", TimeSpan.FromSeconds(60), Token);

        var cg = GroupAssert.State(broker).Groups.ConsumerGroupDescribe(new() { GroupIds = [group] }).Groups.Single();
        Assert.That(cg.AssignorName, Is.EqualTo("range"));
        var counts = new[] { a.Partitions.Count, b.Partitions.Count }.Order().ToArray();
        Assert.That(counts, Is.EqualTo(new[] { 2, 3 }), "range gives ⌊5/2⌋ and ⌈5/2⌉");
        foreach (var m in new[] { a, b })
        {
            var p = m.Partitions.Order().ToArray();
            Assert.That(p[^1] - p[0], Is.EqualTo(p.Length - 1), $"{m.Name} owns a contiguous range: {string.Join(",", p)}");
        }
    }
}
