using System.Collections.Concurrent;
using Kayak.Protocol;

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
/// State changes only through records: every transition is a <see cref="TxnTransit"/> written as a TransactionLog
/// record and replayed into the metadata after the append (TransactionCoordinator.Log.cs); the metadata's setters
/// are used by that replay alone, so what a load rebuilds is what the running coordinator held.
/// Locking: each transactional id has its own lock (Kafka's TransactionMetadata.inLock); nothing is coordinator-wide,
/// so one transaction's EndTxn (its markers, its groups' offsets) never holds up another transaction or the produce
/// path. A Produce that races EndTxn is settled in the partition itself: the verification guard (KIP-890 part 1, see
/// <see cref="CheckProduce"/>) and the marker meet under the partition's append lock. Lock order: a transaction's
/// lock, then partition and group locks; nothing takes a transaction's lock while holding one of those.
/// </summary>
public sealed partial class TransactionCoordinator
{
    /// <summary>
    /// The coordinator epoch of a single broker's markers (and of the group coordinator's offsets markers). In a
    /// cluster a marker carries the leader epoch of the transaction's <c>__transaction_state</c> partition, see
    /// <see cref="MarkerEpoch"/>.
    /// </summary>
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
        _loads = new PartitionLoads(LoadPartition, UnloadPartition);
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
    /// (v3+, KIP-360) must match the current ones when given, else PRODUCER_FENCED. Kafka's coordinator error (COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR, ...) when
    /// <c>__transaction_state</c> refused the record (nothing changed; the client retries).
    /// </summary>
    public InitProducerIdResult InitProducerId(string? transactionalId, int timeoutMs, long producerId = -1, short producerEpoch = -1)
    {
        if (transactionalId is null) return new InitProducerIdResult(ErrorCode.None, _ids.NextProducerId(), 0);
        if (transactionalId.Length == 0) return Failed(ErrorCode.InvalidRequest);
        if (timeoutMs <= 0 || timeoutMs > _options.MaxTimeoutMs) return Failed(ErrorCode.InvalidTransactionTimeout);
        if (Availability(transactionalId) is var unavailable && unavailable != ErrorCode.None) return Failed(unavailable);
        while (true)
        {
            var txn = _txns.GetOrAdd(transactionalId, static id => new TransactionMetadata(id));
            lock (txn.Sync)
            {
                if (!txn.Live)
                {
                    // Never persisted (a placeholder of this or a failed call) or expired meanwhile: a placeholder
                    // still in the map is ours to fill, anything else means starting over with the current entry.
                    if (txn.ProducerId >= 0 || !_txns.TryGetValue(transactionalId, out var current) || !ReferenceEquals(current, txn)) continue;
                    return InitNew(txn, timeoutMs);
                }
                return InitExisting(txn, timeoutMs, producerId, producerEpoch);
            }
        }
    }

    private static InitProducerIdResult Failed(ErrorCode error) => new(error, -1, -1);

    /// <summary>A transactional.id seen for the first time (or again after it expired): a new producer id at epoch 0. Under its lock.</summary>
    private InitProducerIdResult InitNew(TransactionMetadata txn, int timeoutMs)
    {
        var fresh = new TxnTransit(_ids.NextProducerId(), -1, 0, timeoutMs, TransactionState.Empty, [], -1, NowMs);
        var error = TryWrite(txn, fresh);
        if (error != ErrorCode.None)
        {
            // Not persisted: the placeholder goes, so the retry starts over rather than finding a half-made entry.
            _txns.TryRemove(new KeyValuePair<string, TransactionMetadata>(txn.TransactionalId, txn));
            return Failed(error);
        }
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
            return Failed(ErrorCode.ProducerFenced);
        }
        switch (txn.State)
        {
            case TransactionState.PrepareCommit:
            case TransactionState.PrepareAbort:
            case TransactionState.PrepareEpochFence:
                return Failed(ErrorCode.ConcurrentTransactions);
            case TransactionState.Ongoing:
                // Kafka fences the old instance by bumping the epoch and aborting its transaction (the bump goes into
                // the PrepareAbort record; PrepareEpochFence is never written); the client's retry then gets a
                // further bump. The abort completes synchronously here.
                var error = CompleteTransaction(txn, Bumped(TxnTransit.Of(txn)), commit: false, now);
                if (error != ErrorCode.None) return Failed(error);
                // Markers written but CompleteAbort refused: the timer finishes it; the client retries meanwhile.
                if (txn.State != TransactionState.CompleteAbort) return Failed(ErrorCode.ConcurrentTransactions);
                break;
        }
        var empty = Bumped(TxnTransit.Of(txn)) with
        {
            TimeoutMs = timeoutMs, State = TransactionState.Empty, Partitions = [], StartTimestampMs = -1, LastUpdateTimestampMs = now,
        };
        var written = TryWrite(txn, empty);
        if (written != ErrorCode.None) return Failed(written);
        return new InitProducerIdResult(ErrorCode.None, txn.ProducerId, txn.ProducerEpoch);
    }

    /// <summary>
    /// The next epoch; an exhausted epoch (≥ Short.MaxValue - 1) rolls over to a new producer id at epoch 0, keeping
    /// the old one as the previous id (KIP-360). Only the transition: the metadata takes it when its record is replayed.
    /// </summary>
    private TxnTransit Bumped(TxnTransit t) => t.ProducerEpoch >= short.MaxValue - 1
        ? t with { PreviousProducerId = t.ProducerId, ProducerId = _ids.NextProducerId(), ProducerEpoch = 0 }
        : t with { ProducerEpoch = (short)(t.ProducerEpoch + 1) };

    // ------------------------------------------------------------------ AddPartitionsToTxn / AddOffsetsToTxn

    /// <summary>The live transaction of an id, or null; lock its <see cref="TransactionMetadata.Sync"/> and call <see cref="Validate"/> before use.</summary>
    private TransactionMetadata? Find(string transactionalId) => _txns.TryGetValue(transactionalId, out var txn) ? txn : null;

    /// <summary>Kafka's checks shared by AddPartitions/AddOffsets/EndTxn/TxnOffsetCommit. Under the transaction's lock.</summary>
    private static ErrorCode Validate(TransactionMetadata txn, long producerId, short producerEpoch)
    {
        if (!txn.Live) return ErrorCode.InvalidProducerIdMapping;
        if (txn.ProducerId != producerId) return ErrorCode.InvalidProducerIdMapping;
        if (txn.ProducerEpoch != producerEpoch) return ErrorCode.ProducerFenced;
        if (IsPrepared(txn.State)) return ErrorCode.ConcurrentTransactions;
        return ErrorCode.None;
    }

    private static bool IsPrepared(TransactionState s) =>
        s is TransactionState.PrepareCommit or TransactionState.PrepareAbort or TransactionState.PrepareEpochFence;

    /// <summary>
    /// AddPartitionsToTxn: adds partitions to the transaction, starting it (Ongoing) when it was Empty or
    /// complete. Errors apply to every partition, as in Kafka. Already-added partitions cost no write.
    /// </summary>
    public ErrorCode AddPartitions(string transactionalId, long producerId, short producerEpoch, IReadOnlyList<TxnPartition> partitions)
    {
        if (Availability(transactionalId) is var unavailable && unavailable != ErrorCode.None) return unavailable;
        if (Find(transactionalId) is not { } txn) return ErrorCode.InvalidProducerIdMapping;
        lock (txn.Sync)
        {
            var error = Validate(txn, producerId, producerEpoch);
            if (error != ErrorCode.None) return error;
            if (txn.State == TransactionState.Dead) return ErrorCode.InvalidTxnState;
            bool ongoing = txn.State == TransactionState.Ongoing;
            bool changed = !ongoing;
            foreach (var p in partitions) if (!txn.Partitions.Contains(p)) { changed = true; break; }
            if (!changed) return ErrorCode.None;
            long now = NowMs;
            // A completed transaction's partitions were cleared by its Complete record; Empty has none.
            var union = new HashSet<TxnPartition>(txn.Partitions);
            foreach (var p in partitions) union.Add(p);
            var added = TxnTransit.Of(txn) with
            {
                State = TransactionState.Ongoing,
                Partitions = union,
                StartTimestampMs = ongoing ? txn.StartTimestampMs : now,
                LastUpdateTimestampMs = now,
            };
            return TryWrite(txn, added);
        }
    }

    /// <summary>AddPartitionsToTxn v4+ VerifyOnly: are all these partitions part of the ongoing transaction?</summary>
    public ErrorCode VerifyPartitions(string transactionalId, long producerId, short producerEpoch, IReadOnlyList<TxnPartition> partitions)
    {
        if (Availability(transactionalId) is var unavailable && unavailable != ErrorCode.None) return unavailable;
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
            if (IsPrepared(txn.State)) return ErrorCode.ConcurrentTransactions;
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
        if (Availability(transactionalId) is var unavailable && unavailable != ErrorCode.None) return unavailable;
        if (Find(transactionalId) is not { } txn) return ErrorCode.InvalidProducerIdMapping;
        lock (txn.Sync)
        {
            var error = Validate(txn, producerId, producerEpoch);
            if (error != ErrorCode.None) return error;
            if (txn.State != TransactionState.Ongoing || !txn.Partitions.Contains(OffsetsPartition(groupId))) return ErrorCode.InvalidTxnState;
            if (OffsetSink is not { } sink) return ErrorCode.CoordinatorNotAvailable;
            return sink.StoreTransactionalOffsets(groupId, producerId, producerEpoch, offsets);
        }
    }

    // ------------------------------------------------------------------ EndTxn

    /// <summary>
    /// EndTxn: commit or abort the ongoing transaction. A retry of an already completed commit/abort succeeds;
    /// the opposite outcome, or ending an Empty transaction, is INVALID_TXN_STATE (Kafka's handleEndTransaction).
    /// The append error (e.g. COORDINATOR_NOT_AVAILABLE) when the Prepare record was refused (the transaction stays Ongoing). Once Prepare is
    /// in the log the outcome is decided and the answer is NONE, as Kafka answers after the Prepare append.
    /// </summary>
    public ErrorCode EndTxn(string transactionalId, long producerId, short producerEpoch, bool commit)
    {
        if (Availability(transactionalId) is var unavailable && unavailable != ErrorCode.None) return unavailable;
        if (Find(transactionalId) is not { } txn) return ErrorCode.InvalidProducerIdMapping;
        lock (txn.Sync)
        {
            var error = Validate(txn, producerId, producerEpoch);
            if (error != ErrorCode.None) return error;
            return txn.State switch
            {
                TransactionState.Ongoing => EndOngoing(txn, commit),
                TransactionState.CompleteCommit => commit ? ErrorCode.None : ErrorCode.InvalidTxnState,
                TransactionState.CompleteAbort => commit ? ErrorCode.InvalidTxnState : ErrorCode.None,
                _ => ErrorCode.InvalidTxnState,
            };
        }
    }

    /// <summary>
    /// Once Prepare is in the log the outcome is decided: Kafka answers EndTxn then and completes the markers
    /// asynchronously, retrying them. A marker (or offsets marker) that cannot be written leaves the transaction
    /// prepared for the timer's next pass (AbortTimedOutTransactions) or a reload to finish; the client gets NONE.
    /// A marker failure leaves the state prepared, a refused Prepare leaves it Ongoing: the state says which.
    /// </summary>
    private ErrorCode EndOngoing(TransactionMetadata txn, bool commit)
    {
        try { return CompleteTransaction(txn, TxnTransit.Of(txn), commit, NowMs); }
        catch (Exception e) when (CoordinatorAppendErrors.IsAppendFailure(e) && IsPrepared(txn.State))
        {
            Microsoft.Extensions.Logging.LoggerExtensions.LogWarning(_options.Logger, e,
                "Transaction {TransactionalId} ({State}): markers not written yet, left for the next timer pass",
                txn.TransactionalId, TransactionMetadata.StateName(txn.State));
            return ErrorCode.None;
        }
    }

    /// <summary>
    /// Prepare (written from <paramref name="start"/>: the current state, or a bumped epoch for a fencing abort) →
    /// markers (incl. the groups' offsets partitions) → Complete (written). Called with the transaction's lock held
    /// and returns with it held. The append error when Prepare was refused (nothing changed); otherwise NONE,
    /// also when Complete was refused, which leaves the transaction prepared for the timer to finish. A marker
    /// failure throws with the transaction prepared (EndTxn answers NONE then, see <see cref="EndOngoing"/>).
    /// </summary>
    private ErrorCode CompleteTransaction(TransactionMetadata txn, TxnTransit start, bool commit, long now)
    {
        var prepare = start with { State = commit ? TransactionState.PrepareCommit : TransactionState.PrepareAbort, LastUpdateTimestampMs = now };
        var error = TryWrite(txn, prepare);
        if (error != ErrorCode.None) return error;
        FinishPrepared(txn, now);
        return ErrorCode.None;
    }

    /// <summary>
    /// Markers of a prepared transaction, then its Complete record; false when the log refused that record (the
    /// transaction stays prepared). The lock is let go while the markers are written, as Kafka writes them outside
    /// TransactionMetadata.inLock: meanwhile the transaction's other requests see the Prepare state and get
    /// CONCURRENT_TRANSACTIONS, and nothing changes its producer, epoch or partitions (every transition checks the
    /// state first), so the markers read them without the lock. A marker failure throws with the transaction prepared
    /// (EndTxn logs it and answers NONE; the timer's pass reports it).
    /// </summary>
    private bool FinishPrepared(TransactionMetadata txn, long now)
    {
        bool commit = txn.State == TransactionState.PrepareCommit; // PrepareEpochFence (never written by us) aborts
        txn.Completing = true;
        Monitor.Exit(txn.Sync);
        try { WriteMarkers(txn, commit); }
        finally
        {
            Monitor.Enter(txn.Sync);
            txn.Completing = false;
        }
        var complete = TxnTransit.Of(txn) with
        {
            State = commit ? TransactionState.CompleteCommit : TransactionState.CompleteAbort, Partitions = [], LastUpdateTimestampMs = now,
        };
        return TryWrite(txn, complete) == ErrorCode.None;
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
                _markers.WriteMarker(p, txn.ProducerId, txn.ProducerEpoch, MarkerEpoch(txn.TransactionalId), commit);
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
    /// (tombstone), and finishes prepared transactions whose Complete record the log refused earlier (Kafka retries
    /// that append). Returns the number of transactions aborted.
    /// </summary>
    /// A transaction busy with another request (its EndTxn writing markers) is skipped until the next pass, as Kafka
    /// skips transactions with a pending state.
    /// A transaction whose markers cannot be written stays prepared for the next pass and does not hold up the others
    /// of this one; the first such failure is rethrown at the end, for the broker's timer to log.
    public int AbortTimedOutTransactions()
    {
        CheckLeadership();
        int aborted = 0;
        Exception? failure = null;
        foreach (var txn in _txns.Values)
        {
            if (!Monitor.TryEnter(txn.Sync)) continue;
            try
            {
                if (!txn.Live || txn.Completing || !Serves(txn)) continue;
                long now = NowMs;
                if (txn.State == TransactionState.Ongoing && now - txn.StartTimestampMs >= txn.TimeoutMs)
                {
                    if (CompleteTransaction(txn, Bumped(TxnTransit.Of(txn)), commit: false, now) == ErrorCode.None) aborted++;
                }
                else if (IsPrepared(txn.State))
                    FinishPrepared(txn, now);
                else if (txn.State is TransactionState.Empty or TransactionState.CompleteCommit or TransactionState.CompleteAbort
                         && now - txn.LastUpdateTimestampMs >= _options.TransactionalIdExpirationMs)
                {
                    // The tombstone's replay takes it out of the maps: an InitProducerId waiting for this lock sees it
                    // gone and starts a new entry, whose record then follows the tombstone in the log.
                    TryWriteTombstone(txn);
                }
            }
            catch (Exception e) when (CoordinatorAppendErrors.IsAppendFailure(e)) { failure ??= e; }
            finally { Monitor.Exit(txn.Sync); }
        }
        if (failure is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
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

}
