using System.Buffers;
using Kayak.Coordinator.ConsumerGroups;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Coordinator;

/// <summary>
/// KIP-848 online migration between the classic and the consumer protocol, as Kafka 4.0's GroupMetadataManager does it
/// under group.consumer.migration.policy (disabled, upgrade, downgrade, bidirectional):
/// <list type="bullet">
/// <item>Upgrade (getOrMaybeCreateConsumerGroup → validateOnlineUpgrade, convertToConsumerGroup,
/// ConsumerGroup.fromClassicGroup): a ConsumerGroupHeartbeat join to a non-empty classic group of protocol type
/// "consumer" tombstones the classic group and writes a consumer group whose members are the classic members with their
/// last assignment, each in the group's generation as its epoch, Stable, with ClassicMemberMetadata.</item>
/// <item>Downgrade (validateOnlineDowngradeWithFencedMembers, convertToClassicGroup, ClassicGroup.fromConsumerGroup):
/// when the last consumer-protocol member leaves or is fenced and every remaining member is a classic one, the
/// consumer group's records are tombstoned and a GroupMetadata record of the same generation written; the classic
/// group then rebalances.</item>
/// </list>
/// Classic members inside a consumer group keep speaking JoinGroup/SyncGroup/Heartbeat/LeaveGroup
/// (GroupCoordinator.ClassicInConsumer.cs); the server-side assignor decides their partitions.
/// </summary>
public sealed partial class GroupCoordinator
{
    /// <summary>
    /// Kafka's validateOnlineUpgrade and convertToConsumerGroup for <paramref name="group"/>, a classic group with
    /// members (group lock held). Null when the group is now a consumer group; otherwise the error to answer.
    /// </summary>
    private ConsumerGroupHeartbeatResponse? UpgradeToConsumerGroup(ClassicGroup group, ConsumerTopicResolver topics)
    {
        string groupId = group.GroupId;
        if (!_options.ConsumerUpgradeAllowed)
            return HeartbeatError(ErrorCode.GroupIdNotFound,
                $"Cannot upgrade classic group {groupId} to consumer group because online upgrade is disabled.");
        if (group.ProtocolType != ConsumerProtocolType)
            return HeartbeatError(ErrorCode.GroupIdNotFound,
                $"Cannot upgrade classic group {groupId} to consumer group because the group does not use the consumer embedded protocol.");
        if (group.MemberList.Count > _options.ConsumerGroupMaxSize)
            return HeartbeatError(ErrorCode.GroupIdNotFound,
                $"Cannot upgrade classic group {groupId} to consumer group because the group size exceeds the consumer group maximum size.");

        // ConsumerGroup.fromClassicGroup: every member at the group's generation, Stable, owning its last assignment,
        // which is also its target; subscriptions from the selected protocol's metadata.
        var members = new List<(ConsumerMember Member, TopicPartitions Assigned)>(group.MemberList.Count);
        foreach (var m in group.MemberList)
        {
            var metadata = m.MetadataFor(group.ProtocolName) ?? (m.Protocols.Count > 0 ? m.Protocols[0].Metadata : []);
            if (!TryReadSubscription(metadata, out var subscription, out _))
                return HeartbeatError(ErrorCode.GroupIdNotFound,
                    $"Cannot upgrade the classic group {groupId} to consumer group because the embedded consumer protocol is malformed.");
            var assigned = TopicPartitions.Empty;
            if (m.Assignment.Length > 0)
            {
                if (!TryReadAssignment(m.Assignment, out var assignment))
                    return HeartbeatError(ErrorCode.GroupIdNotFound,
                        $"Cannot upgrade the classic group {groupId} to consumer group because the embedded consumer protocol is malformed.");
                // Kafka refuses to drop a custom assignor's user data (it would be lost in the conversion).
                if (assignment.UserData is { Length: > 0 })
                    return HeartbeatError(ErrorCode.GroupIdNotFound,
                        $"Cannot upgrade classic group {groupId} to consumer group because an unsupported custom assignor is in use. " +
                        "Please refer to the documentation or switch to a default assignor before re-attempting the upgrade.");
                var byId = new List<(Uuid, int)>();
                foreach (var t in assignment.AssignedPartitions)
                    if (topics(t.Topic, out var id, out _))
                        foreach (int p in t.Partitions) byId.Add((id, p));
                assigned = TopicPartitions.From(byId);
            }
            members.Add((new ConsumerMember(m.MemberId)
            {
                InstanceId = m.GroupInstanceId,
                RackId = subscription.RackId,
                ClientId = m.ClientId,
                ClientHost = m.ClientHost,
                SubscribedTopicNames = SortedTopics(subscription.Topics),
                RebalanceTimeoutMs = m.RebalanceTimeoutMs,
                Classic = new ClassicMemberInfo(m.SessionTimeoutMs, m.Protocols),
            }, assigned));
        }

        // convertToConsumerGroup: parked JoinGroup/SyncGroup requests are told to rejoin, in the new group.
        foreach (var m in group.MemberList)
        {
            m.AwaitingJoin?.TrySetResult(JoinError(ErrorCode.RebalanceInProgress, m.MemberId, m.JoinVersion));
            m.AwaitingJoin = null;
            m.AwaitingSync?.TrySetResult(SyncError(ErrorCode.RebalanceInProgress, m.SyncVersion));
            m.AwaitingSync = null;
        }

        // The records in Kafka's order: the classic group's tombstone, then ConsumerGroup.createConsumerGroupRecords.
        int epoch = group.GenerationId;
        var records = new List<CoordinatorRecord> { GroupTombstone(groupId) };
        foreach (var (m, _) in members) records.Add(MemberMetadataRecord(groupId, m));
        records.Add(GroupEpochRecord(groupId, epoch));
        foreach (var (m, assigned) in members) records.Add(TargetMemberRecord(groupId, m.MemberId, assigned));
        records.Add(TargetEpochRecord(groupId, epoch));
        foreach (var (m, assigned) in members)
            records.Add(CurrentAssignmentRecord(groupId, m.MemberId,
                new CurrentAssignmentBuilder.Result(epoch, epoch, ConsumerMemberState.Stable, assigned, TopicPartitions.Empty)));

        // Applied in memory now and appended with the joining member's records in one batch (Kafka's one
        // CoordinatorResult, appended atomically): a log cut anywhere loads the classic group or the whole consumer
        // group. What the tombstone's replay takes from the classic group is kept to put back if nothing is written.
        var unwritten = new UnwrittenUpgrade(records, group);
        group.Converting = true;
        try
        {
            foreach (var r in records) Replay(group, -1, NoProducerId, r.Key, r.Value);
        }
        finally { group.Converting = false; }
        group.Unwritten = unwritten;
        return null;
    }

    /// <summary>
    /// After the heartbeat that upgraded <paramref name="group"/> (group lock held): its write took the conversion
    /// along, and the classic group's soft state goes; or nothing was written (the join was refused, or the log refused
    /// the batch), and the group is the classic group again, as Kafka's timeline reverts a failed CoordinatorResult.
    /// </summary>
    private void FinishUpgrade(ClassicGroup group)
    {
        if (group.Unwritten is { } unwritten)
        {
            RevertUpgrade(group, unwritten);
            return;
        }
        // The classic group's soft state is gone with it: its timers and the ids handed out with MEMBER_ID_REQUIRED.
        CancelJoinTimer(group);
        group.SyncTimer?.Dispose();
        group.SyncTimer = null;
        group.PendingSync.Clear();
        foreach (var t in group.PendingMembers.Values) t.Dispose();
        group.PendingMembers.Clear();
        group.State = GroupState.Empty;
    }

    private void RevertUpgrade(ClassicGroup group, UnwrittenUpgrade u)
    {
        group.Unwritten = null;
        if (group.Consumer is { } cg)
            foreach (var m in cg.Members.Values)
            {
                m.Timer?.Dispose();
                m.Timer = null;
            }
        group.Consumer = null;
        group.State = u.State;
        group.GenerationId = u.GenerationId;
        group.ProtocolType = u.ProtocolType;
        group.ProtocolName = u.ProtocolName;
        group.CurrentStateTimestamp = u.CurrentStateTimestamp;
        group.StoredMetadata = u.StoredMetadata;
        long now = NowMs;
        foreach (var m in u.Members)
        {
            group.MemberList.Add(m);
            group.Members[m.MemberId] = m;
            if (m.GroupInstanceId is not null) group.StaticMembers[m.GroupInstanceId] = m.MemberId;
            // The session keeps the deadline it had.
            ScheduleHeartbeat(group, m, (int)Math.Clamp(m.HeartbeatDeadline - now, 0, int.MaxValue));
        }
        foreach (var id in u.PendingSync) group.PendingSync.Add(id);
        group.LeaderId = u.LeaderId;
    }

    /// <summary>
    /// Kafka's validateOnlineDowngradeWithFencedMember and convertToClassicGroup, after <paramref name="leaving"/>
    /// left or was fenced (group lock held, the leave not written yet). True when the downgrade was written, which
    /// removes the leaving member too; false when the caller is to remove it from the consumer group as usual.
    /// </summary>
    private bool TryDowngradeToClassicGroup(ClassicGroup group, ConsumerGroupState cg, string leaving)
    {
        if (!cg.Members.ContainsKey(leaving) || !cg.AllMembersUseClassicProtocolExcept(leaving)) return false;
        // An empty group is not downgraded: the next classic JoinGroup converts it (GroupCoordinator.JoinGroupAsync).
        if (cg.Members.Count <= 1 || !_options.ConsumerDowngradeAllowed || cg.Members.Count - 1 > _options.MaxGroupSize) return false;

        var records = new List<CoordinatorRecord>();
        var classicMembers = AddDowngradeRecords(group, cg, leaving, joining: null, records);
        if (classicMembers is null || !TryWrite(group, records)) return false;
        RestoreClassicProtocols(group, classicMembers);
        // As Kafka does for a downgrade triggered by a leaving member: a rebalance so the classic members share the
        // leaver's partitions.
        PrepareRebalance(group);
        return true;
    }

    /// <summary>
    /// Kafka's validateOnlineDowngradeWithReplacedMemberId: a classic static member joining under the instance id of the
    /// group's last consumer-protocol member downgrades the group, when the policy allows it and the group (the joining
    /// member taking the replaced one's place) fits group.max.size. Unlike a leave, the group does not even need
    /// another member, and no rebalance follows.
    /// </summary>
    private bool MayDowngradeReplacing(ConsumerGroupState cg, string replaced) =>
        cg.Members.ContainsKey(replaced) && cg.AllMembersUseClassicProtocolExcept(replaced)
            && _options.ConsumerDowngradeAllowed && cg.Members.Count <= _options.MaxGroupSize;

    /// <summary>
    /// Kafka's convertToClassicGroup records: ConsumerGroup.createGroupTombstoneRecords (with the joining member's id in
    /// the replaced member's place, createGroupTombstoneRecordsWithReplacedMember, whose own records the same batch
    /// removed first), then the GroupMetadata record of ClassicGroup.fromConsumerGroup: the group epoch as the
    /// generation, every member but <paramref name="leaving"/> and then <paramref name="joining"/>, the protocol they
    /// all support, each member's target assignment (the joining member takes the replaced one's) as the consumer
    /// protocol's Assignment in its subscription's version; the first member leads. The classic members as written,
    /// or null when they share no protocol.
    /// </summary>
    private List<ConsumerMember>? AddDowngradeRecords(ClassicGroup group, ConsumerGroupState cg, string leaving, ConsumerMember? joining,
        List<CoordinatorRecord> records)
    {
        string groupId = group.GroupId;
        var classicMembers = new List<ConsumerMember>(cg.Members.Count);
        foreach (var m in cg.Members.Values)
            if (m.MemberId != leaving) classicMembers.Add(m);
        if (joining is not null) classicMembers.Add(joining);
        string? protocol = SelectClassicProtocol(classicMembers);
        if (protocol is null) return null;

        string Removed(string id) => joining is not null && id == leaving ? joining.MemberId : id;
        foreach (var id in cg.Members.Keys)
            records.Add(new(new Kayak.Protocol.CoordinatorRecords.ConsumerGroupCurrentMemberAssignmentKey { GroupId = groupId, MemberId = Removed(id) },
                ConsumerGroupCurrentMemberAssignmentKeyVersion, null, 0));
        foreach (var id in cg.Members.Keys)
            records.Add(new(new Kayak.Protocol.CoordinatorRecords.ConsumerGroupTargetAssignmentMemberKey { GroupId = groupId, MemberId = Removed(id) },
                ConsumerGroupTargetAssignmentMemberKeyVersion, null, 0));
        records.Add(new(new Kayak.Protocol.CoordinatorRecords.ConsumerGroupTargetAssignmentMetadataKey { GroupId = groupId },
            ConsumerGroupTargetAssignmentMetadataKeyVersion, null, 0));
        foreach (var id in cg.Members.Keys)
            records.Add(new(new Kayak.Protocol.CoordinatorRecords.ConsumerGroupMemberMetadataKey { GroupId = groupId, MemberId = Removed(id) },
                ConsumerGroupMemberMetadataKeyVersion, null, 0));
        records.Add(new(new Kayak.Protocol.CoordinatorRecords.ConsumerGroupPartitionMetadataKey { GroupId = groupId },
            ConsumerGroupPartitionMetadataKeyVersion, null, 0));
        records.Add(new(new Kayak.Protocol.CoordinatorRecords.ConsumerGroupMetadataKey { GroupId = groupId },
            ConsumerGroupMetadataKeyVersion, null, 0));

        var value = new Kayak.Protocol.CoordinatorRecords.GroupMetadataValue
        {
            ProtocolType = ConsumerProtocolType,
            Generation = cg.GroupEpoch,
            Protocol = protocol,
            Leader = classicMembers[0].MemberId,
            CurrentStateTimestamp = NowMs,
        };
        foreach (var m in classicMembers)
        {
            var subscription = MetadataFor(m.Classic!, protocol);
            var target = cg.TargetOf(m == joining ? leaving : m.MemberId);
            value.Members.Add(new Kayak.Protocol.CoordinatorRecords.GroupMetadataValue.MemberMetadata
            {
                MemberId = m.MemberId,
                GroupInstanceId = m.InstanceId,
                ClientId = m.ClientId,
                ClientHost = m.ClientHost,
                RebalanceTimeout = m.RebalanceTimeoutMs,
                SessionTimeout = m.Classic!.SessionTimeoutMs,
                Subscription = subscription,
                Assignment = SerializeAssignment(cg, target, SubscriptionVersion(subscription)),
            });
        }
        records.Add(new CoordinatorRecord(new Kayak.Protocol.CoordinatorRecords.GroupMetadataKey { Group = groupId }, GroupMetadataKeyVersion,
            value, GroupMetadataValueVersion));
        return classicMembers;
    }

    /// <summary>Soft state the GroupMetadata record does not carry: every protocol each member offered.</summary>
    private static void RestoreClassicProtocols(ClassicGroup group, List<ConsumerMember> classicMembers)
    {
        foreach (var m in classicMembers)
            if (group.Members.TryGetValue(m.MemberId, out var classic))
            {
                classic.Protocols = m.Classic!.Protocols;
                classic.ProtocolType = ConsumerProtocolType;
            }
    }

    internal const string ConsumerProtocolType = "consumer";

    /// <summary>Kafka's ClassicGroup.selectProtocol over the classic members' protocols; null when they share none.</summary>
    private static string? SelectClassicProtocol(List<ConsumerMember> members)
    {
        var protocols = new List<List<MemberProtocol>>(members.Count);
        foreach (var m in members) protocols.Add(m.Classic!.Protocols);
        return ClassicGroup.VoteProtocol(protocols);
    }

    private static byte[] MetadataFor(ClassicMemberInfo classic, string protocol)
    {
        foreach (var p in classic.Protocols)
            if (p.Name == protocol) return p.Metadata;
        return [];
    }

    private static List<string> SortedTopics(List<string> topics)
    {
        var sorted = new SortedSet<string>(topics, StringComparer.Ordinal);
        return new List<string>(sorted);
    }

    /// <summary>A ConsumerProtocolSubscription (version prefix, then the fields; newer versions only append).</summary>
    private static bool TryReadSubscription(byte[] metadata, out ConsumerProtocolSubscription subscription, out short version)
    {
        subscription = new ConsumerProtocolSubscription();
        version = 0;
        if (metadata.Length < 2) return false;
        try
        {
            var reader = new KafkaReader(metadata);
            version = reader.ReadInt16();
            if (version < 0) return false;
            subscription.Read(ref reader, Math.Min(version, ConsumerProtocolSubscription.HighestSupportedVersion));
            return true;
        }
        catch (ProtocolException) { return false; }
    }

    private static short SubscriptionVersion(byte[] metadata) =>
        metadata.Length >= 2 ? Math.Clamp((short)(metadata[0] << 8 | metadata[1]), (short)0, ConsumerProtocolAssignment.HighestSupportedVersion) : (short)0;

    private static bool TryReadAssignment(byte[] bytes, out ConsumerProtocolAssignment assignment)
    {
        assignment = new ConsumerProtocolAssignment();
        if (bytes.Length < 2) return false;
        try
        {
            var reader = new KafkaReader(bytes);
            short version = reader.ReadInt16();
            if (version < 0) return false;
            assignment.Read(ref reader, Math.Min(version, ConsumerProtocolAssignment.HighestSupportedVersion));
            return true;
        }
        catch (ProtocolException) { return false; }
    }

    /// <summary>A member's partitions as the consumer protocol's Assignment (topic names from the group's metadata).</summary>
    private static byte[] SerializeAssignment(ConsumerGroupState cg, TopicPartitions partitions, short version)
    {
        var assignment = new ConsumerProtocolAssignment();
        foreach (var (id, set) in partitions.ByTopic)
            if (cg.NameOf(id) is { } name)
                assignment.AssignedPartitions.Add(new ConsumerProtocolAssignment.TopicPartition { Topic = name, Partitions = new List<int>(set) });
        var buffer = new ArrayBufferWriter<byte>();
        var w = new KafkaWriter(buffer);
        w.WriteInt16(version);
        assignment.Write(ref w, version);
        w.Flush();
        return buffer.WrittenSpan.ToArray();
    }
}

/// <summary>
/// An online upgrade's records, applied in memory and not appended yet, and the classic group's state their replay
/// took (the tombstone empties the group), to put back when the write does not happen.
/// </summary>
internal sealed class UnwrittenUpgrade(List<CoordinatorRecord> records, ClassicGroup group)
{
    public List<CoordinatorRecord> Records { get; } = records;
    public GroupState State { get; } = group.State;
    public int GenerationId { get; } = group.GenerationId;
    public string? ProtocolType { get; } = group.ProtocolType;
    public string? ProtocolName { get; } = group.ProtocolName;
    public string? LeaderId { get; } = group.LeaderId;
    public long? CurrentStateTimestamp { get; } = group.CurrentStateTimestamp;
    public Kayak.Protocol.CoordinatorRecords.GroupMetadataValue? StoredMetadata { get; } = group.StoredMetadata;
    public GroupMember[] Members { get; } = group.MemberList.ToArray();
    public string[] PendingSync { get; } = [.. group.PendingSync];
}
