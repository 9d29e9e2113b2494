using Kayak.Protocol;
using System.Collections.Concurrent;
using Kayak.Protocol.Messages;

namespace Kayak.Coordinator;

/// <summary>Who sent a request, as JoinGroup records it for DescribeGroups.</summary>
public readonly record struct ClientInfo(string ClientId, string ClientHost);

/// <summary>
/// The classic group coordinator, following Kafka's GroupCoordinator/ClassicGroup semantics: group
/// state machine, JoinGroup/SyncGroup/Heartbeat/LeaveGroup, committed offsets, and durability in
/// <c>__consumer_offsets</c> through <see cref="IGroupLog"/>. This node coordinates every group.
/// Each group has its own lock; requests on different groups run in parallel. Requests take the
/// decoded protocol message and its version, and return the response shaped for that version.
/// </summary>
public sealed partial class GroupCoordinator : IDisposable
{
    private readonly GroupCoordinatorOptions _options;
    /// <summary>group.consumer.assignors as assignor names, the default first (KIP-848).</summary>
    private readonly List<string> _assignors = new();
    private readonly IGroupLog _log;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<string, ClassicGroup> _groups = new(StringComparer.Ordinal);
    private ITimer? _retentionTimer;
    private volatile bool _loaded;
    private volatile bool _disposed;

    public GroupCoordinator(GroupCoordinatorOptions options, IGroupLog log)
    {
        options.ValidateConsumerGroupSettings();
        foreach (var a in options.ConsumerGroupAssignors)
        {
            string name = ConsumerGroups.ConsumerAssignors.Normalize(a);
            if (!_assignors.Contains(name)) _assignors.Add(name);
        }
        _options = options;
        _log = log;
        _time = options.Time;
        _loads = new PartitionLoads(ReloadPartition, UnloadPartition);
    }

    public GroupCoordinatorOptions Options => _options;

    /// <summary>
    /// NOT_COORDINATOR for a group coordinated elsewhere (issue 14: its partition is led by another broker, see
    /// <see cref="LeaderEpochOf"/>), COORDINATOR_LOAD_IN_PROGRESS before loading or while its partition loads, else NONE.
    /// </summary>
    private ErrorCode Unavailable(string groupId)
    {
        int partition = PartitionFor(groupId);
        if (!_loaded) return LeadsPartition(partition) ? ErrorCode.CoordinatorLoadInProgress : ErrorCode.NotCoordinator;
        return PartitionAvailability(partition);
    }

    /// <summary>The <c>__consumer_offsets</c> partition of a group (Kafka's partitionFor).</summary>
    public int PartitionFor(string groupId) => CoordinatorBatch.PartitionFor(groupId, _options.OffsetsTopicNumPartitions);

    private long NowMs => _time.GetUtcNow().ToUnixTimeMilliseconds();

    // ------------------------------------------------------------------ JoinGroup

    /// <summary>JoinGroup, all versions. Completes when the rebalance does (or at once for errors).</summary>
    /// <param name="topics">Topic lookup for a classic member joining a KIP-848 consumer group (online migration); without
    /// it the group's subscription metadata is what is known of the topics.</param>
    public Task<JoinGroupResponse> JoinGroupAsync(JoinGroupRequest request, short version, ClientInfo client, ConsumerTopicResolver? topics = null)
    {
        string memberId = request.MemberId;
        if (Unavailable(request.GroupId) is var unavailable && unavailable != ErrorCode.None) return Task.FromResult(JoinError(unavailable, memberId, version));
        if (string.IsNullOrEmpty(request.GroupId)) return Task.FromResult(JoinError(ErrorCode.InvalidGroupId, memberId, version));
        if (request.SessionTimeoutMs < _options.MinSessionTimeoutMs || request.SessionTimeoutMs > _options.MaxSessionTimeoutMs)
            return Task.FromResult(JoinError(ErrorCode.InvalidSessionTimeout, memberId, version));
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        int rebalanceTimeout = version == 0 || request.RebalanceTimeoutMs < 0 ? request.SessionTimeoutMs : request.RebalanceTimeoutMs;
        bool unknownMember = memberId.Length == 0;

        var protocols = new List<MemberProtocol>(request.Protocols.Count);
        foreach (var p in request.Protocols) protocols.Add(new MemberProtocol(p.Name, p.Metadata));

        ClassicGroup group;
        if (unknownMember) group = _groups.GetOrAdd(request.GroupId, static id => new ClassicGroup(id));
        else if (!_groups.TryGetValue(request.GroupId, out group!))
            return Task.FromResult(JoinError(ErrorCode.UnknownMemberId, memberId, version));

        lock (group.Lock)
        {
            if (group.State == GroupState.Dead)
                return Task.FromResult(JoinError(ErrorCode.CoordinatorNotAvailable, memberId, version));
            if (group.Consumer is { } consumerGroup)
            {
                // KIP-848, Kafka's classicGroupJoin: an empty consumer group becomes a classic group (its records
                // tombstoned, offsets kept), whatever group.consumer.migration.policy says (that policy is about
                // non-empty groups). A non-empty one takes the member as a classic member of the consumer group
                // (Kafka's classicGroupJoinToConsumerGroup, GroupCoordinator.ClassicInConsumer.cs).
                if (!consumerGroup.IsEmpty)
                    return ClassicJoinToConsumerGroup(group, consumerGroup, request, version, client, rebalanceTimeout, protocols, topics);
                var tombstones = new List<CoordinatorRecord>();
                AddConsumerGroupDeletion(tombstones, group.GroupId);
                if (Write(group, tombstones) is var refused and not ErrorCode.None)
                    return Task.FromResult(JoinError(refused, memberId, version));
            }
            if (!AcceptJoiningMember(group, memberId))
                return Task.FromResult(JoinError(ErrorCode.GroupMaxSizeReached, memberId, version));
            if (!group.SupportsProtocols(request.ProtocolType, protocols))
            {
                RemoveIfUnused(group);
                return Task.FromResult(JoinError(ErrorCode.InconsistentGroupProtocol, memberId, version));
            }

            var join = new JoinArgs(request.GroupInstanceId, client, rebalanceTimeout, request.SessionTimeoutMs, request.ProtocolType, protocols, version);
            if (unknownMember)
            {
                if (request.GroupInstanceId is not null)
                {
                    // KIP-345: static members skip the MEMBER_ID_REQUIRED round trip.
                    string newId = MemberIdPrefix(request.GroupInstanceId) + "-" + Guid.NewGuid().ToString();
                    if (group.StaticMembers.TryGetValue(request.GroupInstanceId, out var oldId))
                        return UpdateStaticMemberAndRebalance(group, oldId, newId, join);
                    return AddMemberAndRebalance(group, newId, join);
                }
                string id = MemberIdPrefix(client.ClientId) + "-" + Guid.NewGuid().ToString();
                if (version >= 4)
                {
                    // KIP-394: hand out the id and expect the member back with it; until then it is pending.
                    AddPendingMember(group, id, request.SessionTimeoutMs);
                    return Task.FromResult(JoinError(ErrorCode.MemberIdRequired, id, version));
                }
                return AddMemberAndRebalance(group, id, join);
            }
            return JoinExistingMember(group, memberId, join);
        }
    }

    /// <summary>
    /// Kafka's member ids are the client or instance id, "-" and a UUID. Either may be a 32,767-byte string, and the id
    /// built from it could then not be written in the JoinGroup response (issue 15, K14); the id is opaque to clients,
    /// so its prefix is cut to leave room for the 37 bytes after it.
    /// </summary>
    private static string MemberIdPrefix(string? prefix) =>
        prefix is null ? "" : Kayak.Protocol.FreeText.Prefix(prefix, Kayak.Protocol.KafkaWriter.MaxStringBytes - 37);

    private readonly record struct JoinArgs(string? InstanceId, ClientInfo Client, int RebalanceTimeoutMs, int SessionTimeoutMs,
        string ProtocolType, List<MemberProtocol> Protocols, short Version);

    private bool AcceptJoiningMember(ClassicGroup group, string memberId) =>
        group.MemberList.Count + group.PendingMembers.Count < _options.MaxGroupSize
        || group.Members.ContainsKey(memberId) || group.PendingMembers.ContainsKey(memberId);

    private Task<JoinGroupResponse> JoinExistingMember(ClassicGroup group, string memberId, JoinArgs join)
    {
        if (group.PendingMembers.Remove(memberId, out var pendingTimer))
        {
            pendingTimer.Dispose();
            return AddMemberAndRebalance(group, memberId, join);
        }
        ErrorCode error = ValidateMember(group, memberId, join.InstanceId);
        if (error != ErrorCode.None) return Task.FromResult(JoinError(error, memberId, join.Version));
        var member = group.Members[memberId];
        switch (group.State)
        {
            case GroupState.PreparingRebalance:
                return UpdateMemberAndRebalance(group, member, join);
            case GroupState.CompletingRebalance:
                // A retried JoinGroup after the join phase ended: answer with the current generation
                // unless the member's protocols changed.
                if (member.Matches(join.Protocols))
                    return Task.FromResult(CurrentGenerationResponse(group, member, join.Version, skipAssignment: false));
                return UpdateMemberAndRebalance(group, member, join);
            case GroupState.Stable:
                // The leader rejoining means it wants a new assignment (e.g. metadata change); a follower
                // with unchanged protocols just gets the current generation back.
                if (group.IsLeader(memberId) || !member.Matches(join.Protocols))
                    return UpdateMemberAndRebalance(group, member, join);
                return Task.FromResult(CurrentGenerationResponse(group, member, join.Version, skipAssignment: false));
            default:
                return Task.FromResult(JoinError(ErrorCode.UnknownMemberId, memberId, join.Version));
        }
    }

    /// <summary>Kafka's validateMember: static identity first (FENCED_INSTANCE_ID), then membership.</summary>
    private static ErrorCode ValidateMember(ClassicGroup group, string memberId, string? instanceId)
    {
        if (instanceId is not null)
        {
            if (!group.StaticMembers.TryGetValue(instanceId, out var registered)) return ErrorCode.UnknownMemberId;
            if (registered != memberId) return ErrorCode.FencedInstanceId;
        }
        return group.Members.ContainsKey(memberId) ? ErrorCode.None : ErrorCode.UnknownMemberId;
    }

    private Task<JoinGroupResponse> AddMemberAndRebalance(ClassicGroup group, string memberId, JoinArgs join)
    {
        var member = new GroupMember
        {
            MemberId = memberId,
            GroupInstanceId = join.InstanceId,
            ClientId = join.Client.ClientId,
            ClientHost = join.Client.ClientHost,
            RebalanceTimeoutMs = join.RebalanceTimeoutMs,
            SessionTimeoutMs = join.SessionTimeoutMs,
            ProtocolType = join.ProtocolType,
            Protocols = join.Protocols,
            IsNew = true,
        };
        var tcs = NewJoinCompletion();
        member.AwaitingJoin = tcs;
        member.JoinVersion = join.Version;
        // Joining during the first rebalance extends group.initial.rebalance.delay.ms.
        if (group.State == GroupState.PreparingRebalance && group.GenerationId == 0) group.NewMemberAdded = true;
        group.Add(member);
        // The session timeout cannot apply before the member has its first JoinGroup answer (its
        // socket is parked); Kafka bounds the wait with the new-member join timeout instead.
        ScheduleHeartbeat(group, member, _options.NewMemberJoinTimeoutMs);
        if (group.State == GroupState.PreparingRebalance) TryCompleteJoin(group);
        else MaybePrepareRebalance(group);
        return tcs.Task;
    }

    private Task<JoinGroupResponse> UpdateMemberAndRebalance(ClassicGroup group, GroupMember member, JoinArgs join)
    {
        UpdateMember(member, join);
        var tcs = member.AwaitingJoin!;
        if (group.State == GroupState.PreparingRebalance) TryCompleteJoin(group);
        else MaybePrepareRebalance(group);
        return tcs.Task;
    }

    private static void UpdateMember(GroupMember member, JoinArgs join)
    {
        member.Protocols = join.Protocols;
        member.RebalanceTimeoutMs = join.RebalanceTimeoutMs;
        member.SessionTimeoutMs = join.SessionTimeoutMs;
        member.ClientId = join.Client.ClientId;
        member.ClientHost = join.Client.ClientHost;
        // A second JoinGroup while one is parked replaces it; the old request is told to retry.
        member.AwaitingJoin?.TrySetResult(JoinError(ErrorCode.RebalanceInProgress, member.MemberId, member.JoinVersion));
        member.AwaitingJoin = NewJoinCompletion();
        member.JoinVersion = join.Version;
    }

    /// <summary>
    /// KIP-345: a static member restarting with an unknown member id takes over its old identity.
    /// In a Stable group whose selected protocol stays the same it gets the current generation and
    /// its old assignment back without a rebalance (KIP-814: the leader is told to skip assignment).
    /// </summary>
    private Task<JoinGroupResponse> UpdateStaticMemberAndRebalance(ClassicGroup group, string oldId, string newId, JoinArgs join)
    {
        var old = group.Members[oldId];
        // The old incarnation's parked requests are fenced.
        old.AwaitingJoin?.TrySetResult(JoinError(ErrorCode.FencedInstanceId, oldId, old.JoinVersion));
        old.AwaitingJoin = null;
        old.AwaitingSync?.TrySetResult(SyncError(ErrorCode.FencedInstanceId, old.SyncVersion));
        old.AwaitingSync = null;

        var oldProtocols = old.Protocols;
        int oldRebalance = old.RebalanceTimeoutMs, oldSession = old.SessionTimeoutMs;
        string oldClientId = old.ClientId, oldHost = old.ClientHost;

        group.Members.Remove(oldId);
        old.MemberId = newId;
        group.Members[newId] = old;
        group.StaticMembers[join.InstanceId!] = newId;
        bool wasLeader = group.LeaderId == oldId;
        if (wasLeader) group.LeaderId = newId;
        UpdateMember(old, join);
        ScheduleHeartbeat(group, old, old.SessionTimeoutMs);
        var tcs = old.AwaitingJoin!;

        switch (group.State)
        {
            case GroupState.Stable:
                if (group.SelectProtocol() == group.ProtocolName)
                {
                    if (!TryStoreGroup(group))
                    {
                        // Undo the replacement: the old id keeps its place.
                        group.Members.Remove(newId);
                        old.MemberId = oldId;
                        group.Members[oldId] = old;
                        group.StaticMembers[join.InstanceId!] = oldId;
                        if (wasLeader) group.LeaderId = oldId;
                        old.Protocols = oldProtocols;
                        old.RebalanceTimeoutMs = oldRebalance;
                        old.SessionTimeoutMs = oldSession;
                        old.ClientId = oldClientId;
                        old.ClientHost = oldHost;
                        old.AwaitingJoin = null;
                        tcs.TrySetResult(JoinError(ErrorCode.CoordinatorNotAvailable, "", join.Version));
                        return tcs.Task;
                    }
                    old.AwaitingJoin = null;
                    tcs.TrySetResult(CurrentGenerationResponse(group, old, join.Version, skipAssignment: group.IsLeader(newId)));
                }
                else
                {
                    PrepareRebalance(group);
                }
                break;
            case GroupState.CompletingRebalance:
                // The new incarnation missed the join phase: rebalance so it gets an assignment.
                PrepareRebalance(group);
                break;
            case GroupState.PreparingRebalance:
                TryCompleteJoin(group);
                break;
        }
        return tcs.Task;
    }

    private JoinGroupResponse CurrentGenerationResponse(ClassicGroup group, GroupMember member, short version, bool skipAssignment)
    {
        bool leader = group.IsLeader(member.MemberId);
        var response = new JoinGroupResponse
        {
            GenerationId = group.GenerationId,
            ProtocolType = group.ProtocolType,
            ProtocolName = group.ProtocolName,
            Leader = group.LeaderId ?? "",
            MemberId = member.MemberId,
        };
        // KIP-814: v9+ tells a rejoining static leader to keep its assignment; older versions keep the
        // pre-KIP behaviour of answering it like a follower (no member list).
        if (leader && (!skipAssignment || version >= 9)) FillMembers(group, response);
        if (skipAssignment && version >= 9) response.SkipAssignment = true;
        return response;
    }

    private static void FillMembers(ClassicGroup group, JoinGroupResponse response)
    {
        foreach (var m in group.MemberList)
        {
            response.Members.Add(new JoinGroupResponse.JoinGroupResponseMember
            {
                MemberId = m.MemberId,
                GroupInstanceId = m.GroupInstanceId,
                Metadata = m.MetadataFor(group.ProtocolName) ?? [],
            });
        }
    }

    private void AddPendingMember(ClassicGroup group, string memberId, int sessionTimeoutMs)
    {
        // The member has a session timeout to come back with its id (Kafka's pending member expiry).
        var timer = _time.CreateTimer(static state =>
        {
            var (self, g, id) = ((GroupCoordinator, ClassicGroup, string))state!;
            self.OnPendingMemberExpired(g, id);
        }, (this, group, memberId), TimeSpan.FromMilliseconds(sessionTimeoutMs), Timeout.InfiniteTimeSpan);
        group.PendingMembers[memberId] = timer;
    }

    private void OnPendingMemberExpired(ClassicGroup group, string memberId)
    {
        if (_disposed) return;
        lock (group.Lock)
        {
            if (!group.PendingMembers.Remove(memberId, out var timer)) return;
            timer.Dispose();
            if (group.State == GroupState.PreparingRebalance) TryCompleteJoin(group);
        }
    }

    private static TaskCompletionSource<JoinGroupResponse> NewJoinCompletion() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    internal static JoinGroupResponse JoinError(ErrorCode error, string memberId, short version) => new JoinGroupResponse
    {
        MemberId = memberId,
        GenerationId = -1,
        // Nullable from v7; Kafka answers errors with null protocol name there.
        ProtocolName = version >= 7 ? null : "",
        Leader = "",
    }.SetError(error);

    public void Dispose()
    {
        _disposed = true;
        _retentionTimer?.Dispose();
        foreach (var group in _groups.Values)
        {
            lock (group.Lock)
            {
                group.JoinTimer?.Dispose();
                group.SyncTimer?.Dispose();
                foreach (var m in group.MemberList) m.HeartbeatTimer?.Dispose();
                foreach (var t in group.PendingMembers.Values) t.Dispose();
            }
        }
    }
}
