using System.Buffers;
using System.Buffers.Binary;
using Kayak.Protocol;
using Kayak.Protocol.Records;

namespace Kayak.Storage;

/// <summary>
/// Log compaction (cleanup.policy=compact), a simplified version of Kafka's LogCleaner:
/// <list type="bullet">
/// <item>Runs when at least one segment was rolled since the last pass; the active segment is never cleaned
/// and its keys are not considered (as in Kafka, where the dirty section ends before the active segment).</item>
/// <item>Pass 1 maps every key in the inactive segments to its latest offset; pass 2 rewrites each inactive
/// segment keeping, per key, only that latest record. Tombstones (null value) are dropped once their batch
/// is older than delete.retention.ms. Keyless records are kept.</item>
/// <item>Rewritten batches keep their base offset, base/max timestamp and lastOffsetDelta (offsets are never
/// reassigned; consumers see gaps), with the record count, length and CRC updated. Batches left without
/// records are dropped.</item>
/// <item>Compressed and control batches are kept whole and their keys are not mapped (decompression belongs
/// to the Protocol layer) — conservative: they never cause other records to be removed.</item>
/// <item>Crash safety as in Kafka: write <c>.log.cleaned</c>, fsync, rename to <c>.log.swap</c>, then atomically
/// rename over the <c>.log</c>; an interrupted swap is completed on the next load.</item>
/// </list>
/// <item>Transactions (Kafka's cleaner does the same): only segments wholly below the last stable offset are
/// cleaned; records of aborted transactions neither map their keys (they must not shadow committed values)
/// nor get removed here (read_committed consumers skip them through the aborted-transaction index); a
/// producer batch whose records are all superseded is kept as an empty batch so the producer's sequence
/// state survives a reload.</item>
/// Not done: merging small segments, min.cleanable.dirty.ratio / lag configs, a cleaner-offset checkpoint
/// (after a restart the first pass re-reads the whole log), and producer-state-preserving empty batches.
/// </summary>
public sealed partial class PartitionLog
{
    private readonly object _compactionLock = new();
    private long _cleanedUpTo = -1;

    /// <summary>One compaction pass; returns the number of records removed.</summary>
    internal long Compact(long now)
    {
        var cfg = Config;
        if (!cfg.Compact) return 0;
        lock (_compactionLock)
        {
            var segs = Volatile.Read(ref _segments);
            if (segs.Length < 2 || _closed) return 0;
            long activeBase = segs[^1].BaseOffset;
            if (activeBase <= _cleanedUpTo) return 0;
            // Never clean at or above the last stable offset: open transactions may still abort.
            long lso = LastStableOffset;
            int cleanable = FindSegmentIndex(segs, lso); // the segments before the one holding the LSO
            if (cleanable == 0) return 0;
            var inactive = segs[..cleanable];
            var aborted = ProducerState.AbortedSnapshot;

            var latest = new Dictionary<byte[], long>(ByteArrayComparer.Instance);
            foreach (var seg in inactive)
            {
                if (!seg.TryAcquire()) continue;
                try { MapKeys(seg.Data, latest, aborted); }
                finally { seg.Release(); }
            }

            long removed = 0;
            foreach (var seg in inactive)
                removed += CleanSegment(seg, latest, now - cfg.DeleteRetentionMs, cfg, aborted);
            _cleanedUpTo = cleanable == segs.Length - 1 ? activeBase : _cleanedUpTo;
            return removed;
        }
    }

    /// <summary>Is this batch part of an aborted transaction (its producer's aborted range covers it)?</summary>
    private static bool IsAborted(ReadOnlySpan<byte> batch, AbortedTransaction[] aborted)
    {
        if (aborted.Length == 0) return false;
        short attrs = BinaryPrimitives.ReadInt16BigEndian(batch[RecordBatchHeader.AttributesOffset..]);
        if ((attrs & 0x10) == 0 || (attrs & 0x20) != 0) return false;
        long pid = BinaryPrimitives.ReadInt64BigEndian(batch[RecordBatchHeader.ProducerIdOffset..]);
        long offset = BinaryPrimitives.ReadInt64BigEndian(batch);
        foreach (var a in aborted)
            if (a.ProducerId == pid && offset >= a.FirstOffset && offset <= a.LastOffset) return true;
        return false;
    }

    private static void MapKeys(ReadOnlySpan<byte> data, Dictionary<byte[], long> latest, AbortedTransaction[] aborted)
    {
        int pos = 0;
        while (pos + RecordBatchHeader.Size <= data.Length)
        {
            var b = data[pos..];
            int total = RecordBatchHeader.LogOverhead + BinaryPrimitives.ReadInt32BigEndian(b[RecordBatchHeader.BatchLengthOffset..]);
            short attrs = BinaryPrimitives.ReadInt16BigEndian(b[RecordBatchHeader.AttributesOffset..]);
            if ((attrs & 0x7) == 0 && (attrs & 0x20) == 0 && !IsAborted(b, aborted))
            {
                long baseOffset = BinaryPrimitives.ReadInt64BigEndian(b);
                var r = b[RecordBatchHeader.Size..total];
                var lookup = latest.GetAlternateLookup<ReadOnlySpan<byte>>();
                while (TryReadRecord(r, out int size, out int offsetDelta, out var key, out _, out bool hasKey))
                {
                    if (hasKey) lookup[key] = baseOffset + offsetDelta;
                    r = r[size..];
                }
            }
            pos += total;
        }
    }

    // Parses one record (KIP-98 layout): length, attributes, timestampDelta, offsetDelta, key, value, headers.
    private static bool TryReadRecord(ReadOnlySpan<byte> r, out int size, out int offsetDelta, out ReadOnlySpan<byte> key, out bool tombstone, out bool hasKey)
    {
        size = offsetDelta = 0; key = default; tombstone = false; hasKey = false;
        if (!VarInt.TryReadVarInt(r, out int length, out int n) || length <= 0 || n + length > r.Length) return false;
        var rec = r.Slice(n, length);
        int p = 1; // attributes
        if (!VarInt.TryReadVarLong(rec[p..], out _, out int m)) return false;
        p += m;
        if (!VarInt.TryReadVarInt(rec[p..], out offsetDelta, out m)) return false;
        p += m;
        if (!VarInt.TryReadVarInt(rec[p..], out int keyLen, out m)) return false;
        p += m;
        hasKey = keyLen >= 0;
        if (keyLen > 0) { if (p + keyLen > rec.Length) return false; key = rec.Slice(p, keyLen); p += keyLen; }
        if (!VarInt.TryReadVarInt(rec[p..], out int valueLen, out _)) return false;
        tombstone = valueLen < 0;
        size = n + length;
        return true;
    }

    private long CleanSegment(LogSegment seg, Dictionary<byte[], long> latest, long tombstoneHorizon, TopicConfig cfg, AbortedTransaction[] aborted)
    {
        if (!seg.TryAcquire()) return 0;
        string cleaned = seg.LogPath + ".cleaned";
        long removed = 0;
        bool changed = false;
        try
        {
            var data = seg.Data;
            using (var output = new FileStream(cleaned, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
            {
                int pos = 0;
                while (pos + RecordBatchHeader.Size <= data.Length)
                {
                    var b = data[pos..];
                    int total = RecordBatchHeader.LogOverhead + BinaryPrimitives.ReadInt32BigEndian(b[RecordBatchHeader.BatchLengthOffset..]);
                    if (IsAborted(b[..total], aborted)) output.Write(b[..total]); // see the class comment
                    else removed += FilterBatch(b[..total], latest, tombstoneHorizon, output, ref changed);
                    pos += total;
                }
                output.Flush(flushToDisk: true);
            }
        }
        finally { seg.Release(); }

        if (!changed) { File.Delete(cleaned); return 0; }
        string swap = seg.LogPath + ".swap";
        File.Move(cleaned, swap, overwrite: true);
        lock (_lock)
        {
            int idx = Array.IndexOf(_segments, seg);
            if (idx < 0 || idx == _segments.Length - 1 || _closed)
            {
                File.Delete(swap); // deleted by retention (or the topic) meanwhile
                return 0;
            }
            File.Move(swap, seg.LogPath, overwrite: true);
            seg.RetireReplaced();
            var fresh = LogSegment.Existing(Dir, seg.BaseOffset, _cache);
            fresh.Recover(cfg.IndexIntervalBytes, cfg.SegmentIndexBytes);
            fresh.NextOffset = seg.NextOffset;
            var segs = (LogSegment[])_segments.Clone();
            segs[idx] = fresh;
            Volatile.Write(ref _segments, segs);
        }
        return removed;
    }

    /// <summary>Writes the batch with superseded records removed; returns how many records were removed.</summary>
    private static int FilterBatch(ReadOnlySpan<byte> batch, Dictionary<byte[], long> latest, long tombstoneHorizon, Stream output, ref bool changed)
    {
        short attrs = BinaryPrimitives.ReadInt16BigEndian(batch[RecordBatchHeader.AttributesOffset..]);
        if ((attrs & 0x7) != 0 || (attrs & 0x20) != 0) { output.Write(batch); return 0; }
        long baseOffset = BinaryPrimitives.ReadInt64BigEndian(batch);
        long maxTs = BinaryPrimitives.ReadInt64BigEndian(batch[RecordBatchHeader.MaxTimestampOffset..]);
        bool dropTombstones = maxTs < tombstoneHorizon;
        var lookup = latest.GetAlternateLookup<ReadOnlySpan<byte>>();

        byte[] buffer = ArrayPool<byte>.Shared.Rent(batch.Length);
        try
        {
            int outLen = RecordBatchHeader.Size, kept = 0, removed = 0;
            var r = batch[RecordBatchHeader.Size..];
            while (TryReadRecord(r, out int size, out int offsetDelta, out var key, out bool tombstone, out bool hasKey))
            {
                bool keep = true;
                if (hasKey)
                {
                    keep = !lookup.TryGetValue(key, out long last) || last == baseOffset + offsetDelta;
                    if (keep && tombstone && dropTombstones) keep = false;
                }
                if (keep) { r[..size].CopyTo(buffer.AsSpan(outLen)); outLen += size; kept++; }
                else removed++;
                r = r[size..];
            }
            if (removed == 0) { output.Write(batch); return 0; }
            changed = true;
            bool hasProducer = BinaryPrimitives.ReadInt64BigEndian(batch[RecordBatchHeader.ProducerIdOffset..]) >= 0;
            if (kept == 0 && !hasProducer) return removed;
            var nb = buffer.AsSpan(0, outLen);
            batch[..RecordBatchHeader.Size].CopyTo(nb);
            BinaryPrimitives.WriteInt32BigEndian(nb[RecordBatchHeader.BatchLengthOffset..], outLen - RecordBatchHeader.LogOverhead);
            BinaryPrimitives.WriteInt32BigEndian(nb[RecordBatchHeader.RecordsCountOffset..], kept);
            BinaryPrimitives.WriteUInt32BigEndian(nb[RecordBatchHeader.CrcOffset..], Crc32C.Compute(nb[RecordBatchHeader.AttributesOffset..]));
            output.Write(nb);
            return removed;
        }
        finally { ArrayPool<byte>.Shared.Return(buffer); }
    }

    private sealed class ByteArrayComparer : IEqualityComparer<byte[]>, IAlternateEqualityComparer<ReadOnlySpan<byte>, byte[]>
    {
        public static readonly ByteArrayComparer Instance = new();
        public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);
        public int GetHashCode(byte[] obj) => GetHashCode((ReadOnlySpan<byte>)obj);
        public bool Equals(ReadOnlySpan<byte> alternate, byte[] other) => alternate.SequenceEqual(other);
        public int GetHashCode(ReadOnlySpan<byte> alternate)
        {
            var h = new HashCode();
            h.AddBytes(alternate);
            return h.ToHashCode();
        }
        public byte[] Create(ReadOnlySpan<byte> alternate) => alternate.ToArray();
    }
}
