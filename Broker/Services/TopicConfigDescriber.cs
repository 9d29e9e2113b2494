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
/// Describes configs as Kafka's DescribeConfigs and CreateTopics v5+ report them (ConfigHelper): a topic override is
/// DYNAMIC_TOPIC_CONFIG; otherwise the topic config follows its broker synonym (log.retention.ms, ...), which is
/// DYNAMIC_BROKER_CONFIG / DYNAMIC_DEFAULT_BROKER_CONFIG when set dynamically, STATIC_BROKER_CONFIG when set in
/// server.properties, else DEFAULT_CONFIG.
/// </summary>
internal sealed class TopicConfigDescriber
{
    private readonly DynamicBrokerConfig _config;
    private readonly Func<LogOptions> _defaults;

    /// <param name="config">The broker's static and dynamic configs.</param>
    /// <param name="defaults">The topic config defaults Storage runs with now, bound from the config in force.</param>
    public TopicConfigDescriber(DynamicBrokerConfig config, Func<LogOptions> defaults)
    {
        _config = config;
        _defaults = defaults;
    }

    /// <summary>For a broker with no dynamic configs (tests of the handlers over services).</summary>
    public TopicConfigDescriber(BrokerConfig config, LogOptions defaults)
        : this(new DynamicBrokerConfig(config, persist: false), () => defaults) { }

    /// <summary>Topic config → the broker config that supplies its default (Kafka's ServerTopicConfigSynonyms).</summary>
    public static string? BrokerSynonym(string topicConfig) => TopicConfig.Find(topicConfig)?.BrokerSynonym;

    /// <summary>Every known topic config of a topic with these overrides.</summary>
    public List<DescribedConfig> DescribeTopic(IReadOnlyDictionary<string, string> overrides)
    {
        var config = new TopicConfig(overrides, _defaults());
        var result = new List<DescribedConfig>(TopicConfig.Definitions.Count);
        foreach (var def in TopicConfig.Definitions)
        {
            var synonyms = new List<ConfigSynonym>(4);
            if (overrides.TryGetValue(def.Name, out var overridden))
                synonyms.Add(new ConfigSynonym(def.Name, overridden, ConfigSource.DynamicTopicConfig));
            if (def.BrokerSynonym is { } brokerKey)
                AddBrokerSynonyms(brokerKey, synonyms);
            var source = synonyms.Count > 0 ? synonyms[0].Source : ConfigSource.DefaultConfig;
            result.Add(new DescribedConfig(def.Name, config.GetValue(def.Name), source, synonyms, def.Documentation, def.Type));
        }
        return result;
    }

    /// <summary>
    /// Kafka's configSynonyms for one broker key: over the key's synonym chain, first this broker's dynamic values,
    /// then the dynamic cluster defaults, then the statically set values, then the defined defaults (a null default
    /// included), then dropping entries before the first one named <paramref name="key"/>. So with only
    /// log.retention.hours set, log.retention.ms still reports DEFAULT_CONFIG first, exactly as Kafka does.
    /// <paramref name="perBroker"/> false (the cluster-default resource) leaves out DYNAMIC_BROKER_CONFIG entries,
    /// as Kafka's createBrokerConfigEntry does.
    /// </summary>
    public void AddBrokerSynonyms(string key, List<ConfigSynonym> into, bool perBroker = true)
    {
        var chain = BrokerConfigDefinitions.SynonymChain(key);
        int first = into.Count;
        if (perBroker) Add(chain, _config.PerBroker, ConfigSource.DynamicBrokerConfig, into);
        Add(chain, _config.ClusterDefault, ConfigSource.DynamicDefaultBrokerConfig, into);
        Add(chain, _config.Static.Values, ConfigSource.StaticBrokerConfig, into);
        foreach (var name in chain)
            if (BrokerConfigDefinitions.Find(name) is { } def)
                into.Add(new ConfigSynonym(name, def.Default, ConfigSource.DefaultConfig));
        int drop = 0;
        while (first + drop < into.Count && into[first + drop].Name != key) drop++;
        into.RemoveRange(first, drop);
    }

    private static void Add(string[] chain, IReadOnlyDictionary<string, string> values, ConfigSource source, List<ConfigSynonym> into)
    {
        foreach (var name in chain)
            if (values.TryGetValue(name, out var value)) into.Add(new ConfigSynonym(name, value, source));
    }
}
