using System.Globalization;

namespace Kayak.Storage;

/// <summary>Kind of a topic config value, as DescribeConfigs' configType reports it (KIP-569).</summary>
public enum ConfigType : byte
{
    Unknown = 0,
    Boolean = 1,
    String = 2,
    Int = 3,
    Short = 4,
    Long = 5,
    Double = 6,
    List = 7,
    Class = 8,
    Password = 9,
}

/// <summary>
/// One known topic-level config: its name, Kafka's default value, type, a short description, and the broker config
/// that supplies its default when the topic has no override (Kafka's ServerTopicConfigSynonyms; null: none).
/// </summary>
public sealed record TopicConfigDefinition(string Name, ConfigType Type, string? DefaultValue, string Documentation,
    string? BrokerSynonym = null);

/// <summary>
/// A topic's config: the explicit overrides (as given to CreateTopics / AlterConfigs) plus typed,
/// resolved values that fall back to the broker defaults in <see cref="LogOptions"/>. Immutable:
/// altering configs builds a new instance and swaps it in.
/// </summary>
public sealed class TopicConfig
{
    public const string CleanupPolicyConfig = "cleanup.policy";
    public const string RetentionMsConfig = "retention.ms";
    public const string RetentionBytesConfig = "retention.bytes";
    public const string SegmentBytesConfig = "segment.bytes";
    public const string SegmentMsConfig = "segment.ms";
    public const string MaxMessageBytesConfig = "max.message.bytes";
    public const string MessageTimestampTypeConfig = "message.timestamp.type";
    public const string CompressionTypeConfig = "compression.type";
    public const string FlushMessagesConfig = "flush.messages";
    public const string FlushMsConfig = "flush.ms";
    public const string IndexIntervalBytesConfig = "index.interval.bytes";
    public const string SegmentIndexBytesConfig = "segment.index.bytes";
    public const string MinInSyncReplicasConfig = "min.insync.replicas";

    private static readonly string[] CompressionTypes = ["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];

    /// <summary>
    /// Topic configs Kafka 3.x/4.x knows, with Kafka's defaults, for DescribeConfigs. Values that follow a
    /// broker setting are resolved against <see cref="LogOptions"/> by <see cref="GetValue"/>.
    /// </summary>
    public static IReadOnlyList<TopicConfigDefinition> Definitions { get; } =
    [
        new(CleanupPolicyConfig, ConfigType.List, "delete", "Retention policy: delete, compact or both.", "log.cleanup.policy"),
        new(CompressionTypeConfig, ConfigType.String, "producer", "Final compression type; 'producer' keeps the producer's codec.", "compression.type"),
        new("compression.gzip.level", ConfigType.Int, "-1", "Gzip compression level.", "compression.gzip.level"),
        new("compression.lz4.level", ConfigType.Int, "9", "LZ4 compression level.", "compression.lz4.level"),
        new("compression.zstd.level", ConfigType.Int, "3", "Zstd compression level.", "compression.zstd.level"),
        new("delete.retention.ms", ConfigType.Long, "86400000", "How long delete tombstones are retained on compacted topics.", "log.cleaner.delete.retention.ms"),
        new("file.delete.delay.ms", ConfigType.Long, "60000", "Delay before deleting a file from the filesystem.", "log.segment.delete.delay.ms"),
        new(FlushMessagesConfig, ConfigType.Long, "9223372036854775807", "Messages appended between forced fsyncs of the log.", "log.flush.interval.messages"),
        new(FlushMsConfig, ConfigType.Long, "9223372036854775807", "Maximum time between forced fsyncs of the log.", "log.flush.interval.ms"),
        new("follower.replication.throttled.replicas", ConfigType.List, "", "Throttled follower replicas."),
        new(IndexIntervalBytesConfig, ConfigType.Int, "4096", "Bytes appended between offset index entries.", "log.index.interval.bytes"),
        new("leader.replication.throttled.replicas", ConfigType.List, "", "Throttled leader replicas."),
        new("local.retention.bytes", ConfigType.Long, "-2", "Local retention size for tiered storage (-2 = retention.bytes).", "log.local.retention.bytes"),
        new("local.retention.ms", ConfigType.Long, "-2", "Local retention time for tiered storage (-2 = retention.ms).", "log.local.retention.ms"),
        new("max.compaction.lag.ms", ConfigType.Long, "9223372036854775807", "Maximum time a message stays ineligible for compaction.", "log.cleaner.max.compaction.lag.ms"),
        new(MaxMessageBytesConfig, ConfigType.Int, "1048588", "Largest record batch size allowed.", "message.max.bytes"),
        new("message.timestamp.after.max.ms", ConfigType.Long, "9223372036854775807", "Maximum allowed timestamp ahead of the broker clock.", "log.message.timestamp.after.max.ms"),
        new("message.timestamp.before.max.ms", ConfigType.Long, "9223372036854775807", "Maximum allowed timestamp behind the broker clock.", "log.message.timestamp.before.max.ms"),
        new(MessageTimestampTypeConfig, ConfigType.String, "CreateTime", "CreateTime or LogAppendTime.", "log.message.timestamp.type"),
        new("min.cleanable.dirty.ratio", ConfigType.Double, "0.5", "Dirty ratio that triggers compaction.", "log.cleaner.min.cleanable.ratio"),
        new("min.compaction.lag.ms", ConfigType.Long, "0", "Minimum time a message stays uncompacted.", "log.cleaner.min.compaction.lag.ms"),
        new(MinInSyncReplicasConfig, ConfigType.Int, "1", "Minimum in-sync replicas for acks=all.", "min.insync.replicas"),
        new("preallocate", ConfigType.Boolean, "false", "Preallocate segment files.", "log.preallocate"),
        new("remote.storage.enable", ConfigType.Boolean, "false", "Tiered storage."),
        new(RetentionBytesConfig, ConfigType.Long, "-1", "Maximum partition size before old segments are deleted.", "log.retention.bytes"),
        new(RetentionMsConfig, ConfigType.Long, "604800000", "Maximum age of a segment before it is deleted.", "log.retention.ms"),
        new(SegmentBytesConfig, ConfigType.Int, "1073741824", "Segment file size.", "log.segment.bytes"),
        new(SegmentIndexBytesConfig, ConfigType.Int, "10485760", "Offset index file size.", "log.index.size.max.bytes"),
        new("segment.jitter.ms", ConfigType.Long, "0", "Random jitter subtracted from segment.ms.", "log.roll.jitter.ms"),
        new(SegmentMsConfig, ConfigType.Long, "604800000", "Time after which the active segment is rolled.", "log.roll.ms"),
        new("unclean.leader.election.enable", ConfigType.Boolean, "false", "Allow out-of-sync replicas to become leader.", "unclean.leader.election.enable"),
    ];

    private static readonly Dictionary<string, TopicConfigDefinition> ByName = BuildByName();

    private static Dictionary<string, TopicConfigDefinition> BuildByName()
    {
        var d = new Dictionary<string, TopicConfigDefinition>(StringComparer.Ordinal);
        foreach (var def in Definitions) d[def.Name] = def;
        return d;
    }

    /// <summary>The default of a known topic config with a default (LogOptions' initial values read these).</summary>
    public static string DefaultString(string name) =>
        ByName[name].DefaultValue ?? throw new InvalidOperationException($"Topic config {name} has no default");

    public static long DefaultLong(string name) => long.Parse(DefaultString(name), NumberStyles.Integer, CultureInfo.InvariantCulture);

    public static bool IsKnown(string name) => ByName.ContainsKey(name);

    /// <summary>The definition of a topic config, or null when Kafka has no topic config of that name.</summary>
    public static TopicConfigDefinition? Find(string name) => ByName.GetValueOrDefault(name);

    private readonly LogOptions _defaults;

    /// <summary>The explicit overrides only.</summary>
    public IReadOnlyDictionary<string, string> Overrides { get; }

    public bool Delete { get; }
    public bool Compact { get; }
    public long RetentionMs { get; }
    public long RetentionBytes { get; }
    public int SegmentBytes { get; }
    public long SegmentMs { get; }
    public int MaxMessageBytes { get; }
    public bool LogAppendTime { get; }
    public string CompressionType { get; }
    public long FlushMessages { get; }
    public long FlushMs { get; }
    public int IndexIntervalBytes { get; }
    public int SegmentIndexBytes { get; }
    /// <summary>min.insync.replicas (acks=all fails with NOT_ENOUGH_REPLICAS when above the replica count).</summary>
    public int MinInSyncReplicas { get; }
    /// <summary>delete.retention.ms: how long compaction keeps tombstones.</summary>
    public long DeleteRetentionMs { get; }

    /// <summary>Validates and resolves <paramref name="overrides"/>; throws <see cref="ConfigException"/> naming the bad key.</summary>
    public TopicConfig(IReadOnlyDictionary<string, string>? overrides, LogOptions defaults)
    {
        _defaults = defaults;
        var copy = new Dictionary<string, string>(StringComparer.Ordinal);
        if (overrides is not null)
            foreach (var (k, v) in overrides)
            {
                if (!ByName.TryGetValue(k, out var def))
                    throw new ConfigException(k, $"Unknown topic config name: {k}");
                if (v is null) throw new ConfigException(k, $"Null value not supported for topic config {k}");
                Validate(def, v);
                copy[k] = v;
            }
        Overrides = copy;

        string policy = Get(CleanupPolicyConfig) ?? defaults.CleanupPolicy;
        Delete = policy.Contains("delete", StringComparison.Ordinal);
        Compact = policy.Contains("compact", StringComparison.Ordinal);
        RetentionMs = GetLong(RetentionMsConfig, defaults.RetentionMs);
        RetentionBytes = GetLong(RetentionBytesConfig, defaults.RetentionBytes);
        SegmentBytes = (int)GetLong(SegmentBytesConfig, Math.Min(defaults.SegmentBytes, int.MaxValue));
        SegmentMs = GetLong(SegmentMsConfig, defaults.RollMs);
        MaxMessageBytes = (int)GetLong(MaxMessageBytesConfig, defaults.MaxMessageBytes);
        LogAppendTime = (Get(MessageTimestampTypeConfig) ?? defaults.MessageTimestampType) == "LogAppendTime";
        CompressionType = Get(CompressionTypeConfig) ?? defaults.CompressionType;
        FlushMessages = GetLong(FlushMessagesConfig, defaults.FlushIntervalMessages);
        FlushMs = GetLong(FlushMsConfig, defaults.FlushIntervalMs);
        IndexIntervalBytes = (int)GetLong(IndexIntervalBytesConfig, defaults.IndexIntervalBytes);
        SegmentIndexBytes = (int)GetLong(SegmentIndexBytesConfig, defaults.SegmentIndexBytes);
        DeleteRetentionMs = GetLong("delete.retention.ms", 86_400_000);
        MinInSyncReplicas = (int)GetLong(MinInSyncReplicasConfig, 1);
    }

    /// <summary>A new config with <paramref name="overrides"/> replacing all current overrides (AlterConfigs semantics).</summary>
    public TopicConfig With(IReadOnlyDictionary<string, string> overrides) => new(overrides, _defaults);

    private string? Get(string key) => Overrides.TryGetValue(key, out var v) ? v : null;

    private long GetLong(string key, long fallback) =>
        Overrides.TryGetValue(key, out var v) ? long.Parse(v, NumberStyles.Integer, CultureInfo.InvariantCulture) : fallback;

    /// <summary>True when <paramref name="name"/> is set explicitly on this topic (DescribeConfigs' TOPIC_CONFIG source).</summary>
    public bool IsOverride(string name) => Overrides.ContainsKey(name);

    /// <summary>The effective value of a known config: the override, else the broker default, else Kafka's default; null if unknown.</summary>
    public string? GetValue(string name)
    {
        if (Overrides.TryGetValue(name, out var v)) return v;
        var inv = CultureInfo.InvariantCulture;
        switch (name)
        {
            case RetentionMsConfig: return RetentionMs.ToString(inv);
            case RetentionBytesConfig: return RetentionBytes.ToString(inv);
            case SegmentBytesConfig: return SegmentBytes.ToString(inv);
            case SegmentMsConfig: return SegmentMs.ToString(inv);
            case MaxMessageBytesConfig: return MaxMessageBytes.ToString(inv);
            case MessageTimestampTypeConfig: return LogAppendTime ? "LogAppendTime" : "CreateTime";
            case FlushMessagesConfig: return FlushMessages.ToString(inv);
            case FlushMsConfig: return FlushMs.ToString(inv);
            case IndexIntervalBytesConfig: return IndexIntervalBytes.ToString(inv);
            case SegmentIndexBytesConfig: return SegmentIndexBytes.ToString(inv);
            case CleanupPolicyConfig: return _defaults.CleanupPolicy;
            case CompressionTypeConfig: return CompressionType;
        }
        return ByName.TryGetValue(name, out var def) ? def.DefaultValue : null;
    }

    /// <summary>Checks one value the way Kafka's LogConfig ConfigDef validators do.</summary>
    public static void Validate(string key, string value)
    {
        if (!ByName.TryGetValue(key, out var def)) throw new ConfigException(key, $"Unknown topic config name: {key}");
        Validate(def, value);
    }

    private static void Validate(TopicConfigDefinition def, string value)
    {
        string key = def.Name;
        switch (def.Type)
        {
            case ConfigType.Boolean:
                if (!value.Equals("true", StringComparison.OrdinalIgnoreCase) && !value.Equals("false", StringComparison.OrdinalIgnoreCase))
                    Bad(key, value, "Expected value to be either true or false");
                break;
            case ConfigType.Int:
                if (!int.TryParse(value.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out int i))
                    Bad(key, value, "Expected value to be a 32-bit integer");
                CheckRange(key, value, i);
                break;
            case ConfigType.Long:
                if (!long.TryParse(value.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out long l))
                    Bad(key, value, "Expected value to be a 64-bit integer");
                CheckRange(key, value, l);
                break;
            case ConfigType.Double:
                if (!double.TryParse(value.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double d) || d < 0 || d > 1)
                    Bad(key, value, "Value must be a number between 0 and 1");
                break;
        }
        switch (key)
        {
            case CleanupPolicyConfig:
                foreach (var part in value.Split(','))
                {
                    var p = part.Trim();
                    if (p != "delete" && p != "compact") Bad(key, value, "String must be one of: compact, delete");
                }
                break;
            case CompressionTypeConfig:
                if (Array.IndexOf(CompressionTypes, value) < 0)
                    Bad(key, value, "String must be one of: uncompressed, zstd, lz4, snappy, gzip, producer");
                break;
            case MessageTimestampTypeConfig:
                if (value != "CreateTime" && value != "LogAppendTime") Bad(key, value, "String must be one of: CreateTime, LogAppendTime");
                break;
        }
    }

    // Lower bounds as in Kafka's LogConfig. segment.bytes keeps Kafka 3.x's minimum of 14 bytes (4.0 raised it
    // to 1 MiB) so small segments stay usable in tests and small deployments.
    private static void CheckRange(string key, string value, long v)
    {
        long min = key switch
        {
            RetentionMsConfig => -1,
            RetentionBytesConfig => long.MinValue,
            "local.retention.bytes" => -2,
            SegmentBytesConfig => 14,
            SegmentMsConfig => 1,
            SegmentIndexBytesConfig => 4,
            FlushMessagesConfig => 1,
            MinInSyncReplicasConfig => 1,
            "compression.gzip.level" => -1,
            "compression.zstd.level" => -131072,
            "local.retention.ms" => -2,
            _ => 0,
        };
        if (v < min) Bad(key, value, $"Value must be at least {min}");
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private static void Bad(string key, string value, string why) =>
        throw new ConfigException(key, $"Invalid value {value} for configuration {key}: {why}");
}
