using System.Buffers.Binary;
using Kayak.Protocol.Records;
using Kayak.Protocol;

namespace Kayak.Storage;

/// <summary>
/// Replication (issue 14): the follower's append path and the high watermark kept apart from the log end offset.
/// A single broker never calls <see cref="EnableReplication"/>: its high watermark stays the log end offset and its
/// hot paths read one extra bool.
/// </summary>
public sealed partial class PartitionLog
{
    private volatile bool _replicated;
    private long _highWatermark;
    private volatile bool _highWatermarkFollowsLogEnd;

    /// <summary>True once the partition belongs to a replicated cluster: the high watermark is tracked separately.</summary>
    public bool IsReplicated => _replicated;

    /// <summary>
    /// From now on the high watermark is set by replication (the leader: min log end offset of the ISR; a follower:
    /// the leader's, capped by its own log end). It starts at the log start offset, as a Kafka log without a
    /// replication-offset-checkpoint does, and moves up at the first ISR update (Kafka's Partition.makeLeader).
    /// </summary>
    public void EnableReplication()
    {
        lock (_lock)
        {
            if (_replicated) return;
            _highWatermark = _logStartOffset;
            _replicated = true;
        }
    }

    /// <summary>The high watermark from replication-offset-checkpoint at load, within [log start, log end].</summary>
    internal void RestoreHighWatermark(long checkpointed)
    {
        lock (_lock)
            if (_replicated) Volatile.Write(ref _highWatermark, Math.Clamp(checkpointed, _logStartOffset, Math.Max(_logStartOffset, _logEndOffset)));
    }

    /// <summary>
    /// Set by the leader while the ISR is the leader alone: each leader append moves the high watermark with the log
    /// end offset (Kafka's maybeIncrementLeaderHW after appendRecordsToLeader), including the coordinators' and the
    /// transaction markers' appends, which do not pass through the produce path.
    /// </summary>
    public void SetHighWatermarkFollowsLogEnd(bool follows)
    {
        // Called after every leader append in a cluster: no lock when nothing changes.
        if (_highWatermarkFollowsLogEnd == follows && (!follows || Volatile.Read(ref _highWatermark) >= LogEndOffset)) return;
        lock (_lock)
        {
            if (!_replicated) return;
            _highWatermarkFollowsLogEnd = follows;
            if (follows && _highWatermark < _logEndOffset) Volatile.Write(ref _highWatermark, _logEndOffset);
        }
        if (follows) Interlocked.Exchange(ref _appendSignal, null)?.TrySetResult();
    }

    /// <summary>
    /// Moves the high watermark to <paramref name="offset"/> capped by the log end offset. Monotonic unless
    /// <paramref name="allowDecrease"/> (a follower takes the leader's value as it is, Kafka's
    /// updateHighWatermark on the fetch response). Wakes long-poll consumer fetches waiting for it. True if it moved.
    /// </summary>
    public bool UpdateHighWatermark(long offset, bool allowDecrease = false)
    {
        bool moved;
        lock (_lock)
        {
            if (!_replicated) return false;
            long capped = Math.Max(_logStartOffset, Math.Min(offset, _logEndOffset));
            long cur = _highWatermark;
            moved = capped > cur || (allowDecrease && capped != cur);
            if (moved) Volatile.Write(ref _highWatermark, capped);
        }
        if (moved) Interlocked.Exchange(ref _appendSignal, null)?.TrySetResult();
        return moved;
    }

    /// <summary>
    /// A follower appends the leader's batches as they are (Kafka's appendRecordsToFollowerOrFutureReplica with
    /// validateAndAssignOffsets = false): base offsets, leader epochs, timestamps and CRCs are the leader's, so every
    /// replica's log is byte-identical. Batches wholly below the log end offset (a resent fetch) are skipped; the first
    /// kept batch must start at the log end offset, else CORRUPT_MESSAGE (a gap would break offset order). Producer
    /// state is rebuilt from the batches, without the sequence checks the leader already made.
    /// </summary>
    public AppendResult AppendAsFollower(ReadOnlySpan<byte> batches)
    {
        var cfg = Config;
        AppendResult result;
        lock (_lock)
        {
            if (_closed) throw new StorageErrorException(ErrorCode.UnknownTopicOrPartition, $"Partition {Id} is closed");
            // Frame check and skip of the already-held prefix, before a byte is written.
            int start = -1, pos = 0, count = 0;
            long expected = _logEndOffset;
            while (pos < batches.Length)
            {
                if (batches.Length - pos < RecordBatchHeader.Size) break; // a fetch may end in a partial batch (KIP-74): dropped
                int len = BinaryPrimitives.ReadInt32BigEndian(batches[(pos + RecordBatchHeader.BatchLengthOffset)..]);
                if (len < RecordBatchHeader.Size - RecordBatchHeader.LogOverhead) StorageThrow.Corrupt($"Invalid batch length {len}");
                if (len > batches.Length - pos - RecordBatchHeader.LogOverhead) break;
                if (batches[pos + RecordBatchHeader.MagicOffset] != 2) StorageThrow.Corrupt("Only magic v2 batches can be replicated");
                long baseOffset = BinaryPrimitives.ReadInt64BigEndian(batches[pos..]);
                int delta = BinaryPrimitives.ReadInt32BigEndian(batches[(pos + RecordBatchHeader.LastOffsetDeltaOffset)..]);
                if (delta < 0) StorageThrow.Corrupt("Negative lastOffsetDelta");
                int total = len + RecordBatchHeader.LogOverhead;
                if (start < 0)
                {
                    if (baseOffset + delta < expected) { pos += total; continue; }
                    if (baseOffset != expected)
                        StorageThrow.Corrupt($"Replicated batch at offset {baseOffset} does not continue the log of {Id} at {expected}");
                    start = pos;
                }
                else if (baseOffset != expected)
                    StorageThrow.Corrupt($"Replicated batch at offset {baseOffset} does not follow offset {expected - 1} in {Id}");
                expected = baseOffset + delta + 1;
                pos += total;
                count++;
            }
            if (count == 0) return new AppendResult(_logEndOffset, _logEndOffset - 1, -1, _logStartOffset, IsDuplicate: true);
            var data = batches[start..pos];
            long now = NowMs();
            long firstOffset = _logEndOffset, records = 0;
            LogSegment active;
            int basePos;
            try
            {
                active = MaybeRoll(data.Length, now, cfg);
                if (active.RollStartMs < 0) active.RollStartMs = now;
                active.ReserveIndexRoom(count);
                basePos = active.Size;
                active.Write(basePos, data);
                for (int p = 0; p < data.Length;)
                {
                    records += Math.Max(0, BinaryPrimitives.ReadInt32BigEndian(data[(p + RecordBatchHeader.RecordsCountOffset)..]));
                    p += BinaryPrimitives.ReadInt32BigEndian(data[(p + RecordBatchHeader.BatchLengthOffset)..]) + RecordBatchHeader.LogOverhead;
                }
                if (_unflushedMessages + records >= cfg.FlushMessages || now - _lastFlushMs >= cfg.FlushMs)
                {
                    FlushRecoveredSegments();
                    _rollFlushes.Wait();
                    active.Flush();
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw StorageFailure("append to", e);
            }
            for (int p = 0; p < data.Length;)
            {
                var src = data[p..];
                RecordBatchHeader.TryRead(src, out var h);
                int total = BinaryPrimitives.ReadInt32BigEndian(src[RecordBatchHeader.BatchLengthOffset..]) + RecordBatchHeader.LogOverhead;
                active.IndexBatch(basePos + p, h.BaseOffset, total, h.MaxTimestamp, cfg.IndexIntervalBytes);
                _epochs.Observe(h.PartitionLeaderEpoch, h.BaseOffset);
                if (h.ProducerId >= 0) UpdateProducerState(h, src[..total], active);
                p += total;
            }
            active.NextOffset = expected;
            active.Commit(data.Length);
            Volatile.Write(ref _logEndOffset, expected);
            _unflushedMessages += records;
            _dirty = true;
            if (_unflushedMessages >= cfg.FlushMessages || now - _lastFlushMs >= cfg.FlushMs) FlushLocked(now);
            result = new AppendResult(firstOffset, expected - 1, -1, _logStartOffset);
        }
        Interlocked.Exchange(ref _appendSignal, null)?.TrySetResult();
        return result;
    }

    /// <summary>
    /// Completes once the high watermark passes <paramref name="offset"/>: a consumer's long poll and an acks=all
    /// produce waiting for the ISR (Kafka's delayed produce / fetch purgatories), woken by the ISR's fetches.
    /// </summary>
    public Task WaitForHighWatermarkAsync(long offset, CancellationToken ct)
    {
        if (HighWatermark > offset) return Task.CompletedTask;
        return WaitSlowAsync(offset, highWatermark: true, ct);
    }

    /// <summary>
    /// Kafka's LeaderEpochFileCache.endOffsetFor (<see cref="LeaderEpochCache.EndOffsetFor"/>) from the partition's
    /// leader-epoch-checkpoint: for the current leader epoch the log end offset; else the largest epoch at or below
    /// <paramref name="requested"/> with the start offset of the next one.
    /// </summary>
    public (int Epoch, long EndOffset) EndOffsetForLeaderEpoch(int requested, int currentLeaderEpoch)
    {
        lock (_lock)
        {
            EnsureLeaderEpochs();
            return _epochs.EndOffsetFor(requested, currentLeaderEpoch, _logEndOffset);
        }
    }

    /// <summary>
    /// The largest partition leader epoch of this log's batches (-1 when none has one): what a follower asks its new
    /// leader about with OffsetForLeaderEpoch (KIP-279).
    /// </summary>
    public int LatestLeaderEpoch()
    {
        lock (_lock)
        {
            EnsureLeaderEpochs();
            return _epochs.LatestEpoch;
        }
    }

    /// <summary>
    /// A log loaded without a usable leader-epoch-checkpoint (written before Kayak kept one, removed, malformed): its
    /// epochs are read from the batch headers once, under the lock, and the file written.
    /// </summary>
    private void EnsureLeaderEpochs()
    {
        if (_epochs.Known) return;
        _epochs.Rebuild(new());
        long offset = LogStartOffset, end = _logEndOffset;
        while (offset < end)
        {
            using var slice = Read(offset, 1 << 20);
            if (slice.IsEmpty) break;
            long next = offset;
            var rest = slice.Data.Span;
            while (RecordBatchHeader.TryRead(rest, out var h) && h.TotalSize <= rest.Length)
            {
                _epochs.Observe(h.PartitionLeaderEpoch, h.BaseOffset);
                next = h.LastOffset + 1;
                rest = rest[h.TotalSize..];
            }
            if (next <= offset) break;
            offset = next;
        }
        _epochs.TruncateFromStart(LogStartOffset);
    }
}
