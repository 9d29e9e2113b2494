using Kayak.Protocol;

namespace Kayak.Coordinator.Transactions;

/// <summary>
/// Transaction coordinator failover (issue 14), as Kafka's TransactionCoordinator.onElection / onResignation and
/// TransactionStateManager.loadTransactionsForTxnTopicPartition: a broker coordinates the transactional ids of a
/// <c>__transaction_state</c> partition only while it leads it. Under a leader epoch it has not loaded it drops what
/// it held for the partition, replays the partition's log (filled by replication while it followed) in the
/// background and answers COORDINATOR_LOAD_IN_PROGRESS until done; then it completes the transactions it finds in
/// PrepareCommit/PrepareAbort by writing their markers and Complete records, as Kafka's onElection does. A partition
/// it no longer leads is unloaded and its ids answered NOT_COORDINATOR. Leadership is looked up (<see cref="LeaderEpochOf"/>)
/// per request and on every timer pass (<see cref="CheckLeadership"/>), so an election is acted on without waiting
/// for a client.
/// </summary>
public sealed partial class TransactionCoordinator
{
    /// <summary>The leader epoch under which this broker leads a partition, or -1 when it does not; null (a single broker) leads all.</summary>
    public Func<int, int>? LeaderEpochOf { get; set; }

    private readonly PartitionLoads _loads;

    /// <summary>
    /// The coordinator epoch a marker carries: the leader epoch under which this broker loaded the transactional id's
    /// <c>__transaction_state</c> partition (Kafka's TransactionStateManager coordinatorEpoch, the partition's leader
    /// epoch), so a leader can tell a deposed coordinator's late marker from the new one's; 0 on a single broker.
    /// </summary>
    internal int MarkerEpoch(string transactionalId) =>
        LeaderEpochOf is not null && _loads.TryGetLoadedEpoch(PartitionFor(transactionalId), out int epoch) ? epoch : CoordinatorEpoch;

    /// <summary>True when the partition is to be loaded at startup (every partition on a single broker).</summary>
    private bool LoadsAtStart(int partition, out int epoch)
    {
        epoch = LeaderEpochOf is { } epochOf ? epochOf(partition) : 0;
        return epoch >= 0;
    }

    /// <summary>NONE, NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS for a transactional id's partition.</summary>
    private ErrorCode Availability(string transactionalId) => _loads.Availability(LeaderEpochOf, PartitionFor(transactionalId));

    /// <summary>Whether a loaded transaction's partition is still served here (the timer skips the others).</summary>
    private bool Serves(TransactionMetadata txn) =>
        LeaderEpochOf is null || _loads.IsLoaded(PartitionFor(txn.TransactionalId));

    /// <summary>Acts on leadership changes of every partition (loads on election, unloads on resignation); the timer calls it.</summary>
    public void CheckLeadership()
    {
        if (LeaderEpochOf is null) return;
        for (int p = 0; p < _options.NumPartitions; p++) _loads.Availability(LeaderEpochOf, p);
    }

    /// <summary>Waits for the loads started so far (tests).</summary>
    internal void WaitForLoads() => _loads.WaitForLoads();

    /// <summary>Kafka's onElection: forget an earlier term, replay the partition, serve it, then finish its prepared transactions.</summary>
    private void LoadPartition(int partition, int epoch)
    {
        try
        {
            UnloadPartition(partition);
            _log.Replay(partition, chunk => CoordinatorBatch.Decode(chunk, ReplayRecord));
            _loads.MarkLoaded(partition, epoch);
        }
        catch (Exception e) when (CoordinatorAppendErrors.IsAppendFailure(e) || e is KafkaException)
        {
            // Not readable here (yet): the next request or timer pass tries again.
            _loads.EndLoad(partition);
            Microsoft.Extensions.Logging.LoggerExtensions.LogWarning(_options.Logger, e, "__transaction_state-{Partition} not loaded", partition);
            return;
        }
        try { CompletePrepared(partition); }
        finally { _loads.EndLoad(partition); }
    }

    /// <summary>Kafka's onElection follow-up: markers and Complete records for the partition's prepared transactions.</summary>
    private void CompletePrepared(int partition)
    {
        // Requests meanwhile see the prepared state and get CONCURRENT_TRANSACTIONS, as in Kafka.
        long now = NowMs;
        foreach (var txn in _txns.Values)
        {
            if (PartitionFor(txn.TransactionalId) != partition) continue;
            lock (txn.Sync)
            {
                if (!txn.Live || txn.Completing || !IsPrepared(txn.State)) continue;
                try { FinishPrepared(txn, now); }
                catch (Exception e) when (CoordinatorAppendErrors.IsAppendFailure(e))
                {
                    // Left prepared: the timer's next pass writes the markers again.
                    Microsoft.Extensions.Logging.LoggerExtensions.LogWarning(_options.Logger, e,
                        "Transaction {TransactionalId}: markers not written after the election, left for the timer", txn.TransactionalId);
                }
            }
        }
    }

    /// <summary>Kafka's onResignation / removeTransactionsForTxnTopicPartition: forget the partition's transactional ids.</summary>
    private void UnloadPartition(int partition)
    {
        foreach (var (id, txn) in _txns)
        {
            if (PartitionFor(id) != partition) continue;
            lock (txn.Sync)
            {
                if (!_txns.TryRemove(new KeyValuePair<string, TransactionMetadata>(id, txn))) continue;
                txn.Live = false;
                _byProducerId.TryRemove(new KeyValuePair<long, TransactionMetadata>(txn.ProducerId, txn));
            }
        }
    }
}
