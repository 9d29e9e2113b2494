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
    /// <summary>group.consumer.max.size: a consumer group refuses new members beyond this (GROUP_MAX_SIZE_REACHED).</summary>
    public int ConsumerGroupMaxSize { get; init; } = int.MaxValue;
    /// <summary>
    /// group.consumer.assignors: the server-side assignors members may name in ServerAssignor ("uniform", "range", or
    /// Kafka's class names for them); the first is used when no member names one.
    /// </summary>
    public IReadOnlyList<string> ConsumerGroupAssignors { get; init; } = ["uniform", "range"];
    /// <summary>
    /// group.consumer.migration.policy (KIP-848): whether an empty classic group may become a consumer group
    /// ("upgrade"), an empty consumer group a classic one ("downgrade"), both ("bidirectional", Kafka's default) or
    /// neither ("disabled").
    /// </summary>
    public string ConsumerGroupMigrationPolicy { get; init; } = "bidirectional";
    /// <summary>Clock for every timer, so tests run on a fake clock.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    internal long OffsetsRetentionMs => OffsetsRetentionMinutes * 60_000L;

    /// <summary>An empty classic group may become a consumer group (policy upgrade or bidirectional).</summary>
    internal bool ConsumerUpgradeAllowed => ConsumerGroupMigrationPolicy.ToLowerInvariant() is "upgrade" or "bidirectional";
    /// <summary>An empty consumer group may become a classic group (policy downgrade or bidirectional).</summary>
    internal bool ConsumerDowngradeAllowed => ConsumerGroupMigrationPolicy.ToLowerInvariant() is "downgrade" or "bidirectional";

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
        if (ConsumerGroupMaxSize < 1) throw new ArgumentException("group.consumer.max.size must be at least 1.");
        if (ConsumerGroupAssignors.Count == 0) throw new ArgumentException("group.consumer.assignors must name at least one assignor.");
        foreach (var a in ConsumerGroupAssignors) ConsumerGroups.ConsumerAssignors.Normalize(a);
        if (ConsumerGroupMigrationPolicy.ToLowerInvariant() is not ("disabled" or "upgrade" or "downgrade" or "bidirectional"))
            throw new ArgumentException("group.consumer.migration.policy must be one of disabled, upgrade, downgrade, bidirectional.");
        if (ConsumerGroupHeartbeatIntervalMs >= ConsumerGroupSessionTimeoutMs)
            throw new ArgumentException("group.consumer.heartbeat.interval.ms must be less than group.consumer.session.timeout.ms.");
    }
}
