using Kayak.Coordinator.ConsumerGroups;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Coordinator;

/// <summary>
/// ConsumerGroupDescribe (KIP-848) and what the classic APIs do with a consumer group: OffsetCommit/OffsetFetch check
/// member epochs (Kafka's ConsumerGroup.validateOffsetCommit/validateOffsetFetch), ListGroups reports type "consumer",
/// DescribeGroups and a classic JoinGroup refuse it.
/// </summary>
public sealed partial class GroupCoordinator
{
    public ConsumerGroupDescribeResponse ConsumerGroupDescribe(ConsumerGroupDescribeRequest request)
    {
        var response = new ConsumerGroupDescribeResponse();
        foreach (var groupId in request.GroupIds)
        {
            var d = new ConsumerGroupDescribeResponse.DescribedGroup { GroupId = groupId };
            response.Groups.Add(d);
            if (Unavailable(groupId) is var unavailable && unavailable != ErrorCode.None) { d.SetError(unavailable); continue; }
            if (!_groups.TryGetValue(groupId, out var group))
            {
                d.SetError(new(ErrorCode.GroupIdNotFound, $"Group {groupId} not found."));
                continue;
            }
            lock (group.Lock)
            {
                if (group.Consumer is not { } cg || group.State == GroupState.Dead)
                {
                    // Kafka's answer for a classic group, which the admin client then describes with DescribeGroups.
                    d.SetError(new(ErrorCode.GroupIdNotFound, $"Group {groupId} is not a consumer group."));
                    continue;
                }
                d.GroupState = cg.StateName;
                d.GroupEpoch = cg.GroupEpoch;
                d.AssignmentEpoch = cg.AssignmentEpoch;
                d.AssignorName = ConsumerAssignors.Preferred(cg.Members.Values, _assignors);
                // Without an authorizer Kafka reports every group operation as allowed (KIP-430).
                if (request.IncludeAuthorizedOperations) d.AuthorizedOperations = GroupAuthorizedOperations;
                foreach (var m in cg.Members.Values.OrderBy(m => m.MemberId, StringComparer.Ordinal))
                    d.Members.Add(new ConsumerGroupDescribeResponse.Member
                    {
                        MemberId = m.MemberId,
                        InstanceId = m.InstanceId,
                        RackId = m.RackId,
                        MemberEpoch = m.MemberEpoch,
                        ClientId = m.ClientId,
                        ClientHost = m.ClientHost,
                        SubscribedTopicNames = m.SubscribedTopicNames.ToList(),
                        SubscribedTopicRegex = m.SubscribedTopicRegex,
                        Assignment = DescribeAssignment(cg, m.Assigned),
                        TargetAssignment = DescribeAssignment(cg, cg.TargetOf(m.MemberId)),
                    });
            }
        }
        return response;
    }

    /// <summary>READ, DELETE, DESCRIBE (bits 3, 6, 8) as Kafka's AclOperation codes: the group operations.</summary>
    private const int GroupAuthorizedOperations = (1 << 3) | (1 << 6) | (1 << 8);

    private static ConsumerGroupDescribeResponse.Assignment DescribeAssignment(ConsumerGroupState cg, TopicPartitions partitions)
    {
        var a = new ConsumerGroupDescribeResponse.Assignment();
        foreach (var (id, set) in partitions.ByTopic)
            a.TopicPartitions.Add(new ConsumerGroupDescribeResponse.TopicPartitions { TopicId = id, TopicName = cg.NameOf(id) ?? "", Partitions = set.ToList() });
        return a;
    }

    /// <summary>
    /// Kafka's ConsumerGroup.validateOffsetCommit: epoch -1 commits only into an empty group; otherwise the member
    /// must exist (UNKNOWN_MEMBER_ID), commit with OffsetCommit v9+ (UNSUPPORTED_VERSION; older versions carry a
    /// generation, not a member epoch) and with its current epoch (STALE_MEMBER_EPOCH).
    /// </summary>
    private static ErrorCode ValidateConsumerOffsetCommit(ConsumerGroupState cg, string memberId, int memberEpoch, short version, bool transactional)
    {
        if (memberEpoch < 0 && cg.IsEmpty) return ErrorCode.None;
        if (!cg.Members.TryGetValue(memberId, out var member)) return ErrorCode.UnknownMemberId;
        // A classic member (online migration) commits with its generation, which is its member epoch (Kafka's
        // ConsumerGroup.validateOffsetCommit: ILLEGAL_GENERATION, whatever the request version).
        if (member.UsesClassicProtocol) return memberEpoch == member.MemberEpoch ? ErrorCode.None : ErrorCode.IllegalGeneration;
        if (!transactional && version < 9) return ErrorCode.UnsupportedVersion;
        return memberEpoch == member.MemberEpoch ? ErrorCode.None : ErrorCode.StaleMemberEpoch;
    }

    /// <summary>
    /// Kafka's ConsumerGroup.validateOffsetFetch for OffsetFetch v9+: a fetch naming a member must come from that
    /// member at its current epoch; without a member id (admin, epoch -1) anyone may read.
    /// </summary>
    private ErrorCode ValidateConsumerOffsetFetch(string groupId, string? memberId, int memberEpoch)
    {
        if (memberId is null && memberEpoch < 0) return ErrorCode.None;
        if (!_loaded || !_groups.TryGetValue(groupId, out var group)) return ErrorCode.None;
        lock (group.Lock)
        {
            if (group.Consumer is not { } cg) return ErrorCode.None;
            if (memberId is null || !cg.Members.TryGetValue(memberId, out var member)) return ErrorCode.UnknownMemberId;
            return memberEpoch == member.MemberEpoch ? ErrorCode.None : ErrorCode.StaleMemberEpoch;
        }
    }
}
