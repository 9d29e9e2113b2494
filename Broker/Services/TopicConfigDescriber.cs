using Kayak.Broker.Config;
using Kayak.Storage;

namespace Kayak.Broker.Services;

/// <summary>Kafka's DescribeConfigs config sources (ConfigSource in the protocol).</summary>
internal enum ConfigSource : sbyte
{
    Unknown = 0,
    DynamicTopicConfig = 1,
    DynamicBrokerConfig = 2,
    DynamicDefaultBrokerConfig = 3,
    StaticBrokerConfig = 4,
    DefaultConfig = 5,
    DynamicBrokerLoggerConfig = 6,
    ClientMetricsConfig = 7,
    GroupConfig = 8,
}

internal readonly record struct ConfigSynonym(string Name, string? Value, ConfigSource Source);

/// <summary>One described config: its value in force, where it comes from (the first synonym), and the synonyms.</summary>
internal sealed record DescribedConfig(string Name, string? Value, ConfigSource Source, List<ConfigSynonym> Synonyms, string? Documentation,
    Kayak.Storage.ConfigType Type);

/// <summary>
/// Describes configs as Kafka's DescribeConfigs and CreateTopics v5+ report them: a topic override is
/// DYNAMIC_TOPIC_CONFIG; otherwise the topic config follows its broker synonym (log.retention.ms, ...), which is
/// STATIC_BROKER_CONFIG when set in server.properties, else DEFAULT_CONFIG.
/// </summary>
internal sealed class TopicConfigDescriber
{
    private readonly BrokerConfig _config;
    private readonly LogOptions _defaults;

    /// <param name="config">The broker's static config (server.properties and overrides).</param>
    /// <param name="defaults">The topic config defaults Storage runs with, built from <paramref name="config"/>.</param>
    public TopicConfigDescriber(BrokerConfig config, LogOptions defaults)
    {
        _config = config;
        _defaults = defaults;
    }

    /// <summary>Topic config → the broker config that supplies its default (Kafka's LogConfig synonyms).</summary>
    public static string? BrokerSynonym(string topicConfig) => topicConfig switch
    {
        "cleanup.policy" => "log.cleanup.policy",
        "retention.ms" => "log.retention.ms",
        "retention.bytes" => "log.retention.bytes",
        "segment.bytes" => "log.segment.bytes",
        "segment.ms" => "log.roll.ms",
        "max.message.bytes" => "message.max.bytes",
        "message.timestamp.type" => "log.message.timestamp.type",
        "compression.type" => "compression.type",
        "flush.messages" => "log.flush.interval.messages",
        "flush.ms" => "log.flush.interval.ms",
        "index.interval.bytes" => "log.index.interval.bytes",
        "segment.index.bytes" => "log.index.size.max.bytes",
        "min.insync.replicas" => "min.insync.replicas",
        _ => null,
    };

    /// <summary>Every known topic config of a topic with these overrides.</summary>
    public List<DescribedConfig> DescribeTopic(IReadOnlyDictionary<string, string> overrides)
    {
        var config = new TopicConfig(overrides, _defaults);
        var result = new List<DescribedConfig>(TopicConfig.Definitions.Count);
        foreach (var def in TopicConfig.Definitions)
        {
            var synonyms = new List<ConfigSynonym>(4);
            if (overrides.TryGetValue(def.Name, out var overridden))
                synonyms.Add(new ConfigSynonym(def.Name, overridden, ConfigSource.DynamicTopicConfig));
            if (BrokerSynonym(def.Name) is { } brokerKey)
                AddBrokerSynonyms(brokerKey, synonyms);
            var source = synonyms.Count > 0 ? synonyms[0].Source : ConfigSource.DefaultConfig;
            result.Add(new DescribedConfig(def.Name, config.GetValue(def.Name), source, synonyms, def.Documentation, def.Type));
        }
        return result;
    }

    /// <summary>
    /// Kafka's configSynonyms for one broker key: over the key's synonym chain, first the statically set
    /// values, then the defined defaults (a null default included), then dropping entries before the first
    /// one named <paramref name="key"/>. So with only log.retention.hours set, log.retention.ms still reports
    /// DEFAULT_CONFIG first, exactly as Kafka does.
    /// </summary>
    public void AddBrokerSynonyms(string key, List<ConfigSynonym> into)
    {
        var chain = BrokerSynonymChain(key);
        int first = into.Count;
        foreach (var name in chain)
            if (_config.Values.TryGetValue(name, out var value))
                into.Add(new ConfigSynonym(name, value, ConfigSource.StaticBrokerConfig));
        foreach (var name in chain)
            if (BrokerConfigDefinitions.Find(name) is { } def)
                into.Add(new ConfigSynonym(name, def.Default, ConfigSource.DefaultConfig));
        int drop = 0;
        while (first + drop < into.Count && into[first + drop].Name != key) drop++;
        into.RemoveRange(first, drop);
    }

    /// <summary>A broker key's synonym chain, highest precedence first (Kafka's DynamicBrokerConfig.brokerConfigSynonyms).</summary>
    private static string[] BrokerSynonymChain(string key) => key switch
    {
        "log.retention.ms" or "log.retention.minutes" or "log.retention.hours" => ["log.retention.ms", "log.retention.minutes", "log.retention.hours"],
        "log.roll.ms" or "log.roll.hours" => ["log.roll.ms", "log.roll.hours"],
        "log.flush.interval.ms" => ["log.flush.interval.ms", "log.flush.scheduler.interval.ms"],
        _ => [key],
    };
}
