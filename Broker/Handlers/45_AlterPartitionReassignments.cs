// AlterPartitionReassignments (key 45), v0 (KIP-455), answered as Kafka 4.0's controller answers it
// (ReplicationControlManager.alterPartitionReassignments). In a KafkaCluster the controller reassigns (issue 14,
// ClusterController.Reassign): non-null Replicas start a reassignment (the new replicas are adding replicas and catch up
// through the replica fetcher; once all are in the ISR the old ones are removed and a removed leader hands over), null
// Replicas cancel one (NO_REASSIGNMENT_IN_PROGRESS when there is none). An empty list, a broker named twice or a broker
// that never registered is INVALID_REPLICA_ASSIGNMENT with Kafka's messages; an unknown topic or partition
// UNKNOWN_TOPIC_OR_PARTITION. A single node: its own id is the only valid target (nothing to move, NONE), another id is
// INVALID_REPLICA_ASSIGNMENT and a cancellation NO_REASSIGNMENT_IN_PROGRESS. ACLs: ALTER on the cluster, else
// CLUSTER_AUTHORIZATION_FAILED at the top level and on every partition. TimeoutMs is not waited on: the change is
// committed before the answer, as Kafka answers once the controller's records are committed (not once data moved).
using Kayak.Broker.Security;
using Kayak.Broker.Services;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class AlterPartitionReassignmentsHandler(ITopicCatalog catalog, IPartitionReassignment? controller, int nodeId, IAuthorizer authorizer)
    : ApiHandler<AlterPartitionReassignmentsRequest>
{
    public override ApiKey Key => ApiKey.AlterPartitionReassignments;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, AlterPartitionReassignmentsRequest request)
    {
        var response = new AlterPartitionReassignmentsResponse();
        bool allowed = authorizer.Cluster(context, AclOperation.Alter);
        if (!allowed)
        {
            response.SetError(new(ErrorCode.ClusterAuthorizationFailed, "Cluster authorization failed."));
        }
        foreach (var t in request.Topics)
        {
            var result = new AlterPartitionReassignmentsResponse.ReassignableTopicResponse { Name = t.Name };
            response.Responses.Add(result);
            foreach (var p in t.Partitions)
            {
                var error = allowed ? Reassign(t.Name, p.PartitionIndex, p.Replicas) : new KafkaError(ErrorCode.ClusterAuthorizationFailed, "Cluster authorization failed.");
                result.Partitions.Add(new AlterPartitionReassignmentsResponse.ReassignablePartitionResponse { PartitionIndex = p.PartitionIndex }
                    .SetError(error));
            }
        }
        return Done(response);
    }

    private KafkaError Reassign(string topic, int partition, List<int>? replicas)
    {
        if (controller is not null) return controller.Reassign(topic, partition, replicas?.ToArray());
        if (!catalog.Lookup(topic).TryGetPartition(partition, out _, out _))
            return catalog.Lookup(topic).Topic is null
                ? new(ErrorCode.UnknownTopicOrPartition, $"Unable to find a topic named {topic}.")
                : new(ErrorCode.UnknownTopicOrPartition, $"Unable to find partition {topic}:{partition}.");
        if (replicas is null) return new(ErrorCode.NoReassignmentInProgress, "No partition reassignment is in progress.");
        if (replicas.Count == 0) return new(ErrorCode.InvalidReplicaAssignment, "The manual partition assignment includes an empty replica list.");
        var sorted = replicas.ToArray();
        Array.Sort(sorted);
        for (int i = 0; i < sorted.Length; i++)
        {
            if (sorted[i] != nodeId)
                return new(ErrorCode.InvalidReplicaAssignment, $"The manual partition assignment includes broker {sorted[i]}, but no such broker is registered.");
            if (i > 0) return new(ErrorCode.InvalidReplicaAssignment, $"The manual partition assignment includes the broker {nodeId} more than once.");
        }
        return KafkaError.None;
    }
}
