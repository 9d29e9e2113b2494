// FindCoordinator (key 10), v0-6. This single node coordinates every group and transaction, so the
// answer is always itself. v0-3 look up one key (KeyValue), v4+ a batch (CoordinatorKeys, KIP-699).
// Key types: 0 group, 1 transaction; anything else (2 = share groups, v6) is INVALID_REQUEST.
// ACLs: DESCRIBE on the group or transactional id (GROUP_/TRANSACTIONAL_ID_AUTHORIZATION_FAILED, no node).
using Kayak.Broker.Security;
using Kayak.Broker.Services;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class FindCoordinatorHandler(ClusterInfo cluster, IAuthorizer authorizer) : ApiHandler<FindCoordinatorRequest>
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
                response.ErrorCode = (short)denied;
                response.ErrorMessage = context.ApiVersion >= 1 ? null : "";
                response.NodeId = -1;
                response.Host = "";
                response.Port = -1;
                return Done(response);
            }
            if (!validType)
            {
                response.ErrorCode = (short)ErrorCode.InvalidRequest;
                response.ErrorMessage = context.ApiVersion >= 1 ? $"Unknown coordinator key type {request.KeyType}" : null;
                response.NodeId = -1;
                response.Host = "";
                response.Port = -1;
                return Done(response);
            }
            response.ErrorMessage = context.ApiVersion >= 1 ? null : "";
            response.NodeId = cluster.NodeId;
            var endpoint = cluster.EndpointFor(context.ListenerName);
            response.Host = endpoint.Host;
            response.Port = endpoint.Port;
            return Done(response);
        }
        var coordinator = cluster.EndpointFor(context.ListenerName);
        foreach (var key in request.CoordinatorKeys)
        {
            if (validType && Denied(context, request.KeyType, key) is { } denied)
            {
                response.Coordinators.Add(new FindCoordinatorResponse.Coordinator { Key = key, NodeId = -1, Host = "", Port = -1, ErrorCode = (short)denied, ErrorMessage = null });
                continue;
            }
            response.Coordinators.Add(validType
                ? new FindCoordinatorResponse.Coordinator { Key = key, NodeId = cluster.NodeId, Host = coordinator.Host, Port = coordinator.Port, ErrorMessage = null }
                : new FindCoordinatorResponse.Coordinator { Key = key, NodeId = -1, Host = "", Port = -1, ErrorCode = (short)ErrorCode.InvalidRequest, ErrorMessage = $"Unknown coordinator key type {request.KeyType}" });
        }
        return Done(response);
    }

    /// <summary>KafkaApis.getCoordinator: DESCRIBE on the group (key type 0) or the transactional id (1).</summary>
    private ErrorCode? Denied(RequestContext context, sbyte keyType, string key) => keyType == 0
        ? authorizer.Group(context, AclOperation.Describe, key) ? null : ErrorCode.GroupAuthorizationFailed
        : authorizer.TransactionalId(context, AclOperation.Describe, key) ? null : ErrorCode.TransactionalIdAuthorizationFailed;
}
