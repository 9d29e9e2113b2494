using System.Buffers.Binary;
using Microsoft.Extensions.Logging;
using Kayak.Protocol.Records;
using Kayak.Protocol;

namespace Kayak.Storage;

/// <summary>A follower's truncation to its leader (KIP-101 / KIP-279), Kafka's UnifiedLog.truncateTo.</summary>
public sealed partial class PartitionLog
{
    /// <summary>
    /// Removes every batch at or after <paramref name="offset"/> (rounded down to the start of the batch holding it, as
    /// Kafka truncates whole batches): later segments are deleted, the segment holding the offset is rewritten up to it
    /// (a copy replaces the file, as the cleaner's swap does, so readers keep their mappings) and becomes the active
    /// one, the high watermark and recovery point go no higher than the new end, and the producer state is rebuilt
    /// from the last snapshot at or below it. Returns the new log end offset; a no-op at or past the end.
    /// </summary>
    public long TruncateTo(long offset)
    {
        lock (_lock)
        {
            if (_closed) throw new StorageErrorException(ErrorCode.UnknownTopicOrPartition, $"Partition {Id} is closed");
            if (offset >= _logEndOffset) return _logEndOffset;
            if (offset < _logStartOffset) offset = _logStartOffset;
            var cfg = Config;
            var segs = _segments;
            int i = FindSegmentIndex(segs, offset);
            var seg = segs[i];
            int pos;
            byte[] keep;
            if (!seg.TryAcquire()) throw new StorageErrorException(ErrorCode.KafkaStorageError, $"Segment {seg.LogPath} of {Id} is gone");
            try
            {
                pos = seg.FindBatch(offset);
                if (pos < 0) pos = seg.Size;
                else offset = BinaryPrimitives.ReadInt64BigEndian(seg.Data[pos..]);
                keep = seg.Data[..pos].ToArray();
            }
            finally { seg.Release(); }
            try
            {
                _rollFlushes.Wait();
                string cleaned = seg.LogPath + CleanedSuffix;
                using (var f = new FileStream(cleaned, FileMode.Create, FileAccess.Write, FileShare.None))
                {
                    f.Write(keep);
                    f.Flush(flushToDisk: true);
                }
                for (int k = i + 1; k < segs.Length; k++) segs[k].Delete();
                File.Move(cleaned, seg.LogPath, overwrite: true);
                Posix.FsyncDirectory(Dir);
                seg.RetireReplaced();
                var fresh = LogSegment.Existing(Dir, seg.BaseOffset, _cache);
                fresh.Recover(cfg.IndexIntervalBytes, cfg.SegmentIndexBytes);
                fresh.Activate(Math.Max(cfg.SegmentBytes, fresh.Size), cfg.SegmentIndexBytes);
                fresh.RollStartMs = fresh.Size > 0 ? NowMs() : -1;
                var next = new LogSegment[i + 1];
                Array.Copy(segs, next, i);
                next[i] = fresh;
                Volatile.Write(ref _segments, next);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw StorageFailure("truncate", e);
            }
            _log.LogInformation("Truncated {Partition} to offset {Offset} (KIP-101: the leader's log diverged after it)", Id, offset);
            Volatile.Write(ref _logEndOffset, offset);
            _epochs.TruncateFromEnd(offset);
            if (_highWatermark > offset) Volatile.Write(ref _highWatermark, offset);
            if (_recoveryPoint > offset) Volatile.Write(ref _recoveryPoint, offset);
            _unflushedMessages = 0;
            RebuildProducerState(offset);
            return offset;
        }
    }
}
