using Kayak.Protocol;
using Kayak.Protocol.Messages;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

[TestFixture]
public sealed class DescribeConfigsTests
{
    private const sbyte Topic = 2, Broker = 4, BrokerLogger = 8;
    private const sbyte DynamicTopic = 1, StaticBroker = 4, Default = 5;

    private static DescribeConfigsRequest Request(short version, sbyte type, string name, List<string>? keys = null,
        bool synonyms = false, bool documentation = false)
    {
        var request = new DescribeConfigsRequest
        {
            Resources = [new DescribeConfigsRequest.DescribeConfigsResource { ResourceType = type, ResourceName = name, ConfigurationKeys = keys }],
        };
        if (version >= 1) request.IncludeSynonyms = synonyms;
        if (version >= 3) request.IncludeDocumentation = documentation;
        return request;
    }

    private static DescribeConfigsResponse.DescribeConfigsResourceResult Find(DescribeConfigsResponse.DescribeConfigsResult result, string name) =>
        result.Configs.Single(c => c.Name == name);

    [TestCase((short)0)]
    [TestCase((short)1)]
    [TestCase((short)2)]
    [TestCase((short)3)]
    [TestCase((short)4)]
    public async Task TopicConfigsWithOverrideAndDefaults(short version)
    {
        await using var f = await BrokerFixture.StartAsync();
        f.CreateTopic("cfg", 1, new() { ["retention.ms"] = "1000" });

        var response = await f.Client.SendAsync<DescribeConfigsResponse>(Request(version, Topic, "cfg", synonyms: true, documentation: true), version);
        var result = response.Results.Single();
        Assert.That(result.ErrorCode, Is.EqualTo((short)ErrorCode.None));
        Assert.That(result.ResourceName, Is.EqualTo("cfg"));
        Assert.That(result.ResourceType, Is.EqualTo(Topic));
        Assert.That(result.Configs.Count, Is.EqualTo(Kayak.Storage.TopicConfig.Definitions.Count));

        var retention = Find(result, "retention.ms");
        var cleanup = Find(result, "cleanup.policy");
        Assert.That(retention.Value, Is.EqualTo("1000"));
        Assert.That(retention.ReadOnly, Is.False);
        Assert.That(cleanup.Value, Is.EqualTo("delete"));
        if (version == 0)
        {
            Assert.That(retention.IsDefault, Is.False);
            Assert.That(cleanup.IsDefault, Is.True);
        }
        else
        {
            Assert.That(retention.ConfigSource, Is.EqualTo(DynamicTopic));
            Assert.That(cleanup.ConfigSource, Is.EqualTo(Default));
            // The override first, then the broker defaults it hides (Kafka's synonym order).
            Assert.That(retention.Synonyms.Select(s => (s.Name, s.Value, s.Source)), Is.EqualTo(new[]
            {
                ("retention.ms", (string?)"1000", DynamicTopic),
                ("log.retention.ms", (string?)null, Default),
                ("log.retention.minutes", (string?)null, Default),
                ("log.retention.hours", (string?)"168", Default),
            }));
        }
        if (version >= 3)
        {
            Assert.That(retention.ConfigType, Is.EqualTo((sbyte)5)); // LONG
            Assert.That(cleanup.ConfigType, Is.EqualTo((sbyte)7)); // LIST
            Assert.That(retention.Documentation, Is.Not.Null.And.Not.Empty);
        }
    }

    [TestCase((short)1)]
    [TestCase((short)4)]
    public async Task SynonymsAndDocumentationOnlyWhenAsked(short version)
    {
        await using var f = await BrokerFixture.StartAsync();
        f.CreateTopic("cfg", 1, new() { ["retention.ms"] = "1000" });
        var response = await f.Client.SendAsync<DescribeConfigsResponse>(Request(version, Topic, "cfg"), version);
        var retention = Find(response.Results[0], "retention.ms");
        Assert.That(retention.Synonyms, Is.Empty);
        if (version >= 3) Assert.That(retention.Documentation, Is.Null); // not on the wire before v3
    }

    [Test]
    public async Task StaticBrokerSettingIsTheTopicsSource()
    {
        await using var f = await BrokerFixture.StartAsync(o => o.Properties["log.retention.ms"] = "7200000");
        f.CreateTopic("cfg", 1);
        var response = await f.Client.SendAsync<DescribeConfigsResponse>(Request(4, Topic, "cfg", ["retention.ms", "no.such.key"], synonyms: true), 4);
        var entry = response.Results[0].Configs.Single();
        Assert.That(entry.Name, Is.EqualTo("retention.ms"));
        Assert.That(entry.Value, Is.EqualTo("7200000"));
        Assert.That(entry.ConfigSource, Is.EqualTo(StaticBroker));
        Assert.That(entry.Synonyms[0].Name, Is.EqualTo("log.retention.ms"));
        Assert.That(entry.Synonyms[0].Value, Is.EqualTo("7200000"));
        Assert.That(entry.Synonyms[0].Source, Is.EqualTo(StaticBroker));
        Assert.That(entry.Synonyms[^1].Name, Is.EqualTo("log.retention.hours"));
        Assert.That(entry.Synonyms[^1].Source, Is.EqualTo(Default));
    }

    [TestCase((short)0)]
    [TestCase((short)4)]
    public async Task UnknownTopicIsAnError(short version)
    {
        await using var f = await BrokerFixture.StartAsync();
        var response = await f.Client.SendAsync<DescribeConfigsResponse>(Request(version, Topic, "missing"), version);
        Assert.That(response.Results[0].ErrorCode, Is.EqualTo((short)ErrorCode.UnknownTopicOrPartition));
        Assert.That(response.Results[0].Configs, Is.Empty);
    }

    [TestCase((short)0)]
    [TestCase((short)2)]
    [TestCase((short)4)]
    public async Task BrokerConfigsWithStaticSourcesAreReadOnlyUnlessDynamicInKafka(short version)
    {
        await using var f = await BrokerFixture.StartAsync(o => o.Properties["num.partitions"] = "3");
        string id = f.State.NodeId.ToString();
        var response = await f.Client.SendAsync<DescribeConfigsResponse>(Request(version, Broker, id), version);
        var result = response.Results[0];
        Assert.That(result.ErrorCode, Is.EqualTo((short)ErrorCode.None));
        Assert.That(result.Configs.Count, Is.EqualTo(Config.BrokerConfigDefinitions.All.Length));
        // Read-only exactly when Kafka's DynamicBrokerConfig cannot change the key (num.partitions: read-only;
        // log.segment.bytes, message.max.bytes: cluster-wide dynamic).
        Assert.That(Find(result, "num.partitions").ReadOnly, Is.True);
        Assert.That(Find(result, "log.retention.hours").ReadOnly, Is.True);
        Assert.That(Find(result, "log.segment.bytes").ReadOnly, Is.False);
        Assert.That(Find(result, "message.max.bytes").ReadOnly, Is.False);
        Assert.That(Find(result, "num.io.threads").ReadOnly, Is.False);
        var partitions = Find(result, "num.partitions");
        var segment = Find(result, "log.segment.bytes");
        Assert.That(partitions.Value, Is.EqualTo("3"));
        Assert.That(segment.Value, Is.EqualTo("1073741824"));
        if (version == 0)
        {
            Assert.That(partitions.IsDefault, Is.False);
            Assert.That(segment.IsDefault, Is.True);
        }
        else
        {
            Assert.That(partitions.ConfigSource, Is.EqualTo(StaticBroker));
            Assert.That(segment.ConfigSource, Is.EqualTo(Default));
        }

        var clusterDefault = await f.Client.SendAsync<DescribeConfigsResponse>(Request(version, Broker, ""), version);
        Assert.That(clusterDefault.Results[0].ErrorCode, Is.EqualTo((short)ErrorCode.None));
        Assert.That(clusterDefault.Results[0].Configs, Is.Empty); // no dynamic cluster defaults set
    }

    [TestCase((short)0)]
    [TestCase((short)4)]
    public async Task OtherBrokerIdsAndResourceTypesAreInvalidRequests(short version)
    {
        await using var f = await BrokerFixture.StartAsync();
        var other = await f.Client.SendAsync<DescribeConfigsResponse>(Request(version, Broker, (f.State.NodeId + 1).ToString()), version);
        Assert.That(other.Results[0].ErrorCode, Is.EqualTo((short)ErrorCode.InvalidRequest));
        Assert.That(other.Results[0].ErrorMessage, Does.Contain("Unexpected broker id"));
        var notANumber = await f.Client.SendAsync<DescribeConfigsResponse>(Request(version, Broker, "x"), version);
        Assert.That(notANumber.Results[0].ErrorCode, Is.EqualTo((short)ErrorCode.InvalidRequest));
        var type = await f.Client.SendAsync<DescribeConfigsResponse>(Request(version, 99, "x"), version);
        Assert.That(type.Results[0].ErrorCode, Is.EqualTo((short)ErrorCode.InvalidRequest));
        var logger = await f.Client.SendAsync<DescribeConfigsResponse>(Request(version, BrokerLogger, f.State.NodeId.ToString()), version);
        Assert.That(logger.Results[0].ErrorCode, Is.EqualTo((short)ErrorCode.None));
        var emptyLogger = await f.Client.SendAsync<DescribeConfigsResponse>(Request(version, BrokerLogger, ""), version);
        Assert.That(emptyLogger.Results[0].ErrorCode, Is.EqualTo((short)ErrorCode.InvalidRequest));
    }
}

[TestFixture]
public sealed class AlterConfigsTests
{
    private const sbyte Topic = 2, Broker = 4;

    private static AlterConfigsRequest Request(sbyte type, string name, bool validateOnly, params (string Name, string? Value)[] configs)
    {
        var resource = new AlterConfigsRequest.AlterConfigsResource { ResourceType = type, ResourceName = name };
        foreach (var (n, v) in configs) resource.Configs.Add(new AlterConfigsRequest.AlterableConfig { Name = n, Value = v });
        return new AlterConfigsRequest { Resources = [resource], ValidateOnly = validateOnly };
    }

    [TestCase((short)0)]
    [TestCase((short)1)]
    [TestCase((short)2)]
    public async Task ReplacesAllOverrides(short version)
    {
        await using var f = await BrokerFixture.StartAsync();
        var topic = f.CreateTopic("alter", 1, new() { ["retention.ms"] = "1000" });

        var response = await f.Client.SendAsync<AlterConfigsResponse>(Request(Topic, "alter", false, ("segment.ms", "5000")), version);
        var r = response.Responses.Single();
        Assert.That(r.ErrorCode, Is.EqualTo((short)ErrorCode.None));
        Assert.That(r.ResourceName, Is.EqualTo("alter"));
        Assert.That(r.ResourceType, Is.EqualTo(Topic));
        Assert.That(topic.Config.Overrides, Is.EquivalentTo(new Dictionary<string, string> { ["segment.ms"] = "5000" }));
        Assert.That(topic.Config.SegmentMs, Is.EqualTo(5000));
    }

    [TestCase((short)0)]
    [TestCase((short)2)]
    public async Task ValidateOnlyAndInvalidValuesChangeNothing(short version)
    {
        await using var f = await BrokerFixture.StartAsync();
        var topic = f.CreateTopic("alter", 1, new() { ["retention.ms"] = "1000" });

        var validate = await f.Client.SendAsync<AlterConfigsResponse>(Request(Topic, "alter", true, ("retention.ms", "2000")), version);
        Assert.That(validate.Responses[0].ErrorCode, Is.EqualTo((short)ErrorCode.None));
        Assert.That(topic.Config.Overrides["retention.ms"], Is.EqualTo("1000"));

        var invalid = await f.Client.SendAsync<AlterConfigsResponse>(Request(Topic, "alter", false, ("segment.ms", "5000"), ("retention.ms", "abc")), version);
        Assert.That(invalid.Responses[0].ErrorCode, Is.EqualTo((short)ErrorCode.InvalidConfig));
        Assert.That(invalid.Responses[0].ErrorMessage, Does.Contain("retention.ms"));
        var unknownKey = await f.Client.SendAsync<AlterConfigsResponse>(Request(Topic, "alter", false, ("no.such.config", "1")), version);
        Assert.That(unknownKey.Responses[0].ErrorCode, Is.EqualTo((short)ErrorCode.InvalidConfig));
        var nullValue = await f.Client.SendAsync<AlterConfigsResponse>(Request(Topic, "alter", false, ("retention.ms", null)), version);
        Assert.That(nullValue.Responses[0].ErrorCode, Is.EqualTo((short)ErrorCode.InvalidConfig));
        Assert.That(topic.Config.Overrides, Is.EquivalentTo(new Dictionary<string, string> { ["retention.ms"] = "1000" }));

        var unknownTopic = await f.Client.SendAsync<AlterConfigsResponse>(Request(Topic, "missing", false, ("retention.ms", "1")), version);
        Assert.That(unknownTopic.Responses[0].ErrorCode, Is.EqualTo((short)ErrorCode.UnknownTopicOrPartition));
    }

    [TestCase((short)0)]
    [TestCase((short)2)]
    public async Task StaticBrokerConfigsCannotChange(short version)
    {
        await using var f = await BrokerFixture.StartAsync();
        string id = f.State.NodeId.ToString();
        var change = await f.Client.SendAsync<AlterConfigsResponse>(Request(Broker, id, false, ("num.partitions", "4")), version);
        Assert.That(change.Responses[0].ErrorCode, Is.EqualTo((short)ErrorCode.InvalidRequest));
        Assert.That(change.Responses[0].ErrorMessage, Does.Contain("Cannot update these configs dynamically"));
        Assert.That(f.State.Config.NumPartitions, Is.EqualTo(1));
        var nothing = await f.Client.SendAsync<AlterConfigsResponse>(Request(Broker, id, false), version);
        Assert.That(nothing.Responses[0].ErrorCode, Is.EqualTo((short)ErrorCode.None));
    }
}

[TestFixture]
public sealed class IncrementalAlterConfigsTests
{
    private const sbyte Topic = 2, Broker = 4;
    private const sbyte Set = 0, Delete = 1, Append = 2, Subtract = 3;

    private static IncrementalAlterConfigsRequest Request(sbyte type, string name, bool validateOnly, params (string Name, sbyte Op, string? Value)[] configs)
    {
        var resource = new IncrementalAlterConfigsRequest.AlterConfigsResource { ResourceType = type, ResourceName = name };
        foreach (var (n, op, v) in configs)
            resource.Configs.Add(new IncrementalAlterConfigsRequest.AlterableConfig { Name = n, ConfigOperation = op, Value = v });
        return new IncrementalAlterConfigsRequest { Resources = [resource], ValidateOnly = validateOnly };
    }

    [TestCase((short)0)]
    [TestCase((short)1)]
    public async Task SetDeleteAppendSubtract(short version)
    {
        await using var f = await BrokerFixture.StartAsync();
        var topic = f.CreateTopic("inc", 1, new() { ["retention.ms"] = "1000", ["segment.ms"] = "9000" });

        var r1 = await f.Client.SendAsync<IncrementalAlterConfigsResponse>(
            Request(Topic, "inc", false, ("retention.ms", Set, "2000"), ("segment.ms", Delete, null), ("cleanup.policy", Append, "compact")), version);
        Assert.That(r1.Responses.Single().ErrorCode, Is.EqualTo((short)ErrorCode.None));
        Assert.That(r1.Responses[0].ResourceName, Is.EqualTo("inc"));
        Assert.That(topic.Config.Overrides, Is.EquivalentTo(new Dictionary<string, string>
        {
            ["retention.ms"] = "2000",
            ["cleanup.policy"] = "delete,compact", // appended to the default
        }));
        Assert.That(topic.Config.Compact, Is.True);

        var r2 = await f.Client.SendAsync<IncrementalAlterConfigsResponse>(Request(Topic, "inc", false, ("cleanup.policy", Subtract, "delete")), version);
        Assert.That(r2.Responses[0].ErrorCode, Is.EqualTo((short)ErrorCode.None));
        Assert.That(topic.Config.Overrides["cleanup.policy"], Is.EqualTo("compact"));
        Assert.That(topic.Config.Delete, Is.False);
        Assert.That(topic.Config.Overrides["retention.ms"], Is.EqualTo("2000"));
    }

    [TestCase((short)0)]
    [TestCase((short)1)]
    public async Task InvalidOperationsChangeNothing(short version)
    {
        await using var f = await BrokerFixture.StartAsync();
        var topic = f.CreateTopic("inc", 1, new() { ["retention.ms"] = "1000" });
        var before = new Dictionary<string, string>(topic.Config.Overrides);

        async Task<IncrementalAlterConfigsResponse.AlterConfigsResourceResponse> Send(bool validateOnly, params (string, sbyte, string?)[] ops) =>
            (await f.Client.SendAsync<IncrementalAlterConfigsResponse>(Request(Topic, "inc", validateOnly, ops), version)).Responses[0];

        var append = await Send(false, ("retention.ms", Append, "5"));
        Assert.That(append.ErrorCode, Is.EqualTo((short)ErrorCode.InvalidConfig));
        Assert.That(append.ErrorMessage, Is.EqualTo("Can't APPEND to key retention.ms because its type is not LIST."));
        Assert.That((await Send(false, ("made.up", Subtract, "1"))).ErrorCode, Is.EqualTo((short)ErrorCode.InvalidConfig));
        var nullSet = await Send(false, ("retention.ms", Set, null));
        Assert.That(nullSet.ErrorCode, Is.EqualTo((short)ErrorCode.InvalidRequest));
        Assert.That(nullSet.ErrorMessage, Does.Contain("Null value not supported"));
        Assert.That((await Send(false, ("segment.ms", Set, "1"), ("segment.ms", Delete, null))).ErrorCode, Is.EqualTo((short)ErrorCode.InvalidRequest));
        Assert.That((await Send(false, ("segment.ms", 9, "1"))).ErrorCode, Is.EqualTo((short)ErrorCode.InvalidRequest));
        Assert.That((await Send(false, ("segment.ms", Set, "1"), ("retention.ms", Set, "x"))).ErrorCode, Is.EqualTo((short)ErrorCode.InvalidConfig));
        Assert.That((await Send(false, ("made.up", Set, "1"))).ErrorCode, Is.EqualTo((short)ErrorCode.InvalidConfig));
        Assert.That((await Send(true, ("retention.ms", Set, "7"))).ErrorCode, Is.EqualTo((short)ErrorCode.None));
        Assert.That(topic.Config.Overrides, Is.EquivalentTo(before));

        var unknown = await f.Client.SendAsync<IncrementalAlterConfigsResponse>(Request(Topic, "missing", false, ("retention.ms", Set, "1")), version);
        Assert.That(unknown.Responses[0].ErrorCode, Is.EqualTo((short)ErrorCode.UnknownTopicOrPartition));
        var broker = await f.Client.SendAsync<IncrementalAlterConfigsResponse>(Request(Broker, "", false, ("num.partitions", Set, "2")), version);
        Assert.That(broker.Responses[0].ErrorCode, Is.EqualTo((short)ErrorCode.InvalidRequest));
    }

    [Test]
    public async Task ChangesAreVisibleInDescribeConfigs()
    {
        await using var f = await BrokerFixture.StartAsync();
        f.CreateTopic("inc", 1);
        await f.Client.SendAsync<IncrementalAlterConfigsResponse>(Request(Topic, "inc", false, ("max.message.bytes", Set, "2048")), 1);
        var describe = await f.Client.SendAsync<DescribeConfigsResponse>(new DescribeConfigsRequest
        {
            Resources = [new DescribeConfigsRequest.DescribeConfigsResource { ResourceType = Topic, ResourceName = "inc", ConfigurationKeys = ["max.message.bytes"] }],
        }, 4);
        var entry = describe.Results[0].Configs.Single();
        Assert.That(entry.Value, Is.EqualTo("2048"));
        Assert.That(entry.ConfigSource, Is.EqualTo((sbyte)1));
    }
}
