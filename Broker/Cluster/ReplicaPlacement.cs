using Kayak.Protocol;

namespace Kayak.Broker.Cluster;

/// <summary>
/// Kafka's rack-unaware replica assignment (AdminUtils.assignReplicasToBrokers, what CreateTopics and
/// CreatePartitions used before racks): the first replica of partition p is broker (p + start) mod n, so leaders go
/// round-robin over the brokers from a random start; the followers follow at a shift that grows by one every n
/// partitions, so the replicas of consecutive partitions spread over different broker pairs. The first replica is the
/// preferred (and initial) leader.
/// </summary>
internal static class ReplicaPlacement
{
    /// <param name="brokers">The registered brokers, sorted by id.</param>
    /// <param name="startPartition">The first partition to place (CreatePartitions continues an existing topic).</param>
    /// <param name="fixedStart">The start index and initial shift, or -1 for random ones as Kafka picks them.</param>
    public static int[][] Assign(IReadOnlyList<int> brokers, int partitions, int replicationFactor, int startPartition, int fixedStart, Random random)
    {
        int n = brokers.Count;
        if (replicationFactor <= 0) throw new KafkaException(ErrorCode.InvalidReplicationFactor, "Replication factor must be larger than 0.");
        if (replicationFactor > n)
            throw new KafkaException(ErrorCode.InvalidReplicationFactor,
                $"Unable to replicate the partition {replicationFactor} time(s): The target replication factor of {replicationFactor} cannot be reached because only {n} broker(s) are registered.");
        int startIndex = fixedStart >= 0 ? fixedStart : random.Next(n);
        int shift = fixedStart >= 0 ? fixedStart : random.Next(n);
        var result = new int[partitions][];
        int partitionId = Math.Max(0, startPartition);
        for (int i = 0; i < partitions; i++, partitionId++)
        {
            if (partitionId > 0 && partitionId % n == 0) shift++;
            int first = (partitionId + startIndex) % n;
            var replicas = new int[replicationFactor];
            replicas[0] = brokers[first];
            for (int j = 0; j < replicationFactor - 1; j++)
                replicas[j + 1] = brokers[(first + 1 + (shift + j) % (n - 1)) % n];
            result[i] = replicas;
        }
        return result;
    }
}
