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
    private readonly BrokerState _broker;

    public TransactionStateLog(BrokerState broker) { _broker = broker; }

    private TopicLog Topic()
    {
        if (_broker.Logs.TryGetTopic(TopicService.TransactionStateTopic, out var t)) return t;
        var created = _broker.Topics.CreateInternal(TopicService.TransactionStateTopic);
        // CreateInternal already answers a concurrently created topic.
        return created.Topic ?? throw new InvalidOperationException($"Cannot create {TopicService.TransactionStateTopic}: {created.Message}");
    }

    public void Append(int partition, ReadOnlySpan<byte> batch) => Topic().Partitions[partition].Append(batch, 1);

    public void Replay(int partition, Action<ReadOnlyMemory<byte>> onBatches)
    {
        if (!_broker.Logs.TryGetTopic(TopicService.TransactionStateTopic, out var topic) || partition >= topic.Partitions.Count) return;
        topic.Partitions[partition].Replay(onBatches);
    }
}

/// <summary>Writes commit/abort markers into the data partitions through Storage (one node: no WriteTxnMarkers RPC).</summary>
internal sealed class LocalMarkerWriter : ITransactionMarkerWriter
{
    private readonly BrokerState _broker;
    private readonly ILogger _log;

    /// <summary>
    /// TEST HOOK (integration tests only): when this file exists in the first log dir at startup, the first commit
    /// marker write deletes it, prints <see cref="HoldBeforeMarkersLine"/> and blocks forever, so the test can
    /// kill -9 the broker after PrepareCommit is persisted and before any marker is written. Never present in
    /// a real deployment; read once at startup, so it costs nothing per marker when absent.
    /// </summary>
    public const string HoldBeforeMarkersHookFile = "kayak-test-hook-hold-before-txn-markers";
    public const string HoldBeforeMarkersLine = "TEST HOOK: holding before transaction markers";
    private string? _holdHookFile;

    public LocalMarkerWriter(BrokerState broker, ILogger log)
    {
        _broker = broker;
        _log = log;
        string hook = Path.Combine(broker.Config.LogDirs[0], HoldBeforeMarkersHookFile);
        if (File.Exists(hook)) _holdHookFile = hook;
    }

    public ErrorCode WriteMarker(TxnPartition partition, long producerId, short producerEpoch, int coordinatorEpoch, bool commit)
    {
        if (commit && _holdHookFile is { } hookFile)
        {
            _holdHookFile = null;
            File.Delete(hookFile); // the restarted broker must complete the transaction, not hold again
            _log.LogWarning("{Line} (producer {ProducerId})", HoldBeforeMarkersLine, producerId);
            Console.Out.WriteLine(HoldBeforeMarkersLine);
            Console.Out.Flush();
            Thread.Sleep(Timeout.Infinite);
        }
        if (!_broker.Logs.TryGetTopic(partition.Topic, out var topic) || partition.Partition >= topic.Partitions.Count)
            return ErrorCode.UnknownTopicOrPartition; // deleted meanwhile: Kafka drops markers for missing partitions
        try
        {
            topic.Partitions[partition.Partition].AppendEndTxnMarker(producerId, producerEpoch, coordinatorEpoch, commit);
            return ErrorCode.None;
        }
        catch (ProducerStateException e)
        {
            _log.LogWarning("Marker for {Topic}-{Partition} of producer {ProducerId} refused: {Message}", partition.Topic, partition.Partition, producerId, e.Message);
            return ErrorCode.ProducerFenced;
        }
    }
}
