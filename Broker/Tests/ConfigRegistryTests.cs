using System.Globalization;
using Kayak.Broker.Config;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using NUnit.Framework;
using ConfigType = Kayak.Storage.ConfigType;

namespace Kayak.Broker.Tests;

/// <summary>
/// The broker config table (BrokerConfigDefinitions.All, issue 10 step 6) drives parsing, DescribeConfigs and dynamic
/// updates: each test walks every definition and checks what a client sees follows from that one line.
/// </summary>
[TestFixture]
public sealed class ConfigRegistryTests
{
    private const sbyte Broker = 4;
    private const sbyte Set = 0;
    private const sbyte StaticBroker = 4, Default = 5;

    private static IEnumerable<ConfigDefinition> Defs => BrokerConfigDefinitions.All;

    /// <summary>A value the definition accepts: its default, else the smallest allowed number, else any text.</summary>
    private static string ValidValue(ConfigDefinition def) => def.Default ?? def.Type switch
    {
        ConfigType.Int or ConfigType.Long => Math.Min(def.Max, Math.Max(def.Min, 1)).ToString(CultureInfo.InvariantCulture),
        ConfigType.Boolean => "true",
        _ => def.ValidValues?[0] ?? "x",
    };

    [Test]
    public void EveryDefinitionsBoundsAndTypeAreWhatParsingEnforcesNamingTheKey()
    {
        int checkedBounds = 0;
        foreach (var def in Defs)
        {
            var bad = new List<string>();
            if (def.Type is ConfigType.Int or ConfigType.Long)
            {
                bad.Add("twelve");
                if (def.Min > long.MinValue) bad.Add((def.Min - 1).ToString(CultureInfo.InvariantCulture));
                if (def.Max < long.MaxValue) bad.Add((def.Max + 1).ToString(CultureInfo.InvariantCulture));
                if (def.Type == ConfigType.Int) bad.Add("2147483648");
            }
            if (def.Type == ConfigType.Boolean) bad.Add("maybe");
            if (def.ValidValues is not null) bad.Add("not-a-valid-value");
            foreach (var value in bad)
            {
                var e = Assert.Throws<ConfigException>(() => _ = new BrokerConfig(new Dictionary<string, string> { [def.Name] = value }),
                    $"{def.Name}={value}");
                Assert.That(e!.Key, Is.EqualTo(def.Name));
                Assert.That(e.Message, Does.Contain($"configuration {def.Name}:"));
                checkedBounds++;
            }
        }
        Assert.That(checkedBounds, Is.GreaterThan(100));
    }

    [Test]
    public void EveryDefaultParsesAndGivesTheSameConfigAsLeavingItOut()
    {
        var explicitDefaults = new Dictionary<string, string>();
        foreach (var def in Defs)
            if (def.Default is not null) explicitDefaults[def.Name] = def.Default;
        var given = new BrokerConfig(explicitDefaults);
        var implicitDefaults = new BrokerConfig(new Dictionary<string, string>());
        Assert.That(given.UnknownKeys, Is.Empty);
        foreach (var def in Defs)
            Assert.That(given.GetString(def.Name), Is.EqualTo(implicitDefaults.GetString(def.Name)).And.EqualTo(def.Default), def.Name);
        Assert.That((given.LogRetentionMs, given.LogRollMs, given.NumPartitions, given.LogSegmentBytes),
            Is.EqualTo((implicitDefaults.LogRetentionMs, implicitDefaults.LogRollMs, implicitDefaults.NumPartitions, implicitDefaults.LogSegmentBytes)));
    }

    [Test]
    public void LogDefaultsOfTopicConfigsAreWrittenOnceInStoragesTopicTable()
    {
        int paired = 0;
        foreach (var def in Defs)
        {
            if (def.TopicSynonym is not { } topic || def.Default is null) continue;
            Assert.That(def.Default, Is.EqualTo(Kayak.Storage.TopicConfig.Find(topic)!.DefaultValue), def.Name);
            paired++;
        }
        Assert.That(paired, Is.GreaterThanOrEqualTo(13));
        // Storage's own LogOptions defaults and the broker's bound defaults are the same values.
        var bound = OptionsBinding.Log(new BrokerConfig(new Dictionary<string, string>()), TimeProvider.System,
            Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
        var storage = new Kayak.Storage.LogOptions();
        Assert.That((bound.SegmentBytes, bound.RollMs, bound.RetentionMs, bound.RetentionBytes, bound.FlushIntervalMessages,
                bound.FlushIntervalMs, bound.IndexIntervalBytes, bound.SegmentIndexBytes, bound.MaxMessageBytes),
            Is.EqualTo((storage.SegmentBytes, storage.RollMs, storage.RetentionMs, storage.RetentionBytes, storage.FlushIntervalMessages,
                storage.FlushIntervalMs, storage.IndexIntervalBytes, storage.SegmentIndexBytes, storage.MaxMessageBytes)));
        Assert.That((bound.MessageTimestampType, bound.CleanupPolicy, bound.CompressionType, bound.RetentionCheckIntervalMs, bound.RecoveryThreadsPerDataDir),
            Is.EqualTo((storage.MessageTimestampType, storage.CleanupPolicy, storage.CompressionType, storage.RetentionCheckIntervalMs, storage.RecoveryThreadsPerDataDir)));
    }

    [Test]
    public void SynonymChainsComeFromTheDefinitions()
    {
        foreach (var def in Defs)
        {
            if (def.Synonyms is null) continue;
            string[] chain = [def.Name, .. def.Synonyms];
            foreach (var name in chain) Assert.That(BrokerConfigDefinitions.SynonymChain(name), Is.EqualTo(chain), name);
        }
        Assert.That(BrokerConfigDefinitions.SynonymChain("log.retention.hours"),
            Is.EqualTo(new[] { "log.retention.ms", "log.retention.minutes", "log.retention.hours" }));
        Assert.That(BrokerConfigDefinitions.SynonymChain("num.partitions"), Is.EqualTo(new[] { "num.partitions" }));
    }

    [Test]
    public void TopicSynonymsAreClusterWideUnlessTheDefinitionSaysOtherwise()
    {
        Assert.That(BrokerConfigDefinitions.Find("log.segment.bytes")!.TopicSynonym, Is.EqualTo("segment.bytes"));
        Assert.That(BrokerConfigDefinitions.Find("log.segment.bytes")!.UpdateMode, Is.EqualTo(ConfigUpdateMode.ClusterWide));
        Assert.That(BrokerConfigDefinitions.Find("log.retention.hours")!.UpdateMode, Is.EqualTo(ConfigUpdateMode.ReadOnly));
        foreach (var def in Defs)
            if (def.Update is null) Assert.That(def.UpdateMode == ConfigUpdateMode.ClusterWide, Is.EqualTo(def.TopicSynonym is not null), def.Name);
        // Kafka's dynamic keys without a definition keep their mode; unknown keys are read-only.
        Assert.That(DynamicBrokerConfigs.UpdateMode("log.cleaner.threads"), Is.EqualTo(ConfigUpdateMode.ClusterWide));
        Assert.That(DynamicBrokerConfigs.UpdateMode("sasl.kerberos.service.name"), Is.EqualTo(ConfigUpdateMode.PerBroker));
        Assert.That(DynamicBrokerConfigs.UpdateMode("log.cleaner.delete.retention.ms"), Is.EqualTo(ConfigUpdateMode.ClusterWide));
        Assert.That(DynamicBrokerConfigs.UpdateMode("no.such.config"), Is.EqualTo(ConfigUpdateMode.ReadOnly));
    }

    [Test]
    public async Task DescribeConfigsReportsEachDefinitionsTypeModeSensitivityAndSynonyms()
    {
        await using var f = await BrokerFixture.StartAsync();
        string id = f.State.NodeId.ToString(CultureInfo.InvariantCulture);
        var response = await f.Client.SendAsync<DescribeConfigsResponse>(new DescribeConfigsRequest
        {
            Resources = [new DescribeConfigsRequest.DescribeConfigsResource { ResourceType = Broker, ResourceName = id }],
            IncludeSynonyms = true,
            IncludeDocumentation = true,
        }, 4);
        var result = response.Results.Single();
        Assert.That(result.ErrorCode, Is.EqualTo((short)ErrorCode.None), result.ErrorMessage);
        var byName = result.Configs.ToDictionary(c => c.Name);
        foreach (var def in Defs)
        {
            Assert.That(byName.TryGetValue(def.Name, out var entry), Is.True, def.Name);
            Assert.That(entry!.ReadOnly, Is.EqualTo(def.UpdateMode == ConfigUpdateMode.ReadOnly), def.Name);
            Assert.That(entry.ConfigType, Is.EqualTo((sbyte)def.Type), def.Name);
            Assert.That(entry.IsSensitive, Is.EqualTo(def.IsSensitive), def.Name);
            Assert.That(entry.Documentation, Is.EqualTo(def.Doc), def.Name);
            if (def.IsSensitive) Assert.That(entry.Value, Is.Null, def.Name);
            // The fixture sets a few keys in its server.properties (listeners, log.dirs ...): those are STATIC_BROKER_CONFIG.
            if (def.Name is "node.id" or "broker.id" || entry.ConfigSource == StaticBroker) continue;
            Assert.That(entry.ConfigSource, Is.EqualTo(Default), def.Name);
            Assert.That(entry.Value, Is.EqualTo(def.Default), def.Name);
            // Nothing is set: the synonyms are the defaults over the key's chain from the key on.
            var chain = BrokerConfigDefinitions.SynonymChain(def.Name);
            var expected = chain[Array.IndexOf(chain, def.Name)..];
            Assert.That(entry.Synonyms.Select(s => s.Name), Is.EqualTo(expected), def.Name);
            Assert.That(entry.Synonyms.Select(s => s.Source), Is.All.EqualTo(Default), def.Name);
        }
    }

    [Test]
    public async Task DynamicUpdatesFollowEachDefinitionsMode()
    {
        await using var f = await BrokerFixture.StartAsync();
        string id = f.State.NodeId.ToString(CultureInfo.InvariantCulture);
        const short invalidRequest = (short)ErrorCode.InvalidRequest;
        int accepted = 0;
        foreach (var def in Defs)
        {
            string value = ValidValue(def);
            var atBroker = await ValidateOnlyAsync(f.Client, id, def.Name, value);
            var atDefault = await ValidateOnlyAsync(f.Client, "", def.Name, value);
            switch (def.UpdateMode)
            {
                case ConfigUpdateMode.ReadOnly:
                    var refused = (invalidRequest, $"Cannot update these configs dynamically: [{def.Name}]");
                    Assert.That(atBroker, Is.EqualTo(refused), def.Name);
                    Assert.That(atDefault, Is.EqualTo(refused), def.Name);
                    break;
                case ConfigUpdateMode.ClusterWide:
                    Assert.That(atBroker, Is.EqualTo(((short)0, (string?)null)), def.Name);
                    Assert.That(atDefault, Is.EqualTo(((short)0, (string?)null)), def.Name);
                    accepted++;
                    break;
                case ConfigUpdateMode.PerBroker:
                    Assert.That(atBroker, Is.EqualTo(((short)0, (string?)null)), def.Name);
                    Assert.That(atDefault, Is.EqualTo((invalidRequest,
                        $"Cannot update these configs at default cluster level, broker id must be specified: [{def.Name}]")), def.Name);
                    accepted++;
                    break;
                case ConfigUpdateMode.PerListener:
                    Assert.That(atBroker, Is.EqualTo((invalidRequest,
                        $"These security configs can be dynamically updated only per-listener using the listener prefix: [{def.Name}]")), def.Name);
                    Assert.That(await ValidateOnlyAsync(f.Client, id, "listener.name.plaintext." + def.Name, value),
                        Is.EqualTo(((short)0, (string?)null)), def.Name);
                    accepted++;
                    break;
            }
        }
        Assert.That(accepted, Is.GreaterThan(20));
        // A dynamic key's own bounds apply to the update, with the key named.
        var (code, message) = await ValidateOnlyAsync(f.Client, id, "log.segment.bytes", "13");
        Assert.That(code, Is.EqualTo(invalidRequest));
        Assert.That(message, Does.Contain("configuration log.segment.bytes:"));
    }

    private static async Task<(short, string?)> ValidateOnlyAsync(RawClient client, string resource, string name, string value)
    {
        var request = new IncrementalAlterConfigsRequest
        {
            Resources =
            [
                new IncrementalAlterConfigsRequest.AlterConfigsResource
                {
                    ResourceType = Broker, ResourceName = resource,
                    Configs = [new IncrementalAlterConfigsRequest.AlterableConfig { Name = name, ConfigOperation = Set, Value = value }],
                },
            ],
            ValidateOnly = true,
        };
        var r = (await client.SendAsync<IncrementalAlterConfigsResponse>(request, 1)).Responses.Single();
        return (r.ErrorCode, r.ErrorCode == 0 ? null : r.ErrorMessage);
    }
}
