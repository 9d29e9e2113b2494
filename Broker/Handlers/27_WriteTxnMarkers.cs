// WriteTxnMarkers (key 27), v0-1: the transaction coordinator asks a partition leader to append commit/abort markers
// (KIP-98; in a cluster, issue 14, the coordinator's ClusterMarkerWriter sends it, a single broker writes its markers
// itself). Per partition: UNKNOWN_TOPIC_OR_PARTITION when absent, NOT_LEADER_OR_FOLLOWER when not led here (the
// coordinator looks the leader up again and retries), INVALID_PRODUCER_EPOCH for a stale producer epoch. The marker
// waits for the ISR as Kafka appends it with acks=-1 (REQUEST_TIMED_OUT after offsets.commit.timeout.ms; the
// coordinator retries, and a repeated marker is harmless). The marker also ends the producer's transaction in the
// partition and clears its verification guard (KIP-890 part 1).
// A group's __consumer_offsets partition is handed to the group coordinator, which appends the marker and then
// materializes (commit) or drops (abort) the producer's pending TxnOffsetCommit offsets, as Kafka's handler calls
// GroupCoordinator.onTransactionCompleted after appending (sendOffsetsToTransaction in a cluster, issue 14).
// ACLs: CLUSTER_ACTION on the cluster (CLUSTER_AUTHORIZATION_FAILED for every partition), as Kafka.
using Kayak.Broker.Security;
using Kayak.Broker.Services;
using Kayak.Coordinator.Transactions;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using Kayak.Storage;

namespace Kayak.Broker.Handlers;

internal sealed class WriteTxnMarkersHandler(ITopicCatalog catalog, IPartitionLeadership leadership, ITransactionMarkerWriter markers, IAuthorizer authorizer,
    TimeProvider time)
    : ApiHandler<WriteTxnMarkersRequest>
{
    public override ApiKey Key => ApiKey.WriteTxnMarkers;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, WriteTxnMarkersRequest request)
    {
        var response = new WriteTxnMarkersResponse();
        bool denied = !authorizer.Cluster(context, AclOperation.ClusterAction);
        List<(PartitionLog Log, long Offset, int LeaderEpoch, WriteTxnMarkersResponse.WritableTxnMarkerPartitionResult Result)>? pending = null;
        foreach (var m in request.Markers)
        {
            var rm = new WriteTxnMarkersResponse.WritableTxnMarkerResult { ProducerId = m.ProducerId };
            response.Markers.Add(rm);
            foreach (var t in m.Topics)
            {
                var rt = new WriteTxnMarkersResponse.WritableTxnMarkerTopicResult { Name = t.Name };
                rm.Topics.Add(rt);
                var topic = catalog.Lookup(t.Name);
                foreach (int p in t.PartitionIndexes)
                {
                    var rp = new WriteTxnMarkersResponse.WritableTxnMarkerPartitionResult { PartitionIndex = p };
                    rt.Partitions.Add(rp);
                    ErrorCode error;
                    if (denied) error = ErrorCode.ClusterAuthorizationFailed;
                    else if (!topic.TryGetPartition(p, out var log, out _)) error = ErrorCode.UnknownTopicOrPartition;
                    else if (!leadership.IsLocalLeader(t.Name, p)) error = ErrorCode.NotLeaderOrFollower;
                    else
                    {
                        error = Write(log, t.Name, p, m, out long offset);
                        if (error == ErrorCode.None && leadership.Replicated)
                        {
                            leadership.LeaderAppended(log);
                            if (log.HighWatermark <= offset) (pending ??= new()).Add((log, offset, leadership.AppendLeaderEpoch(t.Name, p), rp));
                        }
                    }
                    rp.SetError(error);
                }
            }
        }
        return pending is null ? Done(response) : WaitForIsrAsync(response, pending);
    }

    /// <summary>
    /// The marker through the broker's local marker writer, the one its own transaction coordinator uses: stamped with
    /// the partition's leader epoch, and a group's offsets partition handed to the group coordinator.
    /// </summary>
    private ErrorCode Write(PartitionLog log, string topic, int partition, WriteTxnMarkersRequest.WritableTxnMarker m, out long offset)
    {
        offset = -1;
        try
        {
            var error = markers.WriteMarker(new TxnPartition(topic, partition), m.ProducerId, m.ProducerEpoch, m.CoordinatorEpoch, m.TransactionResult);
            if (error == ErrorCode.None) offset = log.LogEndOffset - 1;
            return error;
        }
        catch (KafkaException e) { return e.Code; }
        catch (Exception e) when (e is IOException or ObjectDisposedException) { return ErrorCode.KafkaStorageError; }
    }

    /// <summary>acks=-1 for markers (Kafka's TransactionMarkerChannelManager appends them so): each waits for the ISR.</summary>
    private async ValueTask<IApiMessage?> WaitForIsrAsync(WriteTxnMarkersResponse response,
        List<(PartitionLog Log, long Offset, int LeaderEpoch, WriteTxnMarkersResponse.WritableTxnMarkerPartitionResult Result)> pending)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMilliseconds(CoordinatorReplication.CommitTimeoutMs), time);
        foreach (var (log, offset, epoch, rp) in pending)
        {
            var error = await leadership.WaitForIsrAsync(log, offset, epoch, timeout.Token).ConfigureAwait(false);
            if (error != ErrorCode.None) rp.SetError(error);
        }
        return response;
    }
}
