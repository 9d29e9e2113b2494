// FindCoordinator (key 10), v0-6. A single node coordinates every group and transaction, so the answer is always
// itself. In an in-process cluster (issue 14) the coordinator is the leader of the key's partition of
// __consumer_offsets (groups) or __transaction_state (transactional ids), abs(hashCode) % partitions as in Kafka;
// the internal topic is created on first use, and a partition without a live leader is COORDINATOR_NOT_AVAILABLE.
// v0-3 look up one key (KeyValue), v4+ a batch (CoordinatorKeys, KIP-699).
// Key types: 0 group, 1 transaction; anything else (2 = share groups, v6) is INVALID_REQUEST.
// The group coordinator answers NOT_COORDINATOR for groups of partitions it does not lead; the transaction
// coordinator does not check yet.
// ACLs: DESCRIBE on the group or transactional id (GROUP_/TRANSACTIONAL_ID_AUTHORIZATION_FAILED, no node).
using Kayak.Broker.Config;
using Kayak.Broker.Security;
using Kayak.Broker.Services;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class FindCoordinatorHandler(ClusterInfo cluster, ICoordinatorLocator locator, TopicService topics, BrokerConfig config, IAuthorizer authorizer)
    : ApiHandler<FindCoordinatorRequest>
{
    public override ApiKey Key => ApiKey.FindCoordinator;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, FindCoordinatorRequest request)
    {
        bool validType = request.KeyType is 0 or 1;
        var response = new FindCoordinatorResponse();
        if (context.ApiVersion < 4)
        {
            if (validType && Denied(context, request.KeyType, request.KeyValue) is { } denied)
            {
                return Done(NoCoordinator(response, new(denied, context.ApiVersion >= 1 ? null : "")));
            }
            if (!validType)
            {
                return Done(NoCoordinator(response, new(ErrorCode.InvalidRequest, context.ApiVersion >= 1 ? $"Unknown coordinator key type {request.KeyType}" : null)));
            }
            response.ErrorMessage = context.ApiVersion >= 1 ? null : "";
            var node = Locate(request.KeyType, request.KeyValue);
            if (node is null)
            {
                return Done(NoCoordinator(response, new(ErrorCode.CoordinatorNotAvailable, context.ApiVersion >= 1 ? NotAvailable : "")));
            }
            response.NodeId = node.NodeId;
            var endpoint = node.EndpointFor(context.ListenerName);
            response.Host = endpoint.Host;
            response.Port = endpoint.Port;
            return Done(response);
        }
        foreach (var key in request.CoordinatorKeys)
        {
            if (!validType)
            {
                response.Coordinators.Add(NoCoordinator(key, new(ErrorCode.InvalidRequest, $"Unknown coordinator key type {request.KeyType}")));
                continue;
            }
            if (Denied(context, request.KeyType, key) is { } denied)
            {
                response.Coordinators.Add(NoCoordinator(key, denied));
                continue;
            }
            var node = Locate(request.KeyType, key);
            if (node is null)
            {
                response.Coordinators.Add(NoCoordinator(key, new(ErrorCode.CoordinatorNotAvailable, NotAvailable)));
                continue;
            }
            var endpoint = node.EndpointFor(context.ListenerName);
            response.Coordinators.Add(new FindCoordinatorResponse.Coordinator { Key = key, NodeId = node.NodeId, Host = endpoint.Host, Port = endpoint.Port, ErrorMessage = null });
        }
        return Done(response);
    }

    private const string NotAvailable = "The coordinator is not available.";

    /// <summary>A v0-3 answer without a coordinator: no node, and the error in the top-level fields.</summary>
    internal static FindCoordinatorResponse NoCoordinator(FindCoordinatorResponse response, KafkaError error)
    {
        response.NodeId = -1;
        response.Host = "";
        response.Port = -1;
        return response.SetError(error);
    }

    /// <summary>A v4+ entry without a coordinator for one key (KIP-699).</summary>
    internal static FindCoordinatorResponse.Coordinator NoCoordinator(string key, KafkaError error) =>
        new FindCoordinatorResponse.Coordinator { Key = key, NodeId = -1, Host = "", Port = -1 }.SetError(error);

    private BrokerNode? Locate(sbyte keyType, string key)
    {
        int nodeId = keyType == 0
            ? locator.CoordinatorFor(TopicService.ConsumerOffsetsTopic, config.OffsetsTopicNumPartitions, key, topics.CreateInternal)
            : locator.CoordinatorFor(TopicService.TransactionStateTopic, config.TransactionStateLogNumPartitions, key, topics.CreateInternal);
        return nodeId < 0 ? null : cluster.Broker(nodeId);
    }
    /// <summary>KafkaApis.getCoordinator: DESCRIBE on the group (key type 0) or the transactional id (1).</summary>
    private ErrorCode? Denied(RequestContext context, sbyte keyType, string key) => keyType == 0
        ? authorizer.Group(context, AclOperation.Describe, key) ? null : ErrorCode.GroupAuthorizationFailed
        : authorizer.TransactionalId(context, AclOperation.Describe, key) ? null : ErrorCode.TransactionalIdAuthorizationFailed;
}
