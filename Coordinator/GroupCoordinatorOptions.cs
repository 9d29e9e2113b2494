namespace Kayak.Coordinator;

/// <summary>Kafka's group coordinator settings (same names and defaults as the broker configs).</summary>
public sealed class GroupCoordinatorOptions
{
    /// <summary>offsets.topic.num.partitions: partitions of __consumer_offsets; fixes each group's partition.</summary>
    public int OffsetsTopicNumPartitions { get; init; } = 50;
    /// <summary>group.initial.rebalance.delay.ms: how long the first rebalance of an empty group waits for more members.</summary>
    public int InitialRebalanceDelayMs { get; init; } = 3000;
    /// <summary>group.min.session.timeout.ms</summary>
    public int MinSessionTimeoutMs { get; init; } = 6000;
    /// <summary>group.max.session.timeout.ms</summary>
    public int MaxSessionTimeoutMs { get; init; } = 1800000;
    /// <summary>group.max.size</summary>
    public int MaxGroupSize { get; init; } = int.MaxValue;
    /// <summary>offsets.retention.minutes: offsets of empty groups expire this long after the group emptied (KIP-211).</summary>
    public int OffsetsRetentionMinutes { get; init; } = 10080;
    /// <summary>offsets.retention.check.interval.ms</summary>
    public long OffsetsRetentionCheckIntervalMs { get; init; } = 600000;
    /// <summary>offset.metadata.max.bytes: commits with longer metadata get OFFSET_METADATA_TOO_LARGE.</summary>
    public int OffsetMetadataMaxBytes { get; init; } = 4096;
    /// <summary>
    /// Kafka's fixed GroupCoordinator.NewMemberJoinTimeoutMs: a new member that never completes its
    /// first JoinGroup (its socket is muted while it waits) is dropped after this long.
    /// </summary>
    public int NewMemberJoinTimeoutMs { get; init; } = 5 * 60 * 1000;
    /// <summary>Clock for every timer, so tests run on a fake clock.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    internal long OffsetsRetentionMs => OffsetsRetentionMinutes * 60_000L;
}
