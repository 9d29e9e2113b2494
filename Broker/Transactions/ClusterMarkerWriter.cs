using Kayak.Broker.Cluster;
using Kayak.Broker.Services;
using Kayak.Coordinator.Transactions;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using Microsoft.Extensions.Logging;

namespace Kayak.Broker.Transactions;

/// <summary>
/// The transaction coordinator's markers in a cluster (issue 14), as Kafka's TransactionMarkerChannelManager: each
/// marker goes to the partition's current leader, with WriteTxnMarkers (API 27) over loopback when that is another
/// broker, or straight into the local log (then waiting for the ISR, acks=-1) when it is this one. NOT_LEADER_OR_FOLLOWER,
/// a partition without a leader, an unreachable broker and the other retriable errors look the leader up again and
/// retry after <see cref="RetryBackoffMs"/>, until written or <see cref="InterBrokerClient.RequestTimeoutMs"/> has
/// passed; then it throws <see cref="IOException"/> and the transaction stays prepared for the coordinator's timer
/// (or the next coordinator's load) to write again. A partition the controller no longer knows is answered by the local
/// catalog (UNKNOWN_TOPIC_OR_PARTITION for a deleted one: Kafka drops markers for partitions that no longer exist).
/// </summary>
internal sealed class ClusterMarkerWriter(ClusterController controller, int nodeId, IPartitionLeadership leadership,
    ITransactionMarkerWriter local, CoordinatorReplication replication, InterBrokerClient client, TimeProvider time, ILogger log)
    : ITransactionMarkerWriter
{
    /// <summary>Kafka's retry.backoff.ms default between attempts of a marker.</summary>
    public const int RetryBackoffMs = 100;
    private const short WriteTxnMarkersVersion = 1;

    public ErrorCode WriteMarker(TxnPartition partition, long producerId, short producerEpoch, int coordinatorEpoch, bool commit)
    {
        long start = time.GetTimestamp();
        while (true)
        {
            var t = controller.Topic(partition.Topic);
            if (t is null || (uint)partition.Partition >= (uint)t.Partitions.Length)
                return local.WriteMarker(partition, producerId, producerEpoch, coordinatorEpoch, commit);
            int leader = leadership.Describe(partition.Topic, partition.Partition).Leader;
            var error = leader == nodeId ? WriteLocal(partition, producerId, producerEpoch, coordinatorEpoch, commit)
                : leader < 0 ? ErrorCode.LeaderNotAvailable
                : Send(leader, partition, producerId, producerEpoch, coordinatorEpoch, commit);
            if (error == ErrorCode.None) return error;
            if (!Retriable(error))
            {
                log.LogWarning("Marker for {Topic}-{Partition} of producer {ProducerId} refused by broker {Leader}: {Error}",
                    partition.Topic, partition.Partition, producerId, leader, error);
                return error;
            }
            if (time.GetElapsedTime(start).TotalMilliseconds >= InterBrokerClient.RequestTimeoutMs)
                throw new IOException($"Marker for {partition.Topic}-{partition.Partition} of producer {producerId} not written: {error} (leader {leader})");
            Task.Delay(TimeSpan.FromMilliseconds(RetryBackoffMs), time).Wait();
        }
    }

    /// <summary>Errors after which Kafka's TransactionMarkerRequestCompletionHandler retries the marker.</summary>
    internal static bool Retriable(ErrorCode error) => error is ErrorCode.NotLeaderOrFollower or ErrorCode.LeaderNotAvailable
        or ErrorCode.NetworkException or ErrorCode.RequestTimedOut or ErrorCode.UnknownTopicOrPartition or ErrorCode.KafkaStorageError
        or ErrorCode.NotEnoughReplicas or ErrorCode.NotEnoughReplicasAfterAppend or ErrorCode.CoordinatorLoadInProgress;

    private ErrorCode WriteLocal(TxnPartition partition, long producerId, short producerEpoch, int coordinatorEpoch, bool commit)
    {
        var error = local.WriteMarker(partition, producerId, producerEpoch, coordinatorEpoch, commit);
        if (error != ErrorCode.None) return error;
        try
        {
            replication.WaitForIsr(partition.Topic, partition.Partition);
            return ErrorCode.None;
        }
        catch (Coordinator.CoordinatorAppendException e) { return e.Code; }
    }

    private ErrorCode Send(int leader, TxnPartition partition, long producerId, short producerEpoch, int coordinatorEpoch, bool commit)
    {
        var request = new WriteTxnMarkersRequest();
        var marker = new WriteTxnMarkersRequest.WritableTxnMarker
        {
            ProducerId = producerId, ProducerEpoch = producerEpoch, TransactionResult = commit, CoordinatorEpoch = coordinatorEpoch,
        };
        marker.Topics.Add(new WriteTxnMarkersRequest.WritableTxnMarkerTopic { Name = partition.Topic, PartitionIndexes = [partition.Partition] });
        request.Markers.Add(marker);
        try
        {
            var response = client.SendAsync<WriteTxnMarkersResponse>(leader, request, ApiKey.WriteTxnMarkers, WriteTxnMarkersVersion)
                .GetAwaiter().GetResult();
            foreach (var m in response.Markers)
                foreach (var rt in m.Topics)
                    foreach (var rp in rt.Partitions)
                        if (rt.Name == partition.Topic && rp.PartitionIndex == partition.Partition) return (ErrorCode)rp.ErrorCode;
            return ErrorCode.UnknownServerError;
        }
        catch (IOException e)
        {
            log.LogInformation("Marker for {Topic}-{Partition} to broker {Leader}: {Message}; retrying", partition.Topic, partition.Partition, leader, e.Message);
            return ErrorCode.NetworkException;
        }
    }
}
