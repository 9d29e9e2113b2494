using System.Text.Json.Nodes;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Kayak.IntegrationTests.Drivers;
using Kayak.IntegrationTests.Infrastructure;
using NUnit.Framework;

namespace Kayak.IntegrationTests;

/// <summary>
/// Small differences from Kafka that real clients showed (issue 11 part 4), seen through those clients: keyless records
/// refused by a compacted topic, broker.id in DescribeConfigs, DescribeGroups v3 asked for KIP-430 authorized operations.
/// </summary>
[TestFixture]
public sealed class KafkaMismatchTests : BrokerTestBase
{
    private static readonly PythonKafka Python = (PythonKafka)ClientDrivers.Python;

    /// <summary>
    /// Each record is produced on its own (awaited) so librdkafka never batches a keyless one with keyed ones: the
    /// keyless delivery fails with INVALID_RECORD and the keyed records around it are stored.
    /// </summary>
    [Test]
    [CancelAfter(90_000)]
    public async Task ConfluentProducerGetsInvalidRecordForAKeylessRecordOnACompactedTopic()
    {
        RequireKayak("the librdkafka mock cluster does not validate keys of compacted topics");
        var broker = await StartBrokerAsync(BrokerMode.InProcess);
        var topic = TopicName("cmp");
        await broker.CreateTopicAsync(topic, 1, new Dictionary<string, string> { ["cleanup.policy"] = "compact" }, Token);

        using var producer = ConfluentClients.Producer(broker.BootstrapServers);
        var first = await producer.ProduceAsync(topic, new Message<byte[], byte[]> { Key = [1], Value = [1] }, Token);
        var refused = Assert.ThrowsAsync<ProduceException<byte[], byte[]>>(() =>
            producer.ProduceAsync(topic, new Message<byte[], byte[]> { Key = null!, Value = [2] }, Token));
        TestContext.Out.WriteLine($"librdkafka delivery error: {refused!.Error.Code} {refused.Error.Reason}");
        Assert.That(refused.Error.Code, Is.EqualTo(ErrorCode.InvalidRecord));
        Assert.That(refused.Error.IsFatal, Is.False);
        var last = await producer.ProduceAsync(topic, new Message<byte[], byte[]> { Key = [3], Value = [3] }, Token);
        Assert.That((first.Offset.Value, last.Offset.Value), Is.EqualTo((0L, 1L)), "nothing was appended for the refused record");

        var consumed = ConfluentClients.ConsumeAll(broker.BootstrapServers, topic, TimeSpan.FromSeconds(30), cancellationToken: Token);
        Assert.That(consumed.Select(r => r.Key), Is.EqualTo(new[] { "\u0001", "\u0003" }));
    }

    /// <summary>kafka-python 2.0.2 does not know error 87 (INVALID_RECORD) and reports it as UnknownError, not retried.</summary>
    [Test]
    [CancelAfter(90_000)]
    public async Task KafkaPythonProducerIsRefusedForAKeylessRecordOnACompactedTopic()
    {
        RequireKayak("the librdkafka mock cluster does not validate keys of compacted topics");
        var broker = await StartBrokerAsync(BrokerMode.InProcess);
        var topic = TopicName("cmp");
        await broker.CreateTopicAsync(topic, 1, new Dictionary<string, string> { ["cleanup.policy"] = "compact" }, Token);

        var response = await Python.RunAsync("produce", new JsonObject
        {
            ["bootstrap"] = broker.BootstrapServers,
            ["topic"] = topic,
            ["tolerate_errors"] = true,
            ["records"] = new JsonArray(new JsonObject { ["key"] = null, ["value"] = "no key", ["partition"] = 0 }),
        }, cancellationToken: Token);
        var ack = response["acks"]!.AsArray().Single()!;
        Assert.That(ack["error"]?.GetValue<string>(), Is.EqualTo("UnknownError"), ack.ToJsonString());

        var keyed = await Python.ProduceAsync(broker.BootstrapServers, topic, [new TestRecord("k", "v", 0, [])], cancellationToken: Token);
        Assert.That(keyed.Single().Offset, Is.EqualTo(0), "nothing was appended for the refused record");
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task ConfluentDescribeConfigsShowsTheBrokerId()
    {
        RequireKayak("the librdkafka mock cluster has no DescribeConfigs");
        var settings = new BrokerSettings();
        settings.Properties["node.id"] = "4";
        var broker = await StartBrokerAsync(BrokerMode.InProcess, settings);
        using var admin = ConfluentClients.Admin(broker.BootstrapServers);
        var described = (await admin.DescribeConfigsAsync([new ConfigResource { Type = ResourceType.Broker, Name = "4" }])).Single();
        Assert.That(described.Entries["broker.id"].Value, Is.EqualTo("4"));
        Assert.That(described.Entries["node.id"].Value, Is.EqualTo("4"));
        Assert.That(described.Entries["broker.id"].Source, Is.EqualTo(ConfigSource.StaticBrokerConfig));
    }

    /// <summary>
    /// kafka-python 2.0.2 sends DescribeGroups v3 with include_authorized_operations (KIP-430), but its
    /// DescribeGroupsRequest_v3 names the v2 response class, so it drops the trailing authorized_operations field and
    /// reports None: what this shows is that a v3 answer carrying Kafka's operations still parses for it, with the
    /// group as it is. The value itself is checked on the wire by Broker/Tests AuthorizedOperationsTests.
    /// </summary>
    [TestCase(true)]
    [TestCase(false)]
    [CancelAfter(60_000)]
    public async Task KafkaPythonDescribesAGroupWithAuthorizedOperationsAskedFor(bool include)
    {
        RequireKayak("the librdkafka mock cluster has no DescribeGroups v3");
        var broker = await StartBrokerAsync(BrokerMode.InProcess);
        var topic = TopicName("ops");
        await broker.CreateTopicAsync(topic, 1, cancellationToken: Token);
        var group = "ops-" + Guid.NewGuid().ToString("N")[..8];
        using (var consumer = ConfluentClients.Consumer(broker.BootstrapServers, c => c.GroupId = group))
            consumer.Commit([new TopicPartitionOffset(topic, 0, 0)]);

        var described = await Python.RunAsync("group_admin", new JsonObject
        {
            ["bootstrap"] = broker.BootstrapServers,
            ["op"] = "describe",
            ["group"] = group,
            ["include_authorized_operations"] = include,
        }, TimeSpan.FromSeconds(40), Token);
        Assert.That(described["group"]!.GetValue<string>(), Is.EqualTo(group));
        Assert.That(described["error_code"]!.GetValue<int>(), Is.EqualTo(0));
        Assert.That(described["state"]!.GetValue<string>(), Is.EqualTo("Empty"));
        Assert.That(described["authorized_operations"], Is.Null, "kafka-python 2.0.2 parses v3 with the v2 schema");
    }
}
