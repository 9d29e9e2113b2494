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
    /// <summary>
    /// group.consumer.session.timeout.ms (KIP-848): a consumer-protocol member that sends no ConsumerGroupHeartbeat for
    /// this long is removed. Must lie within group.consumer.min/max.session.timeout.ms (45000/60000).
    /// </summary>
    public int ConsumerGroupSessionTimeoutMs { get; init; } = 45000;
    /// <summary>group.consumer.min.session.timeout.ms</summary>
    public int ConsumerGroupMinSessionTimeoutMs { get; init; } = 45000;
    /// <summary>group.consumer.max.session.timeout.ms</summary>
    public int ConsumerGroupMaxSessionTimeoutMs { get; init; } = 60000;
    /// <summary>group.consumer.heartbeat.interval.ms: told to members in every ConsumerGroupHeartbeat response.</summary>
    public int ConsumerGroupHeartbeatIntervalMs { get; init; } = 5000;
    /// <summary>group.consumer.min.heartbeat.interval.ms</summary>
    public int ConsumerGroupMinHeartbeatIntervalMs { get; init; } = 5000;
    /// <summary>group.consumer.max.heartbeat.interval.ms</summary>
    public int ConsumerGroupMaxHeartbeatIntervalMs { get; init; } = 15000;
    /// <summary>Clock for every timer, so tests run on a fake clock.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    internal long OffsetsRetentionMs => OffsetsRetentionMinutes * 60_000L;

    /// <summary>
    /// Kafka's GroupCoordinatorConfig checks: each KIP-848 timeout within its min/max, and the heartbeat interval below
    /// the session timeout (a member must get several heartbeats in before it expires).
    /// </summary>
    internal void ValidateConsumerGroupSettings()
    {
        if (ConsumerGroupMinSessionTimeoutMs > ConsumerGroupMaxSessionTimeoutMs
            || ConsumerGroupSessionTimeoutMs < ConsumerGroupMinSessionTimeoutMs || ConsumerGroupSessionTimeoutMs > ConsumerGroupMaxSessionTimeoutMs)
            throw new ArgumentException("group.consumer.session.timeout.ms must be within group.consumer.min.session.timeout.ms and group.consumer.max.session.timeout.ms.");
        if (ConsumerGroupMinHeartbeatIntervalMs > ConsumerGroupMaxHeartbeatIntervalMs
            || ConsumerGroupHeartbeatIntervalMs < ConsumerGroupMinHeartbeatIntervalMs || ConsumerGroupHeartbeatIntervalMs > ConsumerGroupMaxHeartbeatIntervalMs)
            throw new ArgumentException("group.consumer.heartbeat.interval.ms must be within group.consumer.min.heartbeat.interval.ms and group.consumer.max.heartbeat.interval.ms.");
        if (ConsumerGroupHeartbeatIntervalMs >= ConsumerGroupSessionTimeoutMs)
            throw new ArgumentException("group.consumer.heartbeat.interval.ms must be less than group.consumer.session.timeout.ms.");
    }
}
