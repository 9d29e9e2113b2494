using System.Buffers.Binary;
using Kayak.Protocol.Records;
using Kayak.Protocol;

namespace Kayak.Storage;

/// <summary>First/last sequence and offsets of one appended producer batch (Kafka's BatchMetadata).</summary>
public readonly record struct ProducerBatchMetadata(int FirstSeq, int LastSeq, long FirstOffset, long LastOffset, long Timestamp);

/// <summary>
/// One entry of the aborted-transaction index (Kafka's AbortedTxn, 34 bytes in <c>.txnindex</c>):
/// the aborted producer, the first offset of its transaction in this partition, the offset of the abort
/// marker, and the last stable offset right after the marker.
/// </summary>
public readonly record struct AbortedTransaction(long ProducerId, long FirstOffset, long LastOffset, long LastStableOffset)
{
    public const int EntrySize = 34;
    public const short CurrentVersion = 0;

    public void Write(Span<byte> dest)
    {
        BinaryPrimitives.WriteInt16BigEndian(dest, CurrentVersion);
        BinaryPrimitives.WriteInt64BigEndian(dest[2..], ProducerId);
        BinaryPrimitives.WriteInt64BigEndian(dest[10..], FirstOffset);
        BinaryPrimitives.WriteInt64BigEndian(dest[18..], LastOffset);
        BinaryPrimitives.WriteInt64BigEndian(dest[26..], LastStableOffset);
    }

    public static AbortedTransaction Read(ReadOnlySpan<byte> src) => new(
        BinaryPrimitives.ReadInt64BigEndian(src[2..]), BinaryPrimitives.ReadInt64BigEndian(src[10..]),
        BinaryPrimitives.ReadInt64BigEndian(src[18..]), BinaryPrimitives.ReadInt64BigEndian(src[26..]));
}

/// <summary>What one producer id looks like from one partition (Kafka's ProducerStateEntry).</summary>
public sealed class ProducerStateEntry
{
    /// <summary>Kafka's ProducerStateEntry.NUM_BATCHES_TO_RETAIN: dedup covers the last 5 batches (max.in.flight ≤ 5).</summary>
    public const int NumBatchesToRetain = 5;

    private readonly ProducerBatchMetadata[] _batches = new ProducerBatchMetadata[NumBatchesToRetain];
    private int _head; // index of the oldest batch
    private int _count;

    public ProducerStateEntry(long producerId) { ProducerId = producerId; }

    public long ProducerId { get; }
    public short ProducerEpoch { get; internal set; } = -1;
    public int CoordinatorEpoch { get; internal set; } = -1;
    /// <summary>Timestamp (ms) of the producer's last write; drives producer.id.expiration.ms.</summary>
    public long LastTimestamp { get; internal set; } = -1;
    /// <summary>First offset of the producer's open transaction in this partition, -1 when none.</summary>
    public long CurrentTxnFirstOffset { get; internal set; } = -1;
    public int BatchCount => _count;
    public bool IsEmpty => _count == 0;

    public ProducerBatchMetadata LastBatch => _batches[(_head + _count - 1) % NumBatchesToRetain];
    public int LastSeq => _count == 0 ? -1 : LastBatch.LastSeq;
    public long LastDataOffset => _count == 0 ? -1 : LastBatch.LastOffset;
    public ProducerBatchMetadata Batch(int i) => _batches[(_head + i) % NumBatchesToRetain];

    internal void AddBatch(in ProducerBatchMetadata b)
    {
        if (_count == NumBatchesToRetain)
        {
            _batches[_head] = b;
            _head = (_head + 1) % NumBatchesToRetain;
        }
        else
        {
            _batches[(_head + _count) % NumBatchesToRetain] = b;
            _count++;
        }
    }

    internal void ClearBatches() { _head = 0; _count = 0; }

    /// <summary>Kafka's findDuplicateBatch: the same epoch and exactly the same sequence range as a retained batch.</summary>
    public bool TryFindDuplicate(short epoch, int firstSeq, int lastSeq, out ProducerBatchMetadata found)
    {
        found = default;
        if (epoch != ProducerEpoch) return false;
        for (int i = 0; i < _count; i++)
        {
            var b = Batch(i);
            if (b.FirstSeq == firstSeq && b.LastSeq == lastSeq) { found = b; return true; }
        }
        return false;
    }
}

/// <summary>
/// Kafka's VerificationGuard (KIP-890 part 1): one partition's permission for a producer to write the first batch
/// of a transaction there, created before the transaction coordinator is asked and honoured only while it is still
/// the partition's current guard. The first transactional batch and the marker clear it, so a confirmation that
/// raced a marker cannot be used, nor reused by a later transaction (its own guard is a new object).
/// </summary>
public sealed class VerificationGuard
{
    internal VerificationGuard(long producerId, long createdMs) { ProducerId = producerId; CreatedMs = createdMs; }

    public long ProducerId { get; }
    /// <summary>When it was created; producer.id.expiration.ms drops guards never used.</summary>
    internal long CreatedMs { get; }
}

/// <summary>
/// Thrown from <see cref="PartitionLog.Append"/> for producer-state violations; nothing was appended. Carries Kafka's
/// code (OUT_OF_ORDER_SEQUENCE_NUMBER, INVALID_PRODUCER_EPOCH, PRODUCER_FENCED for a marker from an older epoch,
/// INVALID_TXN_STATE, DUPLICATE_SEQUENCE_NUMBER inside a multi-batch append) as the one error type does.
/// </summary>
public sealed class ProducerStateException(ErrorCode code, string message) : KafkaException(code, message);

/// <summary>
/// Per-partition producer state (Kafka's ProducerStateManager): pid → epoch, last five batches' sequence
/// ranges and offsets (idempotent dedup), open transactions (their first offsets bound the last stable
/// offset) and the aborted-transaction list that read_committed fetches return. Mutated only under the
/// owning <see cref="PartitionLog"/>'s append lock; the aborted list is copy-on-write so fetches read it
/// without locking. Rebuilt from the log on load (batch headers only, plus the one-record markers).
/// </summary>
public sealed class ProducerStateManager
{
    private readonly Dictionary<long, ProducerStateEntry> _producers = new();
    private AbortedTransaction[] _aborted = [];
    /// <summary>Producer id → its unused verification guard (KIP-890); in memory only, as in Kafka. Lazy: most partitions never see one.</summary>
    private Dictionary<long, VerificationGuard>? _verifications;
    private long _firstUnstableOffset = long.MaxValue;
    private int _ongoing;

    public int ProducerCount => _producers.Count;
    /// <summary>First offset of the oldest open transaction, long.MaxValue when none (LSO = min(this, HW)).</summary>
    public long FirstUnstableOffset => Volatile.Read(ref _firstUnstableOffset);
    public IReadOnlyList<AbortedTransaction> AbortedTransactions => Volatile.Read(ref _aborted);
    internal AbortedTransaction[] AbortedSnapshot => Volatile.Read(ref _aborted);

    public bool TryGet(long producerId, out ProducerStateEntry entry) => _producers.TryGetValue(producerId, out entry!);

    /// <summary>A copy of the entries (DescribeProducers); call under the partition lock.</summary>
    public ProducerStateEntry[] Snapshot()
    {
        var a = new ProducerStateEntry[_producers.Count];
        _producers.Values.CopyTo(a, 0);
        return a;
    }

    /// <summary>
    /// Checks a client batch before it is appended, the way Kafka's ProducerAppendInfo does. Returns true
    /// with <paramref name="duplicate"/> when the batch repeats one of the last five (the caller answers with
    /// its original offsets and appends nothing). Throws <see cref="ProducerStateException"/> for a fenced
    /// epoch, a sequence gap, or a non-transactional write inside an open transaction.
    /// </summary>
    /// <param name="verifyTransactions">A client's batch: a transactional one needs an ongoing transaction here or
    /// <paramref name="guard"/> (Kafka verifies appends of origin CLIENT; coordinator writes are checked by the coordinator).</param>
    public bool CheckClientBatch(in RecordBatchHeader h, bool verifyTransactions, VerificationGuard? guard, out ProducerBatchMetadata duplicate)
    {
        duplicate = default;
        if (h.ProducerId < 0) return false;
        int firstSeq = h.BaseSequence;
        int lastSeq = LastSequence(firstSeq, h.LastOffsetDelta);
        if (!_producers.TryGetValue(h.ProducerId, out var e))
        {
            if (verifyTransactions) RequireVerified(h, null, guard);
            return false; // Unknown producer (new, or expired/removed): Kafka accepts any sequence (KIP-360).
        }
        if (h.ProducerEpoch < e.ProducerEpoch)
            throw new ProducerStateException(ErrorCode.InvalidProducerEpoch,
                $"Epoch of producer {h.ProducerId} at offset {h.BaseOffset} is {h.ProducerEpoch}, which is smaller than the last seen epoch {e.ProducerEpoch}");
        // A retry of an appended batch gets its offsets back even after the marker, as in Kafka (dedup comes first).
        if (e.TryFindDuplicate(h.ProducerEpoch, firstSeq, lastSeq, out duplicate)) return true;
        if (verifyTransactions) RequireVerified(h, e, guard);
        if (h.ProducerEpoch != e.ProducerEpoch)
        {
            // A bumped epoch restarts sequences at 0.
            if (firstSeq != 0 && e.ProducerEpoch != -1)
                throw new ProducerStateException(ErrorCode.OutOfOrderSequenceNumber,
                    $"Out of order sequence number for producer {h.ProducerId}: found {firstSeq} (incoming seq. number), but expected 0 for a new epoch {h.ProducerEpoch}");
        }
        else if (!e.IsEmpty && !InSequence(e.LastSeq, firstSeq))
        {
            throw new ProducerStateException(ErrorCode.OutOfOrderSequenceNumber,
                $"Out of order sequence number for producer {h.ProducerId} at offset {h.BaseOffset}: {firstSeq} (incoming seq. number), {e.LastSeq} (current end sequence number)");
        }
        if (!h.IsTransactional && e.CurrentTxnFirstOffset >= 0 && h.ProducerEpoch == e.ProducerEpoch)
            throw new ProducerStateException(ErrorCode.InvalidTxnState,
                $"Expected transactional write from producer {h.ProducerId} at offset {h.BaseOffset}");
        return false;
    }

    /// <summary>
    /// Kafka's check in analyzeAndValidateProducerState: a transactional batch goes into the producer's open
    /// transaction here (same epoch), or opens one only with the partition's current guard. Runs under the
    /// append lock, which the marker holds while it ends the transaction and clears the guard.
    /// </summary>
    private void RequireVerified(in RecordBatchHeader h, ProducerStateEntry? e, VerificationGuard? guard)
    {
        if (!h.IsTransactional) return;
        if (e is not null && e.CurrentTxnFirstOffset >= 0 && e.ProducerEpoch == h.ProducerEpoch) return;
        if (guard is not null && _verifications is not null && _verifications.TryGetValue(h.ProducerId, out var current) && ReferenceEquals(current, guard)) return;
        throw new ProducerStateException(ErrorCode.InvalidTxnState,
            $"Record of producer {h.ProducerId} with epoch {h.ProducerEpoch} was not part of an ongoing transaction");
    }

    /// <summary>
    /// Kafka's maybeStartTransactionVerification on the partition's producer state (call under the append lock):
    /// null when the producer's transaction at this epoch already wrote here, else the guard (created on first use,
    /// shared by concurrent requests of the producer as in Kafka).
    /// </summary>
    public VerificationGuard? MaybeStartVerification(long producerId, short producerEpoch, long nowMs)
    {
        if (_producers.TryGetValue(producerId, out var e) && e.CurrentTxnFirstOffset >= 0 && e.ProducerEpoch == producerEpoch) return null;
        _verifications ??= new();
        if (!_verifications.TryGetValue(producerId, out var guard)) _verifications[producerId] = guard = new VerificationGuard(producerId, nowMs);
        return guard;
    }

    /// <summary>Guards handed out and not yet used or cleared (tests, DescribeProducers has no field for them).</summary>
    public int PendingVerifications => _verifications?.Count ?? 0;

    /// <summary>
    /// Checks a transaction marker from the coordinator: an older producer epoch than the partition saw is fenced
    /// (PRODUCER_FENCED), and so is a commit/abort from an older coordinator epoch than the last marker of the producer
    /// here (TRANSACTION_COORDINATOR_FENCED, Kafka's ProducerAppendInfo.appendEndTxnMarker: a coordinator that lost
    /// its <c>__transaction_state</c> partition must not end a transaction its successor already ended).
    /// </summary>
    public void CheckMarker(long producerId, short epoch, int coordinatorEpoch)
    {
        if (!_producers.TryGetValue(producerId, out var e)) return;
        if (epoch < e.ProducerEpoch)
            throw new ProducerStateException(ErrorCode.ProducerFenced,
                $"Invalid producer epoch for marker: {epoch} (zombie) < {e.ProducerEpoch} (current) for producer {producerId}");
        if (coordinatorEpoch >= 0 && coordinatorEpoch < e.CoordinatorEpoch)
            throw new ProducerStateException(ErrorCode.TransactionCoordinatorFenced,
                $"Invalid coordinator epoch for producerId {producerId}: {coordinatorEpoch} (zombie), {e.CoordinatorEpoch} (current)");
    }

    private static int LastSequence(int firstSeq, int lastOffsetDelta)
    {
        long last = (long)firstSeq + lastOffsetDelta;
        return last > int.MaxValue ? (int)(last - int.MaxValue - 1) : (int)last; // sequences wrap at int.MaxValue
    }

    private static bool InSequence(int lastSeq, int nextSeq) =>
        nextSeq == lastSeq + 1 || (nextSeq == 0 && lastSeq == int.MaxValue);

    /// <summary>
    /// Records an appended batch (its real base offset in <paramref name="h"/>). For a control batch,
    /// <paramref name="markerType"/> says commit or abort; an abort returns the new index entry.
    /// </summary>
    public AbortedTransaction? OnAppended(in RecordBatchHeader h, long lastOffset, ControlRecordType? markerType, int coordinatorEpoch)
    {
        if (h.ProducerId < 0) return null;
        // Kafka's updateProducers: a transactional batch or marker ends the need for a guard, the transaction is now
        // open here (checked from the entry) or over (a later batch must be verified again, with a new guard).
        if (h.IsTransactional) _verifications?.Remove(h.ProducerId);
        if (!_producers.TryGetValue(h.ProducerId, out var e))
            _producers[h.ProducerId] = e = new ProducerStateEntry(h.ProducerId);
        if (h.ProducerEpoch > e.ProducerEpoch)
        {
            e.ProducerEpoch = h.ProducerEpoch;
            e.ClearBatches(); // Kafka drops the cached batches on an epoch bump
        }
        e.LastTimestamp = Math.Max(e.LastTimestamp, h.MaxTimestamp);
        if (h.IsControl)
        {
            if (markerType is not (ControlRecordType.Commit or ControlRecordType.Abort)) return null;
            e.CoordinatorEpoch = coordinatorEpoch;
            long first = e.CurrentTxnFirstOffset;
            if (first < 0) return null; // nothing written in this partition by the transaction
            e.CurrentTxnFirstOffset = -1;
            _ongoing--;
            RecomputeFirstUnstable();
            if (markerType == ControlRecordType.Commit) return null;
            long lso = Math.Min(FirstUnstableOffset, lastOffset + 1);
            var entry = new AbortedTransaction(h.ProducerId, first, lastOffset, lso);
            var old = _aborted;
            var grown = new AbortedTransaction[old.Length + 1];
            old.CopyTo(grown, 0);
            grown[^1] = entry;
            Volatile.Write(ref _aborted, grown);
            return entry;
        }
        if (h.BaseSequence >= 0)
            e.AddBatch(new ProducerBatchMetadata(h.BaseSequence, LastSequence(h.BaseSequence, h.LastOffsetDelta), h.BaseOffset, lastOffset, h.MaxTimestamp));
        if (h.IsTransactional && e.CurrentTxnFirstOffset < 0)
        {
            e.CurrentTxnFirstOffset = h.BaseOffset;
            _ongoing++;
            if (h.BaseOffset < _firstUnstableOffset) Volatile.Write(ref _firstUnstableOffset, h.BaseOffset);
        }
        return null;
    }

    private void RecomputeFirstUnstable()
    {
        long min = long.MaxValue;
        if (_ongoing > 0)
            foreach (var p in _producers.Values)
                if (p.CurrentTxnFirstOffset >= 0 && p.CurrentTxnFirstOffset < min) min = p.CurrentTxnFirstOffset;
        Volatile.Write(ref _firstUnstableOffset, min);
    }

    /// <summary>
    /// Kafka's removeExpiredProducers: drops producers idle longer than producer.id.expiration.ms that have
    /// no open transaction; their next batch is then accepted at any sequence. Returns how many went.
    /// </summary>
    public int RemoveExpired(long nowMs, long expirationMs)
    {
        List<long>? expired = null;
        // Kafka also drops guards that lingered unverified as long (their Produce never came back to append).
        if (_verifications is not null)
        {
            foreach (var (pid, g) in _verifications)
                if (nowMs - g.CreatedMs >= expirationMs) (expired ??= new()).Add(pid);
            if (expired is not null) foreach (var pid in expired) _verifications.Remove(pid);
            expired?.Clear();
        }
        foreach (var (pid, e) in _producers)
            if (e.CurrentTxnFirstOffset < 0 && nowMs - e.LastTimestamp >= expirationMs) (expired ??= new()).Add(pid);
        if (expired is null || expired.Count == 0) return 0;
        foreach (var pid in expired) _producers.Remove(pid);
        return expired.Count;
    }

    /// <summary>Forgets aborted transactions wholly below the log start offset (their data is gone).</summary>
    public void TruncateAbortedBefore(long logStartOffset)
    {
        var old = _aborted;
        int n = 0;
        while (n < old.Length && old[n].LastOffset < logStartOffset) n++;
        if (n > 0) Volatile.Write(ref _aborted, old[n..]);
    }

    /// <summary>
    /// Kafka's collectAbortedTransactions for a read_committed fetch of [<paramref name="fetchOffset"/>,
    /// <paramref name="upperBoundOffset"/>): every aborted transaction that overlaps the range.
    /// </summary>
    public void CollectAborted(long fetchOffset, long upperBoundOffset, List<AbortedTransaction> into)
    {
        foreach (var a in Volatile.Read(ref _aborted))
            if (a.LastOffset >= fetchOffset && a.FirstOffset < upperBoundOffset) into.Add(a);
    }

    /// <summary>
    /// Replays stored batches (whole v2 batches, in log order) into the state, as Kafka's loadProducerState
    /// does from the log when no snapshot covers it. Calls <paramref name="onAbort"/> for every aborted
    /// transaction found, so the caller can rebuild <c>.txnindex</c>.
    /// </summary>
    public void Replay(ReadOnlySpan<byte> batches, Action<AbortedTransaction>? onAbort)
    {
        int pos = 0;
        while (pos + RecordBatchHeader.Size <= batches.Length)
        {
            int len = BinaryPrimitives.ReadInt32BigEndian(batches[(pos + RecordBatchHeader.BatchLengthOffset)..]);
            int total = len + RecordBatchHeader.LogOverhead;
            if (len <= 0 || pos + total > batches.Length) break;
            var span = batches.Slice(pos, total);
            pos += total;
            if (!RecordBatchHeader.TryRead(span, out var h) || h.Magic != 2 || h.ProducerId < 0) continue;
            ControlRecordType? type = null;
            int coordinatorEpoch = -1;
            if (h.IsControl) type = ReadMarkerType(span, out coordinatorEpoch);
            var aborted = OnAppended(h, h.LastOffset, type, coordinatorEpoch);
            if (aborted is { } a) onAbort?.Invoke(a);
        }
    }

    /// <summary>The control type of a marker batch (its single, uncompressed record's key).</summary>
    internal static ControlRecordType? ReadMarkerType(ReadOnlySpan<byte> batch, out int coordinatorEpoch)
    {
        coordinatorEpoch = -1;
        if (!RecordBatchHeader.TryRead(batch, out var h) || h.Compression != CompressionType.None || h.RecordsCount < 1) return null;
        try
        {
            foreach (var r in new RecordEnumerator(batch[RecordBatchHeader.Size..], 1))
            {
                if (!ControlRecord.TryReadKey(r.Key, out _, out var type)) return null;
                if (type is ControlRecordType.Commit or ControlRecordType.Abort && ControlRecord.TryReadEndTransactionMarker(r.Value, out int ce))
                    coordinatorEpoch = ce;
                return type;
            }
        }
        catch (Kayak.Protocol.ProtocolException)
        {
            // A malformed control record is not a marker; Kafka would have refused it on append.
        }
        return null;
    }

    // ------------------------------------------------------------------ snapshots

    private const short SnapshotVersion = 1;

    /// <summary>
    /// Serializes the producers (Kafka's <c>&lt;offset&gt;.snapshot</c>; our layout keeps all five batches per
    /// producer so deduplication works across restarts): int16 version, uint32 CRC-32C of the rest, int32
    /// count, then per producer pid, epoch, coordinator epoch, last timestamp, open transaction offset and its batches.
    /// </summary>
    public byte[] WriteSnapshot()
    {
        int size = 10;
        foreach (var e in _producers.Values) size += 8 + 2 + 4 + 8 + 8 + 4 + e.BatchCount * 32;
        var buf = new byte[size];
        var s = buf.AsSpan();
        BinaryPrimitives.WriteInt16BigEndian(s, SnapshotVersion);
        BinaryPrimitives.WriteInt32BigEndian(s[6..], _producers.Count);
        int p = 10;
        foreach (var e in _producers.Values)
        {
            BinaryPrimitives.WriteInt64BigEndian(s[p..], e.ProducerId); p += 8;
            BinaryPrimitives.WriteInt16BigEndian(s[p..], e.ProducerEpoch); p += 2;
            BinaryPrimitives.WriteInt32BigEndian(s[p..], e.CoordinatorEpoch); p += 4;
            BinaryPrimitives.WriteInt64BigEndian(s[p..], e.LastTimestamp); p += 8;
            BinaryPrimitives.WriteInt64BigEndian(s[p..], e.CurrentTxnFirstOffset); p += 8;
            BinaryPrimitives.WriteInt32BigEndian(s[p..], e.BatchCount); p += 4;
            for (int i = 0; i < e.BatchCount; i++)
            {
                var b = e.Batch(i);
                BinaryPrimitives.WriteInt32BigEndian(s[p..], b.FirstSeq);
                BinaryPrimitives.WriteInt32BigEndian(s[(p + 4)..], b.LastSeq);
                BinaryPrimitives.WriteInt64BigEndian(s[(p + 8)..], b.FirstOffset);
                BinaryPrimitives.WriteInt64BigEndian(s[(p + 16)..], b.LastOffset);
                BinaryPrimitives.WriteInt64BigEndian(s[(p + 24)..], b.Timestamp);
                p += 32;
            }
        }
        BinaryPrimitives.WriteUInt32BigEndian(s[2..], Crc32C.Compute(s[6..]));
        return buf;
    }

    /// <summary>Loads a snapshot plus the aborted list (from <c>.txnindex</c>); false if it is unreadable.</summary>
    public bool TryLoadSnapshot(ReadOnlySpan<byte> s, AbortedTransaction[] aborted)
    {
        if (s.Length < 10 || BinaryPrimitives.ReadInt16BigEndian(s) != SnapshotVersion
            || BinaryPrimitives.ReadUInt32BigEndian(s[2..]) != Crc32C.Compute(s[6..])) return false;
        int count = BinaryPrimitives.ReadInt32BigEndian(s[6..]);
        int p = 10;
        var producers = new Dictionary<long, ProducerStateEntry>();
        for (int n = 0; n < count; n++)
        {
            if (s.Length - p < 34) return false;
            var e = new ProducerStateEntry(BinaryPrimitives.ReadInt64BigEndian(s[p..]))
            {
                ProducerEpoch = BinaryPrimitives.ReadInt16BigEndian(s[(p + 8)..]),
                CoordinatorEpoch = BinaryPrimitives.ReadInt32BigEndian(s[(p + 10)..]),
                LastTimestamp = BinaryPrimitives.ReadInt64BigEndian(s[(p + 14)..]),
                CurrentTxnFirstOffset = BinaryPrimitives.ReadInt64BigEndian(s[(p + 22)..]),
            };
            int batches = BinaryPrimitives.ReadInt32BigEndian(s[(p + 30)..]);
            p += 34;
            if (batches is < 0 or > ProducerStateEntry.NumBatchesToRetain || s.Length - p < batches * 32) return false;
            for (int i = 0; i < batches; i++, p += 32)
                e.AddBatch(new ProducerBatchMetadata(BinaryPrimitives.ReadInt32BigEndian(s[p..]), BinaryPrimitives.ReadInt32BigEndian(s[(p + 4)..]),
                    BinaryPrimitives.ReadInt64BigEndian(s[(p + 8)..]), BinaryPrimitives.ReadInt64BigEndian(s[(p + 16)..]), BinaryPrimitives.ReadInt64BigEndian(s[(p + 24)..])));
            producers[e.ProducerId] = e;
        }
        _producers.Clear();
        _verifications = null;
        _ongoing = 0;
        foreach (var (pid, e) in producers)
        {
            _producers[pid] = e;
            if (e.CurrentTxnFirstOffset >= 0) _ongoing++;
        }
        RecomputeFirstUnstable();
        Volatile.Write(ref _aborted, aborted);
        return true;
    }
}
