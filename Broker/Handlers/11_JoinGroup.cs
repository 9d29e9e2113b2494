// JoinGroup (key 11), v0-9. Kafka's classic protocol: v4+ MEMBER_ID_REQUIRED handshake (KIP-394),
// v5+ group.instance.id static membership (KIP-345), v7+ protocol type in the response, v8 reason
// (ignored), v9 SkipAssignment for a rejoining static leader (KIP-814). The response waits for the
// rebalance to complete (initial delay, all members rejoining, or the rebalance timeout), so this
// handler awaits; the connection keeps answering in order. An empty KIP-848 consumer group becomes a classic group
// (offsets kept); a non-empty one takes the member as a classic member of the consumer group (KIP-848 online
// migration: answered at once, the server-side assignor decides its partitions). Logic: GroupCoordinator.JoinGroupAsync.
// ACLs: READ on the group, else GROUP_AUTHORIZATION_FAILED (KafkaApis).
using Kayak.Broker.Security;
using Kayak.Broker.Services;
using System.Net;
using Kayak.Coordinator;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class JoinGroupHandler(GroupCoordinator groups, ITopicCatalog catalog, IAuthorizer authorizer) : ApiHandler<JoinGroupRequest>
{
    public override ApiKey Key => ApiKey.JoinGroup;

    protected override async ValueTask<IApiMessage?> HandleAsync(RequestContext context, JoinGroupRequest request) =>
        !authorizer.Group(context, AclOperation.Read, request.GroupId) ? GroupAuthorization.JoinDenied()
            : await groups.JoinGroupAsync(request, context.ApiVersion, new ClientInfo(context.ClientId ?? "", ClientHost(context.ClientAddress)),
                ResolveTopic).ConfigureAwait(false);

    /// <summary>A subscribed topic's id and partition count, for a classic member of a KIP-848 consumer group.</summary>
    private bool ResolveTopic(string name, out Uuid topicId, out int partitionCount)
    {
        if (catalog.TryGet(name, out var topic))
        {
            topicId = topic.TopicId;
            partitionCount = topic.Partitions.Count;
            return true;
        }
        topicId = default;
        partitionCount = 0;
        return false;
    }

    /// <summary>Kafka reports the client's address as InetAddress.toString: "/" + ip.</summary>
    internal static string ClientHost(EndPoint? address) => address is IPEndPoint ip ? "/" + ip.Address : address?.ToString() ?? "";
}
