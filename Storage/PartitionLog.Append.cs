using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;
using Kayak.Protocol.Records;
using Kayak.Protocol;

namespace Kayak.Storage;

/// <summary>Appends: frame check, producer checks, the bytes written first and published only after (issue 15, K4), rolls.</summary>
public sealed partial class PartitionLog
{
    // ---------------------------------------------------------------- append

    /// <summary>
    /// Appends <paramref name="recordBatchCount"/> concatenated v2 batches, already validated by the broker
    /// (CRC, magic, sizes). The client's bytes are stored as received except: base offset (assigned here),
    /// partition leader epoch (when <paramref name="partitionLeaderEpoch"/> ≥ 0, outside the CRC), and for
    /// LogAppendTime topics the max timestamp + timestamp-type attribute bit, with the CRC recomputed
    /// (Kafka's LogValidator in-place path). Fsyncs before returning when flush.messages / flush.ms say so.
    /// </summary>
    /// <exception cref="StorageErrorException">CorruptRecord for malformed framing; MessageTooLarge over max.message.bytes.</exception>
    public AppendResult Append(ReadOnlySpan<byte> batches, int recordBatchCount, int partitionLeaderEpoch = -1) =>
        AppendCore(batches, recordBatchCount, partitionLeaderEpoch, verifyTransactions: false, verificationGuard: null);

    private AppendResult AppendCore(ReadOnlySpan<byte> batches, int recordBatchCount, int partitionLeaderEpoch, bool verifyTransactions, VerificationGuard? verificationGuard)
    {
        var cfg = Config;
        // Frame check before touching the log: a bad batch must not leave half an append behind.
        int pos = 0, count = 0;
        while (pos < batches.Length)
        {
            if (batches.Length - pos < RecordBatchHeader.Size) StorageThrow.Corrupt("Truncated record batch");
            int len = BinaryPrimitives.ReadInt32BigEndian(batches[(pos + RecordBatchHeader.BatchLengthOffset)..]);
            if (len < RecordBatchHeader.Size - RecordBatchHeader.LogOverhead || len > batches.Length - pos - RecordBatchHeader.LogOverhead)
                StorageThrow.Corrupt($"Invalid batch length {len}");
            if (batches[pos + RecordBatchHeader.MagicOffset] != 2) StorageThrow.Corrupt("Only magic v2 batches can be appended");
            if (BinaryPrimitives.ReadInt32BigEndian(batches[(pos + RecordBatchHeader.LastOffsetDeltaOffset)..]) < 0)
                StorageThrow.Corrupt("Negative lastOffsetDelta");
            int total = len + RecordBatchHeader.LogOverhead;
            if (total > cfg.MaxMessageBytes)
                throw new StorageErrorException(ErrorCode.MessageTooLarge,
                    $"Record batch of {total} bytes exceeds max.message.bytes {cfg.MaxMessageBytes}");
            pos += total;
            count++;
        }
        if (count == 0) StorageThrow.Corrupt("No record batches to append");
        if (recordBatchCount > 0 && recordBatchCount != count) StorageThrow.Corrupt($"Expected {recordBatchCount} batches, found {count}");

        AppendResult result;
        lock (_lock)
        {
            if (_closed) throw new StorageErrorException(ErrorCode.UnknownTopicOrPartition, $"Partition {Id} is closed");
            long now = NowMs();
            // Idempotent/transactional producers (KIP-98): sequence/epoch checks before anything is written;
            // a retried batch is answered with its original offsets and not appended again.
            if (CheckProducers(batches, count, verifyTransactions, verificationGuard, out var duplicate))
                return new AppendResult(duplicate.FirstOffset, duplicate.LastOffset, -1, _logStartOffset, IsDuplicate: true);
            LogSegment active;
            int basePos;
            long next = _logEndOffset;
            long firstOffset = next;
            long records = 0;
            bool logAppendTime = cfg.LogAppendTime;
            // Only the 61-byte header of each batch changes; it is patched in a copy and written ahead of the
            // client's untouched body (two pwrites, no copy of the records).
            Span<byte> header = stackalloc byte[RecordBatchHeader.Size];
            try
            {
                active = MaybeRoll(batches.Length, now, cfg);
                if (active.RollStartMs < 0) active.RollStartMs = now;
                // Room for this append's index entries is allocated before any byte is written, so a full disk
                // fails here and never as a fault on a store into the mapped index (issue 15, K5).
                active.ReserveIndexRoom(count);
                basePos = active.Size;
                // Phase 1, the bytes: an I/O error here (ENOSPC, EIO) leaves nothing published — no index entry,
                // no producer state, no offset; the next append writes over the partial bytes (issue 15, K4).
                pos = 0;
                while (pos < batches.Length)
                {
                    var src = batches[pos..];
                    int total = BinaryPrimitives.ReadInt32BigEndian(src[RecordBatchHeader.BatchLengthOffset..]) + RecordBatchHeader.LogOverhead;
                    var body = src[RecordBatchHeader.Size..total];
                    PatchHeader(src, header, next, partitionLeaderEpoch, logAppendTime, now);
                    if (logAppendTime)
                    {
                        uint crc = Crc32C.Append(Crc32C.Append(0xFFFFFFFFu, header[RecordBatchHeader.AttributesOffset..]), body);
                        BinaryPrimitives.WriteUInt32BigEndian(header[RecordBatchHeader.CrcOffset..], ~crc);
                    }
                    active.Write(basePos + pos, header);
                    active.Write(basePos + pos + RecordBatchHeader.Size, body);
                    next += BinaryPrimitives.ReadInt32BigEndian(src[RecordBatchHeader.LastOffsetDeltaOffset..]) + 1;
                    records += Math.Max(0, BinaryPrimitives.ReadInt32BigEndian(src[RecordBatchHeader.RecordsCountOffset..]));
                    pos += total;
                }
                // flush.messages / flush.ms due: fsync before the offsets are published, so an fsync that fails
                // fails the append instead of acknowledging records that may not be on disk.
                if (_unflushedMessages + records >= cfg.FlushMessages || now - _lastFlushMs >= cfg.FlushMs)
                {
                    FlushRecoveredSegments(); // not left waiting for the log dir's queue to reach this partition
                    _rollFlushes.Wait();
                    active.Flush();
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw StorageFailure("append to", e);
            }

            // Phase 2, publish: index entries (room reserved), producer state, offsets.
            next = firstOffset;
            pos = 0;
            while (pos < batches.Length)
            {
                var src = batches[pos..];
                int total = BinaryPrimitives.ReadInt32BigEndian(src[RecordBatchHeader.BatchLengthOffset..]) + RecordBatchHeader.LogOverhead;
                PatchHeader(src, header, next, partitionLeaderEpoch, logAppendTime, now);
                RecordBatchHeader.TryRead(header, out var h);
                active.IndexBatch(basePos + pos, next, total, h.MaxTimestamp, cfg.IndexIntervalBytes);
                _epochs.Observe(h.PartitionLeaderEpoch, next);
                if (h.ProducerId >= 0)
                    UpdateProducerState(h, src[..total], active);
                next += h.LastOffsetDelta + 1;
                pos += total;
            }
            active.NextOffset = next;
            active.Commit(batches.Length);
            Volatile.Write(ref _logEndOffset, next);
            if (_highWatermarkFollowsLogEnd) Volatile.Write(ref _highWatermark, next);

            _unflushedMessages += records;
            _dirty = true;
            if (_unflushedMessages >= cfg.FlushMessages || now - _lastFlushMs >= cfg.FlushMs)
            {
                FlushLocked(now); // the data is synced already; this moves the recovery point
            }
            result = new AppendResult(firstOffset, next - 1, logAppendTime ? now : -1, _logStartOffset);
        }
        // Wake long-poll fetches; a null check when nobody waits (no allocation on the hot path).
        Interlocked.Exchange(ref _appendSignal, null)?.TrySetResult();
        return result;
    }

    /// <summary>The header as stored: the assigned base offset, the leader epoch, and KIP-32 LogAppendTime (timestamp-type bit, max timestamp = now); the CRC is the caller's.</summary>
    private static void PatchHeader(ReadOnlySpan<byte> src, Span<byte> header, long baseOffset, int partitionLeaderEpoch, bool logAppendTime, long now)
    {
        src[..RecordBatchHeader.Size].CopyTo(header);
        BinaryPrimitives.WriteInt64BigEndian(header, baseOffset);
        if (partitionLeaderEpoch >= 0)
            BinaryPrimitives.WriteInt32BigEndian(header[RecordBatchHeader.PartitionLeaderEpochOffset..], partitionLeaderEpoch);
        if (logAppendTime)
        {
            // Records keep their deltas; consumers read the batch timestamp for every record.
            short attrs = BinaryPrimitives.ReadInt16BigEndian(header[RecordBatchHeader.AttributesOffset..]);
            BinaryPrimitives.WriteInt16BigEndian(header[RecordBatchHeader.AttributesOffset..], (short)(attrs | 0x8));
            BinaryPrimitives.WriteInt64BigEndian(header[RecordBatchHeader.MaxTimestampOffset..], now);
        }
    }

    /// <summary>
    /// An I/O failure of this partition's files as the broker answers it (KAFKA_STORAGE_ERROR), logged at ERROR
    /// with the directory and the OS error: a full disk or a failing device must be visible in the log, not only
    /// to the producer that got the error (issue 15, K4).
    /// </summary>
    private StorageErrorException StorageFailure(string action, Exception e)
    {
        int errno = e is IOException io ? io.HResult : 0;
        _log.LogError(e, "Error while trying to {Action} partition {Partition} in dir {Dir} (errno/HResult {Errno}): {Message}", action, Id, Dir, errno, e.Message);
        return new StorageErrorException(ErrorCode.KafkaStorageError, $"Error while trying to {action} partition {Id} in dir {Dir}: {e.Message}", e);
    }

    /// <summary>Kafka's maybeRoll: by size, by segment.ms since the first append, when an index is full, or on relative-offset overflow.</summary>
    private LogSegment MaybeRoll(int bytes, long now, TopicConfig cfg)
    {
        var active = _segments[^1];
        int size = active.Size;
        bool roll = size > 0 && (
            (long)size + bytes > cfg.SegmentBytes ||
            (long)size + bytes > active.Capacity && active.HasReaders ||
            (active.RollStartMs >= 0 && now - active.RollStartMs > cfg.SegmentMs) ||
            active.IsFullIndex ||
            _logEndOffset - active.BaseOffset > int.MaxValue - 1_000_000);
        if (roll) active = RollLocked(Math.Max(cfg.SegmentBytes, bytes));
        if ((long)active.Size + bytes > active.Capacity) active.EnsureCapacity(bytes);
        return active;
    }

    private LogSegment RollLocked(int capacity)
    {
        var cfg = Config;
        var old = _segments[^1];
        var fresh = LogSegment.CreateActive(Dir, _logEndOffset, capacity, cfg.SegmentIndexBytes, _cache);
        old.MakeInactive();
        var segs = new LogSegment[_segments.Length + 1];
        Array.Copy(_segments, segs, _segments.Length);
        segs[^1] = fresh;
        Volatile.Write(ref _segments, segs);
        // Kafka flushes the rolled segment asynchronously and only then moves the recovery point; chaining
        // keeps the flushes in order so the recovery point never passes an unsynced segment. The produce
        // request that triggered the roll does not wait for the fsync of up to segment.bytes of dirty data.
        long rp = fresh.BaseOffset;
        WriteRollSnapshotLocked(rp); // Kafka's roll takes a producer snapshot too: a crash replays from here (PartitionLog.Snapshots.cs)
        string snapshot = SnapshotPath(rp);
        _rollFlushes = _rollFlushes.ContinueWith(_ =>
        {
            try
            {
                old.FsyncFiles();
                MappedFile.FsyncPath(snapshot);
                AdvanceRecoveryPoint(rp);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { } // recovery point stays put: the next start rescans from there
        }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
        return fresh;
    }

    private Task _rollFlushes = Task.CompletedTask;

    /// <summary>Tests and the restart benchmark: waits until every rolled segment is fsynced and the recovery point moved past it.</summary>
    internal void WaitForRollFlushes()
    {
        Task pending;
        lock (_lock) pending = _rollFlushes;
        pending.Wait();
    }

    private void AdvanceRecoveryPoint(long offset)
    {
        long cur;
        while ((cur = Volatile.Read(ref _recoveryPoint)) < offset)
            if (Interlocked.CompareExchange(ref _recoveryPoint, offset, cur) == cur) return;
    }

    /// <summary>Forces a roll (tests, retention of an expired active segment).</summary>
    internal void Roll()
    {
        lock (_lock)
        {
            if (_segments[^1].Size > 0) RollLocked(Config.SegmentBytes);
        }
    }
}
