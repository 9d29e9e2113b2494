// DescribeCluster (key 60), v0-1 (KIP-700). Answers the live brokers (this node alone, or every running broker of
// an in-process cluster, issue 14; each on the listener the request came in on, no rack), the cluster id from
// meta.properties, and the lowest live broker as controller (a KRaft broker names a live broker there). v1 adds EndpointType (KIP-919): BROKER (1) is answered; CONTROLLER (2) is MISMATCHED_ENDPOINT_TYPE
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
        response.ControllerId = cluster.ControllerId;
        foreach (var broker in cluster.Brokers)
        {
            var endpoint = broker.EndpointFor(context.ListenerName);
            response.Brokers.Add(new DescribeClusterResponse.DescribeClusterBroker
            {
                BrokerId = broker.NodeId,
                Host = endpoint.Host,
                Port = endpoint.Port,
                Rack = null,
            });
        }
        if (request.IncludeClusterAuthorizedOperations)
            response.ClusterAuthorizedOperations = authorizer.Cluster(context, AclOperation.Describe)
                ? authorizer.AuthorizedOperations(context, AclResourceType.Cluster, StandardAuthorizer.ClusterName) : 0;
        return Done(response);
    }
}
