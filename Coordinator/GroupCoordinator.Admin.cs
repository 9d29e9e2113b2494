using Kayak.Protocol;
using Kayak.Protocol.CoordinatorRecords;
using Kayak.Protocol.Messages;

namespace Kayak.Coordinator;

public sealed partial class GroupCoordinator
{
    /// <summary>Kafka's state names, as DescribeGroups and ListGroups report them.</summary>
    public static string StateName(GroupState state) => state switch
    {
        GroupState.Empty => "Empty",
        GroupState.PreparingRebalance => "PreparingRebalance",
        GroupState.CompletingRebalance => "CompletingRebalance",
        GroupState.Stable => "Stable",
        _ => "Dead",
    };

    /// <summary>DescribeGroups: unknown groups are reported as Dead with no error, as Kafka does.</summary>
    public DescribeGroupsResponse DescribeGroups(DescribeGroupsRequest request)
    {
        var response = new DescribeGroupsResponse();
        foreach (var id in request.Groups)
        {
            var d = new DescribeGroupsResponse.DescribedGroup { GroupId = id, GroupState = "Dead" };
            if (Unavailable(id) is var unavailable && unavailable != ErrorCode.None) d.SetError(unavailable);
            else if (_groups.TryGetValue(id, out var group))
            {
                lock (group.Lock)
                {
                    if (group.Consumer is not null)
                    {
                        // Kafka answers DescribeGroups for a KIP-848 group with GROUP_ID_NOT_FOUND ("not a classic
                        // group"); ConsumerGroupDescribe describes it.
                        d.SetError(ErrorCode.GroupIdNotFound);
                        response.Groups.Add(d);
                        continue;
                    }
                    d.GroupState = StateName(group.State);
                    if (group.State != GroupState.Dead)
                    {
                        d.ProtocolType = group.ProtocolType ?? "";
                        // Metadata and assignments only when Stable, the one state where they are consistent.
                        bool stable = group.State == GroupState.Stable;
                        d.ProtocolData = stable ? group.ProtocolName ?? "" : "";
                        foreach (var m in group.MemberList)
                        {
                            d.Members.Add(new DescribeGroupsResponse.DescribedGroupMember
                            {
                                MemberId = m.MemberId,
                                GroupInstanceId = m.GroupInstanceId,
                                ClientId = m.ClientId,
                                ClientHost = m.ClientHost,
                                MemberMetadata = stable ? m.MetadataFor(group.ProtocolName) ?? [] : [],
                                MemberAssignment = stable ? m.Assignment : [],
                            });
                        }
                    }
                }
            }
            response.Groups.Add(d);
        }
        return response;
    }

    /// <summary>ListGroups: v4+ filter by state (case-insensitive), v5+ by type (all ours are "classic").</summary>
    public ListGroupsResponse ListGroups(ListGroupsRequest request, short version)
    {
        var response = new ListGroupsResponse();
        if (!_loaded)
        {
            response.SetError(ErrorCode.CoordinatorLoadInProgress);
            return response;
        }
        foreach (var group in _groups.Values)
        {
            // A cluster member lists only the groups it coordinates, as each Kafka coordinator does.
            if (!LeadsPartition(PartitionFor(group.GroupId))) continue;
            string state, protocolType, type;
            lock (group.Lock)
            {
                if (group.State == GroupState.Dead) continue;
                // KIP-848 groups report their own states (Empty/Assigning/Reconciling/Stable) and type "consumer".
                state = group.Consumer?.StateName ?? StateName(group.State);
                protocolType = group.Consumer is not null ? "consumer" : group.ProtocolType ?? "";
                type = group.Consumer is not null ? "consumer" : "classic";
            }
            if (version >= 4 && request.StatesFilter.Count > 0 && !ContainsIgnoreCase(request.StatesFilter, state)) continue;
            if (version >= 5 && request.TypesFilter.Count > 0 && !ContainsIgnoreCase(request.TypesFilter, type)) continue;
            response.Groups.Add(new ListGroupsResponse.ListedGroup
            {
                GroupId = group.GroupId,
                ProtocolType = protocolType,
                GroupState = version >= 4 ? state : "",
                GroupType = version >= 5 ? type : "",
            });
        }
        return response;
    }

    private static bool ContainsIgnoreCase(List<string> list, string value)
    {
        foreach (var s in list)
            if (string.Equals(s, value, StringComparison.OrdinalIgnoreCase)) return true;
        return false;
    }

    /// <summary>DeleteGroups: only empty groups; writes tombstones for the group and all its offsets.</summary>
    public DeleteGroupsResponse DeleteGroups(DeleteGroupsRequest request)
    {
        var response = new DeleteGroupsResponse();
        foreach (var id in request.GroupsNames)
            response.Results.Add(new DeleteGroupsResponse.DeletableGroupResult { GroupId = id }.SetError(DeleteGroup(id)));
        return response;
    }

    private ErrorCode DeleteGroup(string groupId)
    {
        if (Unavailable(groupId) is var unavailable && unavailable != ErrorCode.None) return unavailable;
        if (!_groups.TryGetValue(groupId, out var group)) return ErrorCode.GroupIdNotFound;
        lock (group.Lock)
        {
            ExpireOverdueMembers(group);
            switch (group.State)
            {
                case GroupState.Dead: return ErrorCode.GroupIdNotFound;
                case GroupState.Empty: break;
                default: return ErrorCode.NonEmptyGroup;
            }
            if (group.Consumer is { IsEmpty: false }) return ErrorCode.NonEmptyGroup;
            // Kafka's deleteAllOffsets: a tombstone per committed offset and per partition with only a pending
            // transactional offset, then the group's; their replay removes offsets, pending offsets and the group.
            var records = new List<CoordinatorRecord>();
            foreach (var (topic, partitions) in group.Offsets)
                foreach (var p in partitions.Keys) records.Add(OffsetTombstone(groupId, topic, p));
            HashSet<(string, int)>? pendingOnly = null;
            foreach (var pending in group.PendingTxnOffsets.Values)
                foreach (var (topic, p) in pending.Keys)
                    if (!HasCommittedOffset(group, topic, p) && (pendingOnly ??= new()).Add((topic, p)))
                        records.Add(OffsetTombstone(groupId, topic, p));
            if (group.Consumer is not null) AddConsumerGroupDeletion(records, groupId);
            records.Add(GroupTombstone(groupId));
            return Write(group, records);
        }
    }

    /// <summary>
    /// OffsetDelete (KIP-496): an empty group may drop any offsets; an active consumer group only
    /// offsets of topics none of its members subscribes to (GROUP_SUBSCRIBED_TO_TOPIC otherwise); any
    /// other active group answers NON_EMPTY_GROUP.
    /// </summary>
    public OffsetDeleteResponse DeleteOffsets(OffsetDeleteRequest request)
    {
        var response = new OffsetDeleteResponse();
        if (Unavailable(request.GroupId) is var unavailable && unavailable != ErrorCode.None) { response.SetError(unavailable); return response; }
        if (!_groups.TryGetValue(request.GroupId, out var group)) { response.SetError(ErrorCode.GroupIdNotFound); return response; }
        lock (group.Lock)
        {
            HashSet<string>? subscribed = null;
            switch (group.State)
            {
                case GroupState.Dead:
                    response.SetError(ErrorCode.GroupIdNotFound);
                    return response;
                case GroupState.Empty:
                    break;
                default:
                    subscribed = group.SubscribedTopics();
                    if (subscribed is null) { response.SetError(ErrorCode.NonEmptyGroup); return response; }
                    break;
            }
            var records = new List<CoordinatorRecord>();
            foreach (var t in request.Topics)
            {
                var rt = new OffsetDeleteResponse.OffsetDeleteResponseTopic { Name = t.Name };
                bool isSubscribed = subscribed is not null && subscribed.Contains(t.Name);
                foreach (var p in t.Partitions)
                {
                    ErrorCode error = ErrorCode.None;
                    if (isSubscribed) error = ErrorCode.GroupSubscribedToTopic;
                    // Kafka writes the tombstone for a committed offset and for a pending transactional one.
                    else if (HasCommittedOffset(group, t.Name, p.PartitionIndex) || HasPendingTxnOffset(group, t.Name, p.PartitionIndex))
                        records.Add(OffsetTombstone(group.GroupId, t.Name, p.PartitionIndex));
                    rt.Partitions.Add(new OffsetDeleteResponse.OffsetDeleteResponsePartition { PartitionIndex = p.PartitionIndex }.SetError(error));
                }
                response.Topics.Add(rt);
            }
            if (records.Count > 0 && Write(group, records) is var refused and not ErrorCode.None)
            {
                response.SetError(refused);
                response.Topics.Clear();
            }
            return response;
        }
    }

    /// <summary>State of one group for tests and tools: (state, generation, leader, member ids, protocol).</summary>
    public GroupSnapshot? Describe(string groupId)
    {
        if (!_groups.TryGetValue(groupId, out var group)) return null;
        lock (group.Lock)
        {
            var members = new List<string>(group.MemberList.Count);
            foreach (var m in group.MemberList) members.Add(m.MemberId);
            return new GroupSnapshot(group.GroupId, group.State, group.GenerationId, group.ProtocolType, group.ProtocolName, group.LeaderId, members);
        }
    }

    private static bool HasCommittedOffset(ClassicGroup group, string topic, int partition) =>
        group.Offsets.TryGetValue(topic, out var partitions) && partitions.ContainsKey(partition);

    /// <summary>Removes a group that a failed first JoinGroup created and nothing else uses.</summary>
    private void RemoveIfUnused(ClassicGroup group)
    {
        if (group.State == GroupState.Empty && group.IsEmpty && group.GenerationId == 0 && !group.HasOffsets && group.PendingMembers.Count == 0)
        {
            group.State = GroupState.Dead;
            _groups.TryRemove(new KeyValuePair<string, ClassicGroup>(group.GroupId, group));
        }
    }
}

/// <summary>A point-in-time view of one group.</summary>
public sealed record GroupSnapshot(string GroupId, GroupState State, int GenerationId, string? ProtocolType, string? ProtocolName, string? LeaderId, IReadOnlyList<string> MemberIds);
