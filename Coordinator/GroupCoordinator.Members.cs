using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Coordinator;

/// <summary>SyncGroup, Heartbeat and LeaveGroup of classic groups (Kafka's classicGroupSync/Heartbeat/Leave).</summary>
public sealed partial class GroupCoordinator
{
    // ------------------------------------------------------------------ SyncGroup

    /// <summary>SyncGroup, all versions: the leader's assignments go to every member of the generation.</summary>
    public Task<SyncGroupResponse> SyncGroupAsync(SyncGroupRequest request, short version)
    {
        if (Unavailable(request.GroupId) is var unavailable && unavailable != ErrorCode.None) return Task.FromResult(SyncError(unavailable, version));
        if (!_groups.TryGetValue(request.GroupId, out var group))
            return Task.FromResult(SyncError(ErrorCode.UnknownMemberId, version));
        lock (group.Lock)
        {
            if (group.State == GroupState.Dead) return Task.FromResult(SyncError(ErrorCode.CoordinatorNotAvailable, version));
            // KIP-848 online migration: a classic member of a consumer group (GroupCoordinator.ClassicInConsumer.cs).
            if (group.Consumer is { } cg) return Task.FromResult(ClassicSyncToConsumerGroup(group, cg, request, version));
            ErrorCode error = ValidateMember(group, request.MemberId, request.GroupInstanceId);
            if (error != ErrorCode.None) return Task.FromResult(SyncError(error, version));
            if (request.GenerationId != group.GenerationId) return Task.FromResult(SyncError(ErrorCode.IllegalGeneration, version));
            // v5+: the client repeats the protocol it was given; a mismatch is INCONSISTENT_GROUP_PROTOCOL.
            if ((request.ProtocolType is not null && request.ProtocolType != group.ProtocolType)
                || (request.ProtocolName is not null && request.ProtocolName != group.ProtocolName))
                return Task.FromResult(SyncError(ErrorCode.InconsistentGroupProtocol, version));

            var member = group.Members[request.MemberId];
            if (group.State is GroupState.CompletingRebalance or GroupState.Stable) group.PendingSync.Remove(request.MemberId);
            switch (group.State)
            {
                case GroupState.Empty:
                    return Task.FromResult(SyncError(ErrorCode.UnknownMemberId, version));
                case GroupState.PreparingRebalance:
                    return Task.FromResult(SyncError(ErrorCode.RebalanceInProgress, version));
                case GroupState.CompletingRebalance:
                {
                    member.AwaitingSync?.TrySetResult(SyncError(ErrorCode.RebalanceInProgress, member.SyncVersion));
                    var tcs = new TaskCompletionSource<SyncGroupResponse>(TaskCreationOptions.RunContinuationsAsynchronously);
                    member.AwaitingSync = tcs;
                    member.SyncVersion = version;
                    ScheduleHeartbeat(group, member, member.SessionTimeoutMs);
                    if (group.IsLeader(request.MemberId))
                    {
                        var assignments = new Dictionary<string, byte[]>(StringComparer.Ordinal);
                        foreach (var a in request.Assignments) assignments[a.MemberId] = a.Assignment;
                        // The record carries the assignments (empty for members the leader left out, as in Kafka);
                        // its replay gives them to the members.
                        if (Write(group, [GroupRecord(group, group.GenerationId, group.ProtocolName, group.LeaderId, assignments)]) is var written
                            && written == ErrorCode.None)
                        {
                            PropagateAssignment(group);
                            Transition(group, GroupState.Stable);
                        }
                        else
                        {
                            ResetAndPropagateAssignmentError(group, written);
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

    internal static SyncGroupResponse SyncError(ErrorCode error, short version) => new SyncGroupResponse().SetError(error);

    // ------------------------------------------------------------------ Heartbeat

    /// <summary>Heartbeat, all versions.</summary>
    public HeartbeatResponse Heartbeat(HeartbeatRequest request)
    {
        if (Unavailable(request.GroupId) is var unavailable && unavailable != ErrorCode.None) return new HeartbeatResponse().SetError(unavailable);
        if (!_groups.TryGetValue(request.GroupId, out var group)) return new HeartbeatResponse().SetError(ErrorCode.UnknownMemberId);
        lock (group.Lock)
        {
            ErrorCode error;
            if (group.State != GroupState.Dead && group.Consumer is { } cg) return ClassicHeartbeatToConsumerGroup(group, cg, request);
            if (group.State == GroupState.Dead) error = ErrorCode.CoordinatorNotAvailable;
            else if ((error = ValidateMember(group, request.MemberId, request.GroupInstanceId)) != ErrorCode.None) { }
            else if (request.GenerationId != group.GenerationId) error = ErrorCode.IllegalGeneration;
            else
            {
                var member = group.Members[request.MemberId];
                switch (group.State)
                {
                    case GroupState.Empty:
                        error = ErrorCode.UnknownMemberId;
                        break;
                    case GroupState.PreparingRebalance:
                        // The member must rejoin; the heartbeat still counts so it is not expired meanwhile.
                        ScheduleHeartbeat(group, member, member.SessionTimeoutMs);
                        error = ErrorCode.RebalanceInProgress;
                        break;
                    default: // CompletingRebalance (members may heartbeat before SyncGroup) and Stable
                        ScheduleHeartbeat(group, member, member.SessionTimeoutMs);
                        break;
                }
            }
            return new HeartbeatResponse().SetError(error);
        }
    }

    // ------------------------------------------------------------------ LeaveGroup

    /// <summary>LeaveGroup: v0-2 one member by id, v3+ a batch of members by id and/or instance id (KIP-345).</summary>
    public LeaveGroupResponse LeaveGroup(LeaveGroupRequest request, short version)
    {
        var leaving = version >= 3 ? request.Members : [new LeaveGroupRequest.MemberIdentity { MemberId = request.MemberId }];
        var response = new LeaveGroupResponse();
        if (Unavailable(request.GroupId) is var unavailable && unavailable != ErrorCode.None)
        {
            response.SetError(unavailable);
            return response;
        }
        if (!_groups.TryGetValue(request.GroupId, out var group))
        {
            if (version < 3) response.SetError(ErrorCode.UnknownMemberId);
            else foreach (var m in leaving) response.Members.Add(LeaveResult(m, ErrorCode.UnknownMemberId));
            return response;
        }
        lock (group.Lock)
        {
            if (group.State == GroupState.Dead)
            {
                response.SetError(ErrorCode.CoordinatorNotAvailable);
                return response;
            }
            foreach (var identity in leaving)
            {
                // KIP-848 online migration: members of a consumer group leave it (and may downgrade it).
                ErrorCode error = group.Consumer is { } cg ? ClassicLeaveConsumerGroup(group, cg, identity) : LeaveOne(group, identity);
                if (version >= 3) response.Members.Add(LeaveResult(identity, error));
                else response.SetError(error);
            }
        }
        return response;
    }

    private static LeaveGroupResponse.MemberResponse LeaveResult(LeaveGroupRequest.MemberIdentity m, ErrorCode error) =>
        new LeaveGroupResponse.MemberResponse { MemberId = m.MemberId, GroupInstanceId = m.GroupInstanceId }.SetError(error);

    private ErrorCode LeaveOne(ClassicGroup group, LeaveGroupRequest.MemberIdentity identity)
    {
        string memberId = identity.MemberId;
        if (memberId.Length == 0 && identity.GroupInstanceId is not null)
        {
            // KIP-345: an admin may remove a static member by instance id alone.
            if (!group.StaticMembers.TryGetValue(identity.GroupInstanceId, out var id)) return ErrorCode.UnknownMemberId;
            memberId = id;
        }
        else if (group.PendingMembers.Remove(memberId, out var timer))
        {
            timer.Dispose();
            if (group.State == GroupState.PreparingRebalance) TryCompleteJoin(group);
            return ErrorCode.None;
        }
        else
        {
            ErrorCode error = ValidateMember(group, memberId, identity.GroupInstanceId);
            if (error != ErrorCode.None) return error;
        }
        RemoveMemberAndUpdateGroup(group, group.Members[memberId]);
        return ErrorCode.None;
    }
}
