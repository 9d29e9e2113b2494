using Kayak.Coordinator.ConsumerGroups;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Coordinator;

/// <summary>
/// Classic members in a consumer group (KIP-848 online migration), as Kafka 4.0's classicGroupJoinToConsumerGroup,
/// classicGroupSyncToConsumerGroup, classicGroupHeartbeatToConsumerGroup and classicGroupLeaveToConsumerGroup: such a
/// member is a consumer group member whose ConsumerGroupMemberMetadata carries ClassicMemberMetadata. JoinGroup runs
/// the same reconciliation as a ConsumerGroupHeartbeat (the partitions it reports owning in its subscription are its
/// owned partitions) and answers at once with its member epoch as the generation and no member list, so every classic
/// member is a follower; SyncGroup hands it its assigned partitions; Heartbeat answers REBALANCE_IN_PROGRESS while it
/// has to rejoin (behind the group epoch, partitions to revoke, or partitions released for it). JoinGroup must follow
/// such a Heartbeat, and SyncGroup a JoinGroup, within the rebalance timeout, else the member is fenced (Kafka's join
/// and sync timeouts); its session timeout is the classic one.
/// </summary>
public sealed partial class GroupCoordinator
{
    private Task<JoinGroupResponse> ClassicJoinToConsumerGroup(ClassicGroup group, ConsumerGroupState cg, JoinGroupRequest request,
        short version, ClientInfo client, int rebalanceTimeoutMs, List<MemberProtocol> protocols, ConsumerTopicResolver? topics)
    {
        string groupId = group.GroupId;
        bool unknown = request.MemberId.Length == 0;
        string memberId = unknown ? Guid.NewGuid().ToString() : request.MemberId;

        // Kafka's throwIfConsumerGroupIsFull.
        if (cg.Members.Count >= _options.ConsumerGroupMaxSize && (unknown || !cg.Members.ContainsKey(memberId)))
            return Task.FromResult(JoinError(ErrorCode.GroupMaxSizeReached, request.MemberId, version));
        // Kafka's throwIfClassicProtocolIsNotSupported / ConsumerGroup.supportsClassicProtocols.
        if (!SupportsClassicProtocols(cg, memberId, request.ProtocolType, protocols))
            return Task.FromResult(JoinError(ErrorCode.InconsistentGroupProtocol, request.MemberId, version));
        // KIP-394: a dynamic member without an id gets one and comes back with it.
        if (unknown && request.GroupInstanceId is null && version >= 4)
            return Task.FromResult(JoinError(ErrorCode.MemberIdRequired, memberId, version));
        // Kafka reads the subscription from the first protocol's metadata.
        if (!TryReadSubscription(protocols[0].Metadata, out var subscription, out _))
            return Task.FromResult(JoinError(ErrorCode.InconsistentGroupProtocol, request.MemberId, version));

        cg.Members.TryGetValue(memberId, out var existing);
        string? replaced = null;
        if (request.GroupInstanceId is { } instanceId && cg.StaticMembers.TryGetValue(instanceId, out var staticId) && staticId != memberId)
        {
            // Kafka's getOrMaybeSubscribeStaticConsumerGroupMember: a classic static member rejoining with an unknown id
            // takes over its instance's place (no UNRELEASED_INSTANCE_ID check for the classic protocol); with a known
            // id that is not the instance's, it is fenced.
            if (!unknown) return Task.FromResult(JoinError(ErrorCode.FencedInstanceId, request.MemberId, version));
            replaced = staticId;
        }
        if (existing is not null && existing.InstanceId is { } had && request.GroupInstanceId is { } now && had != now)
            return Task.FromResult(JoinError(ErrorCode.FencedInstanceId, request.MemberId, version));

        var basis = existing ?? (replaced is not null ? cg.Members[replaced] : null);
        var proposed = new ConsumerMember(memberId)
        {
            InstanceId = request.GroupInstanceId ?? basis?.InstanceId,
            RackId = subscription.RackId ?? basis?.RackId,
            ClientId = client.ClientId,
            ClientHost = client.ClientHost,
            SubscribedTopicNames = SortedTopics(subscription.Topics),
            SubscribedTopicRegex = basis?.SubscribedTopicRegex,
            RebalanceTimeoutMs = rebalanceTimeoutMs,
            ServerAssignor = basis?.ServerAssignor,
            MemberEpoch = existing?.MemberEpoch ?? 0,
            PreviousMemberEpoch = existing?.PreviousMemberEpoch ?? 0,
            State = existing?.State ?? ConsumerMemberState.Stable,
            Assigned = basis?.Assigned ?? TopicPartitions.Empty,
            PendingRevocation = existing?.PendingRevocation ?? TopicPartitions.Empty,
            Classic = new ClassicMemberInfo(request.SessionTimeoutMs, protocols),
        };

        var records = new List<CoordinatorRecord>();
        if (replaced is not null) AddMemberRemoval(records, groupId, replaced);
        bool bump = false;
        if (existing is null || !SameMetadata(existing, proposed))
        {
            records.Add(MemberMetadataRecord(groupId, proposed));
            bump = basis is null || !basis.SubscribedTopicNames.SequenceEqual(proposed.SubscribedTopicNames);
        }

        // The partitions the member says it owns (ConsumerProtocolSubscription.OwnedPartitions, empty for an eager
        // client that revoked everything before rejoining), by topic id.
        var ownedList = new List<(Uuid, int)>();
        foreach (var t in subscription.OwnedPartitions)
            if (cg.SubscriptionMetadata.TryGetValue(t.Topic, out var known))
                foreach (int p in t.Partitions) ownedList.Add((known.TopicId, p));
        var owned = TopicPartitions.From(ownedList);

        ConsumerTopicResolver resolve = topics ?? ((string name, out Uuid id, out int count) =>
        {
            // Without the broker's topic catalog the group's own subscription metadata is what is known.
            if (cg.SubscriptionMetadata.TryGetValue(name, out var t)) { id = t.TopicId; count = t.NumPartitions; return true; }
            id = default;
            count = 0;
            return false;
        });
        // A classic JoinGroup carries no catalog of topic names: the regexes of the group's consumer-protocol members
        // keep matching among the topics the group already knows (their own heartbeats re-resolve against the
        // catalog and their principal's DESCRIBE ACLs); with no names at all they would lose every matched topic.
        var knownTopics = new List<string>(cg.SubscriptionMetadata.Keys);
        var next = PlanMember(cg, groupId, proposed, replaced, bump, owned, resolve, knownTopics, records, regexAuthorizer: null);
        AddAssignmentIfChanged(records, groupId, memberId, existing, next);
        // Kafka's step 4: a classic static member replacing the last consumer-protocol member downgrades the group in
        // the same batch; the joining member takes the replaced one's target assignment, and no rebalance follows.
        var downgraded = replaced is not null && MayDowngradeReplacing(cg, replaced)
            ? AddDowngradeRecords(group, cg, replaced, proposed, records)
            : null;

        if (records.Count > 0 && Write(group, records) is var refused and not ErrorCode.None)
            return Task.FromResult(JoinError(refused, request.MemberId, version));
        if (downgraded is not null)
        {
            RestoreClassicProtocols(group, downgraded);
            return Task.FromResult(ClassicJoinAnswer(memberId, next.MemberEpoch, protocols[0].Name));
        }

        var member = group.Consumer!.Members[memberId];
        long nowMs = NowMs;
        // Kafka's sync timeout: the member must send SyncGroup within its rebalance timeout.
        member.ClassicDeadline = nowMs + Math.Max(rebalanceTimeoutMs, 0);
        member.RevocationDeadline = -1;
        ScheduleConsumerSession(groupId, member, nowMs + request.SessionTimeoutMs);
        return Task.FromResult(ClassicJoinAnswer(memberId, member.MemberEpoch, protocols[0].Name));
    }

    /// <summary>
    /// Kafka's ConsumerGroup.supportsClassicProtocols: protocol type "consumer" and, when the group has classic members
    /// other than the joining one, a protocol they all support.
    /// </summary>
    /// <summary>A classic member's JoinGroup answer inside a consumer group: the member epoch as generation, no leader
    /// (the server assigns; SyncGroup hands the member its own assignment).</summary>
    private static JoinGroupResponse ClassicJoinAnswer(string memberId, int memberEpoch, string protocol) => new()
    {
        MemberId = memberId,
        GenerationId = memberEpoch,
        ProtocolType = ConsumerProtocolType,
        ProtocolName = protocol,
        Leader = "",
    };

    private static bool SupportsClassicProtocols(ConsumerGroupState cg, string memberId, string protocolType, List<MemberProtocol> protocols)
    {
        if (protocolType != ConsumerProtocolType || protocols.Count == 0) return false;
        foreach (var p in protocols)
        {
            bool all = true;
            foreach (var m in cg.Members.Values)
                if (m.MemberId != memberId && m.Classic is { } classic && !ClassicGroup.Supports(classic.Protocols, p.Name)) { all = false; break; }
            if (all) return true;
        }
        return false;
    }

    /// <summary>Kafka's validateClassicGroupMember checks shared by SyncGroup and Heartbeat.</summary>
    private static ErrorCode ValidateClassicMember(ConsumerGroupState cg, string memberId, string? instanceId, int generationId, out ConsumerMember? member)
    {
        member = null;
        if (instanceId is not null && cg.StaticMembers.TryGetValue(instanceId, out var staticId) && staticId != memberId)
            return ErrorCode.FencedInstanceId;
        if (!cg.Members.TryGetValue(memberId, out member) || !member.UsesClassicProtocol) return ErrorCode.UnknownMemberId;
        if (generationId != member.MemberEpoch) return ErrorCode.IllegalGeneration;
        return ErrorCode.None;
    }

    private SyncGroupResponse ClassicSyncToConsumerGroup(ClassicGroup group, ConsumerGroupState cg, SyncGroupRequest request, short version)
    {
        var error = ValidateClassicMember(cg, request.MemberId, request.GroupInstanceId, request.GenerationId, out var member);
        if (error != ErrorCode.None) return SyncError(error, version);
        string name = member!.Classic!.Protocols[0].Name;
        if ((request.ProtocolType is not null && request.ProtocolType != ConsumerProtocolType)
            || (request.ProtocolName is not null && request.ProtocolName != name))
            return SyncError(ErrorCode.InconsistentGroupProtocol, version);
        // Kafka's throwIfRebalanceInProgress: a group epoch ahead of the member's means it must rejoin first, unless
        // it is revoking (it rejoined already and keeps its epoch until it has let go).
        if (cg.GroupEpoch > member.MemberEpoch && member.State != ConsumerMemberState.UnrevokedPartitions)
            return SyncError(ErrorCode.RebalanceInProgress, version);
        member.ClassicDeadline = -1;
        ScheduleConsumerSession(group.GroupId, member, NowMs + member.Classic.SessionTimeoutMs);
        return new SyncGroupResponse
        {
            ProtocolType = version >= 5 ? ConsumerProtocolType : null,
            ProtocolName = version >= 5 ? name : null,
            Assignment = SerializeAssignment(cg, member.Assigned, SubscriptionVersion(member.Classic.Protocols[0].Metadata)),
        };
    }

    private HeartbeatResponse ClassicHeartbeatToConsumerGroup(ClassicGroup group, ConsumerGroupState cg, HeartbeatRequest request)
    {
        var error = ValidateClassicMember(cg, request.MemberId, request.GroupInstanceId, request.GenerationId, out var member);
        if (error != ErrorCode.None) return new HeartbeatResponse().SetError(error);
        long nowMs = NowMs;
        // The member must rejoin when the group epoch moved on, when it has partitions to revoke, or when partitions it
        // waits for are free now; it then has its rebalance timeout to do so (Kafka's join timeout).
        if (member!.MemberEpoch < cg.GroupEpoch || member.State == ConsumerMemberState.UnrevokedPartitions
            || (member.State == ConsumerMemberState.UnreleasedPartitions && !WaitingOnUnreleasedPartition(cg, member)))
        {
            error = ErrorCode.RebalanceInProgress;
            if (member.ClassicDeadline < 0) member.ClassicDeadline = nowMs + Math.Max(member.RebalanceTimeoutMs, 0);
        }
        ScheduleConsumerSession(group.GroupId, member, nowMs + member.Classic!.SessionTimeoutMs);
        return new HeartbeatResponse().SetError(error);
    }

    /// <summary>Kafka's ConsumerGroup.waitingOnUnreleasedPartition: a target partition it lacks is still owned by another.</summary>
    private static bool WaitingOnUnreleasedPartition(ConsumerGroupState cg, ConsumerMember member)
    {
        foreach (var tp in cg.TargetOf(member.MemberId).All())
            if (!member.Assigned.Contains(tp.Topic, tp.Partition) && cg.Owners.TryGetValue(tp, out var owner) && owner != member.MemberId)
                return true;
        return false;
    }

    /// <summary>
    /// Kafka's classicGroupLeaveToConsumerGroup: each named member (by id, or by instance id alone) is removed with a
    /// group epoch bump, and the group downgraded when only classic members remain.
    /// </summary>
    private ErrorCode ClassicLeaveConsumerGroup(ClassicGroup group, ConsumerGroupState cg, LeaveGroupRequest.MemberIdentity identity)
    {
        string memberId = identity.MemberId;
        if (identity.GroupInstanceId is { } instanceId)
        {
            if (!cg.StaticMembers.TryGetValue(instanceId, out var id)) return ErrorCode.UnknownMemberId;
            if (memberId.Length > 0 && id != memberId) return ErrorCode.FencedInstanceId;
            memberId = id;
        }
        if (!cg.Members.ContainsKey(memberId)) return ErrorCode.UnknownMemberId;
        return RemoveConsumerMember(group, cg, memberId);
    }

    /// <summary>
    /// Removes a member from the consumer group (Kafka's consumerGroupFenceMember): the downgrade when it was the last
    /// consumer-protocol member and the policy allows it, else its tombstones and a group epoch bump. The coordinator's
    /// error when the log refused the write.
    /// </summary>
    private ErrorCode RemoveConsumerMember(ClassicGroup group, ConsumerGroupState cg, string memberId)
    {
        if (TryDowngradeToClassicGroup(group, cg, memberId)) return ErrorCode.None;
        var records = new List<CoordinatorRecord>();
        AddMemberRemoval(records, group.GroupId, memberId);
        records.Add(GroupEpochRecord(group.GroupId, cg.GroupEpoch + 1));
        return Write(group, records);
    }

    /// <summary>A member's session timeout: its classic one for a classic member, else group.consumer.session.timeout.ms.</summary>
    private int SessionTimeoutOf(ConsumerMember member) => member.Classic?.SessionTimeoutMs ?? _options.ConsumerGroupSessionTimeoutMs;
}
