using Kayak.Protocol;
using Kayak.Protocol.Messages;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>
/// Dynamic broker configs (KIP-226) over the raw protocol: IncrementalAlterConfigs / AlterConfigs on the BROKER
/// resource (node id) and the cluster default (""), and what DescribeConfigs and Storage then see.
/// </summary>
[TestFixture]
public sealed class DynamicBrokerConfigTests
{
    private const sbyte Topic = 2, Broker = 4;
    private const sbyte Set = 0, Delete = 1, Append = 2;
    private const sbyte DynamicTopic = 1, DynamicBroker = 2, DynamicDefault = 3, StaticBroker = 4, Default = 5;

    private static IncrementalAlterConfigsRequest Incremental(string name, bool validateOnly, params (string Name, sbyte Op, string? Value)[] configs)
    {
        var resource = new IncrementalAlterConfigsRequest.AlterConfigsResource { ResourceType = Broker, ResourceName = name };
        foreach (var (n, op, v) in configs)
            resource.Configs.Add(new IncrementalAlterConfigsRequest.AlterableConfig { Name = n, ConfigOperation = op, Value = v });
        return new IncrementalAlterConfigsRequest { Resources = [resource], ValidateOnly = validateOnly };
    }

    private static async Task<IncrementalAlterConfigsResponse.AlterConfigsResourceResponse> AlterAsync(RawClient client, string name,
        bool validateOnly, params (string, sbyte, string?)[] configs) =>
        (await client.SendAsync<IncrementalAlterConfigsResponse>(Incremental(name, validateOnly, configs), 1)).Responses.Single();

    private static async Task<DescribeConfigsResponse.DescribeConfigsResult> DescribeAsync(RawClient client, sbyte type, string name, params string[] keys)
    {
        var response = await client.SendAsync<DescribeConfigsResponse>(new DescribeConfigsRequest
        {
            Resources = [new DescribeConfigsRequest.DescribeConfigsResource { ResourceType = type, ResourceName = name, ConfigurationKeys = keys.Length == 0 ? null : [.. keys] }],
            IncludeSynonyms = true,
        }, 4);
        var result = response.Results.Single();
        Assert.That(result.ErrorCode, Is.EqualTo((short)ErrorCode.None), result.ErrorMessage);
        return result;
    }

    private static (string, string?, sbyte)[] Synonyms(DescribeConfigsResponse.DescribeConfigsResourceResult entry) =>
        entry.Synonyms.Select(s => (s.Name, s.Value, s.Source)).ToArray();

    [Test]
    public async Task PerBrokerRetentionReachesTopicsWithoutOverride()
    {
        await using var f = await BrokerFixture.StartAsync(o => o.Properties["log.retention.hours"] = "48");
        string id = f.State.NodeId.ToString();
        var plain = f.CreateTopic("plain", 1);
        var pinned = f.CreateTopic("pinned", 1, new() { ["retention.ms"] = "5000" });

        var alter = await AlterAsync(f.Client, id, false, ("log.retention.ms", Set, "3600000"));
        Assert.That(alter.ErrorCode, Is.EqualTo((short)ErrorCode.None), alter.ErrorMessage);
        Assert.That(plain.Config.RetentionMs, Is.EqualTo(3_600_000), "a topic without retention.ms follows the broker default");
        Assert.That(pinned.Config.RetentionMs, Is.EqualTo(5000), "an override still wins");

        var broker = (await DescribeAsync(f.Client, Broker, id, "log.retention.ms")).Configs.Single();
        Assert.That(broker.Value, Is.EqualTo("3600000"));
        Assert.That(broker.ConfigSource, Is.EqualTo(DynamicBroker));
        Assert.That(broker.ReadOnly, Is.False);
        // Kafka's order: dynamic per-broker, dynamic default, static, defaults, over the chain ms, minutes, hours.
        Assert.That(Synonyms(broker), Is.EqualTo(new (string, string?, sbyte)[]
        {
            ("log.retention.ms", "3600000", DynamicBroker), ("log.retention.hours", "48", StaticBroker),
            ("log.retention.ms", null, Default), ("log.retention.minutes", null, Default), ("log.retention.hours", "168", Default),
        }));
        var topic = (await DescribeAsync(f.Client, Topic, "plain", "retention.ms")).Configs.Single();
        Assert.That(topic.Value, Is.EqualTo("3600000"));
        Assert.That(topic.ConfigSource, Is.EqualTo(DynamicBroker));
        var hours = (await DescribeAsync(f.Client, Broker, id, "log.retention.hours")).Configs.Single();
        Assert.That(hours.ReadOnly, Is.True, "Kafka changes log.retention.ms dynamically, never .hours");

        var delete = await AlterAsync(f.Client, id, false, ("log.retention.ms", Delete, null));
        Assert.That(delete.ErrorCode, Is.EqualTo((short)ErrorCode.None));
        Assert.That(plain.Config.RetentionMs, Is.EqualTo(48 * 3_600_000L), "back to the static log.retention.hours");
    }

    [Test]
    public async Task ClusterDefaultIsBelowPerBrokerAndListedOnItsOwnResource()
    {
        await using var f = await BrokerFixture.StartAsync();
        string id = f.State.NodeId.ToString();
        var topic = f.CreateTopic("t", 1);
        Assert.That((await AlterAsync(f.Client, "", false, ("log.segment.bytes", Set, "2000000"), ("compression.type", Set, "lz4"))).ErrorCode,
            Is.EqualTo((short)ErrorCode.None));
        Assert.That(topic.Config.SegmentBytes, Is.EqualTo(2_000_000));
        Assert.That(topic.Config.CompressionType, Is.EqualTo("lz4"));
        Assert.That((await AlterAsync(f.Client, id, false, ("log.segment.bytes", Set, "3000000"))).ErrorCode, Is.EqualTo((short)ErrorCode.None));
        Assert.That(topic.Config.SegmentBytes, Is.EqualTo(3_000_000));

        var segment = (await DescribeAsync(f.Client, Broker, id, "log.segment.bytes")).Configs.Single();
        Assert.That(segment.ConfigSource, Is.EqualTo(DynamicBroker));
        Assert.That(Synonyms(segment), Is.EqualTo(new (string, string?, sbyte)[]
        {
            ("log.segment.bytes", "3000000", DynamicBroker), ("log.segment.bytes", "2000000", DynamicDefault), ("log.segment.bytes", "1073741824", Default),
        }));
        var clusterDefault = await DescribeAsync(f.Client, Broker, "");
        Assert.That(clusterDefault.Configs.Select(c => (c.Name, c.Value, c.ConfigSource)), Is.EqualTo(new (string, string?, sbyte)[]
        {
            ("compression.type", "lz4", DynamicDefault), ("log.segment.bytes", "2000000", DynamicDefault),
        }));
        // The cluster-default resource leaves out this broker's own value (Kafka's createBrokerConfigEntry).
        Assert.That(clusterDefault.Configs.Single(c => c.Name == "log.segment.bytes").Synonyms.Select(s => s.Source),
            Is.EqualTo(new[] { DynamicDefault, Default }));
        var compression = (await DescribeAsync(f.Client, Topic, "t", "compression.type")).Configs.Single();
        Assert.That((compression.Value, compression.ConfigSource), Is.EqualTo(("lz4", DynamicDefault)));
    }

    [Test]
    public async Task StaticAndInvalidChangesAreRefusedWithKafkasMessages()
    {
        await using var f = await BrokerFixture.StartAsync();
        string id = f.State.NodeId.ToString();
        async Task<(short, string?)> Refused(string name, params (string, sbyte, string?)[] ops)
        {
            var r = await AlterAsync(f.Client, name, false, ops);
            return (r.ErrorCode, r.ErrorMessage);
        }
        short invalidRequest = (short)ErrorCode.InvalidRequest;
        Assert.That(await Refused(id, ("num.partitions", Set, "3"), ("log.retention.ms", Set, "1")),
            Is.EqualTo((invalidRequest, "Cannot update these configs dynamically: [num.partitions]")));
        Assert.That(await Refused(id, ("log.retention.ms", Set, "abc")),
            Is.EqualTo((invalidRequest, "Invalid value abc for configuration log.retention.ms: Not a number of type LONG")));
        Assert.That(await Refused(id, ("ssl.keystore.location", Set, "/k.jks")),
            Is.EqualTo((invalidRequest, "These security configs can be dynamically updated only per-listener using the listener prefix: [ssl.keystore.location]")));
        Assert.That(await Refused("", ("sasl.kerberos.min.time.before.relogin", Set, "60000")),
            Is.EqualTo((invalidRequest, "Cannot update these configs at default cluster level, broker id must be specified: [sasl.kerberos.min.time.before.relogin]")));
        Assert.That(await Refused(id, ("log.retention.ms", Append, "1")),
            Is.EqualTo(((short)ErrorCode.InvalidConfig, "Config value append is not allowed for config key: log.retention.ms")));
        Assert.That((await Refused("7", ("log.retention.ms", Set, "1"))).Item1, Is.EqualTo(invalidRequest));
        Assert.That(f.State.Dynamic.PerBroker, Is.Empty, "a refused resource changes nothing");
        Assert.That(File.Exists(Path.Combine(f.DataDir, Config.DynamicBrokerConfig.FileName)), Is.False);

        // validateOnly checks and keeps nothing.
        Assert.That((await AlterAsync(f.Client, id, true, ("log.retention.ms", Set, "1000"))).ErrorCode, Is.EqualTo((short)ErrorCode.None));
        Assert.That(f.State.Dynamic.PerBroker, Is.Empty);
        Assert.That(f.State.Logs.Options.RetentionMs, Is.EqualTo(604_800_000));
    }

    [Test]
    public async Task ThreadPoolAndListenerKeysAreAcceptedPerBroker()
    {
        await using var f = await BrokerFixture.StartAsync();
        string id = f.State.NodeId.ToString();
        var r = await AlterAsync(f.Client, id, false, ("num.io.threads", Set, "16"), ("sasl.kerberos.min.time.before.relogin", Set, "60000"),
            ("listener.name.plaintext.max.connections", Set, "100"), ("producer.id.expiration.ms", Set, "1000"));
        Assert.That(r.ErrorCode, Is.EqualTo((short)ErrorCode.None), r.ErrorMessage);
        Assert.That(f.State.Dynamic.Current.ProducerIdExpirationMs, Is.EqualTo(1000));
        var described = await DescribeAsync(f.Client, Broker, id);
        var io = described.Configs.Single(c => c.Name == "num.io.threads");
        Assert.That((io.Value, io.ConfigSource, io.ReadOnly), Is.EqualTo(("16", DynamicBroker, false)));
        var relogin = described.Configs.Single(c => c.Name == "sasl.kerberos.min.time.before.relogin");
        Assert.That((relogin.Value, relogin.ConfigSource), Is.EqualTo(("60000", DynamicBroker)));
    }

    [Test]
    public async Task LegacyAlterConfigsReplacesTheWholeDynamicSet()
    {
        await using var f = await BrokerFixture.StartAsync();
        string id = f.State.NodeId.ToString();
        await AlterAsync(f.Client, id, false, ("log.retention.ms", Set, "1000"), ("message.max.bytes", Set, "2000000"));
        var resource = new AlterConfigsRequest.AlterConfigsResource { ResourceType = Broker, ResourceName = id };
        resource.Configs.Add(new AlterConfigsRequest.AlterableConfig { Name = "log.cleanup.policy", Value = "compact" });
        var response = await f.Client.SendAsync<AlterConfigsResponse>(new AlterConfigsRequest { Resources = [resource] }, 2);
        Assert.That(response.Responses.Single().ErrorCode, Is.EqualTo((short)ErrorCode.None));
        Assert.That(f.State.Dynamic.PerBroker, Is.EquivalentTo(new Dictionary<string, string> { ["log.cleanup.policy"] = "compact" }));
        Assert.That(f.State.Logs.Options.CleanupPolicy, Is.EqualTo("compact"));
        Assert.That(f.State.Logs.Options.MaxMessageBytes, Is.EqualTo(1048588), "left out: back to the default");
    }

    [Test]
    public async Task DynamicConfigsSurviveRestart()
    {
        var dir = Path.Combine(Path.GetTempPath(), "kayak-dynamic-" + Guid.NewGuid().ToString("N"));
        try
        {
            await using (var first = new KafkaBroker(new KafkaBrokerOptions { Port = 0, DataDir = dir }))
            {
                await first.StartAsync();
                using var client = await RawClient.ConnectAsync(first.BootstrapServers);
                string id = first.State.NodeId.ToString();
                Assert.That((await AlterAsync(client, id, false, ("log.retention.ms", Set, "7200000"))).ErrorCode, Is.EqualTo((short)ErrorCode.None));
                Assert.That((await AlterAsync(client, "", false, ("log.retention.bytes", Set, "1048576"))).ErrorCode, Is.EqualTo((short)ErrorCode.None));
                first.State.Topics.Create("kept", 1, 1, new Dictionary<string, string>(), validateOnly: false);
            }
            Assert.That(File.Exists(Path.Combine(dir, Config.DynamicBrokerConfig.FileName + ".tmp")), Is.False, "written atomically");

            await using var second = new KafkaBroker(new KafkaBrokerOptions { Port = 0, DataDir = dir });
            await second.StartAsync();
            Assert.That(second.State.Logs.Options.RetentionMs, Is.EqualTo(7_200_000));
            Assert.That(second.State.Logs.Options.RetentionBytes, Is.EqualTo(1_048_576));
            Assert.That(second.State.Catalog.TryGet("kept", out var kept), Is.True);
            Assert.That(kept!.Config.RetentionMs, Is.EqualTo(7_200_000), "topics loaded at start resolve against the stored dynamic defaults");
            using var c2 = await RawClient.ConnectAsync(second.BootstrapServers);
            var entry = (await DescribeAsync(c2, Broker, second.State.NodeId.ToString(), "log.retention.bytes")).Configs.Single();
            Assert.That((entry.Value, entry.ConfigSource), Is.EqualTo(("1048576", DynamicDefault)));
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }

    [Test]
    public void AnUnreadableDynamicConfigFileStopsTheStartNamingIt()
    {
        var dir = Path.Combine(Path.GetTempPath(), "kayak-dynamic-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            File.WriteAllText(Path.Combine(dir, Config.DynamicBrokerConfig.FileName), "{\"broker\": {\"log.retention.ms\": ");
            var config = new Config.BrokerConfig(new Dictionary<string, string> { ["log.dirs"] = dir });
            var e = Assert.Throws<Config.ConfigException>(() => _ = new Config.DynamicBrokerConfig(config));
            Assert.That(e!.Message, Does.Contain(Config.DynamicBrokerConfig.FileName));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
