using Kayak.Coordinator.Transactions;
using Kayak.Protocol.Records;

namespace Kayak.Coordinator;

/// <summary>
/// The group coordinator's side of transactional offset commits (KIP-98, KIP-447), durable the way Kafka makes
/// them (GroupMetadataManager.storeOffsets / handleTxnCompletion): TxnOffsetCommit appends the OffsetCommit
/// records to the group's <c>__consumer_offsets</c> partition at once, in a transactional batch carrying the
/// producer id/epoch, and keeps them pending per producer. EndTxn then appends the commit/abort marker to that
/// partition like to any other partition of the transaction, and only after the marker is in the log are the
/// pending offsets materialized (commit) or dropped (abort). Loading replays the same rule, so a stop between
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
    /// is accepted whatever the group's state, unlike a plain OffsetCommit.
    /// </summary>
    public short ValidateTxnOffsetCommit(string groupId, string memberId, int generationId, string? groupInstanceId)
    {
        if (!_loaded) return GroupErrors.CoordinatorLoadInProgress;
        if (!_groups.TryGetValue(groupId, out var group)) return GroupErrors.None; // created by the commit
        lock (group.Lock)
        {
            if (group.State == GroupState.Dead) return GroupErrors.CoordinatorNotAvailable;
            if (generationId < 0 && memberId.Length == 0 && groupInstanceId is null) return GroupErrors.None;
            short error = ValidateMember(group, memberId, groupInstanceId);
            if (error != GroupErrors.None) return error;
            return generationId != group.GenerationId ? GroupErrors.IllegalGeneration : GroupErrors.None;
        }
    }

    /// <summary>
    /// Appends a TxnOffsetCommit's offsets as one transactional batch of the producer and keeps them pending
    /// until the transaction's marker. Returns NONE, COORDINATOR_LOAD_IN_PROGRESS, or COORDINATOR_NOT_AVAILABLE
    /// when the log refused the batch (Kafka's mapping of append failures, so the producer retries).
    /// </summary>
    public short StoreTransactionalOffsets(string groupId, long producerId, short producerEpoch, IReadOnlyList<PendingTxnOffset> offsets)
    {
        if (!_loaded) return GroupErrors.CoordinatorLoadInProgress;
        if (offsets.Count == 0) return GroupErrors.None;
        var group = _groups.GetOrAdd(groupId, static id => new ClassicGroup(id));
        int partition = PartitionFor(groupId);
        lock (group.Lock)
        {
            if (group.State == GroupState.Dead) return GroupErrors.CoordinatorNotAvailable;
            var records = new List<CoordinatorRecord>(offsets.Count);
            var values = new CommittedOffset[offsets.Count];
            for (int i = 0; i < offsets.Count; i++)
            {
                var o = offsets[i];
                values[i] = new CommittedOffset(o.Offset, o.LeaderEpoch, o.Metadata ?? "", o.CommitTimestampMs, -1);
                records.Add(OffsetRecord(groupId, o.Topic, o.Partition, values[i]));
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
                catch (Exception e) when (IsAppendFailure(e)) { return GroupErrors.CoordinatorNotAvailable; }
                _txnSequences[(partition, producerId)] = (producerEpoch, sequence + records.Count - 1);
                OpenTxnGroup(producerId, groupId);
            }
            if (!group.PendingTxnOffsets.TryGetValue(producerId, out var pending))
                group.PendingTxnOffsets[producerId] = pending = new();
            for (int i = 0; i < offsets.Count; i++)
                pending[(offsets[i].Topic, offsets[i].Partition)] = values[i] with { RecordOffset = baseOffset + i };
            return GroupErrors.None;
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
        catch (Exception e) when (IsAppendFailure(e) || e is Kayak.Storage.ProducerStateException)
        {
            throw new IOException($"Cannot write the transaction marker of producer {producerId} to {StorageGroupLog.TopicName}-{offsetsPartition}", e);
        }
        if (!_loaded) return;
        string[] groups;
        lock (_txnLock)
        {
            if (!_openTxnGroups.TryGetValue(producerId, out var open)) return;
            groups = open.ToArray();
        }
        foreach (var groupId in groups)
        {
            if (PartitionFor(groupId) != offsetsPartition) continue;
            if (!_groups.TryGetValue(groupId, out var group)) { ForgetOpenGroup(producerId, groupId); continue; }
            lock (group.Lock)
            {
                if (group.PendingTxnOffsets.Remove(producerId, out var pending) && commit)
                    foreach (var ((topic, partition), offset) in pending) MaterializeTxnOffset(group, topic, partition, offset);
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

    private static bool IsAppendFailure(Exception e) =>
        e is IOException or InvalidOperationException or ObjectDisposedException or Kayak.Storage.StorageErrorException;

    // ------------------------------------------------------------------ loading

    /// <summary>
    /// Replay state of one <c>__consumer_offsets</c> partition: plain records apply in log order; records of a
    /// transactional batch wait per producer id for the partition's commit/abort marker of that producer.
    /// </summary>
    private sealed class LoadVisitor : CoordinatorBatch.IReplayVisitor
    {
        /// <summary>The offset record in effect per key (plain, or transactional once committed); a null value is a tombstone.</summary>
        public readonly Dictionary<(string Group, string Topic, int Partition), (Protocol.CoordinatorRecords.OffsetCommitValue? Value, long RecordOffset)> Offsets = new();
        public readonly Dictionary<string, Protocol.CoordinatorRecords.GroupMetadataValue?> Groups = new(StringComparer.Ordinal);
        public readonly Dictionary<long, Dictionary<(string Group, string Topic, int Partition), (Protocol.CoordinatorRecords.OffsetCommitValue Value, long RecordOffset)>> Pending = new();
        public readonly Dictionary<long, (short Epoch, int LastSequence)> Sequences = new();

        public void OnProducerBatch(in RecordBatchHeader header)
        {
            int last = header.BaseSequence < 0 ? -1 : header.BaseSequence + header.LastOffsetDelta;
            Sequences[header.ProducerId] = (header.ProducerEpoch, last);
        }

        public void OnMarker(in RecordBatchHeader header, bool commit)
        {
            // A marker with a newer epoch restarts the producer's sequences (Storage clears them on an epoch bump).
            if (Sequences.TryGetValue(header.ProducerId, out var s) && header.ProducerEpoch > s.Epoch)
                Sequences[header.ProducerId] = (header.ProducerEpoch, -1);
            if (!Pending.Remove(header.ProducerId, out var pending) || !commit) return;
            foreach (var (key, (value, recordOffset)) in pending)
            {
                if (Offsets.TryGetValue(key, out var current) && current.Value is not null && current.RecordOffset > recordOffset) continue;
                Offsets[key] = (value, recordOffset);
            }
        }

        public void OnRecord(long offset, long producerId, ReadOnlyMemory<byte> key, ReadOnlyMemory<byte>? value)
        {
            var reader = new Protocol.KafkaReader(key);
            short keyVersion = reader.ReadInt16();
            if (keyVersion is 0 or 1)
            {
                var k = new Protocol.CoordinatorRecords.OffsetCommitKey();
                k.Read(ref reader, keyVersion);
                var v = value is { } bytes ? ReadValue<Protocol.CoordinatorRecords.OffsetCommitValue>(bytes, Protocol.CoordinatorRecords.OffsetCommitValue.HighestSupportedVersion) : null;
                if (producerId >= 0)
                {
                    if (v is null) return; // Kafka writes no transactional tombstones
                    if (!Pending.TryGetValue(producerId, out var pending)) Pending[producerId] = pending = new();
                    pending[(k.Group, k.Topic, k.Partition)] = (v, offset);
                }
                else Offsets[(k.Group, k.Topic, k.Partition)] = (v, offset);
            }
            else if (keyVersion == 2)
            {
                var k = new Protocol.CoordinatorRecords.GroupMetadataKey();
                k.Read(ref reader, keyVersion);
                Groups[k.Group] = value is { } v ? ReadValue<Protocol.CoordinatorRecords.GroupMetadataValue>(v, Protocol.CoordinatorRecords.GroupMetadataValue.HighestSupportedVersion) : null;
            }
            // Other key versions are KIP-848/share/transaction records: not ours to load.
        }
    }

    private static CommittedOffset ToCommittedOffset(Protocol.CoordinatorRecords.OffsetCommitValue value, long recordOffset) =>
        new(value.Offset, value.LeaderEpoch, value.Metadata, value.CommitTimestamp, value.ExpireTimestamp, recordOffset);

    /// <summary>Installs what one partition's replay left pending: transactions the transaction coordinator will end.</summary>
    private void InstallPending(int partition, LoadVisitor visitor)
    {
        lock (_txnLock)
            foreach (var (pid, seq) in visitor.Sequences) _txnSequences[(partition, pid)] = seq;
        foreach (var (pid, pending) in visitor.Pending)
            foreach (var ((groupId, topic, p), (value, recordOffset)) in pending)
            {
                var group = _groups.GetOrAdd(groupId, static id => new ClassicGroup(id));
                lock (group.Lock)
                {
                    if (!group.PendingTxnOffsets.TryGetValue(pid, out var offsets)) group.PendingTxnOffsets[pid] = offsets = new();
                    offsets[(topic, p)] = ToCommittedOffset(value, recordOffset);
                }
                lock (_txnLock) OpenTxnGroup(pid, groupId);
            }
    }
}
