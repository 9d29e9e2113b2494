using Kayak.Coordinator.ConsumerGroups;
using Kayak.Protocol;
using Kayak.Protocol.CoordinatorRecords;

namespace Kayak.Coordinator;

/// <summary>
/// KIP-848 consumer group records in <c>__consumer_offsets</c>, in Kafka's own schemas and key versions
/// (GroupCoordinatorRecordHelpers): group epoch (key 3), subscription metadata (4), member metadata (5), target
/// assignment epoch (6) and members (7), current member assignment (8). Their replay is the only thing that changes a
/// consumer group, on the write path and on load alike (Kafka's GroupMetadataManager.replay overloads).
/// </summary>
public sealed partial class GroupCoordinator
{
    internal const short ConsumerGroupMetadataKeyVersion = 3;
    internal const short ConsumerGroupPartitionMetadataKeyVersion = 4;
    internal const short ConsumerGroupMemberMetadataKeyVersion = 5;
    internal const short ConsumerGroupTargetAssignmentMetadataKeyVersion = 6;
    internal const short ConsumerGroupTargetAssignmentMemberKeyVersion = 7;
    internal const short ConsumerGroupCurrentMemberAssignmentKeyVersion = 8;

    /// <summary>Decodes a KIP-848 record key of <paramref name="keyVersion"/> and its value; false for other keys.</summary>
    private static bool TryReadConsumerRecord(short keyVersion, ref KafkaReader reader, ReadOnlyMemory<byte>? value,
        out IKafkaMessage key, out IKafkaMessage? decoded)
    {
        switch (keyVersion)
        {
            case ConsumerGroupMetadataKeyVersion:
                key = Read<ConsumerGroupMetadataKey>(ref reader, keyVersion);
                decoded = value is { } v3 ? ReadValue<ConsumerGroupMetadataValue>(v3, ConsumerGroupMetadataValue.HighestSupportedVersion) : null;
                return true;
            case ConsumerGroupPartitionMetadataKeyVersion:
                key = Read<ConsumerGroupPartitionMetadataKey>(ref reader, keyVersion);
                decoded = value is { } v4 ? ReadValue<ConsumerGroupPartitionMetadataValue>(v4, ConsumerGroupPartitionMetadataValue.HighestSupportedVersion) : null;
                return true;
            case ConsumerGroupMemberMetadataKeyVersion:
                key = Read<ConsumerGroupMemberMetadataKey>(ref reader, keyVersion);
                decoded = value is { } v5 ? ReadValue<ConsumerGroupMemberMetadataValue>(v5, ConsumerGroupMemberMetadataValue.HighestSupportedVersion) : null;
                return true;
            case ConsumerGroupTargetAssignmentMetadataKeyVersion:
                key = Read<ConsumerGroupTargetAssignmentMetadataKey>(ref reader, keyVersion);
                decoded = value is { } v6 ? ReadValue<ConsumerGroupTargetAssignmentMetadataValue>(v6, ConsumerGroupTargetAssignmentMetadataValue.HighestSupportedVersion) : null;
                return true;
            case ConsumerGroupTargetAssignmentMemberKeyVersion:
                key = Read<ConsumerGroupTargetAssignmentMemberKey>(ref reader, keyVersion);
                decoded = value is { } v7 ? ReadValue<ConsumerGroupTargetAssignmentMemberValue>(v7, ConsumerGroupTargetAssignmentMemberValue.HighestSupportedVersion) : null;
                return true;
            case ConsumerGroupCurrentMemberAssignmentKeyVersion:
                key = Read<ConsumerGroupCurrentMemberAssignmentKey>(ref reader, keyVersion);
                decoded = value is { } v8 ? ReadValue<ConsumerGroupCurrentMemberAssignmentValue>(v8, ConsumerGroupCurrentMemberAssignmentValue.HighestSupportedVersion) : null;
                return true;
            default:
                key = null!;
                decoded = null;
                return false;
        }
    }

    private static T Read<T>(ref KafkaReader reader, short version) where T : IKafkaMessage, new()
    {
        var message = new T();
        message.Read(ref reader, version);
        return message;
    }

    /// <summary>Replays one KIP-848 record; false when <paramref name="key"/> is not one.</summary>
    private bool ReplayConsumerRecord(ClassicGroup? writer, IKafkaMessage key, IKafkaMessage? value)
    {
        switch (key)
        {
            case ConsumerGroupMetadataKey k:
                if (value is ConsumerGroupMetadataValue v)
                    WithConsumerGroup(writer, k.GroupId, cg => cg.GroupEpoch = v.Epoch);
                else ReplayConsumerGroupTombstone(k.GroupId);
                return true;
            case ConsumerGroupPartitionMetadataKey k:
                WithConsumerGroup(writer, k.GroupId, cg =>
                {
                    var metadata = new Dictionary<string, SubscribedTopic>(StringComparer.Ordinal);
                    if (value is ConsumerGroupPartitionMetadataValue v)
                        foreach (var t in v.Topics) metadata[t.TopicName] = new SubscribedTopic(t.TopicId, t.TopicName, t.NumPartitions);
                    cg.SubscriptionMetadata = metadata;
                });
                return true;
            case ConsumerGroupMemberMetadataKey k:
                WithConsumerGroup(writer, k.GroupId, cg =>
                {
                    if (value is ConsumerGroupMemberMetadataValue v) ApplyMemberMetadata(cg, k.GroupId, k.MemberId, v);
                    else if (cg.Members.Remove(k.MemberId, out var gone))
                    {
                        cg.ReleaseOwnership(gone);
                        if (gone.InstanceId is not null && cg.StaticMembers.TryGetValue(gone.InstanceId, out var id) && id == gone.MemberId)
                            cg.StaticMembers.Remove(gone.InstanceId);
                        gone.Timer?.Dispose();
                        gone.Timer = null;
                    }
                });
                return true;
            case ConsumerGroupTargetAssignmentMetadataKey k:
                WithConsumerGroup(writer, k.GroupId, cg => cg.AssignmentEpoch = value is ConsumerGroupTargetAssignmentMetadataValue v ? v.AssignmentEpoch : 0);
                return true;
            case ConsumerGroupTargetAssignmentMemberKey k:
                WithConsumerGroup(writer, k.GroupId, cg =>
                {
                    if (value is ConsumerGroupTargetAssignmentMemberValue v)
                        cg.Target[k.MemberId] = TopicPartitions.From(v.TopicPartitions.Select(t => (t.TopicId, (IEnumerable<int>)t.Partitions)));
                    else cg.Target.Remove(k.MemberId);
                });
                return true;
            case ConsumerGroupCurrentMemberAssignmentKey k:
                WithConsumerGroup(writer, k.GroupId, cg =>
                {
                    if (!cg.Members.TryGetValue(k.MemberId, out var member))
                    {
                        if (value is null) return;
                        cg.Members[k.MemberId] = member = NewLoadedMember(k.GroupId, k.MemberId);
                    }
                    if (value is ConsumerGroupCurrentMemberAssignmentValue v)
                    {
                        var assigned = FromRecord(v.AssignedPartitions);
                        var pending = FromRecord(v.PartitionsPendingRevocation);
                        cg.SetOwnership(member, assigned, pending);
                        member.MemberEpoch = v.MemberEpoch;
                        member.PreviousMemberEpoch = v.PreviousMemberEpoch;
                        member.State = (ConsumerMemberState)v.State;
                        member.Assigned = assigned;
                        member.PendingRevocation = pending;
                    }
                    else
                    {
                        cg.ReleaseOwnership(member);
                        member.MemberEpoch = member.PreviousMemberEpoch = 0;
                        member.State = ConsumerMemberState.Stable;
                        member.Assigned = member.PendingRevocation = TopicPartitions.Empty;
                    }
                });
                return true;
            default:
                return false;
        }
    }

    private static TopicPartitions FromRecord(List<ConsumerGroupCurrentMemberAssignmentValue.TopicPartitions> list) =>
        TopicPartitions.From(list.Select(t => (t.TopicId, (IEnumerable<int>)t.Partitions)));

    private void ApplyMemberMetadata(ConsumerGroupState cg, string groupId, string memberId, ConsumerGroupMemberMetadataValue v)
    {
        bool created = !cg.Members.TryGetValue(memberId, out var member);
        if (created) cg.Members[memberId] = member = NewLoadedMember(groupId, memberId);
        member!.InstanceId = v.InstanceId;
        member.RackId = v.RackId;
        member.ClientId = v.ClientId;
        member.ClientHost = v.ClientHost;
        member.SubscribedTopicNames = v.SubscribedTopicNames;
        member.SubscribedTopicRegex = string.IsNullOrEmpty(v.SubscribedTopicRegex) ? null : v.SubscribedTopicRegex;
        member.RebalanceTimeoutMs = v.RebalanceTimeoutMs;
        member.ServerAssignor = v.ServerAssignor;
        member.Classic = v.ClassicMemberMetadata is { } classic ? FromRecord(classic) : null;
        if (v.InstanceId is not null) cg.StaticMembers[v.InstanceId] = memberId;
        // A classic member (online migration) has its own session timeout.
        if (created && member.Classic is not null) ScheduleConsumerSession(groupId, member, NowMs + SessionTimeoutOf(member));
    }

    /// <summary>
    /// A member created by replay. It must heartbeat within its session timeout or is removed, as after a Kafka
    /// failover (the write path reschedules the timer right after its own replay).
    /// </summary>
    private ConsumerMember NewLoadedMember(string groupId, string memberId)
    {
        var member = new ConsumerMember(memberId);
        ScheduleConsumerSession(groupId, member, NowMs + _options.ConsumerGroupSessionTimeoutMs);
        return member;
    }

    private void WithConsumerGroup(ClassicGroup? writer, string groupId, Action<ConsumerGroupState> apply)
    {
        var group = Resolve(writer, groupId);
        lock (group.Lock)
        {
            if (group.Consumer is null)
            {
                // KIP-848: an empty classic group that becomes a consumer group (Kafka's maybeDeleteEmptyClassicGroup)
                // drops its classic metadata; its offsets stay. Done on replay so a reload ends the same way.
                if (group.MemberList.Count == 0)
                {
                    group.StoredMetadata = null;
                    group.GenerationId = 0;
                    group.ProtocolType = group.ProtocolName = group.LeaderId = null;
                    group.CurrentStateTimestamp = null;
                }
                group.Consumer = new ConsumerGroupState();
            }
            apply(group.Consumer);
        }
    }

    /// <summary>The group epoch's tombstone ends the consumer group (DeleteGroups); offsets keep a simple group.</summary>
    private void ReplayConsumerGroupTombstone(string groupId)
    {
        if (!_groups.TryGetValue(groupId, out var group)) return;
        lock (group.Lock)
        {
            if (group.Consumer is { } cg)
                foreach (var m in cg.Members.Values) m.Timer?.Dispose();
            group.Consumer = null;
        }
    }

    // ------------------------------------------------------------------ record builders

    private static CoordinatorRecord GroupEpochRecord(string groupId, int epoch) =>
        new(new ConsumerGroupMetadataKey { GroupId = groupId }, ConsumerGroupMetadataKeyVersion, new ConsumerGroupMetadataValue { Epoch = epoch }, 0);

    private static CoordinatorRecord SubscriptionMetadataRecord(string groupId, Dictionary<string, SubscribedTopic> topics)
    {
        var value = new ConsumerGroupPartitionMetadataValue();
        foreach (var t in topics.Values.OrderBy(t => t.Name, StringComparer.Ordinal))
            value.Topics.Add(new ConsumerGroupPartitionMetadataValue.TopicMetadata { TopicId = t.TopicId, TopicName = t.Name, NumPartitions = t.NumPartitions });
        return new(new ConsumerGroupPartitionMetadataKey { GroupId = groupId }, ConsumerGroupPartitionMetadataKeyVersion, value, 0);
    }

    private static CoordinatorRecord MemberMetadataRecord(string groupId, ConsumerMember m) =>
        new(new ConsumerGroupMemberMetadataKey { GroupId = groupId, MemberId = m.MemberId }, ConsumerGroupMemberMetadataKeyVersion,
            new ConsumerGroupMemberMetadataValue
            {
                InstanceId = m.InstanceId,
                RackId = m.RackId,
                ClientId = m.ClientId,
                ClientHost = m.ClientHost,
                SubscribedTopicNames = m.SubscribedTopicNames,
                SubscribedTopicRegex = m.SubscribedTopicRegex,
                RebalanceTimeoutMs = m.RebalanceTimeoutMs,
                ServerAssignor = m.ServerAssignor,
                ClassicMemberMetadata = m.Classic is { } classic ? ToRecord(classic) : null,
            }, 0);

    private static ConsumerGroupMemberMetadataValue.ClassicMemberMetadataData ToRecord(ClassicMemberInfo classic)
    {
        var data = new ConsumerGroupMemberMetadataValue.ClassicMemberMetadataData { SessionTimeoutMs = classic.SessionTimeoutMs };
        foreach (var p in classic.Protocols)
            data.SupportedProtocols.Add(new ConsumerGroupMemberMetadataValue.ClassicProtocol { Name = p.Name, Metadata = p.Metadata });
        return data;
    }

    private static ClassicMemberInfo FromRecord(ConsumerGroupMemberMetadataValue.ClassicMemberMetadataData data)
    {
        var protocols = new List<MemberProtocol>(data.SupportedProtocols.Count);
        foreach (var p in data.SupportedProtocols) protocols.Add(new MemberProtocol(p.Name, p.Metadata));
        return new ClassicMemberInfo(data.SessionTimeoutMs, protocols);
    }

    private static CoordinatorRecord TargetEpochRecord(string groupId, int epoch) =>
        new(new ConsumerGroupTargetAssignmentMetadataKey { GroupId = groupId }, ConsumerGroupTargetAssignmentMetadataKeyVersion,
            new ConsumerGroupTargetAssignmentMetadataValue { AssignmentEpoch = epoch }, 0);

    private static CoordinatorRecord TargetMemberRecord(string groupId, string memberId, TopicPartitions target)
    {
        var value = new ConsumerGroupTargetAssignmentMemberValue();
        foreach (var (id, set) in target.ByTopic)
            value.TopicPartitions.Add(new ConsumerGroupTargetAssignmentMemberValue.TopicPartition { TopicId = id, Partitions = set.ToList() });
        return new(new ConsumerGroupTargetAssignmentMemberKey { GroupId = groupId, MemberId = memberId }, ConsumerGroupTargetAssignmentMemberKeyVersion, value, 0);
    }

    private static CoordinatorRecord CurrentAssignmentRecord(string groupId, string memberId, CurrentAssignmentBuilder.Result a)
    {
        var value = new ConsumerGroupCurrentMemberAssignmentValue
        {
            MemberEpoch = a.MemberEpoch,
            PreviousMemberEpoch = a.PreviousMemberEpoch,
            State = (sbyte)a.State,
        };
        foreach (var (id, set) in a.Assigned.ByTopic)
            value.AssignedPartitions.Add(new ConsumerGroupCurrentMemberAssignmentValue.TopicPartitions { TopicId = id, Partitions = set.ToList() });
        foreach (var (id, set) in a.PendingRevocation.ByTopic)
            value.PartitionsPendingRevocation.Add(new ConsumerGroupCurrentMemberAssignmentValue.TopicPartitions { TopicId = id, Partitions = set.ToList() });
        return new(new ConsumerGroupCurrentMemberAssignmentKey { GroupId = groupId, MemberId = memberId }, ConsumerGroupCurrentMemberAssignmentKeyVersion, value, 0);
    }

    /// <summary>
    /// Kafka's order for removing a member (consumerGroupFenceMember): current assignment, target assignment and
    /// member metadata tombstones; the caller adds the bumped group epoch.
    /// </summary>
    private static void AddMemberRemoval(List<CoordinatorRecord> records, string groupId, string memberId)
    {
        records.Add(new(new ConsumerGroupCurrentMemberAssignmentKey { GroupId = groupId, MemberId = memberId }, ConsumerGroupCurrentMemberAssignmentKeyVersion, null, 0));
        records.Add(new(new ConsumerGroupTargetAssignmentMemberKey { GroupId = groupId, MemberId = memberId }, ConsumerGroupTargetAssignmentMemberKeyVersion, null, 0));
        records.Add(new(new ConsumerGroupMemberMetadataKey { GroupId = groupId, MemberId = memberId }, ConsumerGroupMemberMetadataKeyVersion, null, 0));
    }

    /// <summary>Tombstones of an empty consumer group's own records (DeleteGroups), group epoch last.</summary>
    private static void AddConsumerGroupDeletion(List<CoordinatorRecord> records, string groupId)
    {
        records.Add(new(new ConsumerGroupTargetAssignmentMetadataKey { GroupId = groupId }, ConsumerGroupTargetAssignmentMetadataKeyVersion, null, 0));
        records.Add(new(new ConsumerGroupPartitionMetadataKey { GroupId = groupId }, ConsumerGroupPartitionMetadataKeyVersion, null, 0));
        records.Add(new(new ConsumerGroupMetadataKey { GroupId = groupId }, ConsumerGroupMetadataKeyVersion, null, 0));
    }
}
