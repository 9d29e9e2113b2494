// ElectLeaders (key 43), v0-2 (KIP-183, KIP-460), answered as Kafka 4.0's controller answers it
// (ReplicationControlManager.electLeaders). PREFERRED (0, the only type in v0) and UNCLEAN (1).
// In a KafkaCluster the controller elects (ClusterController.Elect, issue 14): PREFERRED makes the first replica leader
// at the next leader epoch when it runs and is in the ISR (already leader: ELECTION_NOT_NEEDED; stopped or out of the
// ISR: PREFERRED_LEADER_NOT_AVAILABLE); UNCLEAN gives a leaderless partition a running replica, an ISR member first
// (has a leader: ELECTION_NOT_NEEDED; none running: ELIGIBLE_LEADERS_NOT_AVAILABLE). A single node leads every
// partition and is its preferred replica, so both types are ELECTION_NOT_NEEDED there ("Leader election not needed
// for topic partition.", Kafka's ApiError default message). An unknown topic or partition is
// UNKNOWN_TOPIC_OR_PARTITION with Kafka's message. Null topic_partitions means every partition of every topic
// (internal ones included): Kafka then lists each topic but leaves out the partitions whose election was not needed.
// Another election type is INVALID_REQUEST ("Unknown election type N"), top level and on every requested partition,
// as ElectLeadersRequest.getErrorResponse builds it. ACLs: ALTER on the cluster, else CLUSTER_AUTHORIZATION_FAILED for
// the request and every partition. Not implemented: TimeoutMs (elections complete before the answer; nothing waits).
using Kayak.Broker.Security;
using Kayak.Broker.Services;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class ElectLeadersHandler(ITopicCatalog catalog, IPartitionElection? election, IAuthorizer authorizer) : ApiHandler<ElectLeadersRequest>
{
    private const sbyte Preferred = 0, Unclean = 1;
    private const string NotNeeded = Cluster.ClusterController.ElectionNotNeededMessage;

    public override ApiKey Key => ApiKey.ElectLeaders;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, ElectLeadersRequest request)
    {
        var response = new ElectLeadersResponse();
        // v0 has no election type on the wire and means a preferred election.
        sbyte type = context.ApiVersion >= 1 ? request.ElectionType : Preferred;
        if (!authorizer.Cluster(context, AclOperation.Alter))
            return Done(ErrorResponse(response, request, ErrorCode.ClusterAuthorizationFailed, "Cluster authorization failed."));
        if (type is not Preferred and not Unclean)
            return Done(ErrorResponse(response, request, ErrorCode.InvalidRequest, $"Unknown election type {type}"));

        if (request.TopicPartitions is null)
        {
            foreach (var topic in catalog.All.OrderBy(t => t.Name, StringComparer.Ordinal))
            {
                var result = new ElectLeadersResponse.ReplicaElectionResult { Topic = topic.Name };
                response.ReplicaElectionResults.Add(result);
                if (election is null) continue;
                for (int partition = 0; partition < topic.Partitions.Count; partition++)
                {
                    var error = election.Elect(topic.Name, partition, type == Unclean);
                    if (error.Code != ErrorCode.ElectionNotNeeded)
                        result.PartitionResult.Add(new ElectLeadersResponse.PartitionResult { PartitionId = partition }.SetError(error));
                }
            }
            return Done(response);
        }

        foreach (var t in request.TopicPartitions)
        {
            var result = new ElectLeadersResponse.ReplicaElectionResult { Topic = t.Topic };
            response.ReplicaElectionResults.Add(result);
            var topic = catalog.Lookup(t.Topic);
            foreach (int partition in t.Partitions)
            {
                // Kafka's controller names what is missing in the message; the code is the lookup's.
                // In a cluster the controller decides (it knows partitions this broker holds no replica of, issue 14).
                var error = election is not null ? election.Elect(t.Topic, partition, type == Unclean)
                    : topic.TryGetPartition(partition, out _, out var missing) ? new KafkaError(ErrorCode.ElectionNotNeeded, NotNeeded)
                    : missing with { Message = topic.Topic is null ? $"No such topic as {t.Topic}" : $"No such partition as {t.Topic}-{partition}" };
                result.PartitionResult.Add(new ElectLeadersResponse.PartitionResult { PartitionId = partition }.SetError(error));
            }
        }
        return Done(response);
    }

    private static ElectLeadersResponse ErrorResponse(ElectLeadersResponse response, ElectLeadersRequest request, ErrorCode error, string message)
    {
        response.SetError(error);
        foreach (var t in request.TopicPartitions ?? [])
        {
            var result = new ElectLeadersResponse.ReplicaElectionResult { Topic = t.Topic };
            foreach (int partition in t.Partitions)
                result.PartitionResult.Add(new ElectLeadersResponse.PartitionResult { PartitionId = partition }.SetError(new(error, message)));
            response.ReplicaElectionResults.Add(result);
        }
        return response;
    }
}
