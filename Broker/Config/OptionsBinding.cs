using Kayak.Coordinator;
using Kayak.Coordinator.Transactions;
using Kayak.Storage;
using Microsoft.Extensions.Logging;

namespace Kayak.Broker.Config;

/// <summary>
/// The one place broker configs become the typed options of the components below the broker (issue 10, step 6):
/// Storage's <see cref="LogOptions"/>, the group and the transaction coordinator's options. Called at start and,
/// for <see cref="Log"/>, again whenever a dynamic broker config changes (Kafka's DynamicLogConfig.reconfigure).
/// </summary>
internal static class OptionsBinding
{
    public static LogOptions Log(BrokerConfig config, TimeProvider time, ILogger logger) => new()
    {
        LogDirs = config.LogDirs,
        Replicated = config.ClusterSize > 1,
        SegmentBytes = config.LogSegmentBytes,
        RollMs = config.LogRollMs,
        RetentionMs = config.LogRetentionMs,
        RetentionBytes = config.LogRetentionBytes,
        RetentionCheckIntervalMs = config.LogRetentionCheckIntervalMs,
        FileDeleteDelayMs = config.LogSegmentDeleteDelayMs,
        FlushIntervalMessages = config.LogFlushIntervalMessages,
        FlushIntervalMs = config.LogFlushIntervalMs,
        IndexIntervalBytes = config.LogIndexIntervalBytes,
        RecoveryThreadsPerDataDir = config.NumRecoveryThreadsPerDataDir,
        SegmentIndexBytes = config.LogIndexSizeMaxBytes,
        MaxMessageBytes = config.MessageMaxBytes,
        MessageTimestampType = config.LogMessageTimestampType,
        CleanupPolicy = config.LogCleanupPolicy,
        CompressionType = config.CompressionType,
        Time = time,
        Logger = logger,
    };

    public static GroupCoordinatorOptions Groups(BrokerConfig config, TimeProvider time) => new()
    {
        OffsetsTopicNumPartitions = config.OffsetsTopicNumPartitions,
        InitialRebalanceDelayMs = config.GroupInitialRebalanceDelayMs,
        MinSessionTimeoutMs = config.GroupMinSessionTimeoutMs,
        MaxSessionTimeoutMs = config.GroupMaxSessionTimeoutMs,
        MaxGroupSize = config.GroupMaxSize,
        OffsetsRetentionMinutes = (int)(config.OffsetsRetentionMs / 60_000),
        OffsetsRetentionCheckIntervalMs = config.OffsetsRetentionCheckIntervalMs,
        ConsumerGroupSessionTimeoutMs = config.ConsumerGroupSessionTimeoutMs,
        ConsumerGroupMinSessionTimeoutMs = config.ConsumerGroupMinSessionTimeoutMs,
        ConsumerGroupMaxSessionTimeoutMs = config.ConsumerGroupMaxSessionTimeoutMs,
        ConsumerGroupHeartbeatIntervalMs = config.ConsumerGroupHeartbeatIntervalMs,
        ConsumerGroupMinHeartbeatIntervalMs = config.ConsumerGroupMinHeartbeatIntervalMs,
        ConsumerGroupMaxHeartbeatIntervalMs = config.ConsumerGroupMaxHeartbeatIntervalMs,
        ConsumerGroupMaxSize = config.ConsumerGroupMaxSize,
        ConsumerGroupAssignors = config.ConsumerGroupAssignors,
        ConsumerGroupMigrationPolicy = config.ConsumerGroupMigrationPolicy,
        Time = time,
    };

    public static TransactionCoordinatorOptions Transactions(BrokerConfig config, TimeProvider time, ITransactionMarkerHook? hook, ILogger logger) => new()
    {
        NumPartitions = config.TransactionStateLogNumPartitions,
        OffsetsTopicNumPartitions = config.OffsetsTopicNumPartitions,
        MaxTimeoutMs = config.TransactionMaxTimeoutMs,
        TransactionalIdExpirationMs = config.TransactionalIdExpirationMs,
        Time = time,
        MarkerHook = hook,
        Logger = logger,
    };
}
