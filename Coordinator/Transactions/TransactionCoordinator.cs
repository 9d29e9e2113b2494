using System.Collections.Concurrent;
using Kayak.Protocol;
using Kayak.Protocol.CoordinatorRecords;
using Kayak.Protocol.Records;

namespace Kayak.Coordinator.Transactions;

/// <summary>
/// The transaction coordinator of a one-node cluster (Kafka's TransactionCoordinator + TransactionStateManager
/// + TransactionMarkerChannelManager). transactional.id → producer id/epoch/state/partitions/timeout, persisted
/// as TransactionLogKey/Value records in <c>__transaction_state</c> (partition = abs(javaHashCode(id)) %
/// transaction.state.log.num.partitions) and replayed on start. EndTxn moves Ongoing → PrepareCommit/PrepareAbort
/// (persisted), writes the markers straight into the data partitions (no WriteTxnMarkers hop on one node) and,
/// through the group coordinator, into the groups' <c>__consumer_offsets</c> partitions, whose transactional
/// offset records the marker resolves; then persists CompleteCommit/CompleteAbort. A broker
/// that stops between the two finishes the job when it loads.
/// Locking: each transactional id has its own lock (Kafka's TransactionMetadata.inLock); nothing is coordinator-wide,
/// so one transaction's EndTxn (its markers, its groups' offsets) never holds up another transaction or the produce
/// path. A Produce that races EndTxn is settled in the partition itself: the verification guard (KIP-890 part 1, see
/// <see cref="CheckProduce"/>) and the marker meet under the partition's append lock. Lock order: a transaction's
/// lock, then partition and group locks; nothing takes a transaction's lock while holding one of those.
/// </summary>
public sealed class TransactionCoordinator
{
    /// <summary>Single node: the coordinator epoch never changes.</summary>
    public const int CoordinatorEpoch = 0;
    internal const short KeyVersion = 0;
    private const string OffsetsTopic = StorageGroupLog.TopicName;
    internal const short ValueVersion = 0;

    private readonly TransactionCoordinatorOptions _options;
    private readonly ITransactionLog _log;
    private readonly ITransactionMarkerWriter _markers;
    private readonly IProducerIdAllocator _ids;
    /// <summary>transactional.id → transaction; an entry's fields are read and written under its <see cref="TransactionMetadata.Sync"/>.</summary>
    private readonly ConcurrentDictionary<string, TransactionMetadata> _txns = new(StringComparer.Ordinal);
    /// <summary>Producer id → transaction, for the produce path's verification (changed under the transaction's lock).</summary>
    private readonly ConcurrentDictionary<long, TransactionMetadata> _byProducerId = new();

    public TransactionCoordinator(TransactionCoordinatorOptions options, ITransactionLog log, ITransactionMarkerWriter markers, IProducerIdAllocator ids)
    {
        _options = options;
        _log = log;
        _markers = markers;
        _ids = ids;
    }

    /// <summary>
    /// Set by the broker once the group coordinator exists: it stores TxnOffsetCommit offsets and writes the
    /// markers of <c>__consumer_offsets</c> partitions. Without it TxnOffsetCommit answers COORDINATOR_NOT_AVAILABLE.
    /// </summary>
    public ITxnOffsetSink? OffsetSink { get; set; }

    private long NowMs => _options.Time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>Kafka's Utils.abs(String.hashCode()) % partitions: the __transaction_state (or __consumer_offsets) partition of a key.</summary>
    public static int PartitionFor(string key, int partitions) => CoordinatorBatch.PartitionFor(key, partitions);

    public int PartitionFor(string transactionalId) => PartitionFor(transactionalId, _options.NumPartitions);

    // ------------------------------------------------------------------ InitProducerId

    /// <summary>
    /// InitProducerId. Without a transactional id: a fresh producer id at epoch 0 (idempotent producer).
    /// With one: a new id for an unknown transactional.id, else the epoch is bumped (fencing the previous
    /// instance); an open transaction is aborted first. <paramref name="producerId"/>/<paramref name="producerEpoch"/>
    /// (v3+, KIP-360) must match the current ones when given, else PRODUCER_FENCED.
    /// </summary>
    public InitProducerIdResult InitProducerId(string? transactionalId, int timeoutMs, long producerId = -1, short producerEpoch = -1)
    {
        if (transactionalId is null) return new InitProducerIdResult(ErrorCode.None, _ids.NextProducerId(), 0);
        if (transactionalId.Length == 0) return new InitProducerIdResult(ErrorCode.InvalidRequest, -1, -1);
        if (timeoutMs <= 0 || timeoutMs > _options.MaxTimeoutMs) return new InitProducerIdResult(ErrorCode.InvalidTransactionTimeout, -1, -1);
        while (true)
        {
            var txn = _txns.GetOrAdd(transactionalId, static id => new TransactionMetadata(id));
            lock (txn.Sync)
            {
                if (txn.ProducerId < 0)
                {
                    if (!_txns.TryGetValue(transactionalId, out var current) || !ReferenceEquals(current, txn)) continue; // expired meanwhile
                    return InitNew(txn, timeoutMs);
                }
                if (!txn.Live) continue; // expired meanwhile: the next round creates it afresh
                return InitExisting(txn, timeoutMs, producerId, producerEpoch);
            }
        }
    }

    /// <summary>A transactional.id seen for the first time (or again after it expired): a new producer id at epoch 0. Under its lock.</summary>
    private InitProducerIdResult InitNew(TransactionMetadata txn, int timeoutMs)
    {
        txn.ProducerId = _ids.NextProducerId();
        txn.ProducerEpoch = 0;
        txn.TimeoutMs = timeoutMs;
        txn.State = TransactionState.Empty;
        txn.LastUpdateTimestampMs = NowMs;
        try { Persist(txn); }
        catch
        {
            // Not persisted: forget it, so the retry starts over rather than finding a half-made entry.
            txn.ProducerId = -1;
            _txns.TryRemove(new KeyValuePair<string, TransactionMetadata>(txn.TransactionalId, txn));
            throw;
        }
        txn.Live = true;
        _byProducerId[txn.ProducerId] = txn;
        return new InitProducerIdResult(ErrorCode.None, txn.ProducerId, txn.ProducerEpoch);
    }

    /// <summary>A known transactional.id: bump the epoch (aborting an open transaction first). Under its lock.</summary>
    private InitProducerIdResult InitExisting(TransactionMetadata txn, int timeoutMs, long producerId, short producerEpoch)
    {
        long now = NowMs;
        if (producerId >= 0 && (producerId != txn.ProducerId || producerEpoch != txn.ProducerEpoch))
        {
            // A retry after a rollover to a new producer id gets the current one back (KIP-360).
            if (producerId == txn.PreviousProducerId && txn.State != TransactionState.Ongoing)
                return new InitProducerIdResult(ErrorCode.None, txn.ProducerId, txn.ProducerEpoch);
            return new InitProducerIdResult(ErrorCode.ProducerFenced, -1, -1);
        }
        switch (txn.State)
        {
            case TransactionState.PrepareCommit:
            case TransactionState.PrepareAbort:
            case TransactionState.PrepareEpochFence:
                return new InitProducerIdResult(ErrorCode.ConcurrentTransactions, -1, -1);
            case TransactionState.Ongoing:
                // Kafka fences the old instance by bumping the epoch and aborting its transaction; the client's
                // retry then gets a further bump. The abort completes synchronously here.
                BumpEpoch(txn);
                CompleteTransaction(txn, commit: false, now);
                break;
        }
        BumpEpoch(txn);
        txn.TimeoutMs = timeoutMs;
        txn.State = TransactionState.Empty;
        txn.Partitions.Clear();
        txn.StartTimestampMs = -1;
        txn.LastUpdateTimestampMs = now;
        Persist(txn);
        return new InitProducerIdResult(ErrorCode.None, txn.ProducerId, txn.ProducerEpoch);
    }

    /// <summary>Next epoch; an exhausted epoch (≥ Short.MaxValue - 1) rolls over to a new producer id at epoch 0. Under the transaction's lock.</summary>
    private void BumpEpoch(TransactionMetadata txn)
    {
        if (txn.ProducerEpoch >= short.MaxValue - 1)
        {
            txn.PreviousProducerId = txn.ProducerId;
            _byProducerId.TryRemove(new KeyValuePair<long, TransactionMetadata>(txn.ProducerId, txn));
            txn.ProducerId = _ids.NextProducerId();
            _byProducerId[txn.ProducerId] = txn;
            txn.ProducerEpoch = 0;
        }
        else txn.ProducerEpoch++;
    }

    // ------------------------------------------------------------------ AddPartitionsToTxn / AddOffsetsToTxn

    /// <summary>The live transaction of an id, or null; lock its <see cref="TransactionMetadata.Sync"/> and call <see cref="Validate"/> before use.</summary>
    private TransactionMetadata? Find(string transactionalId) => _txns.TryGetValue(transactionalId, out var txn) ? txn : null;

    /// <summary>Kafka's checks shared by AddPartitions/AddOffsets/EndTxn/TxnOffsetCommit. Under the transaction's lock.</summary>
    private static ErrorCode Validate(TransactionMetadata txn, long producerId, short producerEpoch)
    {
        if (!txn.Live) return ErrorCode.InvalidProducerIdMapping;
        if (txn.ProducerId != producerId) return ErrorCode.InvalidProducerIdMapping;
        if (txn.ProducerEpoch != producerEpoch) return ErrorCode.ProducerFenced;
        if (txn.State is TransactionState.PrepareCommit or TransactionState.PrepareAbort or TransactionState.PrepareEpochFence)
            return ErrorCode.ConcurrentTransactions;
        return ErrorCode.None;
    }

    /// <summary>
    /// AddPartitionsToTxn: adds partitions to the transaction, starting it (Ongoing) when it was Empty or
    /// complete. Errors apply to every partition, as in Kafka. Already-added partitions cost no write.
    /// </summary>
    public ErrorCode AddPartitions(string transactionalId, long producerId, short producerEpoch, IReadOnlyList<TxnPartition> partitions)
    {
        if (Find(transactionalId) is not { } txn) return ErrorCode.InvalidProducerIdMapping;
        lock (txn.Sync)
        {
            var error = Validate(txn, producerId, producerEpoch);
            if (error != ErrorCode.None) return error;
            if (txn.State == TransactionState.Dead) return ErrorCode.InvalidTxnState;
            bool changed = txn.State != TransactionState.Ongoing;
            foreach (var p in partitions) if (!txn.Partitions.Contains(p)) { changed = true; break; }
            if (!changed) return ErrorCode.None;
            long now = NowMs;
            if (txn.State != TransactionState.Ongoing)
            {
                txn.State = TransactionState.Ongoing;
                txn.StartTimestampMs = now;
            }
            foreach (var p in partitions) txn.Partitions.Add(p);
            txn.LastUpdateTimestampMs = now;
            Persist(txn);
            return ErrorCode.None;
        }
    }

    /// <summary>AddPartitionsToTxn v4+ VerifyOnly: are all these partitions part of the ongoing transaction?</summary>
    public ErrorCode VerifyPartitions(string transactionalId, long producerId, short producerEpoch, IReadOnlyList<TxnPartition> partitions)
    {
        if (Find(transactionalId) is not { } txn) return ErrorCode.InvalidProducerIdMapping;
        lock (txn.Sync)
        {
            var error = Validate(txn, producerId, producerEpoch);
            if (error != ErrorCode.None) return error;
            if (txn.State != TransactionState.Ongoing) return ErrorCode.InvalidTxnState;
            foreach (var p in partitions) if (!txn.Partitions.Contains(p)) return ErrorCode.InvalidTxnState;
            return ErrorCode.None;
        }
    }

    /// <summary>
    /// The transaction verification of a Produce (KIP-890 part 1; Kafka's handleVerifyPartitionsInTransaction, which
    /// brokers reach with AddPartitionsToTxn VerifyOnly): is the partition in the ongoing transaction of this producer
    /// and epoch? INVALID_PRODUCER_EPOCH for another epoch (Kafka's PRODUCER_FENCED as the produce path returns it),
    /// CONCURRENT_TRANSACTIONS while the transaction is being completed, INVALID_TXN_STATE otherwise. Asked only for
    /// the producer's first batch in a partition, after the partition's verification guard was taken: the answer may
    /// be stale by the time of the append, and the guard is what refuses a batch whose marker came in between.
    /// </summary>
    public ErrorCode CheckProduce(long producerId, short producerEpoch, string topic, int partition)
    {
        if (!_byProducerId.TryGetValue(producerId, out var txn)) return ErrorCode.InvalidTxnState;
        lock (txn.Sync)
        {
            if (!txn.Live || txn.ProducerId != producerId) return ErrorCode.InvalidTxnState; // expired, or rolled over to a new id
            if (producerEpoch != txn.ProducerEpoch) return producerEpoch < txn.ProducerEpoch ? ErrorCode.InvalidProducerEpoch : ErrorCode.InvalidTxnState;
            if (txn.State is TransactionState.PrepareCommit or TransactionState.PrepareAbort or TransactionState.PrepareEpochFence)
                return ErrorCode.ConcurrentTransactions;
            if (txn.State != TransactionState.Ongoing || !txn.Partitions.Contains(new TxnPartition(topic, partition)))
                return ErrorCode.InvalidTxnState;
            return ErrorCode.None;
        }
    }

    /// <summary>AddOffsetsToTxn: adds the group's <c>__consumer_offsets</c> partition to the transaction.</summary>
    public ErrorCode AddOffsets(string transactionalId, long producerId, short producerEpoch, string groupId) =>
        AddPartitions(transactionalId, producerId, producerEpoch, [OffsetsPartition(groupId)]);

    /// <summary>The group's <c>__consumer_offsets</c> partition, as a transaction holds it.</summary>
    private TxnPartition OffsetsPartition(string groupId) => new(OffsetsTopic, PartitionFor(groupId, _options.OffsetsTopicNumPartitions));

    /// <summary>
    /// TxnOffsetCommit: the group coordinator appends the offsets to the group's <c>__consumer_offsets</c>
    /// partition now, in a transactional batch, and keeps them pending until this transaction's marker there
    /// (commit → materialized, abort → dropped). The partition must have been added with AddOffsetsToTxn.
    /// Runs under the transaction's lock, and EndTxn moves the transaction to Prepare under it before any marker,
    /// so EndTxn cannot slip between the check and the append.
    /// </summary>
    public ErrorCode TxnOffsetCommit(string transactionalId, string groupId, long producerId, short producerEpoch, IReadOnlyList<PendingTxnOffset> offsets)
    {
        if (Find(transactionalId) is not { } txn) return ErrorCode.InvalidProducerIdMapping;
        lock (txn.Sync)
        {
            var error = Validate(txn, producerId, producerEpoch);
            if (error != ErrorCode.None) return error;
            if (txn.State != TransactionState.Ongoing || !txn.Partitions.Contains(OffsetsPartition(groupId))) return ErrorCode.InvalidTxnState;
            if (OffsetSink is not { } sink) return ErrorCode.CoordinatorNotAvailable;
            return (ErrorCode)sink.StoreTransactionalOffsets(groupId, producerId, producerEpoch, offsets);
        }
    }

    // ------------------------------------------------------------------ EndTxn

    /// <summary>
    /// EndTxn: commit or abort the ongoing transaction. A retry of an already completed commit/abort succeeds;
    /// the opposite outcome, or ending an Empty transaction, is INVALID_TXN_STATE (Kafka's handleEndTransaction).
    /// </summary>
    public ErrorCode EndTxn(string transactionalId, long producerId, short producerEpoch, bool commit)
    {
        if (Find(transactionalId) is not { } txn) return ErrorCode.InvalidProducerIdMapping;
        lock (txn.Sync)
        {
            var error = Validate(txn, producerId, producerEpoch);
            if (error != ErrorCode.None) return error;
            switch (txn.State)
            {
                case TransactionState.Ongoing:
                    CompleteTransaction(txn, commit, NowMs);
                    return ErrorCode.None;
                case TransactionState.CompleteCommit:
                    return commit ? ErrorCode.None : ErrorCode.InvalidTxnState;
                case TransactionState.CompleteAbort:
                    return commit ? ErrorCode.InvalidTxnState : ErrorCode.None;
                default:
                    return ErrorCode.InvalidTxnState;
            }
        }
    }

    /// <summary>
    /// Prepare (persisted) → markers (incl. the groups' offsets partitions) → Complete (persisted). Called with the
    /// transaction's lock held once, and returns with it held; the lock is let go while the markers are written, as
    /// Kafka writes them outside TransactionMetadata.inLock: meanwhile the transaction's other requests see the
    /// Prepare state and get CONCURRENT_TRANSACTIONS, and nothing changes its producer, epoch or partitions (every
    /// mutation checks the state first), so the markers read them without the lock.
    /// </summary>
    private void CompleteTransaction(TransactionMetadata txn, bool commit, long now)
    {
        txn.State = commit ? TransactionState.PrepareCommit : TransactionState.PrepareAbort;
        txn.LastUpdateTimestampMs = now;
        Persist(txn);
        FinishPrepared(txn, now);
    }

    /// <summary>Markers of a prepared transaction, then Complete; the lock rules of <see cref="CompleteTransaction"/>.</summary>
    private void FinishPrepared(TransactionMetadata txn, long now)
    {
        bool commit = txn.State == TransactionState.PrepareCommit;
        Monitor.Exit(txn.Sync);
        try { WriteMarkers(txn, commit); }
        finally { Monitor.Enter(txn.Sync); }
        txn.State = commit ? TransactionState.CompleteCommit : TransactionState.CompleteAbort;
        txn.Partitions.Clear();
        txn.LastUpdateTimestampMs = now;
        Persist(txn);
    }

    /// <summary>
    /// Writes the markers of a prepared transaction. A marker takes its partition's lock, ends the producer's
    /// transaction there and clears its verification guard, so a late Produce of this transaction is refused from
    /// then on (KIP-890 part 1). A failure throws: the transaction stays prepared and recovery (Load) writes it again.
    /// </summary>
    private void WriteMarkers(TransactionMetadata txn, bool commit)
    {
        _options.MarkerHook?.BeforeMarkers(txn.TransactionalId, txn.ProducerId, txn.ProducerEpoch, commit);
        var sink = OffsetSink;
        foreach (var p in txn.Partitions)
            if (p.Topic != OffsetsTopic || sink is null)
                _markers.WriteMarker(p, txn.ProducerId, txn.ProducerEpoch, CoordinatorEpoch, commit);
        // Then the groups' offsets partitions: the group coordinator writes their marker itself and only then
        // resolves the transaction's pending offsets there (Kafka's handleTxnCompletion follows the marker the
        // same way).
        if (sink is not null)
            foreach (var p in txn.Partitions)
                if (p.Topic == OffsetsTopic) sink.CompleteTransaction(p.Partition, txn.ProducerId, txn.ProducerEpoch, commit);
    }

    // ------------------------------------------------------------------ timers

    /// <summary>
    /// Kafka's abortTimedOutTransactions (every transaction.abort.timed.out.transaction.cleanup.interval.ms):
    /// an Ongoing transaction older than its timeout is aborted with a bumped epoch, which fences the stuck
    /// producer. Also forgets completed transactional ids idle beyond transactional.id.expiration.ms
    /// (tombstone). Returns the number of transactions aborted.
    /// </summary>
    /// A transaction busy with another request (its EndTxn writing markers) is skipped until the next pass, as Kafka
    /// skips transactions with a pending state.
    public int AbortTimedOutTransactions()
    {
        int aborted = 0;
        foreach (var txn in _txns.Values)
        {
            if (!Monitor.TryEnter(txn.Sync)) continue;
            try
            {
                if (!txn.Live) continue;
                long now = NowMs;
                if (txn.State == TransactionState.Ongoing && now - txn.StartTimestampMs >= txn.TimeoutMs)
                {
                    BumpEpoch(txn);
                    CompleteTransaction(txn, commit: false, now);
                    aborted++;
                }
                else if (txn.State is TransactionState.Empty or TransactionState.CompleteCommit or TransactionState.CompleteAbort
                         && now - txn.LastUpdateTimestampMs >= _options.TransactionalIdExpirationMs)
                {
                    // Tombstone first, then out of the maps: an InitProducerId waiting for this lock sees it gone
                    // and starts a new entry, whose record then follows the tombstone in the log.
                    WriteRecord(txn.TransactionalId, null);
                    txn.Live = false;
                    _txns.TryRemove(new KeyValuePair<string, TransactionMetadata>(txn.TransactionalId, txn));
                    _byProducerId.TryRemove(new KeyValuePair<long, TransactionMetadata>(txn.ProducerId, txn));
                }
            }
            finally { Monitor.Exit(txn.Sync); }
        }
        return aborted;
    }

    // ------------------------------------------------------------------ describe / list

    public TransactionDescription? Describe(string transactionalId)
    {
        if (Find(transactionalId) is not { } t) return null;
        lock (t.Sync) return t.Live ? ToDescription(t) : null;
    }

    /// <summary>ListTransactions filters: states (names, empty = all), producer ids (empty = all), started more than this many ms ago (-1 = any).</summary>
    public List<TransactionDescription> List(IReadOnlyCollection<string> stateFilters, IReadOnlyCollection<long> producerIdFilters, long durationFilterMs = -1)
    {
        var result = new List<TransactionDescription>();
        long now = NowMs;
        foreach (var t in _txns.Values)
        {
            lock (t.Sync)
            {
                if (!t.Live) continue;
                if (stateFilters.Count > 0 && !stateFilters.Contains(TransactionMetadata.StateName(t.State))) continue;
                if (producerIdFilters.Count > 0 && !producerIdFilters.Contains(t.ProducerId)) continue;
                // KIP-994: only transactions started longer ago than the filter (Kafka compares the start timestamp only).
                if (durationFilterMs >= 0 && now - t.StartTimestampMs <= durationFilterMs) continue;
                result.Add(ToDescription(t));
            }
        }
        return result;
    }

    private static TransactionDescription ToDescription(TransactionMetadata t) =>
        new(t.TransactionalId, t.ProducerId, t.ProducerEpoch, t.State, t.TimeoutMs, t.StartTimestampMs, t.Partitions.ToArray());

    // ------------------------------------------------------------------ persistence

    private void Persist(TransactionMetadata txn)
    {
        var value = new TransactionLogValue
        {
            ProducerId = txn.ProducerId,
            PreviousProducerId = txn.PreviousProducerId,
            ProducerEpoch = txn.ProducerEpoch,
            TransactionTimeoutMs = txn.TimeoutMs,
            TransactionStatus = (sbyte)txn.State,
            // Kafka writes no partition list for an Empty transaction.
            TransactionPartitions = txn.State == TransactionState.Empty ? null : GroupByTopic(txn.Partitions),
            TransactionLastUpdateTimestampMs = txn.LastUpdateTimestampMs,
            TransactionStartTimestampMs = txn.StartTimestampMs,
        };
        WriteRecord(txn.TransactionalId, value);
    }

    private static List<TransactionLogValue.PartitionsSchema> GroupByTopic(HashSet<TxnPartition> partitions)
    {
        var byTopic = new Dictionary<string, TransactionLogValue.PartitionsSchema>(StringComparer.Ordinal);
        foreach (var p in partitions)
        {
            if (!byTopic.TryGetValue(p.Topic, out var s)) byTopic[p.Topic] = s = new TransactionLogValue.PartitionsSchema { Topic = p.Topic };
            s.PartitionIds.Add(p.Partition);
        }
        return byTopic.Values.ToList();
    }

    /// <summary>One TransactionLogKey/Value record (null value: a tombstone) as a batch of its own, encoded like the group coordinator's records.</summary>
    private void WriteRecord(string transactionalId, TransactionLogValue? value) =>
        _log.Append(PartitionFor(transactionalId), CoordinatorBatch.Encode(
            [new CoordinatorRecord(new TransactionLogKey { TransactionalId = transactionalId }, KeyVersion, value, ValueVersion)], NowMs));

    /// <summary>
    /// Replays every <c>__transaction_state</c> partition (last record per transactional id wins, tombstones
    /// delete), then finishes transactions caught between Prepare and Complete by a stop: their markers are
    /// written (again) and the Complete state persisted, so nothing stays half-visible. Ongoing transactions
    /// stay open; their producer may still end them, or the timeout aborts them.
    /// </summary>
    /// Runs before the broker serves requests; each transaction is still finished under its own lock.
    public void Load()
    {
        _txns.Clear();
        _byProducerId.Clear();
        for (int p = 0; p < _options.NumPartitions; p++)
            _log.Replay(p, chunk => ReplayChunk(chunk));
        long now = NowMs;
        foreach (var txn in _txns.Values)
            lock (txn.Sync)
            {
                txn.Live = true;
                _byProducerId[txn.ProducerId] = txn;
                if (txn.State == TransactionState.PrepareEpochFence) txn.State = TransactionState.PrepareAbort;
                if (txn.State is TransactionState.PrepareCommit or TransactionState.PrepareAbort) FinishPrepared(txn, now);
            }
    }

    private void ReplayChunk(ReadOnlyMemory<byte> chunk)
    {
        int pos = 0;
        while (pos < chunk.Length)
        {
            if (!RecordBatch.TryReadBatch(chunk.Span[pos..], out var h, out int size)) break;
            var batch = chunk.Slice(pos, size);
            pos += size;
            if (h.IsControl || h.Magic != 2) continue;
            if (h.Compression != CompressionType.None) continue; // the coordinator writes uncompressed batches
            foreach (var r in RecordBatch.EnumerateUncompressed(batch.Span))
            {
                var keyReader = new KafkaReader(r.Key.ToArray());
                if (keyReader.ReadInt16() != KeyVersion) continue; // not a transaction record
                var key = new TransactionLogKey();
                key.Read(ref keyReader, KeyVersion);
                if (r.ValueIsNull) { _txns.TryRemove(key.TransactionalId, out _); continue; }
                var valueReader = new KafkaReader(r.Value.ToArray());
                short version = valueReader.ReadInt16();
                var value = new TransactionLogValue();
                value.Read(ref valueReader, version);
                var txn = new TransactionMetadata(key.TransactionalId)
                {
                    ProducerId = value.ProducerId,
                    PreviousProducerId = value.PreviousProducerId,
                    ProducerEpoch = value.ProducerEpoch,
                    TimeoutMs = value.TransactionTimeoutMs,
                    State = (TransactionState)value.TransactionStatus,
                    StartTimestampMs = value.TransactionStartTimestampMs,
                    LastUpdateTimestampMs = value.TransactionLastUpdateTimestampMs,
                };
                if (value.TransactionPartitions is { } parts)
                    foreach (var t in parts)
                        foreach (int id in t.PartitionIds) txn.Partitions.Add(new TxnPartition(t.Topic, id));
                _txns[key.TransactionalId] = txn;
            }
        }
    }
}
