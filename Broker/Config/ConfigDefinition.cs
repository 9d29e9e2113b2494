using System.Globalization;
// One ConfigType for broker and topic definitions (issue 10, step 6): its values are DescribeConfigs' configType ids.
using ConfigType = Kayak.Storage.ConfigType;

namespace Kayak.Broker.Config;

/// <summary>
/// A bad broker configuration value: the message names the key, as Kafka's ConfigException does. A KafkaException
/// with INVALID_CONFIG like Storage's topic-config error, so the host, the embedding API and IncrementalAlterConfigs
/// all see the one error type (issue 10).
/// </summary>
public sealed class ConfigException : Kayak.Protocol.KafkaException
{
    public ConfigException(string key, string? value, string problem)
        : base(Kayak.Protocol.ErrorCode.InvalidConfig, $"Invalid value {value ?? "null"} for configuration {key}: {problem}") { Key = key; }

    public string Key { get; }
}

/// <summary>
/// How a broker config may change at run time (Kafka's "Update Mode" in its broker config docs, KIP-226):
/// <see cref="ReadOnly"/> only in server.properties; <see cref="ClusterWide"/> per broker or as the cluster default;
/// <see cref="PerBroker"/> per broker only (Kafka's listener configs); <see cref="PerListener"/> per broker and only
/// with a listener.name.&lt;name&gt;. prefix (Kafka's SslConfigs.RECONFIGURABLE_CONFIGS).
/// </summary>
public enum ConfigUpdateMode : byte { ReadOnly, ClusterWide, PerBroker, PerListener }

/// <summary>
/// One broker config key as Kafka defines it: type, default and valid range, how it may change at run time, its
/// documentation, and the lower-precedence keys that set the same value. <see cref="Used"/> is false for keys Kafka
/// knows that a single-node broker accepts and ignores (no warning for them). Everything that handles broker configs
/// reads this record: parsing and validation (<see cref="Validate"/>), DescribeConfigs (type, read-only, sensitive,
/// synonyms, documentation) and dynamic updates (<see cref="UpdateMode"/>). The table is BrokerConfigDefinitions.All.
/// </summary>
/// <param name="Update">How the key may change at run time; null: cluster-wide when the key is the broker default of a
/// topic config (Kafka's DynamicLogConfig.ReconfigurableConfigs), else read-only.</param>
/// <param name="Synonyms">Keys that set the same value with lower precedence, highest first (Kafka's
/// DynamicBrokerConfig.brokerConfigSynonyms), e.g. log.retention.minutes and log.retention.hours for log.retention.ms.</param>
/// <param name="Doc">DescribeConfigs' documentation (v3+, when asked); null: none.</param>
public sealed record ConfigDefinition(string Name, ConfigType Type, string? Default, bool Used = true,
    long Min = long.MinValue, long Max = long.MaxValue, string[]? ValidValues = null, ConfigUpdateMode? Update = null,
    string[]? Synonyms = null, string? Doc = null)
{
    /// <summary>The topic config this key supplies the default of (Kafka's ServerTopicConfigSynonyms, kept with the
    /// topic configs in Storage), or null.</summary>
    public string? TopicSynonym => BrokerConfigDefinitions.TopicSynonymOf(Name);

    /// <summary>How the key may change at run time (see <see cref="Update"/>).</summary>
    public ConfigUpdateMode UpdateMode => Update ?? (TopicSynonym is not null ? ConfigUpdateMode.ClusterWide : ConfigUpdateMode.ReadOnly);

    /// <summary>Values never sent to clients (Kafka's KafkaConfig.maybeSensitive: PASSWORD configs).</summary>
    public bool IsSensitive => Type == ConfigType.Password;

    public void Validate(string? value)
    {
        if (value is null) return;
        switch (Type)
        {
            case ConfigType.Boolean:
                if (!bool.TryParse(value.Trim(), out _)) throw new ConfigException(Name, value, "Expected value to be either true or false");
                break;
            case ConfigType.Int:
            case ConfigType.Long:
                if (!long.TryParse(value.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l)
                    || (Type == ConfigType.Int && (l < int.MinValue || l > int.MaxValue)))
                    throw new ConfigException(Name, value, Type == ConfigType.Int ? "Not a number of type INT" : "Not a number of type LONG");
                if (l < Min) throw new ConfigException(Name, value, $"Value must be at least {Min}");
                if (l > Max) throw new ConfigException(Name, value, $"Value must be no more than {Max}");
                break;
            case ConfigType.Double:
                if (!double.TryParse(value.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out _))
                    throw new ConfigException(Name, value, "Not a number of type DOUBLE");
                break;
        }
        if (ValidValues is not null && Array.IndexOf(ValidValues, value.Trim()) < 0)
            throw new ConfigException(Name, value, "String must be one of: " + string.Join(", ", ValidValues));
    }
}
