namespace Kayak.Storage;

/// <summary>
/// Broker-level log settings (Kafka's log.* broker configs). Topic-level overrides live in
/// <see cref="TopicConfig"/>; these are the defaults it falls back to. Unset, each takes its topic config's default
/// from <see cref="TopicConfig.Definitions"/>, where every such value is written once (issue 10); the broker binds
/// them from its config table (Broker's OptionsBinding), whose log.* defaults come from the same definitions.
/// </summary>
public sealed class LogOptions
{
    /// <summary>Kafka's log.dirs. Partitions are spread over them (fewest partitions first, like Kafka).</summary>
    public IReadOnlyList<string> LogDirs { get; init; } = [];
    /// <summary>log.segment.bytes; capped at int.MaxValue because batch positions are int32 in the index.</summary>
    public long SegmentBytes { get; init; } = TopicConfig.DefaultLong(TopicConfig.SegmentBytesConfig);
    /// <summary>log.roll.ms.</summary>
    public long RollMs { get; init; } = TopicConfig.DefaultLong(TopicConfig.SegmentMsConfig);
    /// <summary>log.retention.ms; -1 keeps data forever.</summary>
    public long RetentionMs { get; init; } = TopicConfig.DefaultLong(TopicConfig.RetentionMsConfig);
    /// <summary>log.retention.bytes per partition; -1 = unlimited.</summary>
    public long RetentionBytes { get; init; } = TopicConfig.DefaultLong(TopicConfig.RetentionBytesConfig);
    /// <summary>log.retention.check.interval.ms: how often the broker should call <see cref="LogManager.RunRetention"/>.</summary>
    public long RetentionCheckIntervalMs { get; init; } = 300_000;
    /// <summary>log.flush.interval.messages; 1 makes every append fsync before it returns (before acks).</summary>
    public long FlushIntervalMessages { get; init; } = TopicConfig.DefaultLong(TopicConfig.FlushMessagesConfig);
    /// <summary>log.flush.interval.ms.</summary>
    public long FlushIntervalMs { get; init; } = TopicConfig.DefaultLong(TopicConfig.FlushMsConfig);
    /// <summary>log.index.interval.bytes: one sparse index entry per this many appended bytes.</summary>
    public int IndexIntervalBytes { get; init; } = (int)TopicConfig.DefaultLong(TopicConfig.IndexIntervalBytesConfig);
    /// <summary>log.index.size.max.bytes: preallocated size of each active index file.</summary>
    public int SegmentIndexBytes { get; init; } = (int)TopicConfig.DefaultLong(TopicConfig.SegmentIndexBytesConfig);
    /// <summary>
    /// num.recovery.threads.per.data.dir (Kafka's default 2): how many partitions of one log dir
    /// <see cref="LogManager.Open"/> loads at once, each partition's segments still in order on one thread.
    /// </summary>
    public int RecoveryThreadsPerDataDir { get; init; } = 2;
    /// <summary>log.message.timestamp.type default for topics without an override.</summary>
    public string MessageTimestampType { get; init; } = TopicConfig.DefaultString(TopicConfig.MessageTimestampTypeConfig);
    /// <summary>log.cleanup.policy: the default cleanup.policy of topics.</summary>
    public string CleanupPolicy { get; init; } = TopicConfig.DefaultString(TopicConfig.CleanupPolicyConfig);
    /// <summary>The broker's compression.type: the default of topics' compression.type.</summary>
    public string CompressionType { get; init; } = TopicConfig.DefaultString(TopicConfig.CompressionTypeConfig);
    /// <summary>message.max.bytes broker default (Kafka: 1048588).</summary>
    public int MaxMessageBytes { get; init; } = (int)TopicConfig.DefaultLong(TopicConfig.MaxMessageBytesConfig);
    /// <summary>
    /// How many inactive (rolled) segments may stay memory-mapped at once across all partitions; the
    /// least recently read are unmapped beyond this, keeping far below vm.max_map_count (65530).
    /// </summary>
    public int MaxMappedInactiveSegments { get; init; } = 1024;
    /// <summary>
    /// A member of a replicated cluster (issue 14): every partition tracks a high watermark apart from its log end
    /// offset (PartitionLog.Replica.cs). False on a single broker, whose high watermark is the log end offset.
    /// </summary>
    public bool Replicated { get; init; }

    /// <summary>
    /// Kafka's file.delete.delay.ms broker default (log.segment.delete.delay.ms, 60 s): how long a deleted replica's
    /// log stays renamed <c>&lt;topic&gt;-&lt;p&gt;.&lt;uuid&gt;-delete</c> before it is removed (LogManager.asyncDelete),
    /// so that reads in flight finish on it.
    /// </summary>
    public long FileDeleteDelayMs { get; init; } = TopicConfig.DefaultLong("file.delete.delay.ms");
    public TimeProvider Time { get; init; } = TimeProvider.System;
    /// <summary>Where recovery actions and refused metadata are reported (Kafka logs them at WARN/ERROR).</summary>
    public Microsoft.Extensions.Logging.ILogger Logger { get; init; } = Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
}
