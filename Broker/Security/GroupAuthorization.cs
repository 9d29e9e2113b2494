using Kayak.Broker.Handlers;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Security;

/// <summary>
/// The group APIs' checks as KafkaApis makes them: READ on the GROUP to join, sync, heartbeat, leave and commit (else
/// the request's error response with GROUP_AUTHORIZATION_FAILED), DESCRIBE to fetch offsets and describe, DELETE to
/// delete groups and offsets; the topics of commits need READ, those of offset fetches DESCRIBE (data of others is
/// never shown).
/// </summary>
internal static class GroupAuthorization
{
    private const ErrorCode GroupDenied = ErrorCode.GroupAuthorizationFailed;
    private const ErrorCode TopicDenied = ErrorCode.TopicAuthorizationFailed;

    public static JoinGroupResponse JoinDenied() =>
        new JoinGroupResponse { GenerationId = -1, ProtocolName = "", Leader = "", MemberId = "" }.SetError(GroupDenied);

    public static SyncGroupResponse SyncDenied() => new SyncGroupResponse().SetError(GroupDenied);
    public static HeartbeatResponse HeartbeatDenied() => new HeartbeatResponse().SetError(GroupDenied);
    public static LeaveGroupResponse LeaveDenied() => new LeaveGroupResponse().SetError(GroupDenied);
    public static OffsetDeleteResponse OffsetDeleteDenied() => new OffsetDeleteResponse().SetError(GroupDenied);

    public static ConsumerGroupHeartbeatResponse ConsumerHeartbeatDenied(ErrorCode code) =>
        new ConsumerGroupHeartbeatResponse().SetError(new(code, code == ErrorCode.GroupAuthorizationFailed ? "Group authorization failed." : "Topic authorization failed."));

    /// <summary>OffsetCommitRequest.getErrorResponse: every partition with the error.</summary>
    public static OffsetCommitResponse CommitDenied(OffsetCommitRequest request)
    {
        var response = new OffsetCommitResponse();
        foreach (var t in request.Topics)
        {
            var rt = new OffsetCommitResponse.OffsetCommitResponseTopic { Name = t.Name };
            foreach (var p in t.Partitions)
                rt.Partitions.Add(new OffsetCommitResponse.OffsetCommitResponsePartition { PartitionIndex = p.PartitionIndex }.SetError(GroupDenied));
            response.Topics.Add(rt);
        }
        return response;
    }

    /// <summary>
    /// OffsetCommit: the topics the principal may not READ leave the request and are answered TOPIC_AUTHORIZATION_FAILED;
    /// the rest goes to the coordinator. Returns the denied topics (null when none) for <see cref="AddDeniedTopics"/>.
    /// </summary>
    public static List<OffsetCommitRequest.OffsetCommitRequestTopic>? RemoveDeniedTopics(IAuthorizer a, RequestContext c, OffsetCommitRequest request)
    {
        if (a.Acls is null) return null;
        List<OffsetCommitRequest.OffsetCommitRequestTopic>? denied = null;
        for (int i = request.Topics.Count - 1; i >= 0; i--)
            if (!a.Topic(c, AclOperation.Read, request.Topics[i].Name))
            {
                (denied ??= new()).Insert(0, request.Topics[i]);
                request.Topics.RemoveAt(i);
            }
        return denied;
    }

    public static OffsetCommitResponse AddDeniedTopics(OffsetCommitResponse response, List<OffsetCommitRequest.OffsetCommitRequestTopic>? denied)
    {
        if (denied is null) return response;
        foreach (var t in denied)
        {
            var rt = new OffsetCommitResponse.OffsetCommitResponseTopic { Name = t.Name };
            foreach (var p in t.Partitions)
                rt.Partitions.Add(new OffsetCommitResponse.OffsetCommitResponsePartition { PartitionIndex = p.PartitionIndex }.SetError(TopicDenied));
            response.Topics.Add(rt);
        }
        return response;
    }

    /// <summary>OffsetFetch v0-7 for a group the principal may not DESCRIBE (OffsetFetchRequest.getErrorResponse).</summary>
    public static OffsetFetchResponse FetchDenied(OffsetFetchRequest request, short version)
    {
        var response = new OffsetFetchResponse();
        if (version >= 2)
        {
            response.SetError(GroupDenied);
            return response;
        }
        foreach (var t in request.Topics ?? [])
        {
            var rt = new OffsetFetchResponse.OffsetFetchResponseTopic { Name = t.Name };
            foreach (var p in t.PartitionIndexes)
                rt.Partitions.Add(new OffsetFetchResponse.OffsetFetchResponsePartition { PartitionIndex = p, CommittedOffset = -1, Metadata = "" }.SetError(GroupDenied));
            response.Topics.Add(rt);
        }
        return response;
    }

    /// <summary>
    /// OffsetFetch after the coordinator answered: groups the principal may not DESCRIBE (v8+) become
    /// GROUP_AUTHORIZATION_FAILED with no data; topics it may not DESCRIBE are dropped when all topics were asked
    /// for, else answered TOPIC_AUTHORIZATION_FAILED with offset -1 (KafkaApis' UNAUTHORIZED_PARTITION).
    /// </summary>
    public static OffsetFetchResponse FilterFetch(IAuthorizer a, RequestContext c, OffsetFetchRequest request, OffsetFetchResponse response)
    {
        if (a.Acls is null) return response;
        if (c.ApiVersion < 8)
        {
            bool all = request.Topics is null;
            for (int i = response.Topics.Count - 1; i >= 0; i--)
            {
                var t = response.Topics[i];
                if (a.Topic(c, AclOperation.Describe, t.Name)) continue;
                if (all) { response.Topics.RemoveAt(i); continue; }
                foreach (var p in t.Partitions) { p.CommittedOffset = -1; p.CommittedLeaderEpoch = -1; p.Metadata = ""; p.SetError(TopicDenied); }
            }
            return response;
        }
        for (int g = 0; g < response.Groups.Count; g++)
        {
            var group = response.Groups[g];
            if (!a.Group(c, AclOperation.Describe, group.GroupId))
            {
                group.Topics.Clear();
                group.SetError(GroupDenied);
                continue;
            }
            bool all = true;
            foreach (var rg in request.Groups)
                if (rg.GroupId == group.GroupId) all = rg.Topics is null;
            for (int i = group.Topics.Count - 1; i >= 0; i--)
            {
                var t = group.Topics[i];
                if (a.Topic(c, AclOperation.Describe, t.Name)) continue;
                if (all) { group.Topics.RemoveAt(i); continue; }
                foreach (var p in t.Partitions) { p.CommittedOffset = -1; p.CommittedLeaderEpoch = -1; p.Metadata = ""; p.SetError(TopicDenied); }
            }
        }
        return response;
    }

    /// <summary>DescribeGroups: groups the principal may not DESCRIBE answer GROUP_AUTHORIZATION_FAILED and nothing else.</summary>
    public static void FilterDescribe(IAuthorizer a, RequestContext c, DescribeGroupsResponse response)
    {
        if (a.Acls is null) return;
        for (int i = 0; i < response.Groups.Count; i++)
            if (!a.Group(c, AclOperation.Describe, response.Groups[i].GroupId))
                response.Groups[i] = new DescribeGroupsResponse.DescribedGroup { GroupId = response.Groups[i].GroupId }.SetError(GroupDenied);
    }

    /// <summary>ListGroups: without DESCRIBE on the CLUSTER only the groups the principal may DESCRIBE.</summary>
    public static ListGroupsResponse FilterList(IAuthorizer a, RequestContext c, ListGroupsResponse response)
    {
        // Filters, not explicit accesses: denials are not audit-logged (KafkaApis.handleListGroupsRequest, logIfDenied = false).
        if (a.Acls is null || a.Cluster(c, AclOperation.Describe, logIfDenied: false)) return response;
        response.Groups.RemoveAll(g => !a.Group(c, AclOperation.Describe, g.GroupId, logIfDenied: false));
        return response;
    }

    /// <summary>DeleteGroups: groups the principal may not DELETE leave the request; returns them for <see cref="AddDeniedGroups"/>.</summary>
    public static List<string>? RemoveDeniedGroups(IAuthorizer a, RequestContext c, DeleteGroupsRequest request)
    {
        if (a.Acls is null) return null;
        List<string>? denied = null;
        for (int i = request.GroupsNames.Count - 1; i >= 0; i--)
            if (!a.Group(c, AclOperation.Delete, request.GroupsNames[i]))
            {
                (denied ??= new()).Insert(0, request.GroupsNames[i]);
                request.GroupsNames.RemoveAt(i);
            }
        return denied;
    }

    public static DeleteGroupsResponse AddDeniedGroups(DeleteGroupsResponse response, List<string>? denied)
    {
        if (denied is null) return response;
        foreach (var g in denied) response.Results.Add(new DeleteGroupsResponse.DeletableGroupResult { GroupId = g }.SetError(GroupDenied));
        return response;
    }

    /// <summary>OffsetDelete: topics the principal may not READ leave the request; answered by <see cref="AddDeniedTopics(OffsetDeleteResponse, List{OffsetDeleteRequest.OffsetDeleteRequestTopic}?)"/>.</summary>
    public static List<OffsetDeleteRequest.OffsetDeleteRequestTopic>? RemoveDeniedTopics(IAuthorizer a, RequestContext c, OffsetDeleteRequest request)
    {
        if (a.Acls is null) return null;
        List<OffsetDeleteRequest.OffsetDeleteRequestTopic>? denied = null;
        for (int i = request.Topics.Count - 1; i >= 0; i--)
            if (!a.Topic(c, AclOperation.Read, request.Topics[i].Name))
            {
                (denied ??= new()).Insert(0, request.Topics[i]);
                request.Topics.RemoveAt(i);
            }
        return denied;
    }

    public static OffsetDeleteResponse AddDeniedTopics(OffsetDeleteResponse response, List<OffsetDeleteRequest.OffsetDeleteRequestTopic>? denied)
    {
        if (denied is null || response.ErrorCode != 0) return response;
        foreach (var t in denied)
        {
            var rt = new OffsetDeleteResponse.OffsetDeleteResponseTopic { Name = t.Name };
            foreach (var p in t.Partitions)
                rt.Partitions.Add(new OffsetDeleteResponse.OffsetDeleteResponsePartition { PartitionIndex = p.PartitionIndex }.SetError(TopicDenied));
            response.Topics.Add(rt);
        }
        return response;
    }
}
