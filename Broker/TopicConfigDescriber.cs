using Kayak.Storage;

namespace Kayak.Broker;

/// <summary>Kafka's DescribeConfigs config sources (ConfigSource in the protocol).</summary>
public enum ConfigSource : sbyte
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

public readonly record struct DescribedConfig(string Name, string? Value, ConfigSource Source, bool ReadOnly, bool IsSensitive, string Type, string? Documentation);

/// <summary>
/// Describes a topic's configs as Kafka does: an override is DYNAMIC_TOPIC_CONFIG; otherwise the value
/// follows the broker's log.* setting (STATIC_BROKER_CONFIG when set in server.properties) or Kafka's default.
/// </summary>
public static class TopicConfigDescriber
{
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

    public static List<DescribedConfig> Describe(BrokerState broker, IReadOnlyDictionary<string, string> overrides)
    {
        var config = new TopicConfig(overrides, broker.Logs.Options);
        var result = new List<DescribedConfig>(TopicConfig.Definitions.Count);
        foreach (var def in TopicConfig.Definitions)
        {
            ConfigSource source;
            if (overrides.ContainsKey(def.Name)) source = ConfigSource.DynamicTopicConfig;
            else
            {
                var synonym = BrokerSynonym(def.Name);
                source = synonym is not null && broker.Config.Has(synonym) ? ConfigSource.StaticBrokerConfig : ConfigSource.DefaultConfig;
            }
            result.Add(new DescribedConfig(def.Name, config.GetValue(def.Name), source, false, false, def.Type.ToString().ToUpperInvariant(), def.Documentation));
        }
        return result;
    }
}
