using Kayak.Broker.Services;
using Kayak.Coordinator.Transactions;

namespace Kayak.Broker.Cluster;

/// <summary>
/// One broker's view of the controller's leadership (issue 14): it leads a partition when the metadata names it
/// leader. When a leader stops, the controller elects another ISR member (<see cref="ClusterController"/>); a partition
/// with no running ISR member has no leader (-1), and Kafka's default unclean.leader.election.enable=false leaves it
/// offline until one returns. The leader's side of replication is <see cref="ReplicaTracker"/>.
/// </summary>
internal sealed class ClusterLeadership(ClusterController controller, int nodeId, ReplicaTracker replicas) : IPartitionLeadership, ICoordinatorLocator
{
    public bool Replicated => true;

    public ReplicaTracker Replicas => replicas;

    public Kayak.Protocol.ErrorCode FollowerFetched(Kayak.Storage.PartitionLog log, int replicaId, int currentLeaderEpoch, long fetchOffset) =>
        replicas.FollowerFetched(log, replicaId, currentLeaderEpoch, fetchOffset);

    public void LeaderAppended(Kayak.Storage.PartitionLog log) => replicas.UpdateHighWatermark(log);

    public CancellationToken Deposed(Kayak.Storage.PartitionLog log, int leaderEpoch) => replicas.Deposed(log, leaderEpoch);

    public bool IsLocalLeader(string topic, int partition)
    {
        var t = controller.Topic(topic);
        // A topic the controller does not know (yet) is the local catalog's business; there is nothing to redirect to.
        if (t is null || (uint)partition >= (uint)t.Partitions.Length) return true;
        return t.Partitions[partition].Leader == nodeId;
    }

    public bool EnoughInSyncReplicas(string topic, int partition, int minInSync, out int isrSize)
    {
        var t = controller.Topic(topic);
        isrSize = t is null || (uint)partition >= (uint)t.Partitions.Length ? 0 : t.Partitions[partition].Isr.Length;
        return isrSize >= minInSync;
    }

    public PartitionReplicas Describe(string topic, int partition)
    {
        var t = controller.Topic(topic);
        if (t is null || (uint)partition >= (uint)t.Partitions.Length)
            return new PartitionReplicas(-1, -1, [], []);
        var p = t.Partitions[partition];
        return new PartitionReplicas(controller.LiveBroker(p.Leader) is not null ? p.Leader : -1, p.LeaderEpoch, p.Replicas, p.Isr);
    }

    /// <summary>
    /// The coordinator of a group (or transactional id) is the leader of its __consumer_offsets (__transaction_state)
    /// partition, Kafka's abs(hashCode) % partitions; the internal topic is created on first use, as Kafka's
    /// FindCoordinator does.
    /// </summary>
    public int CoordinatorFor(string topic, int partitions, string key, Func<string, TopicResult> createInternal)
    {
        if (controller.Topic(topic) is null)
        {
            var created = createInternal(topic);
            if (created.Topic is null) return -1;
        }
        return Describe(topic, TransactionCoordinator.PartitionFor(key, partitions)).Leader;
    }
}
