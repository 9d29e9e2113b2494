// ConsumerGroupHeartbeat (key 68), v0-1 (KIP-848). The consumer-protocol group: join with epoch 0, heartbeat with the
// member epoch, leave with -1 (-2: a static member that will rejoin under its group.instance.id). The coordinator runs
// a server-side assignor (group.consumer.assignors: "uniform" and "range"; the member's ServerAssignor picks one, any
// other is UNSUPPORTED_ASSIGNOR) and hands out partitions only after their previous owner revoked them. Topics are
// subscribed by name and/or by SubscribedTopicRegex (RE2 syntax, re-resolved against this node's topics on every
// heartbeat; an invalid one is INVALID_REGULAR_EXPRESSION). v0 members get a coordinator-made member id; v1 members
// bring their own (KIP-1082). Logic: GroupCoordinator.ConsumerGroupHeartbeat (Coordinator/ConsumerGroups).
// ACLs: READ on the group (GROUP_AUTHORIZATION_FAILED), DESCRIBE on every topic subscribed by name
// (TOPIC_AUTHORIZATION_FAILED); the topics the group's regexes match keep only those this member's principal may
// DESCRIBE, as Kafka 4.0's GroupMetadataManager.filterTopicDescribeAuthorizedTopics (denials not audit-logged: a filter).
using Kayak.Broker.Security;
using Kayak.Broker.Services;
using Kayak.Coordinator;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class ConsumerGroupHeartbeatHandler(GroupCoordinator groups, ITopicCatalog catalog, IAuthorizer authorizer) : ApiHandler<ConsumerGroupHeartbeatRequest>
{
    public override ApiKey Key => ApiKey.ConsumerGroupHeartbeat;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, ConsumerGroupHeartbeatRequest request) =>
        !authorizer.Group(context, AclOperation.Read, request.GroupId) ? Done(GroupAuthorization.ConsumerHeartbeatDenied(ErrorCode.GroupAuthorizationFailed))
        : SubscribedTopicDenied(context, request) ? Done(new ConsumerGroupHeartbeatResponse().SetError(ErrorCode.TopicAuthorizationFailed))
        : Done(groups.ConsumerGroupHeartbeat(request, context.ApiVersion,
            new ClientInfo(context.ClientId ?? "", JoinGroupHandler.ClientHost(context.ClientAddress)), ResolveTopic, TopicNames(),
            authorizer.Acls is null ? null : new RegexTopicAuthorizer(authorizer, context)));

    /// <summary>DESCRIBE on a regex-matched topic, as the Action Kafka builds: logIfAllowed, not logIfDenied.</summary>
    private sealed class RegexTopicAuthorizer(IAuthorizer authorizer, RequestContext context) : IRegexTopicAuthorizer
    {
        public bool MayDescribe(string topic, int refCount) =>
            authorizer.Authorize(context, AclOperation.Describe, AclResourceType.Topic, topic, logIfAllowed: true, logIfDenied: false, refCount);
    }

    /// <summary>Every topic's name, read lazily: only a group with a regex subscription enumerates it.</summary>
    private IEnumerable<string> TopicNames()
    {
        foreach (var topic in catalog.All) yield return topic.Name;
    }

    /// <summary>Kafka 4.0: every subscribed topic name needs DESCRIBE (no member state changes otherwise).</summary>
    private bool SubscribedTopicDenied(RequestContext context, ConsumerGroupHeartbeatRequest request)
    {
        if (authorizer.Acls is null || request.SubscribedTopicNames is null) return false;
        foreach (var name in request.SubscribedTopicNames)
            if (!authorizer.Topic(context, AclOperation.Describe, name)) return true;
        return false;
    }

    /// <summary>A subscribed topic name to its id and partition count, from the topics this node hosts.</summary>
    private bool ResolveTopic(string name, out Uuid topicId, out int partitionCount)
    {
        if (catalog.TryGet(name, out var topic))
        {
            topicId = topic.TopicId;
            partitionCount = topic.Partitions.Count;
            return true;
        }
        topicId = Uuid.Zero;
        partitionCount = 0;
        return false;
    }
}
