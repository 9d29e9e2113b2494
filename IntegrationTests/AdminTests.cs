using System.Text.Json.Nodes;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Kayak.IntegrationTests.Drivers;
using Kayak.IntegrationTests.Infrastructure;
using NUnit.Framework;

namespace Kayak.IntegrationTests;

/// <summary>Create / describe / alter configs / delete topics through Confluent's AdminClient, kafka-python and kafkajs.</summary>
[TestFixture]
public sealed class AdminTests : BrokerTestBase
{
    private async Task<BrokerUnderTest> StartAdminBrokerAsync(BrokerMode mode)
    {
        var broker = await StartBrokerAsync(mode);
        if (!broker.HasAdminApi)
            Assert.Ignore("the librdkafka mock cluster has no CreateTopics/DescribeConfigs");
        return broker;
    }

    [TestCase(BrokerMode.InProcess)]
    [TestCase(BrokerMode.Process)]
    [CancelAfter(90_000)]
    public async Task ConfluentAdminCreateDescribeAlterDelete(BrokerMode mode)
    {
        var broker = await StartAdminBrokerAsync(mode);
        var topic = TopicName("adm");
        using var admin = ConfluentClients.Admin(broker.BootstrapServers);

        await admin.CreateTopicsAsync(
        [
            new TopicSpecification { Name = topic, NumPartitions = 4, ReplicationFactor = 1, Configs = new() { ["retention.ms"] = "123456789" } },
        ]);
        await broker.WaitForTopicAsync(topic, 4, Token);

        var duplicate = Assert.ThrowsAsync<CreateTopicsException>(() =>
            admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = 1, ReplicationFactor = 1 }]));
        Assert.That(duplicate!.Results.Single().Error.Code, Is.EqualTo(ErrorCode.TopicAlreadyExists));

        var resource = new ConfigResource { Type = ResourceType.Topic, Name = topic };
        var described = (await admin.DescribeConfigsAsync([resource])).Single();
        Assert.That(described.Entries["retention.ms"].Value, Is.EqualTo("123456789"), "config given at creation");
        Assert.That(described.Entries["retention.ms"].IsDefault, Is.False);
        Assert.That(described.Entries.ContainsKey("cleanup.policy"), "defaults are described too");
        Assert.That(described.Entries["cleanup.policy"].Value, Is.EqualTo("delete"));

        // AlterConfigs (non-incremental) replaces the topic's whole override set.
        await admin.AlterConfigsAsync(new Dictionary<ConfigResource, List<ConfigEntry>>
        {
            [resource] = [new ConfigEntry { Name = "retention.ms", Value = "987654321" }, new ConfigEntry { Name = "max.message.bytes", Value = "200000" }],
        });
        var altered = (await admin.DescribeConfigsAsync([resource])).Single();
        Assert.Multiple(() =>
        {
            Assert.That(altered.Entries["retention.ms"].Value, Is.EqualTo("987654321"));
            Assert.That(altered.Entries["max.message.bytes"].Value, Is.EqualTo("200000"));
        });

        await admin.DeleteTopicsAsync([topic]);
        await WaitUntilAsync(() => !admin.GetMetadata(TimeSpan.FromSeconds(10)).Topics.Any(t => t.Topic == topic && t.Error.Code == ErrorCode.NoError), "deleted topic still in metadata");

        var missing = Assert.ThrowsAsync<DeleteTopicsException>(() => admin.DeleteTopicsAsync([topic]));
        Assert.That(missing!.Results.Single().Error.Code, Is.EqualTo(ErrorCode.UnknownTopicOrPart));
    }

    /// <summary>
    /// Dynamic broker configs (KIP-226) through Confluent's AdminClient: a per-broker log.retention.ms reaches a topic
    /// without an override, DescribeConfigs names the sources, a static key is refused, and the change survives a restart.
    /// </summary>
    [TestCase(BrokerMode.InProcess)]
    [TestCase(BrokerMode.Process)]
    [CancelAfter(120_000)]
    public async Task ConfluentAdminDynamicBrokerConfigs(BrokerMode mode)
    {
        var broker = await StartAdminBrokerAsync(mode);
        var topic = TopicName("dyn");
        await broker.CreateTopicAsync(topic, 1, cancellationToken: Token);
        using var admin = ConfluentClients.Admin(broker.BootstrapServers);
        string id = admin.GetMetadata(TimeSpan.FromSeconds(10)).Brokers.Single().BrokerId.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var brokerResource = new ConfigResource { Type = ResourceType.Broker, Name = id };
        // Confluent.Kafka refuses an empty resource name client-side, so the cluster default ("") is tested over the raw
        // protocol (Broker/Tests/DynamicBrokerConfigTests).

        await admin.IncrementalAlterConfigsAsync(new Dictionary<ConfigResource, List<ConfigEntry>>
        {
            [brokerResource] =
            [
                new ConfigEntry { Name = "log.retention.ms", Value = "3600000", IncrementalOperation = AlterConfigOpType.Set },
                new ConfigEntry { Name = "log.segment.bytes", Value = "2000000", IncrementalOperation = AlterConfigOpType.Set },
            ],
        });

        var refused = Assert.ThrowsAsync<IncrementalAlterConfigsException>(() => admin.IncrementalAlterConfigsAsync(new Dictionary<ConfigResource, List<ConfigEntry>>
        {
            [brokerResource] = [new ConfigEntry { Name = "num.partitions", Value = "4", IncrementalOperation = AlterConfigOpType.Set }],
        }));
        var error = refused!.Results.Single().Error;
        Assert.That(error.Code, Is.EqualTo(ErrorCode.InvalidRequest));
        Assert.That(error.Reason, Does.Contain("Cannot update these configs dynamically").And.Contain("num.partitions"));

        async Task AssertDescribedAsync(string when)
        {
            var described = (await admin.DescribeConfigsAsync([brokerResource, new ConfigResource { Type = ResourceType.Topic, Name = topic }])).ToList();
            var retention = described[0].Entries["log.retention.ms"];
            Assert.That((retention.Value, retention.Source, retention.IsReadOnly), Is.EqualTo(("3600000", ConfigSource.DynamicBrokerConfig, false)), when);
            Assert.That(described[0].Entries["num.partitions"].IsReadOnly, Is.True, when);
            Assert.That(retention.Synonyms.Select(s => s.Source).First(), Is.EqualTo(ConfigSource.DynamicBrokerConfig), when);
            Assert.That(described[0].Entries["log.segment.bytes"].Source, Is.EqualTo(ConfigSource.DynamicBrokerConfig), when);
            var topicRetention = described[1].Entries["retention.ms"];
            Assert.That((topicRetention.Value, topicRetention.Source), Is.EqualTo(("3600000", ConfigSource.DynamicBrokerConfig)), when);
            Assert.That(described[1].Entries["segment.bytes"].Value, Is.EqualTo("2000000"), when);
        }
        await AssertDescribedAsync("after the change");

        await broker.RestartAsync(Token);
        await broker.WaitForTopicAsync(topic, 1, Token);
        await AssertDescribedAsync("after a restart");
    }

    [TestCase(BrokerMode.InProcess)]
    [CancelAfter(120_000)]
    public async Task KafkaPythonAdminCreateDescribeAlterDelete(BrokerMode mode)
    {
        var broker = await StartAdminBrokerAsync(mode);
        var py = (PythonKafka)ClientDrivers.Python;
        var bs = broker.BootstrapServers;
        var topic = TopicName("pyadm");

        var created = await py.AdminAsync(bs, "create_topics", new JsonObject
        {
            ["topics"] = new JsonArray(new JsonObject { ["name"] = topic, ["partitions"] = 3, ["configs"] = new JsonObject { ["retention.ms"] = "3600000" } }),
        }, Token);
        Assert.That(created["errors"]![topic], Is.Null, created.ToJsonString());
        await broker.WaitForTopicAsync(topic, 3, Token);

        var again = await py.AdminAsync(bs, "create_topics", new JsonObject
        {
            ["topics"] = new JsonArray(new JsonObject { ["name"] = topic, ["partitions"] = 3 }),
        }, Token);
        Assert.That(again["errors"]![topic]!.GetValue<string>(), Is.EqualTo("TopicAlreadyExistsError"));

        var listed = await py.AdminAsync(bs, "list_topics", cancellationToken: Token);
        Assert.That(listed["topics"]!.AsArray().Select(t => t!.GetValue<string>()), Does.Contain(topic));

        var topics = await py.AdminAsync(bs, "describe_topics", new JsonObject { ["topics"] = new JsonArray(topic) }, Token);
        var described = topics["topics"]!.AsArray().Single()!;
        Assert.That((described["error_code"]!.GetValue<int>(), described["partitions"]!.GetValue<int>()), Is.EqualTo((0, 3)));

        var configs = await py.AdminAsync(bs, "describe_configs", new JsonObject { ["topic"] = topic }, Token);
        Assert.That(configs["configs"]!["retention.ms"]!.GetValue<string>(), Is.EqualTo("3600000"));

        var alter = await py.AdminAsync(bs, "alter_configs", new JsonObject { ["topic"] = topic, ["configs"] = new JsonObject { ["retention.ms"] = "7200000" } }, Token);
        Assert.That(alter["error_code"]!.GetValue<int>(), Is.EqualTo(0));
        configs = await py.AdminAsync(bs, "describe_configs", new JsonObject { ["topic"] = topic }, Token);
        Assert.That(configs["configs"]!["retention.ms"]!.GetValue<string>(), Is.EqualTo("7200000"));

        var deleted = await py.AdminAsync(bs, "delete_topics", new JsonObject { ["topics"] = new JsonArray(topic) }, Token);
        Assert.That(deleted["errors"]![topic], Is.Null, deleted.ToJsonString());
        await WaitUntilAsync(async () =>
        {
            var after = await py.AdminAsync(bs, "list_topics", cancellationToken: Token);
            return !after["topics"]!.AsArray().Any(t => t!.GetValue<string>() == topic);
        }, "deleted topic still listed by kafka-python");
    }

    [TestCase(BrokerMode.InProcess)]
    [CancelAfter(120_000)]
    public async Task KafkaJsAdminCreateDescribeAlterDelete(BrokerMode mode)
    {
        var broker = await StartAdminBrokerAsync(mode);
        var js = (KafkaJs)ClientDrivers.KafkaJs;
        var bs = broker.BootstrapServers;
        var topic = TopicName("jsadm");

        var created = await js.AdminAsync(bs, "create_topics", new JsonObject
        {
            ["topics"] = new JsonArray(new JsonObject { ["name"] = topic, ["partitions"] = 2, ["configs"] = new JsonObject { ["retention.ms"] = "3600000" } }),
        }, Token);
        Assert.That(created["created"]!.GetValue<bool>(), Is.True);
        // kafkajs reports false (no error) when the topic already exists.
        var again = await js.AdminAsync(bs, "create_topics", new JsonObject
        {
            ["topics"] = new JsonArray(new JsonObject { ["name"] = topic, ["partitions"] = 2 }),
        }, Token);
        Assert.That(again["created"]!.GetValue<bool>(), Is.False);

        var configs = await js.AdminAsync(bs, "describe_configs", new JsonObject { ["topic"] = topic }, Token);
        Assert.That(configs["configs"]!["retention.ms"]!.GetValue<string>(), Is.EqualTo("3600000"));
        await js.AdminAsync(bs, "alter_configs", new JsonObject { ["topic"] = topic, ["configs"] = new JsonObject { ["retention.ms"] = "60000" } }, Token);
        configs = await js.AdminAsync(bs, "describe_configs", new JsonObject { ["topic"] = topic }, Token);
        Assert.That(configs["configs"]!["retention.ms"]!.GetValue<string>(), Is.EqualTo("60000"));

        await js.AdminAsync(bs, "delete_topics", new JsonObject { ["topics"] = new JsonArray(topic) }, Token);
        await WaitUntilAsync(async () =>
        {
            var after = await js.AdminAsync(bs, "list_topics", cancellationToken: Token);
            return !after["topics"]!.AsArray().Any(t => t!.GetValue<string>() == topic);
        }, "deleted topic still listed by kafkajs");
    }

    private static Task WaitUntilAsync(Func<bool> condition, string message) => WaitUntilAsync(() => Task.FromResult(condition()), message);

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, string message)
    {
        for (var attempt = 0; attempt < 50; attempt++)
        {
            if (await condition())
                return;
            await Task.Delay(200, Token);
        }
        Assert.Fail(message);
    }
}
