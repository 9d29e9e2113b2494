// ConsumerGroupHeartbeat (key 68), v0-1 (KIP-848). The consumer-protocol group: join with epoch 0, heartbeat with the
// member epoch, leave with -1 (-2: a static member that will rejoin under its group.instance.id). The coordinator runs
// the server-side "uniform" assignor and hands out partitions only after their previous owner revoked them. Topics are
// subscribed by name; SubscribedTopicRegex (v1) answers INVALID_REGULAR_EXPRESSION (not implemented), a ServerAssignor
// other than "uniform" UNSUPPORTED_ASSIGNOR. v0 members get a coordinator-made member id; v1 members bring their own
// (KIP-1082). Logic: GroupCoordinator.ConsumerGroupHeartbeat (Coordinator/ConsumerGroups).
using Kayak.Broker.Services;
using Kayak.Coordinator;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class ConsumerGroupHeartbeatHandler(GroupCoordinator groups, ITopicCatalog catalog) : ApiHandler<ConsumerGroupHeartbeatRequest>
{
    public override ApiKey Key => ApiKey.ConsumerGroupHeartbeat;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, ConsumerGroupHeartbeatRequest request) =>
        Done(groups.ConsumerGroupHeartbeat(request, context.ApiVersion,
            new ClientInfo(context.ClientId ?? "", JoinGroupHandler.ClientHost(context.ClientAddress)), ResolveTopic));

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
