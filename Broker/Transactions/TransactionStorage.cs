using Kayak.Broker.Services;
using Kayak.Coordinator.Transactions;
using Kayak.Protocol;
using Kayak.Storage;
using Microsoft.Extensions.Logging;

namespace Kayak.Broker.Transactions;

/// <summary>
/// The transaction coordinator's state log over the <c>__transaction_state</c> topic, created compacted on
/// first use (Kafka creates it when the first transactional producer looks up its coordinator).
/// </summary>
internal sealed class TransactionStateLog : ITransactionLog
{
    private readonly ITopicCatalog _catalog;
    private readonly TopicService _topics;
    private readonly CoordinatorReplication? _replication;

    /// <param name="replication">In a cluster, each append waits for the ISR (acks=-1, issue 14).</param>
    public TransactionStateLog(ITopicCatalog catalog, TopicService topics, CoordinatorReplication? replication = null)
    {
        _catalog = catalog;
        _topics = topics;
        _replication = replication;
    }

    private TopicLog Topic()
    {
        if (_catalog.TryGet(TopicService.TransactionStateTopic, out var t)) return t;
        var created = _topics.CreateInternal(TopicService.TransactionStateTopic);
        // CreateInternal already answers a concurrently created topic.
        return created.Topic ?? throw new InvalidOperationException($"Cannot create {TopicService.TransactionStateTopic}: {created.Message}");
    }

    public void Append(int partition, ReadOnlySpan<byte> batch)
    {
        Topic().Partitions[partition].Append(batch, 1, _replication?.LeaderEpoch(TopicService.TransactionStateTopic, partition) ?? -1);
        _replication?.WaitForIsr(TopicService.TransactionStateTopic, partition);
    }

    public void Replay(int partition, Action<ReadOnlyMemory<byte>> onBatches)
    {
        // GetPartition: null for a partition this cluster member is not a replica of (issue 14), nothing to load.
        if (!_catalog.TryGet(TopicService.TransactionStateTopic, out var topic) || partition >= topic.Partitions.Count) return;
        topic.GetPartition(partition)?.Replay(onBatches);
    }
}

/// <summary>
/// Writes commit/abort markers into this broker's partitions through Storage (one node: no WriteTxnMarkers RPC; in a
/// cluster the partitions this broker leads, for its own coordinator and for WriteTxnMarkers from the others). A group's <c>__consumer_offsets</c> partition goes to the group
/// coordinator, which writes the marker and then resolves the producer's pending offsets (Kafka's
/// onTransactionCompleted after the marker).
/// </summary>
internal sealed class LocalMarkerWriter : ITransactionMarkerWriter
{
    private readonly ITopicCatalog _catalog;
    private readonly ILogger _log;
    private readonly ITxnOffsetSink? _groups;
    private readonly IPartitionLeadership? _leadership;

    /// <param name="leadership">In a cluster: the leader epoch the marker batch carries.</param>
    public LocalMarkerWriter(ITopicCatalog catalog, ILogger log, ITxnOffsetSink? groups = null, IPartitionLeadership? leadership = null)
    {
        _catalog = catalog;
        _log = log;
        _groups = groups;
        _leadership = leadership;
    }

    /// <summary>
    /// Appends the marker under the partition's lock, which also ends the producer's transaction there and clears its
    /// verification guard, so a transactional batch of that transaction is refused from then on (KIP-890 part 1).
    /// </summary>
    public ErrorCode WriteMarker(TxnPartition partition, long producerId, short producerEpoch, int coordinatorEpoch, bool commit)
    {
        if (!_catalog.TryGet(partition.Topic, out var topic) || partition.Partition >= topic.Partitions.Count)
            return ErrorCode.UnknownTopicOrPartition; // deleted meanwhile: Kafka drops markers for missing partitions
        // Not a replica on this cluster member (issue 14): Kafka's WriteTxnMarkers answers NOT_LEADER_OR_FOLLOWER.
        if (topic.GetPartition(partition.Partition) is not { } log) return ErrorCode.NotLeaderOrFollower;
        if (_groups is not null && partition.Topic == TopicService.ConsumerOffsetsTopic)
        {
            try
            {
                _groups.CompleteTransaction(partition.Partition, producerId, producerEpoch, commit);
                return ErrorCode.None;
            }
            catch (IOException e)
            {
                _log.LogWarning("Marker for {Topic}-{Partition} of producer {ProducerId} not written: {Message}", partition.Topic, partition.Partition, producerId, e.Message);
                return ErrorCode.KafkaStorageError; // retriable: the marker writer tries again
            }
        }
        try
        {
            log.AppendEndTxnMarker(producerId, producerEpoch, coordinatorEpoch, commit,
                _leadership?.AppendLeaderEpoch(partition.Topic, partition.Partition) ?? -1);
            return ErrorCode.None;
        }
        catch (ProducerStateException e)
        {
            _log.LogWarning("Marker for {Topic}-{Partition} of producer {ProducerId} refused: {Message}", partition.Topic, partition.Partition, producerId, e.Message);
            return e.Code; // PRODUCER_FENCED, or TRANSACTION_COORDINATOR_FENCED for a marker of an older coordinator epoch
        }
    }
}

/// <summary>
/// The transaction coordinator's side of a group's offsets in a cluster (issue 14): TxnOffsetCommit offsets are stored
/// by the local group coordinator (the handler runs on the group's coordinator), and the commit/abort of a group's
/// <c>__consumer_offsets</c> partition is a marker like any other, sent to that partition's leader (WriteTxnMarkers)
/// or written here when this broker leads it; either way the leader's group coordinator writes it and resolves the
/// pending offsets. Without this the coordinator wrote the marker into its own copy of the partition, and the group's
/// coordinator never materialized the offsets.
/// </summary>
internal sealed class ClusterOffsetSink(ITxnOffsetSink groups, ITransactionMarkerWriter markers) : ITxnOffsetSink
{
    public ErrorCode StoreTransactionalOffsets(string groupId, long producerId, short producerEpoch, IReadOnlyList<PendingTxnOffset> offsets) =>
        groups.StoreTransactionalOffsets(groupId, producerId, producerEpoch, offsets);

    public void CompleteTransaction(int offsetsPartition, long producerId, short producerEpoch, bool commit)
    {
        var error = markers.WriteMarker(new TxnPartition(TopicService.ConsumerOffsetsTopic, offsetsPartition), producerId, producerEpoch,
            TransactionCoordinator.CoordinatorEpoch, commit);
        if (error != ErrorCode.None)
            throw new IOException($"Marker for {TopicService.ConsumerOffsetsTopic}-{offsetsPartition} of producer {producerId} not written: {error}");
    }
}
