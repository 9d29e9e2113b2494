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
    private readonly IGroupLog _log;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<string, ClassicGroup> _groups = new(StringComparer.Ordinal);
    private ITimer? _retentionTimer;
    private volatile bool _loaded;
    private volatile bool _disposed;

    public GroupCoordinator(GroupCoordinatorOptions options, IGroupLog log)
    {
        _options = options;
        _log = log;
        _time = options.Time;
    }

    public GroupCoordinatorOptions Options => _options;

    /// <summary>The <c>__consumer_offsets</c> partition of a group (Kafka's partitionFor).</summary>
    public int PartitionFor(string groupId) => CoordinatorBatch.PartitionFor(groupId, _options.OffsetsTopicNumPartitions);

    private long NowMs => _time.GetUtcNow().ToUnixTimeMilliseconds();

    // ------------------------------------------------------------------ JoinGroup

    /// <summary>JoinGroup, all versions. Completes when the rebalance does (or at once for errors).</summary>
    public Task<JoinGroupResponse> JoinGroupAsync(JoinGroupRequest request, short version, ClientInfo client)
    {
        string memberId = request.MemberId;
        if (!_loaded) return Task.FromResult(JoinError(GroupErrors.CoordinatorLoadInProgress, memberId, version));
        if (string.IsNullOrEmpty(request.GroupId)) return Task.FromResult(JoinError(GroupErrors.InvalidGroupId, memberId, version));
        if (request.SessionTimeoutMs < _options.MinSessionTimeoutMs || request.SessionTimeoutMs > _options.MaxSessionTimeoutMs)
            return Task.FromResult(JoinError(GroupErrors.InvalidSessionTimeout, memberId, version));
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        int rebalanceTimeout = version == 0 || request.RebalanceTimeoutMs < 0 ? request.SessionTimeoutMs : request.RebalanceTimeoutMs;
        bool unknownMember = memberId.Length == 0;

        var protocols = new List<MemberProtocol>(request.Protocols.Count);
        foreach (var p in request.Protocols) protocols.Add(new MemberProtocol(p.Name, p.Metadata));

        ClassicGroup group;
        if (unknownMember) group = _groups.GetOrAdd(request.GroupId, static id => new ClassicGroup(id));
        else if (!_groups.TryGetValue(request.GroupId, out group!))
            return Task.FromResult(JoinError(GroupErrors.UnknownMemberId, memberId, version));

        lock (group.Lock)
        {
            if (group.State == GroupState.Dead)
                return Task.FromResult(JoinError(GroupErrors.CoordinatorNotAvailable, memberId, version));
            if (!AcceptJoiningMember(group, memberId))
                return Task.FromResult(JoinError(GroupErrors.GroupMaxSizeReached, memberId, version));
            if (!group.SupportsProtocols(request.ProtocolType, protocols))
            {
                RemoveIfUnused(group);
                return Task.FromResult(JoinError(GroupErrors.InconsistentGroupProtocol, memberId, version));
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
                    return Task.FromResult(JoinError(GroupErrors.MemberIdRequired, id, version));
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
        short error = ValidateMember(group, memberId, join.InstanceId);
        if (error != GroupErrors.None) return Task.FromResult(JoinError(error, memberId, join.Version));
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
                return Task.FromResult(JoinError(GroupErrors.UnknownMemberId, memberId, join.Version));
        }
    }

    /// <summary>Kafka's validateMember: static identity first (FENCED_INSTANCE_ID), then membership.</summary>
    private static short ValidateMember(ClassicGroup group, string memberId, string? instanceId)
    {
        if (instanceId is not null)
        {
            if (!group.StaticMembers.TryGetValue(instanceId, out var registered)) return GroupErrors.UnknownMemberId;
            if (registered != memberId) return GroupErrors.FencedInstanceId;
        }
        return group.Members.ContainsKey(memberId) ? GroupErrors.None : GroupErrors.UnknownMemberId;
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
        member.AwaitingJoin?.TrySetResult(JoinError(GroupErrors.RebalanceInProgress, member.MemberId, member.JoinVersion));
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
        old.AwaitingJoin?.TrySetResult(JoinError(GroupErrors.FencedInstanceId, oldId, old.JoinVersion));
        old.AwaitingJoin = null;
        old.AwaitingSync?.TrySetResult(SyncError(GroupErrors.FencedInstanceId, old.SyncVersion));
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
                        tcs.TrySetResult(JoinError(GroupErrors.CoordinatorNotAvailable, "", join.Version));
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

    internal static JoinGroupResponse JoinError(short error, string memberId, short version) => new()
    {
        ErrorCode = error,
        MemberId = memberId,
        GenerationId = -1,
        // Nullable from v7; Kafka answers errors with null protocol name there.
        ProtocolName = version >= 7 ? null : "",
        Leader = "",
    };

    // ------------------------------------------------------------------ rebalance

    private void MaybePrepareRebalance(ClassicGroup group)
    {
        if (group.State is GroupState.Stable or GroupState.CompletingRebalance or GroupState.Empty) PrepareRebalance(group);
    }

    private void PrepareRebalance(ClassicGroup group)
    {
        // Members waiting for SyncGroup learn that this generation is over.
        if (group.State == GroupState.CompletingRebalance) ResetAndPropagateAssignmentError(group, GroupErrors.RebalanceInProgress);
        bool initial = group.State == GroupState.Empty;
        Transition(group, GroupState.PreparingRebalance);
        if (initial)
        {
            // Kafka's InitialDelayedJoin: wait group.initial.rebalance.delay.ms for more members, extended
            // while members keep arriving, but no longer in total than the rebalance timeout.
            int delay = _options.InitialRebalanceDelayMs;
            int remaining = Math.Max(group.RebalanceTimeoutMs - delay, 0);
            group.NewMemberAdded = false;
            ScheduleJoin(group, delay, initial: true, remaining);
        }
        else
        {
            ScheduleJoin(group, group.RebalanceTimeoutMs, initial: false, 0);
            TryCompleteJoin(group);
        }
    }

    private void ScheduleJoin(ClassicGroup group, int delayMs, bool initial, int remainingMs)
    {
        group.JoinTimer?.Dispose();
        int token = ++group.JoinTimerToken;
        group.InitialJoinDelay = initial;
        group.JoinTimer = _time.CreateTimer(static state =>
        {
            var (self, g, t, rem) = ((GroupCoordinator, ClassicGroup, int, int))state!;
            self.OnJoinTimer(g, t, rem);
        }, (this, group, token, remainingMs), TimeSpan.FromMilliseconds(delayMs), Timeout.InfiniteTimeSpan);
    }

    private void CancelJoinTimer(ClassicGroup group)
    {
        group.JoinTimerToken++;
        group.JoinTimer?.Dispose();
        group.JoinTimer = null;
        group.InitialJoinDelay = false;
    }

    private void OnJoinTimer(ClassicGroup group, int token, int remainingMs)
    {
        if (_disposed) return;
        lock (group.Lock)
        {
            if (token != group.JoinTimerToken || group.State != GroupState.PreparingRebalance) return;
            if (group.InitialJoinDelay && group.NewMemberAdded && remainingMs > 0)
            {
                group.NewMemberAdded = false;
                int delay = Math.Min(_options.InitialRebalanceDelayMs, remainingMs);
                ScheduleJoin(group, delay, initial: true, Math.Max(remainingMs - delay, 0));
                return;
            }
            CompleteJoin(group);
        }
    }

    /// <summary>Kafka's DelayedJoin.tryComplete: finish the join phase early once everyone is back.</summary>
    private void TryCompleteJoin(ClassicGroup group)
    {
        if (group.State != GroupState.PreparingRebalance || group.InitialJoinDelay) return;
        if (group.HasAllMembersJoined) CompleteJoin(group);
    }

    /// <summary>Kafka's onCompleteJoin: drop members that did not rejoin, start the next generation, answer the joiners.</summary>
    private void CompleteJoin(ClassicGroup group)
    {
        CancelJoinTimer(group);
        // Dynamic members that did not rejoin in time are removed; static ones stay until their
        // session times out (KIP-345).
        for (int i = group.MemberList.Count - 1; i >= 0; i--)
        {
            var m = group.MemberList[i];
            if (m.AwaitingJoin is null && !m.IsStatic) group.Remove(m);
        }
        if (group.State == GroupState.Dead) return;

        // The leader must be one of the members that joined (maybeElectNewJoinedLeader).
        if (group.LeaderId is null || group.Members[group.LeaderId].AwaitingJoin is null)
        {
            group.LeaderId = null;
            foreach (var m in group.MemberList)
                if (m.AwaitingJoin is not null) { group.LeaderId = m.MemberId; break; }
            if (group.LeaderId is null && group.MemberList.Count > 0) group.LeaderId = group.MemberList[0].MemberId;
        }

        group.GenerationId++;
        if (group.IsEmpty)
        {
            group.ProtocolName = null;
            group.LeaderId = null;
            Transition(group, GroupState.Empty);
            TryStoreGroup(group);
            return;
        }
        group.ProtocolName = group.SelectProtocol();
        Transition(group, GroupState.CompletingRebalance);
        SchedulePendingSync(group);
        foreach (var m in group.MemberList)
        {
            m.Assignment = [];
            var tcs = m.AwaitingJoin;
            if (tcs is null) continue;
            m.AwaitingJoin = null;
            m.IsNew = false;
            ScheduleHeartbeat(group, m, m.SessionTimeoutMs);
            tcs.TrySetResult(CurrentGenerationResponse(group, m, m.JoinVersion, skipAssignment: false));
        }
    }

    /// <summary>
    /// Kafka's pending-sync timeout (pendingSyncMembers, Kafka 3.x): every member of the new generation must
    /// send SyncGroup within the rebalance timeout, else it is removed and the group rebalances, so a
    /// member that got its JoinGroup answer and vanished does not hold the group's partitions.
    /// </summary>
    private void SchedulePendingSync(ClassicGroup group)
    {
        group.PendingSync.Clear();
        foreach (var m in group.MemberList) group.PendingSync.Add(m.MemberId);
        group.SyncTimer?.Dispose();
        group.SyncTimer = _time.CreateTimer(static state =>
        {
            var (self, g, generation) = ((GroupCoordinator, ClassicGroup, int))state!;
            self.OnPendingSyncExpired(g, generation);
        }, (this, group, group.GenerationId), TimeSpan.FromMilliseconds(group.RebalanceTimeoutMs), Timeout.InfiniteTimeSpan);
    }

    private void OnPendingSyncExpired(ClassicGroup group, int generation)
    {
        if (_disposed) return;
        lock (group.Lock)
        {
            if (group.GenerationId != generation || group.State is not (GroupState.CompletingRebalance or GroupState.Stable)) return;
            if (group.PendingSync.Count == 0) return;
            var missing = new List<GroupMember>();
            foreach (var id in group.PendingSync)
                if (group.Members.TryGetValue(id, out var m)) missing.Add(m);
            group.PendingSync.Clear();
            foreach (var m in missing) RemoveMemberAndUpdateGroup(group, m);
        }
    }

    private void Transition(ClassicGroup group, GroupState state)
    {
        group.State = state;
        group.CurrentStateTimestamp = NowMs;
    }

    private static void ResetAndPropagateAssignmentError(ClassicGroup group, short error)
    {
        foreach (var m in group.MemberList)
        {
            m.Assignment = [];
            var tcs = m.AwaitingSync;
            if (tcs is null) continue;
            m.AwaitingSync = null;
            tcs.TrySetResult(SyncError(error, m.SyncVersion));
        }
    }

    // ------------------------------------------------------------------ heartbeats and expiry

    private void ScheduleHeartbeat(ClassicGroup group, GroupMember member, int timeoutMs)
    {
        member.HeartbeatDeadline = NowMs + timeoutMs;
        if (member.HeartbeatTimer is null)
        {
            member.HeartbeatTimer = _time.CreateTimer(static state =>
            {
                var (self, g, m) = ((GroupCoordinator, ClassicGroup, GroupMember))state!;
                self.OnHeartbeatTimer(g, m);
            }, (this, group, member), TimeSpan.FromMilliseconds(timeoutMs), Timeout.InfiniteTimeSpan);
        }
        else member.HeartbeatTimer.Change(TimeSpan.FromMilliseconds(timeoutMs), Timeout.InfiniteTimeSpan);
    }

    private void OnHeartbeatTimer(ClassicGroup group, GroupMember member)
    {
        if (_disposed) return;
        lock (group.Lock)
        {
            if (!group.Members.TryGetValue(member.MemberId, out var current) || current != member || member.HeartbeatTimer is null) return;
            long now = NowMs;
            if (now < member.HeartbeatDeadline)
            {
                member.HeartbeatTimer.Change(TimeSpan.FromMilliseconds(member.HeartbeatDeadline - now), Timeout.InfiniteTimeSpan);
                return;
            }
            // Members parked in JoinGroup/SyncGroup cannot heartbeat and are excused, except new
            // members that never finished their first join (Kafka's hasSatisfiedHeartbeat).
            if (!member.IsNew && (member.AwaitingJoin is not null || member.AwaitingSync is not null))
            {
                ScheduleHeartbeat(group, member, member.SessionTimeoutMs);
                return;
            }
            RemoveMemberAndUpdateGroup(group, member);
        }
    }

    private void RemoveMemberAndUpdateGroup(ClassicGroup group, GroupMember member)
    {
        member.AwaitingJoin?.TrySetResult(JoinError(GroupErrors.UnknownMemberId, member.MemberId, member.JoinVersion));
        member.AwaitingJoin = null;
        member.AwaitingSync?.TrySetResult(SyncError(GroupErrors.UnknownMemberId, member.SyncVersion));
        member.AwaitingSync = null;
        group.Remove(member);
        switch (group.State)
        {
            case GroupState.Stable:
            case GroupState.CompletingRebalance:
                MaybePrepareRebalance(group);
                break;
            case GroupState.PreparingRebalance:
                TryCompleteJoin(group);
                break;
        }
    }

    // ------------------------------------------------------------------ SyncGroup

    /// <summary>SyncGroup, all versions: the leader's assignments go to every member of the generation.</summary>
    public Task<SyncGroupResponse> SyncGroupAsync(SyncGroupRequest request, short version)
    {
        if (!_loaded) return Task.FromResult(SyncError(GroupErrors.CoordinatorLoadInProgress, version));
        if (!_groups.TryGetValue(request.GroupId, out var group))
            return Task.FromResult(SyncError(GroupErrors.UnknownMemberId, version));
        lock (group.Lock)
        {
            if (group.State == GroupState.Dead) return Task.FromResult(SyncError(GroupErrors.CoordinatorNotAvailable, version));
            short error = ValidateMember(group, request.MemberId, request.GroupInstanceId);
            if (error != GroupErrors.None) return Task.FromResult(SyncError(error, version));
            if (request.GenerationId != group.GenerationId) return Task.FromResult(SyncError(GroupErrors.IllegalGeneration, version));
            // v5+: the client repeats the protocol it was given; a mismatch is INCONSISTENT_GROUP_PROTOCOL.
            if ((request.ProtocolType is not null && request.ProtocolType != group.ProtocolType)
                || (request.ProtocolName is not null && request.ProtocolName != group.ProtocolName))
                return Task.FromResult(SyncError(GroupErrors.InconsistentGroupProtocol, version));

            var member = group.Members[request.MemberId];
            if (group.State is GroupState.CompletingRebalance or GroupState.Stable) group.PendingSync.Remove(request.MemberId);
            switch (group.State)
            {
                case GroupState.Empty:
                    return Task.FromResult(SyncError(GroupErrors.UnknownMemberId, version));
                case GroupState.PreparingRebalance:
                    return Task.FromResult(SyncError(GroupErrors.RebalanceInProgress, version));
                case GroupState.CompletingRebalance:
                {
                    member.AwaitingSync?.TrySetResult(SyncError(GroupErrors.RebalanceInProgress, member.SyncVersion));
                    var tcs = new TaskCompletionSource<SyncGroupResponse>(TaskCreationOptions.RunContinuationsAsynchronously);
                    member.AwaitingSync = tcs;
                    member.SyncVersion = version;
                    ScheduleHeartbeat(group, member, member.SessionTimeoutMs);
                    if (group.IsLeader(request.MemberId))
                    {
                        var assignments = new Dictionary<string, byte[]>(StringComparer.Ordinal);
                        foreach (var a in request.Assignments) assignments[a.MemberId] = a.Assignment;
                        // Members the leader left out get an empty assignment, as in Kafka.
                        foreach (var m in group.MemberList)
                            m.Assignment = assignments.TryGetValue(m.MemberId, out var bytes) ? bytes : [];
                        if (TryStoreGroup(group))
                        {
                            PropagateAssignment(group);
                            Transition(group, GroupState.Stable);
                        }
                        else
                        {
                            ResetAndPropagateAssignmentError(group, GroupErrors.CoordinatorNotAvailable);
                            MaybePrepareRebalance(group);
                        }
                    }
                    return tcs.Task;
                }
                default: // Stable: a late or retried SyncGroup gets the stored assignment.
                    ScheduleHeartbeat(group, member, member.SessionTimeoutMs);
                    return Task.FromResult(SyncOk(group, member.Assignment, version));
            }
        }
    }

    private void PropagateAssignment(ClassicGroup group)
    {
        foreach (var m in group.MemberList)
        {
            var tcs = m.AwaitingSync;
            if (tcs is null) continue;
            m.AwaitingSync = null;
            ScheduleHeartbeat(group, m, m.SessionTimeoutMs);
            tcs.TrySetResult(SyncOk(group, m.Assignment, m.SyncVersion));
        }
    }

    private static SyncGroupResponse SyncOk(ClassicGroup group, byte[] assignment, short version) => new()
    {
        ProtocolType = version >= 5 ? group.ProtocolType : null,
        ProtocolName = version >= 5 ? group.ProtocolName : null,
        Assignment = assignment,
    };

    internal static SyncGroupResponse SyncError(short error, short version) => new() { ErrorCode = error };

    // ------------------------------------------------------------------ Heartbeat

    /// <summary>Heartbeat, all versions.</summary>
    public HeartbeatResponse Heartbeat(HeartbeatRequest request)
    {
        if (!_loaded) return new HeartbeatResponse { ErrorCode = GroupErrors.CoordinatorLoadInProgress };
        if (!_groups.TryGetValue(request.GroupId, out var group)) return new HeartbeatResponse { ErrorCode = GroupErrors.UnknownMemberId };
        lock (group.Lock)
        {
            short error;
            if (group.State == GroupState.Dead) error = GroupErrors.CoordinatorNotAvailable;
            else if ((error = ValidateMember(group, request.MemberId, request.GroupInstanceId)) != GroupErrors.None) { }
            else if (request.GenerationId != group.GenerationId) error = GroupErrors.IllegalGeneration;
            else
            {
                var member = group.Members[request.MemberId];
                switch (group.State)
                {
                    case GroupState.Empty:
                        error = GroupErrors.UnknownMemberId;
                        break;
                    case GroupState.PreparingRebalance:
                        // The member must rejoin; the heartbeat still counts so it is not expired meanwhile.
                        ScheduleHeartbeat(group, member, member.SessionTimeoutMs);
                        error = GroupErrors.RebalanceInProgress;
                        break;
                    default: // CompletingRebalance (members may heartbeat before SyncGroup) and Stable
                        ScheduleHeartbeat(group, member, member.SessionTimeoutMs);
                        break;
                }
            }
            return new HeartbeatResponse { ErrorCode = error };
        }
    }

    // ------------------------------------------------------------------ LeaveGroup

    /// <summary>LeaveGroup: v0-2 one member by id, v3+ a batch of members by id and/or instance id (KIP-345).</summary>
    public LeaveGroupResponse LeaveGroup(LeaveGroupRequest request, short version)
    {
        var leaving = version >= 3 ? request.Members : [new LeaveGroupRequest.MemberIdentity { MemberId = request.MemberId }];
        var response = new LeaveGroupResponse();
        if (!_loaded)
        {
            response.ErrorCode = GroupErrors.CoordinatorLoadInProgress;
            return response;
        }
        if (!_groups.TryGetValue(request.GroupId, out var group))
        {
            if (version < 3) response.ErrorCode = GroupErrors.UnknownMemberId;
            else foreach (var m in leaving) response.Members.Add(LeaveResult(m, GroupErrors.UnknownMemberId));
            return response;
        }
        lock (group.Lock)
        {
            if (group.State == GroupState.Dead)
            {
                response.ErrorCode = GroupErrors.CoordinatorNotAvailable;
                return response;
            }
            foreach (var identity in leaving)
            {
                short error = LeaveOne(group, identity);
                if (version >= 3) response.Members.Add(LeaveResult(identity, error));
                else response.ErrorCode = error;
            }
        }
        return response;
    }

    private static LeaveGroupResponse.MemberResponse LeaveResult(LeaveGroupRequest.MemberIdentity m, short error) =>
        new() { MemberId = m.MemberId, GroupInstanceId = m.GroupInstanceId, ErrorCode = error };

    private short LeaveOne(ClassicGroup group, LeaveGroupRequest.MemberIdentity identity)
    {
        string memberId = identity.MemberId;
        if (memberId.Length == 0 && identity.GroupInstanceId is not null)
        {
            // KIP-345: an admin may remove a static member by instance id alone.
            if (!group.StaticMembers.TryGetValue(identity.GroupInstanceId, out var id)) return GroupErrors.UnknownMemberId;
            memberId = id;
        }
        else if (group.PendingMembers.Remove(memberId, out var timer))
        {
            timer.Dispose();
            if (group.State == GroupState.PreparingRebalance) TryCompleteJoin(group);
            return GroupErrors.None;
        }
        else
        {
            short error = ValidateMember(group, memberId, identity.GroupInstanceId);
            if (error != GroupErrors.None) return error;
        }
        RemoveMemberAndUpdateGroup(group, group.Members[memberId]);
        return GroupErrors.None;
    }

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
