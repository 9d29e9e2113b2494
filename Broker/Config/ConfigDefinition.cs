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
/// One broker config key as Kafka defines it: type, default and valid range. <see cref="Used"/> is
/// false for keys Kafka knows that a single-node broker accepts and ignores (no warning for them).
/// </summary>
public sealed record ConfigDefinition(string Name, ConfigType Type, string? Default, bool Used = true,
    long Min = long.MinValue, long Max = long.MaxValue, string[]? ValidValues = null, bool ReadOnly = true)
{
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
