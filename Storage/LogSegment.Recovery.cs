using System.Buffers.Binary;
using Kayak.Protocol.Records;

namespace Kayak.Storage;

/// <summary>
/// Loading and recovering a segment at startup: the trusting load of a segment below the recovery point and the full
/// CRC-checked recovery (Kafka's LogSegment.sanityCheck and LogSegment.recover). What recovery found is returned as a
/// <see cref="SegmentRecovery"/> so the partition can log it and truncate the log behind it (PartitionLog.Load.cs).
/// </summary>
internal sealed partial class LogSegment
{
    // ---------------------------------------------------------------- load / recovery

    /// <summary>
    /// Trusting load after a clean shutdown or below the recovery point: sanity-checks both index files
    /// (Kafka's sanityCheck) and reads the max timestamp from the time index. False when an index is
    /// missing or corrupt and the segment must be rebuilt with <see cref="Recover"/>.
    /// </summary>
    public bool TryLoadIndexes()
    {
        if (!File.Exists(IndexPath) || !File.Exists(TimeIndexPath)) return _size == 0 && CreateEmptyIndexes();
        byte[] idx = File.ReadAllBytes(IndexPath);
        byte[] tidx = File.ReadAllBytes(TimeIndexPath);
        if (!CountOffsetEntries(idx, out int offsetEntries) || !CountTimeEntries(tidx, out int timeEntries)) return false;
        _offsetIndexEntries = offsetEntries;
        _timeIndexEntries = timeEntries;
        if (timeEntries > 0)
        {
            var last = tidx.AsSpan((timeEntries - 1) * TimeEntrySize);
            MaxTimestamp = _lastTimeIndexTs = BinaryPrimitives.ReadInt64BigEndian(last);
            OffsetOfMaxTimestamp = BaseOffset + BinaryPrimitives.ReadInt32BigEndian(last[8..]);
        }
        return true;
    }

    private int _offsetIndexEntries;
    private int _timeIndexEntries;

    /// <summary>Sizes of the sealed offset and time indexes: the cleaner's grouping keeps merged segments within segment.index.bytes.</summary>
    public int OffsetIndexBytes => _offsetIndexEntries * OffsetEntrySize;
    public int TimeIndexBytes => _timeIndexEntries * TimeEntrySize;

    private bool CreateEmptyIndexes()
    {
        File.WriteAllBytes(IndexPath, []);
        File.WriteAllBytes(TimeIndexPath, []);
        _offsetIndexEntries = _timeIndexEntries = 0;
        return true;
    }

    // Valid prefix: strictly increasing relative offsets and positions, all inside the log. An all-zero
    // entry ends the index (an untrimmed preallocated tail); anything else out of order is corruption.
    private bool CountOffsetEntries(byte[] idx, out int count)
    {
        count = 0;
        if (idx.Length % OffsetEntrySize != 0) return false;
        int prevRel = 0, prevPos = 0;
        for (int i = 0; i + OffsetEntrySize <= idx.Length; i += OffsetEntrySize)
        {
            int rel = BinaryPrimitives.ReadInt32BigEndian(idx.AsSpan(i));
            int pos = BinaryPrimitives.ReadInt32BigEndian(idx.AsSpan(i + 4));
            if (rel == 0 && pos == 0) break;
            if (rel <= prevRel || pos <= prevPos || pos + RecordBatchHeader.Size > _size) return false;
            prevRel = rel; prevPos = pos; count++;
        }
        return true;
    }

    private bool CountTimeEntries(byte[] tidx, out int count)
    {
        count = 0;
        if (tidx.Length % TimeEntrySize != 0) return false;
        long prevTs = long.MinValue; int prevRel = -1;
        for (int i = 0; i + TimeEntrySize <= tidx.Length; i += TimeEntrySize)
        {
            long ts = BinaryPrimitives.ReadInt64BigEndian(tidx.AsSpan(i));
            int rel = BinaryPrimitives.ReadInt32BigEndian(tidx.AsSpan(i + 8));
            if (ts == 0 && rel == 0) break; // preallocated, never written
            if (ts <= prevTs || rel < prevRel || rel < 0) return false;
            prevTs = ts; prevRel = rel; count++;
        }
        return true;
    }

    /// <summary>
    /// Finds the end of the log by walking batch headers from the last index entry (header checks only,
    /// no CRC): used for the last segment after a clean shutdown, where the file may still be preallocated.
    /// Sets <see cref="NextOffset"/>; returns false if anything looks wrong (caller then runs <see cref="Recover"/>).
    /// </summary>
    public unsafe bool TryFindEnd()
    {
        long fileLength = new FileInfo(LogPath).Length;
        if (fileLength == 0) { _size = 0; NextOffset = BaseOffset; return true; }
        var map = MappedFile.Open(LogPath, 0, writable: false);
        try { return FindEnd(map, fileLength); }
        finally { map.Dispose(); }
    }

    private unsafe bool FindEnd(MappedFile map, long fileLength)
    {
        var data = new ReadOnlySpan<byte>(map.Pointer, (int)Math.Min(map.Capacity, int.MaxValue));
        int pos = 0;
        long next = BaseOffset;
        if (_offsetIndexEntries > 0)
        {
            var idx = File.ReadAllBytes(IndexPath);
            var last = idx.AsSpan((_offsetIndexEntries - 1) * OffsetEntrySize);
            pos = BinaryPrimitives.ReadInt32BigEndian(last[4..]);
            next = BaseOffset + BinaryPrimitives.ReadInt32BigEndian(last);
        }
        while (pos + RecordBatchHeader.Size <= data.Length)
        {
            var b = data[pos..];
            long baseOffset = BinaryPrimitives.ReadInt64BigEndian(b);
            int len = BinaryPrimitives.ReadInt32BigEndian(b[RecordBatchHeader.BatchLengthOffset..]);
            if (len == 0 && baseOffset == 0) break; // zero-filled preallocated space
            if (len < MinBatchLength || (long)pos + RecordBatchHeader.LogOverhead + len > data.Length
                || b[RecordBatchHeader.MagicOffset] != 2 || baseOffset < next) return false;
            next = baseOffset + BinaryPrimitives.ReadInt32BigEndian(b[RecordBatchHeader.LastOffsetDeltaOffset..]) + 1;
            pos += RecordBatchHeader.LogOverhead + len;
        }
        // Anything left that is not zero-filled is a torn tail: let full recovery deal with it.
        if (pos < data.Length && data.Slice(pos, Math.Min(data.Length - pos, RecordBatchHeader.Size)).IndexOfAnyExcept((byte)0) >= 0) return false;
        _size = pos;
        NextOffset = next;
        map.Dispose();
        // A segment left preallocated (its trim was still deferred to a reader at shutdown): trim it now.
        if (fileLength > pos)
            using (var fs = new FileStream(LogPath, FileMode.Open, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete))
                fs.SetLength(pos);
        return true;
    }

    /// <summary>
    /// Full recovery (Kafka's LogSegment.recover): validates every batch (length sane, magic 2, CRC-32C,
    /// offsets increasing), truncates the file at the first invalid batch (a torn write, garbage, a flipped bit, or
    /// the zero-filled preallocated tail), and rebuilds both indexes. Leaves the segment closed with exact files.
    /// With <paramref name="fsyncIndexes"/> false (a segment in the recovery range) the rebuilt indexes are left to the
    /// page cache as Kafka's are: the recovery point stays below the segment until it is fsynced, so a power loss only
    /// means recovering it again; two fsyncs per segment were most of an unclean start with many partitions.
    /// </summary>
    public unsafe SegmentRecovery Recover(int indexIntervalBytes, int indexBytes, bool fsyncIndexes = true)
    {
        long fileLength = new FileInfo(LogPath).Length;
        // Room for every entry the data can produce, even if segment.index.bytes shrank since it was written:
        // a full index must never make recovery drop valid batches.
        long maxEntries = fileLength / Math.Max(MinBatchLength + RecordBatchHeader.LogOverhead, indexIntervalBytes) + 2;
        int bytes = (int)Math.Min(int.MaxValue / TimeEntrySize * (long)TimeEntrySize, Math.Max(indexBytes, maxEntries * TimeEntrySize));
        _offsetIndex.BeginRebuild(bytes);
        _timeIndex.BeginRebuild(bytes);
        MaxTimestamp = OffsetOfMaxTimestamp = -1;
        _lastTimeIndexTs = -1;
        _bytesSinceIndex = 0;
        int pos = 0;
        long next = BaseOffset;
        string? problem = null;
        long droppedData = 0;
        if (fileLength > 0)
        {
            var map = MappedFile.Open(LogPath, 0, writable: true);
            map.AdviseSequential();
            var data = new ReadOnlySpan<byte>(map.Pointer, (int)Math.Min(map.Capacity, int.MaxValue));
            while (pos < data.Length)
            {
                problem = CheckBatch(data, pos, next);
                if (problem is not null) break;
                var b = data[pos..];
                int total = RecordBatchHeader.LogOverhead + BinaryPrimitives.ReadInt32BigEndian(b[RecordBatchHeader.BatchLengthOffset..]);
                long baseOffset = BinaryPrimitives.ReadInt64BigEndian(b);
                long maxTs = BinaryPrimitives.ReadInt64BigEndian(b[RecordBatchHeader.MaxTimestampOffset..]);
                IndexBatch(pos, baseOffset, total, maxTs, indexIntervalBytes);
                next = baseOffset + BinaryPrimitives.ReadInt32BigEndian(b[RecordBatchHeader.LastOffsetDeltaOffset..]) + 1;
                pos += total;
            }
            if (problem is not null)
            {
                droppedData = DataBytesAfter(data, pos);
                // Zeros where the next batch would start, and only zeros after them: the end of the preallocated
                // active segment, not damage (Kafka's files are never preallocated by default, so it has no such case).
                if (droppedData == 0) problem = null;
            }
            map.Dispose(trimTo: pos);
        }
        _size = pos;
        NextOffset = next;
        AppendFinalTimeIndexEntry();
        _offsetIndexEntries = _offsetIndex.Count;
        _timeIndexEntries = _timeIndex.Count;
        _offsetIndex.EndRebuild(fsyncIndexes);
        _timeIndex.EndRebuild(fsyncIndexes);
        return new SegmentRecovery(pos, fileLength - pos, droppedData, problem, next);
    }

    /// <summary>Why the batch at <paramref name="pos"/> is invalid (Kafka's CorruptRecordException/InvalidRecordException cases), or null.</summary>
    private static string? CheckBatch(ReadOnlySpan<byte> data, int pos, long next)
    {
        if (pos + RecordBatchHeader.Size > data.Length) return $"{data.Length - pos} bytes left, less than a batch header";
        var b = data[pos..];
        long baseOffset = BinaryPrimitives.ReadInt64BigEndian(b);
        int len = BinaryPrimitives.ReadInt32BigEndian(b[RecordBatchHeader.BatchLengthOffset..]);
        if (len < MinBatchLength) return $"batch length {len} is smaller than the minimum {MinBatchLength}";
        if ((long)pos + RecordBatchHeader.LogOverhead + len > data.Length) return $"batch length {len} runs past the end of the file";
        if (b[RecordBatchHeader.MagicOffset] != 2) return $"magic byte {b[RecordBatchHeader.MagicOffset]} (only v2 batches are stored)";
        if (baseOffset < next) return $"base offset {baseOffset} is below the next expected offset {next}";
        if (BinaryPrimitives.ReadInt32BigEndian(b[RecordBatchHeader.LastOffsetDeltaOffset..]) < 0) return "negative last offset delta";
        uint crc = BinaryPrimitives.ReadUInt32BigEndian(b[RecordBatchHeader.CrcOffset..]);
        uint actual = Crc32C.Compute(b[RecordBatchHeader.AttributesOffset..(RecordBatchHeader.LogOverhead + len)]);
        return crc == actual ? null : $"CRC-32C mismatch (stored {crc:x8}, computed {actual:x8})";
    }

    /// <summary>
    /// How many bytes of data recovery drops from <paramref name="pos"/>: up to the first all-zero 4 KiB page (so the
    /// rest of a rolled, trimmed segment exactly; a torn tail of the preallocated active segment to its page end). An all-zero header followed by data (a lost page) still counts: a window of
    /// <see cref="ZeroProbeBytes"/> after it is checked. Bounded so that a preallocated tail of up to segment.bytes is
    /// never read whole (faulting in a sparse 1 GiB tail would fill 1 GiB of page cache with zeros).
    /// </summary>
    private static long DataBytesAfter(ReadOnlySpan<byte> data, int pos)
    {
        const int Page = 4096;
        int end = pos;
        int p = pos;
        while (p < data.Length)
        {
            int n = Math.Min(Page - (p % Page), data.Length - p);
            if (data.Slice(p, n).IndexOfAnyExcept((byte)0) < 0) break;
            p += n;
            end = p;
        }
        if (end == pos)
        {
            int window = (int)Math.Min(ZeroProbeBytes, data.Length - (long)pos);
            int last = data.Slice(pos, window).LastIndexOfAnyExcept((byte)0);
            if (last >= 0) end = pos + last + 1;
        }
        return end - pos;
    }

    /// <summary>
    /// Four pages: enough to see a batch whose first page was lost but whose next ones reached the disk, small enough
    /// that probing the sparse tail of thousands of preallocated active segments allocates little page cache.
    /// </summary>
    private const int ZeroProbeBytes = 16 * 1024;

    /// <summary>Makes a loaded or recovered segment the active one: maps log and indexes writable.</summary>
    public void Activate(int capacity, int indexBytes)
    {
        _log = MappedFile.Open(LogPath, Math.Max(capacity, Math.Max(_size, 1)), writable: true, writeThroughFile: true);
        _offsetIndex.OpenWritable(indexBytes, _offsetIndexEntries);
        _timeIndex.OpenWritable(indexBytes, _timeIndexEntries);
        // Bytes after the last index entry are unknown after a load; start counting afresh.
        _bytesSinceIndex = 0;
        _active = true;
    }

    /// <summary>Scans batch headers to find the max timestamp when the time index is empty (old/untracked segment).</summary>
    public void ComputeMaxTimestampIfMissing()
    {
        if (MaxTimestamp >= 0 || Size == 0) return;
        if (!TryAcquire()) return;
        try
        {
            var data = Data;
            int pos = 0;
            while (pos + RecordBatchHeader.Size <= data.Length)
            {
                var b = data[pos..];
                long ts = BinaryPrimitives.ReadInt64BigEndian(b[RecordBatchHeader.MaxTimestampOffset..]);
                if (ts > MaxTimestamp) { MaxTimestamp = ts; OffsetOfMaxTimestamp = BinaryPrimitives.ReadInt64BigEndian(b); }
                pos += RecordBatchHeader.LogOverhead + BinaryPrimitives.ReadInt32BigEndian(b[RecordBatchHeader.BatchLengthOffset..]);
            }
        }
        finally { Release(); }
    }
}

/// <summary>What <see cref="LogSegment.Recover"/> found.</summary>
/// <param name="ValidBytes">Length of the valid batches the segment keeps.</param>
/// <param name="TruncatedBytes">Bytes cut off the file (data dropped plus any preallocated zero tail).</param>
/// <param name="DroppedDataBytes">Of those, bytes that were not zero fill: what a corrupt or torn batch cost.</param>
/// <param name="Problem">Why the batch at <paramref name="ValidBytes"/> was invalid; null when the segment simply ended.</param>
/// <param name="NextOffset">Offset after the last valid batch.</param>
internal readonly record struct SegmentRecovery(int ValidBytes, long TruncatedBytes, long DroppedDataBytes, string? Problem, long NextOffset)
{
    public bool FoundInvalidData => Problem is not null;
}
