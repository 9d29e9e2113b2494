using Kayak.Coordinator.Transactions;
using Kayak.Protocol;
using Kayak.Protocol.Records;

namespace Kayak.Coordinator;

/// <summary>
/// The group coordinator's side of transactional offset commits (KIP-98, KIP-447), durable the way Kafka makes
/// them (GroupMetadataManager.storeOffsets / handleTxnCompletion): TxnOffsetCommit appends the OffsetCommit
/// records to the group's <c>__consumer_offsets</c> partition at once, in a transactional batch carrying the
/// producer id/epoch, and keeps them pending per producer. EndTxn then appends the commit/abort marker to that
/// partition like to any other partition of the transaction, and only after the marker is in the log are the
/// pending offsets materialized (commit) or dropped (abort). Both happen in the replay of the records and the
/// marker (GroupCoordinator.Replay.cs), the same code after each append and on load, so a stop between
/// the transaction coordinator's PrepareCommit and the marker can never leave the output visible without the
/// group's offsets: the transaction coordinator completes the transaction on restart and its marker resolves
/// the pending records whichever of the two coordinators loads first.
/// </summary>
public sealed partial class GroupCoordinator : ITxnOffsetSink
{
    // Guards the two maps below (taken inside a group's lock, never around one).
    private readonly Lock _txnLock = new();
    /// <summary>Producer id → groups holding its pending transactional offsets (Kafka's openGroupsForProducer).</summary>
    private readonly Dictionary<long, HashSet<string>> _openTxnGroups = new();
    /// <summary>
    /// (partition, producer id) → epoch and last sequence this coordinator wrote there. Storage checks producer
    /// sequences like a client's, so each TxnOffsetCommit batch continues the producer's sequence in that
    /// partition (0 after an epoch bump); rebuilt from the log on load.
    /// </summary>
    private readonly Dictionary<(int Partition, long ProducerId), (short Epoch, int LastSequence)> _txnSequences = new();

    /// <summary>
    /// Kafka's validateOffsetCommit for a transactional commit: a member-bound commit (KIP-447 sends the
    /// consumer's generation and member id) must match the group; an anonymous one (generation -1, assign())
    /// is accepted whatever the group's state, unlike a plain OffsetCommit. A consumer group (KIP-848) checks
    /// the member epoch instead.
    /// </summary>
    public ErrorCode ValidateTxnOffsetCommit(string groupId, string memberId, int generationId, string? groupInstanceId)
    {
        if (Unavailable(groupId) is var unavailable && unavailable != ErrorCode.None) return unavailable;
        if (!_groups.TryGetValue(groupId, out var group)) return ErrorCode.None; // created by the commit
        lock (group.Lock)
        {
            if (group.State == GroupState.Dead) return ErrorCode.CoordinatorNotAvailable;
            // KIP-848: a consumer group checks the member epoch the producer sent (KIP-447's generation field):
            // UNKNOWN_MEMBER_ID for a stranger, STALE_MEMBER_EPOCH for another epoch, no OffsetCommit v9 demand;
            // epoch -1 is only accepted while the group has no members (Kafka's ConsumerGroup.validateOffsetCommit).
            if (group.Consumer is { } consumer)
                return ValidateConsumerOffsetCommit(consumer, memberId, generationId, version: 0, transactional: true);
            if (generationId < 0 && memberId.Length == 0 && groupInstanceId is null) return ErrorCode.None;
            ErrorCode error = ValidateMember(group, memberId, groupInstanceId);
            if (error != ErrorCode.None) return error;
            return generationId != group.GenerationId ? ErrorCode.IllegalGeneration : ErrorCode.None;
        }
    }

    /// <summary>
    /// Appends a TxnOffsetCommit's offsets as one transactional batch of the producer and keeps them pending
    /// until the transaction's marker. Returns NONE, COORDINATOR_LOAD_IN_PROGRESS, or COORDINATOR_NOT_AVAILABLE
    /// when the log refused the batch (Kafka's mapping of append failures, so the producer retries).
    /// </summary>
    public ErrorCode StoreTransactionalOffsets(string groupId, long producerId, short producerEpoch, IReadOnlyList<PendingTxnOffset> offsets)
    {
        if (Unavailable(groupId) is var unavailable && unavailable != ErrorCode.None) return unavailable;
        if (offsets.Count == 0) return ErrorCode.None;
        var group = _groups.GetOrAdd(groupId, static id => new ClassicGroup(id));
        int partition = PartitionFor(groupId);
        lock (group.Lock)
        {
            if (group.State == GroupState.Dead) return ErrorCode.CoordinatorNotAvailable;
            var records = new List<CoordinatorRecord>(offsets.Count);
            for (int i = 0; i < offsets.Count; i++)
            {
                var o = offsets[i];
                records.Add(OffsetRecord(groupId, o.Topic, o.Partition, o.Offset, o.LeaderEpoch, o.Metadata ?? "", o.CommitTimestampMs, -1));
            }
            long baseOffset;
            lock (_txnLock)
            {
                // The transaction coordinator serializes calls of one producer, so the sequence cannot race.
                int sequence = _txnSequences.TryGetValue((partition, producerId), out var s) && s.Epoch == producerEpoch ? s.LastSequence + 1 : 0;
                try
                {
                    baseOffset = _log.Append(partition, CoordinatorBatch.Encode(records, NowMs, new TransactionalProducer(producerId, producerEpoch, sequence)));
                }
                catch (Exception e) when (CoordinatorAppendErrors.IsAppendFailure(e)) { return CoordinatorAppendErrors.Map(e); }
                // In the log now: replay the batch as loading would, its sequences first, then its records (pending).
                ReplayProducerBatch(partition, producerId, producerEpoch, sequence, records.Count - 1);
            }
            for (int i = 0; i < records.Count; i++) Replay(group, baseOffset + i, producerId, records[i].Key, records[i].Value);
            return ErrorCode.None;
        }
    }

    /// <summary>
    /// Ends a transaction in the group's offsets partition <paramref name="offsetsPartition"/>: appends the
    /// marker, then materializes (commit) or drops (abort) the producer's pending offsets of every group of that
    /// partition. Idempotent: a second call (recovery repeating a marker) finds nothing pending. Before
    /// <see cref="Load"/> only the marker is written; the replay then resolves the records with it. Throws
    /// <see cref="IOException"/> when the marker cannot be appended: the offsets then stay pending (never
    /// half-applied) and the transaction coordinator's recovery writes the marker again.
    /// </summary>
    public void CompleteTransaction(int offsetsPartition, long producerId, short producerEpoch, bool commit)
    {
        try
        {
            _log.AppendEndTxnMarker(offsetsPartition, producerId, producerEpoch, TransactionCoordinator.CoordinatorEpoch, commit);
        }
        catch (Exception e) when (CoordinatorAppendErrors.IsAppendFailure(e) || e is Kayak.Storage.ProducerStateException)
        {
            throw new IOException($"Cannot write the transaction marker of producer {producerId} to {StorageGroupLog.TopicName}-{offsetsPartition}", e);
        }
        // Before Load only the marker is written; loading replays it with the records it resolves.
        if (_loaded) ReplayEndTxnMarker(offsetsPartition, producerId, producerEpoch, commit);
    }

    /// <summary>
    /// A data batch of a producer in <paramref name="partition"/>: its epoch and last sequence, so the next
    /// TxnOffsetCommit batch continues the sequence (Storage checks it like a client's).
    /// </summary>
    private void ReplayProducerBatch(int partition, long producerId, short producerEpoch, int baseSequence, int lastOffsetDelta)
    {
        int last = baseSequence < 0 ? -1 : baseSequence + lastOffsetDelta;
        lock (_txnLock) _txnSequences[(partition, producerId)] = (producerEpoch, last);
    }

    /// <summary>
    /// A commit/abort marker of <paramref name="producerId"/> in <paramref name="partition"/> (Kafka's
    /// OffsetMetadataManager.replayEndTransactionMarker): the producer's pending offsets of every group of that
    /// partition are materialized (commit) or dropped (abort). A repeated marker finds nothing pending.
    /// </summary>
    private void ReplayEndTxnMarker(int partition, long producerId, short producerEpoch, bool commit)
    {
        string[] groups;
        lock (_txnLock)
        {
            // A marker with a newer epoch restarts the producer's sequences (Storage clears them on an epoch bump).
            if (_txnSequences.TryGetValue((partition, producerId), out var s) && producerEpoch > s.Epoch)
                _txnSequences[(partition, producerId)] = (producerEpoch, -1);
            if (!_openTxnGroups.TryGetValue(producerId, out var open)) return;
            groups = open.ToArray();
        }
        foreach (var groupId in groups)
        {
            if (PartitionFor(groupId) != partition) continue;
            if (!_groups.TryGetValue(groupId, out var group)) { ForgetOpenGroup(producerId, groupId); continue; }
            lock (group.Lock)
            {
                if (group.PendingTxnOffsets.Remove(producerId, out var pending) && commit)
                    foreach (var ((topic, p), offset) in pending) MaterializeTxnOffset(group, topic, p, offset);
            }
            ForgetOpenGroup(producerId, groupId);
        }
    }

    /// <summary>Notes that the group holds pending offsets of the producer. Under <see cref="_txnLock"/>.</summary>
    private void OpenTxnGroup(long producerId, string groupId)
    {
        if (!_openTxnGroups.TryGetValue(producerId, out var open)) _openTxnGroups[producerId] = open = new HashSet<string>(StringComparer.Ordinal);
        open.Add(groupId);
    }

    private void ForgetOpenGroup(long producerId, string groupId)
    {
        lock (_txnLock)
            if (_openTxnGroups.TryGetValue(producerId, out var open) && open.Remove(groupId) && open.Count == 0)
                _openTxnGroups.Remove(producerId);
    }

    /// <summary>
    /// A committed transactional offset replaces the current one unless a plain commit of the partition was
    /// written after it in the log (Kafka keeps the most recent record, by record offset, when transactional
    /// and regular commits mix).
    /// </summary>
    private static void MaterializeTxnOffset(ClassicGroup group, string topic, int partition, CommittedOffset offset)
    {
        if (group.Offsets.TryGetValue(topic, out var partitions) && partitions.TryGetValue(partition, out var current)
            && current.RecordOffset > offset.RecordOffset)
            return;
        SetOffset(group, topic, partition, offset);
    }

    /// <summary>Does the group hold a pending transactional offset for the partition (OffsetFetch RequireStable, KIP-447)?</summary>
    private static bool HasPendingTxnOffset(ClassicGroup group, string topic, int partition)
    {
        foreach (var pending in group.PendingTxnOffsets.Values)
            if (pending.ContainsKey((topic, partition))) return true;
        return false;
    }

    /// <summary>Pending transactional offsets of a group, per producer id (tests, tools).</summary>
    public IReadOnlyDictionary<long, IReadOnlyDictionary<(string Topic, int Partition), CommittedOffset>> PendingTransactionalOffsets(string groupId)
    {
        var result = new Dictionary<long, IReadOnlyDictionary<(string, int), CommittedOffset>>();
        if (!_groups.TryGetValue(groupId, out var group)) return result;
        lock (group.Lock)
            foreach (var (pid, pending) in group.PendingTxnOffsets) result[pid] = new Dictionary<(string, int), CommittedOffset>(pending);
        return result;
    }

    /// <summary>Producer sequences this coordinator tracks, for the state dumps of the replay tests.</summary>
    internal KeyValuePair<(int Partition, long ProducerId), (short Epoch, int LastSequence)>[] TxnSequences()
    {
        lock (_txnLock) return _txnSequences.ToArray();
    }
}
