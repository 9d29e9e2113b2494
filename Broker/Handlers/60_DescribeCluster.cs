// DescribeCluster (key 60), v0-1 (KIP-700). Answers this node as the only broker (first advertised
// listener, no rack), the cluster id from meta.properties, and this node as controller (a single combined
// node). v1 adds EndpointType (KIP-919): BROKER (1) is answered; CONTROLLER (2) is MISMATCHED_ENDPOINT_TYPE
// and any other value UNSUPPORTED_ENDPOINT_TYPE, as Kafka's AuthHelper.computeDescribeClusterResponse answers
// on a broker listener. (Both are unreachable at v0, where the field does not exist and defaults to BROKER.) ClusterAuthorizedOperations: when requested,
// Kafka without an authorizer reports every operation supported on CLUSTER; otherwise Int.MinValue.
// ACLs: authorized operations are the ACLs' (0 without DESCRIBE on the cluster), AuthHelper.computeDescribeClusterResponse.
using Kayak.Broker.Security;
using Kayak.Broker.Services;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class DescribeClusterHandler(ClusterInfo cluster, IAuthorizer authorizer) : ApiHandler<DescribeClusterRequest>
{
    private const sbyte EndpointBroker = 1, EndpointController = 2;

    public override ApiKey Key => ApiKey.DescribeCluster;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, DescribeClusterRequest request)
    {
        var response = new DescribeClusterResponse();
        if (request.EndpointType == EndpointController)
        {
            return Done(response.SetError(new(ErrorCode.MismatchedEndpointType,
                "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER")));
        }
        if (request.EndpointType != EndpointBroker)
        {
            return Done(response.SetError(new(ErrorCode.UnsupportedEndpointType, $"Unsupported endpoint type {request.EndpointType}")));
        }
        response.ClusterId = cluster.ClusterId;
        response.ControllerId = cluster.NodeId;
        var endpoint = cluster.EndpointFor(context.ListenerName);
        response.Brokers.Add(new DescribeClusterResponse.DescribeClusterBroker
        {
            BrokerId = cluster.NodeId,
            Host = endpoint.Host,
            Port = endpoint.Port,
            Rack = null,
        });
        if (request.IncludeClusterAuthorizedOperations)
            response.ClusterAuthorizedOperations = authorizer.Cluster(context, AclOperation.Describe)
                ? authorizer.AuthorizedOperations(context, AclResourceType.Cluster, StandardAuthorizer.ClusterName) : 0;
        return Done(response);
    }
}
