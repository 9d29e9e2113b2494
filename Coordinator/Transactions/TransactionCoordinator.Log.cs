using Kayak.Protocol;
using Kayak.Protocol.CoordinatorRecords;

namespace Kayak.Coordinator.Transactions;

/// <summary>
/// Kafka's TxnTransitMetadata: the state one transition of a transaction writes. The operation builds it from the
/// current <see cref="TransactionMetadata"/>; the metadata takes it only when its record has been appended and is
/// replayed. <see cref="Partitions"/> may be the metadata's own set (read once, while encoding the record).
/// </summary>
internal readonly record struct TxnTransit(long ProducerId, long PreviousProducerId, short ProducerEpoch, int TimeoutMs,
    TransactionState State, IReadOnlyCollection<TxnPartition> Partitions, long StartTimestampMs, long LastUpdateTimestampMs)
{
    public static TxnTransit Of(TransactionMetadata t) =>
        new(t.ProducerId, t.PreviousProducerId, t.ProducerEpoch, t.TimeoutMs, t.State, t.Partitions, t.StartTimestampMs, t.LastUpdateTimestampMs);
}

/// <summary>
/// One write path for transaction state, as Kafka's TransactionStateManager.appendTransactionToLog and the coordinator
/// runtime have it: a transition becomes a TransactionLogKey/Value record, the record is appended to the id's
/// <c>__transaction_state</c> partition, and only once the append succeeded is it replayed into the metadata by
/// <see cref="Replay"/>, the same method <see cref="Load"/> runs over the log at start. A refused append leaves the
/// state as it was and the operation answers Kafka's coordinator error for it (<see cref="CoordinatorAppendErrors.Map"/>).
/// Writes run under the transaction's lock; the replay takes it too (reentrant), which is what load needs.
/// </summary>
public sealed partial class TransactionCoordinator
{
    /// <summary>TransactionLogValue v1 (flexible, KIP-890) carries PreviousProducerId as a tagged field; v0 has no place for it.</summary>
    private const short ValueVersionWithPreviousId = 1;

    /// <summary>
    /// Appends the transition's record and replays it; NONE, or the coordinator error for the refused append (nothing
    /// changed, see <see cref="CoordinatorAppendErrors.Map"/>). Under <paramref name="txn"/>'s lock.
    /// </summary>
    private ErrorCode TryWrite(TransactionMetadata txn, in TxnTransit transit)
    {
        var value = ToValue(transit);
        var error = TryAppend(txn.TransactionalId, value);
        if (error == ErrorCode.None) Replay(txn, txn.TransactionalId, value);
        return error;
    }

    /// <summary>Tombstones an expired transactional id (Kafka's removeExpiredTransactionalIds); a refused one is tried again next pass. Under its lock.</summary>
    private void TryWriteTombstone(TransactionMetadata txn)
    {
        if (TryAppend(txn.TransactionalId, null) == ErrorCode.None) Replay(txn, txn.TransactionalId, null);
    }

    /// <summary>One TransactionLogKey/Value record (null value: a tombstone) as a batch of its own, encoded like the group coordinator's records.</summary>
    private ErrorCode TryAppend(string transactionalId, TransactionLogValue? value)
    {
        // Version 1 only when there is a previous producer id to keep (an epoch rollover, KIP-360): Kafka 4.0 reads
        // both and writes v0 without transaction version 2.
        short valueVersion = value is { PreviousProducerId: >= 0 } ? ValueVersionWithPreviousId : ValueVersion;
        var batch = CoordinatorBatch.Encode(
            [new CoordinatorRecord(new TransactionLogKey { TransactionalId = transactionalId }, KeyVersion, value, valueVersion)], NowMs);
        try
        {
            _log.Append(PartitionFor(transactionalId), batch);
            return ErrorCode.None;
        }
        catch (Exception e) when (CoordinatorAppendErrors.IsAppendFailure(e))
        {
            return CoordinatorAppendErrors.Map(e);
        }
    }

    private static TransactionLogValue ToValue(in TxnTransit t) => new()
    {
        ProducerId = t.ProducerId,
        PreviousProducerId = t.PreviousProducerId,
        ProducerEpoch = t.ProducerEpoch,
        TransactionTimeoutMs = t.TimeoutMs,
        TransactionStatus = (sbyte)t.State,
        // Kafka writes no partition list for an Empty transaction.
        TransactionPartitions = t.State == TransactionState.Empty ? null : GroupByTopic(t.Partitions),
        TransactionLastUpdateTimestampMs = t.LastUpdateTimestampMs,
        TransactionStartTimestampMs = t.StartTimestampMs,
    };

    private static List<TransactionLogValue.PartitionsSchema> GroupByTopic(IReadOnlyCollection<TxnPartition> partitions)
    {
        var byTopic = new Dictionary<string, TransactionLogValue.PartitionsSchema>(StringComparer.Ordinal);
        foreach (var p in partitions)
        {
            if (!byTopic.TryGetValue(p.Topic, out var s)) byTopic[p.Topic] = s = new TransactionLogValue.PartitionsSchema { Topic = p.Topic };
            s.PartitionIds.Add(p.Partition);
        }
        return new List<TransactionLogValue.PartitionsSchema>(byTopic.Values);
    }

    // ------------------------------------------------------------------ replay

    /// <summary>
    /// The one place a transaction's state changes (Kafka's TransactionMetadata.completeTransitionTo on the write
    /// path, loadTransactionMetadata at load): the record's value replaces the metadata's fields, a null value (a
    /// tombstone) forgets the id. <paramref name="writer"/> is the metadata a write path holds (null at load).
    /// </summary>
    private void Replay(TransactionMetadata? writer, string transactionalId, TransactionLogValue? value)
    {
        if (value is null)
        {
            var gone = writer;
            if (gone is null && !_txns.TryGetValue(transactionalId, out gone)) return;
            lock (gone.Sync)
            {
                gone.Live = false;
                _txns.TryRemove(new KeyValuePair<string, TransactionMetadata>(transactionalId, gone));
                _byProducerId.TryRemove(new KeyValuePair<long, TransactionMetadata>(gone.ProducerId, gone));
            }
            return;
        }
        var txn = writer ?? _txns.GetOrAdd(transactionalId, static id => new TransactionMetadata(id));
        lock (txn.Sync)
        {
            if (txn.ProducerId != value.ProducerId)
                _byProducerId.TryRemove(new KeyValuePair<long, TransactionMetadata>(txn.ProducerId, txn));
            txn.ProducerId = value.ProducerId;
            txn.PreviousProducerId = value.PreviousProducerId;
            txn.ProducerEpoch = value.ProducerEpoch;
            txn.TimeoutMs = value.TransactionTimeoutMs;
            txn.State = (TransactionState)value.TransactionStatus;
            txn.StartTimestampMs = value.TransactionStartTimestampMs;
            txn.LastUpdateTimestampMs = value.TransactionLastUpdateTimestampMs;
            txn.Partitions.Clear();
            if (value.TransactionPartitions is { } topics)
                foreach (var t in topics)
                    foreach (int id in t.PartitionIds) txn.Partitions.Add(new TxnPartition(t.Topic, id));
            txn.Live = true;
            _byProducerId[txn.ProducerId] = txn;
        }
    }

    /// <summary>
    /// Replays every <c>__transaction_state</c> partition through <see cref="Replay"/> (last record per transactional
    /// id wins, tombstones delete), then finishes transactions caught between Prepare and Complete by a stop: their
    /// markers are written (again) and the Complete record appended, so nothing stays half-visible. Ongoing
    /// transactions stay open; their producer may still end them, or the timeout aborts them.
    /// </summary>
    /// Runs before the broker serves requests; each transaction is still finished under its own lock.
    public void Load()
    {
        LoadState();
        long now = NowMs;
        foreach (var txn in _txns.Values)
            lock (txn.Sync)
                if (IsPrepared(txn.State)) FinishPrepared(txn, now);
    }

    /// <summary>The replay half of <see cref="Load"/>: the state the log holds, with nothing written (replay-equivalence tests).</summary>
    internal void LoadState()
    {
        _txns.Clear();
        _byProducerId.Clear();
        for (int p = 0; p < _options.NumPartitions; p++)
        {
            // In a cluster only the partitions led here (issue 14); the others load when this broker is elected.
            if (!LoadsAtStart(p, out int epoch)) continue;
            _log.Replay(p, chunk => CoordinatorBatch.Decode(chunk, ReplayRecord));
            if (LeaderEpochOf is not null) _loads.MarkLoaded(p, epoch);
        }
    }

    /// <summary>Every transaction the coordinator holds, live or not (tests dump them; lock each to read).</summary>
    internal ICollection<TransactionMetadata> AllTransactions => _txns.Values;

    /// <summary>The produce path's producer id → transactional id index (tests check it agrees with the metadata).</summary>
    internal IEnumerable<KeyValuePair<long, TransactionMetadata>> ProducerIndex => _byProducerId;

    /// <summary>Decodes one record of <c>__transaction_state</c> and replays it; keys of another version are not transaction records.</summary>
    private void ReplayRecord(ReadOnlyMemory<byte> key, ReadOnlyMemory<byte>? value)
    {
        var keyReader = new KafkaReader(key);
        if (keyReader.ReadInt16() != KeyVersion) return;
        var k = new TransactionLogKey();
        k.Read(ref keyReader, KeyVersion);
        if (value is not { } v)
        {
            Replay(null, k.TransactionalId, null);
            return;
        }
        var valueReader = new KafkaReader(v);
        short version = valueReader.ReadInt16();
        if (version < 0 || version > ValueVersionWithPreviousId)
            throw new KafkaException(ErrorCode.CorruptMessage, $"TransactionLogValue version {version} of '{k.TransactionalId}' is not supported.");
        var record = new TransactionLogValue();
        record.Read(ref valueReader, version);
        Replay(null, k.TransactionalId, record);
    }
}
