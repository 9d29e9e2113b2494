// ListPartitionReassignments (key 46), v0 (KIP-455), answered as Kafka 4.0's controller answers it
// (ReplicationControlManager.listPartitionReassignments): every partition being reassigned (null Topics) or those of
// the requested ones, each with its replicas (the target followed by the replicas being removed), adding and removing
// replicas. Partitions not being reassigned, unknown topics and unknown partitions are left out (the response has no
// error per partition). A single node never reassigns: always empty. ACLs: DESCRIBE on the cluster, else
// CLUSTER_AUTHORIZATION_FAILED. TimeoutMs is not waited on: the controller's metadata is read directly.
using Kayak.Broker.Security;
using Kayak.Broker.Services;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class ListPartitionReassignmentsHandler(IPartitionReassignment? controller, IAuthorizer authorizer) : ApiHandler<ListPartitionReassignmentsRequest>
{
    public override ApiKey Key => ApiKey.ListPartitionReassignments;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, ListPartitionReassignmentsRequest request)
    {
        var response = new ListPartitionReassignmentsResponse();
        if (!authorizer.Cluster(context, AclOperation.Describe))
        {
            return Done(response.SetError(new(ErrorCode.ClusterAuthorizationFailed, "Cluster authorization failed.")));
        }
        if (controller is null) return Done(response);
        List<(string, IReadOnlyList<int>)>? filter = null;
        if (request.Topics is { } topics)
        {
            filter = new(topics.Count);
            foreach (var t in topics) filter.Add((t.Name, t.PartitionIndexes));
        }
        ListPartitionReassignmentsResponse.OngoingTopicReassignment? current = null;
        foreach (var r in controller.Reassignments(filter))
        {
            if (current is null || current.Name != r.Topic)
            {
                current = new ListPartitionReassignmentsResponse.OngoingTopicReassignment { Name = r.Topic };
                response.Topics.Add(current);
            }
            current.Partitions.Add(new ListPartitionReassignmentsResponse.OngoingPartitionReassignment
            {
                PartitionIndex = r.Partition,
                Replicas = [.. r.Replicas],
                AddingReplicas = [.. r.Adding],
                RemovingReplicas = [.. r.Removing],
            });
        }
        return Done(response);
    }
}
