// ConsumerGroupHeartbeat (key 68), v0-1 (KIP-848). The consumer-protocol group: join with epoch 0, heartbeat with the
// member epoch, leave with -1 (-2: a static member that will rejoin under its group.instance.id). The coordinator runs
// the server-side "uniform" assignor and hands out partitions only after their previous owner revoked them. Topics are
// subscribed by name; SubscribedTopicRegex (v1) answers INVALID_REGULAR_EXPRESSION (not implemented), a ServerAssignor
// other than "uniform" UNSUPPORTED_ASSIGNOR. v0 members get a coordinator-made member id; v1 members bring their own
// (KIP-1082). Logic: GroupCoordinator.ConsumerGroupHeartbeat (Coordinator/ConsumerGroups).
// ACLs: READ on the group (GROUP_AUTHORIZATION_FAILED), DESCRIBE on every subscribed topic (TOPIC_AUTHORIZATION_FAILED).
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
        : SubscribedTopicDenied(context, request) ? Done(new ConsumerGroupHeartbeatResponse { ErrorCode = (short)ErrorCode.TopicAuthorizationFailed })
        : Done(groups.ConsumerGroupHeartbeat(request, context.ApiVersion,
            new ClientInfo(context.ClientId ?? "", JoinGroupHandler.ClientHost(context.ClientAddress)), ResolveTopic));

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
