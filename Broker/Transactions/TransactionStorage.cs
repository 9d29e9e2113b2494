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
        Topic().Partitions[partition].Append(batch, 1);
        _replication?.WaitForIsr(TopicService.TransactionStateTopic, partition);
    }

    public void Replay(int partition, Action<ReadOnlyMemory<byte>> onBatches)
    {
        // GetPartition: null for a partition this cluster member is not a replica of (issue 14), nothing to load.
        if (!_catalog.TryGet(TopicService.TransactionStateTopic, out var topic) || partition >= topic.Partitions.Count) return;
        topic.GetPartition(partition)?.Replay(onBatches);
    }
}

/// <summary>Writes commit/abort markers into the data partitions through Storage (one node: no WriteTxnMarkers RPC).</summary>
internal sealed class LocalMarkerWriter : ITransactionMarkerWriter
{
    private readonly ITopicCatalog _catalog;
    private readonly ILogger _log;

    public LocalMarkerWriter(ITopicCatalog catalog, ILogger log)
    {
        _catalog = catalog;
        _log = log;
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
        try
        {
            log.AppendEndTxnMarker(producerId, producerEpoch, coordinatorEpoch, commit);
            return ErrorCode.None;
        }
        catch (ProducerStateException e)
        {
            _log.LogWarning("Marker for {Topic}-{Partition} of producer {ProducerId} refused: {Message}", partition.Topic, partition.Partition, producerId, e.Message);
            return ErrorCode.ProducerFenced;
        }
    }
}
