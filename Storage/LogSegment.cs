using System.Buffers.Binary;
using Kayak.Protocol;
using Kayak.Protocol.Records;

namespace Kayak.Storage;

/// <summary>
/// One segment of a partition log: <c>NNNNNNNNNNNNNNNNNNNN.log</c> plus its sparse <c>.index</c>
/// (int32 relative offset, int32 position) and <c>.timeindex</c> (int64 timestamp, int32 relative offset).
/// <para>
/// The active segment is mapped writable and preallocated; rolled (inactive) segments are mapped
/// read-only on demand and unmapped by <see cref="SegmentMapCache"/> when idle, so only about one map per
/// partition stays resident (10,000 partitions fit in the default vm.max_map_count of 65530).
/// </para>
/// <para>
/// Lifetime: readers <see cref="TryAcquire"/>/<see cref="Release"/> around any access to mapped memory.
/// A deleted segment's files are removed at once (Linux keeps mapped pages valid), but the mapping itself
/// is only released when the last reader lets go, so a fetch in flight never touches unmapped memory.
/// </para>
/// Index entries point at batch <b>base</b> offsets (Kafka's point at batch last offsets); the time index
/// stores (max timestamp so far, base offset of the batch holding it). Both only serve this broker's lookups.
/// </summary>
internal sealed partial class LogSegment
{
    public const int OffsetEntrySize = 8;
    public const int TimeEntrySize = 12;
    /// <summary>Smallest legal v2 batch: the 61-byte header with zero records.</summary>
    private const int MinBatchLength = RecordBatchHeader.Size - RecordBatchHeader.LogOverhead;

    private readonly SegmentMapCache? _cache;
    private readonly SparseIndex _offsetIndex;
    private readonly SparseIndex _timeIndex;
    private readonly object _lock = new();
    private MappedFile? _log;
    private int _size;
    private int _readers;
    private bool _active;
    private bool _closed;
    private bool _deleted;
    private int _bytesSinceIndex;
    private long _lastTimeIndexTs = -1;

    public long BaseOffset { get; }
    public string LogPath { get; }
    public string IndexPath => _offsetIndex.Path;
    public string TimeIndexPath => _timeIndex.Path;
    /// <summary>Kafka's <c>.txnindex</c>: aborted transactions whose abort marker lies in this segment.</summary>
    public string TxnIndexPath => Path.ChangeExtension(LogPath, ".txnindex");

    /// <summary>Offset after the last batch (written under the partition lock).</summary>
    public long NextOffset { get; set; }
    /// <summary>Largest batch max-timestamp in the segment, -1 when empty.</summary>
    public long MaxTimestamp { get; private set; } = -1;
    /// <summary>Base offset of the batch holding <see cref="MaxTimestamp"/>.</summary>
    public long OffsetOfMaxTimestamp { get; private set; } = -1;
    /// <summary>Broker time of the first append (segment.ms is measured from here).</summary>
    public long RollStartMs { get; set; } = -1;

    /// <summary>Valid bytes; published with a volatile write after the data and index entries.</summary>
    public int Size => Volatile.Read(ref _size);
    public bool IsActive => _active;
    public bool IsFullIndex => _offsetIndex.IsFull || _timeIndex.IsFull;
    public int Capacity => _log is { Writable: true } l ? (int)Math.Min(l.Capacity, int.MaxValue) : _size;

    /// <summary>Cache bookkeeping, owned by <see cref="SegmentMapCache"/> under its lock.</summary>
    internal LinkedListNode<LogSegment>? CacheNode;

    private LogSegment(string dir, long baseOffset, SegmentMapCache? cache)
    {
        BaseOffset = baseOffset;
        _cache = cache;
        string stem = Path.Combine(dir, FileStem(baseOffset));
        LogPath = stem + ".log";
        _offsetIndex = new SparseIndex(stem + ".index", OffsetEntrySize);
        _timeIndex = new SparseIndex(stem + ".timeindex", TimeEntrySize);
        NextOffset = baseOffset;
    }

    public static string FileStem(long baseOffset) => baseOffset.ToString("D20", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>A brand-new empty active segment (stale files with the same base offset are replaced).</summary>
    public static LogSegment CreateActive(string dir, long baseOffset, int capacity, int indexBytes, SegmentMapCache? cache)
    {
        var s = new LogSegment(dir, baseOffset, cache);
        File.Delete(s.LogPath);
        File.Delete(s.IndexPath);
        File.Delete(s.TimeIndexPath);
        s._active = true;
        s._log = MappedFile.Open(s.LogPath, capacity, writable: true, writeThroughFile: true);
        s._offsetIndex.OpenWritable(indexBytes, 0);
        s._timeIndex.OpenWritable(indexBytes, 0);
        return s;
    }

    /// <summary>An existing segment, closed; the caller loads or recovers it next.</summary>
    public static LogSegment Existing(string dir, long baseOffset, SegmentMapCache? cache)
    {
        var s = new LogSegment(dir, baseOffset, cache);
        s._size = (int)Math.Min(new FileInfo(s.LogPath).Length, int.MaxValue);
        return s;
    }

    // ---------------------------------------------------------------- append (partition lock held)

    /// <summary>Grows the active mapping so <paramref name="bytes"/> more fit (an oversized first batch).</summary>
    public void EnsureCapacity(int bytes)
    {
        if (_log is null) throw new InvalidOperationException("Segment is not active");
        long needed = (long)_size + bytes;
        if (needed <= _log.Capacity) return;
        lock (_lock)
        {
            // Readers may hold slices of the old mapping: only remap when nobody reads (an empty or
            // oversize-append segment rarely has readers); otherwise the caller rolls instead.
            if (_readers > 0) throw new InvalidOperationException("Cannot remap a segment with readers");
            _log.Dispose();
            _log = MappedFile.Open(LogPath, needed, writable: true, writeThroughFile: true);
        }
    }

    public bool HasReaders { get { lock (_lock) return _readers > 0; } }

    /// <summary>Writes appended bytes at <paramref name="position"/> (≥ Size); readers see them after <see cref="Commit"/>.</summary>
    public void Write(int position, ReadOnlySpan<byte> data) => _log!.Write(position, data);

    /// <summary>Publishes <paramref name="length"/> appended bytes to readers.</summary>
    public void Commit(int length) => Volatile.Write(ref _size, _size + length);

    /// <summary>Before an append of <paramref name="batches"/> batches: disk blocks for the index entries it may add (at most one offset and one time entry per batch).</summary>
    public void ReserveIndexRoom(int batches)
    {
        _offsetIndex.Reserve(batches);
        _timeIndex.Reserve(batches + 1); // + the final entry written on roll/close
    }

    /// <summary>Kafka's indexing rule: an entry when more than index.interval.bytes were appended since the last one.</summary>
    public void IndexBatch(int position, long baseOffset, int batchSize, long batchMaxTimestamp, int indexIntervalBytes)
    {
        if (batchMaxTimestamp > MaxTimestamp) { MaxTimestamp = batchMaxTimestamp; OffsetOfMaxTimestamp = baseOffset; }
        if (_bytesSinceIndex > indexIntervalBytes && !_offsetIndex.IsFull && !_timeIndex.IsFull)
        {
            Span<byte> e = stackalloc byte[TimeEntrySize];
            BinaryPrimitives.WriteInt32BigEndian(e, (int)(baseOffset - BaseOffset));
            BinaryPrimitives.WriteInt32BigEndian(e[4..], position);
            _offsetIndex.Append(e[..OffsetEntrySize]);
            if (MaxTimestamp > _lastTimeIndexTs) AppendTimeEntry(e);
            _bytesSinceIndex = 0;
        }
        _bytesSinceIndex += batchSize;
    }

    private void AppendTimeEntry(Span<byte> scratch)
    {
        BinaryPrimitives.WriteInt64BigEndian(scratch, MaxTimestamp);
        BinaryPrimitives.WriteInt32BigEndian(scratch[8..], (int)(OffsetOfMaxTimestamp - BaseOffset));
        _timeIndex.Append(scratch[..TimeEntrySize]);
        _lastTimeIndexTs = MaxTimestamp;
    }

    /// <summary>Like Kafka on roll/close: make the last time-index entry carry the segment's max timestamp.</summary>
    private void AppendFinalTimeIndexEntry()
    {
        if (MaxTimestamp > _lastTimeIndexTs && MaxTimestamp >= 0 && _timeIndex.IsMapped && !_timeIndex.IsFull)
            AppendTimeEntry(stackalloc byte[TimeEntrySize]);
    }

    public void Flush()
    {
        lock (_lock)
        {
            _log?.Flush();
            _offsetIndex.Flush();
            _timeIndex.Flush();
        }
        // The aborted-transaction index is appended through a FileStream, not the mapping (ProducerState.Log.cs).
        if (File.Exists(TxnIndexPath)) MappedFile.FsyncPath(TxnIndexPath);
    }

    /// <summary>
    /// Roll: seals the segment (final time-index entry) and trims files to their real length once no reader
    /// holds the writable mapping. Durability is the caller's job (<see cref="FsyncFiles"/> in the background,
    /// like Kafka's asynchronous flush of the rolled segment): unmapping keeps dirty pages in the page cache.
    /// </summary>
    public void MakeInactive()
    {
        AppendFinalTimeIndexEntry();
        lock (_lock)
        {
            _active = false;
            _offsetIndexEntries = _offsetIndex.Count;
            _timeIndexEntries = _timeIndex.Count;
            if (_readers == 0) CloseMappingLocked();
        }
        // Not cached: the writable map is dropped by the last reader; later reads map read-only on demand.
    }

    /// <summary>
    /// fsyncs the segment's files by path (log, both indexes and the <c>.txnindex</c> if any, as Kafka's
    /// LogSegment.flush); works whether or not they are still mapped. The transaction index must be durable before
    /// the recovery point passes the segment: a load trusts it and replays producer state only after the snapshot.
    /// </summary>
    public void FsyncFiles()
    {
        MappedFile.FsyncPath(LogPath);
        MappedFile.FsyncPath(IndexPath);
        MappedFile.FsyncPath(TimeIndexPath);
        MappedFile.FsyncPath(TxnIndexPath); // absent unless a transaction was aborted here: skipped then
    }

    // ---------------------------------------------------------------- reads

    public bool TryAcquire()
    {
        bool inactive;
        lock (_lock)
        {
            if (_closed) return false;
            if (_log is null && !_active && _size > 0)
            {
                try { MapReadOnlyLocked(); }
                catch (IOException e) { StorageThrow.StorageFailure($"Cannot map {LogPath}: {e.Message}"); }
            }
            _readers++;
            inactive = !_active;
        }
        if (inactive) _cache?.Touch(this);
        return true;
    }

    public void Release()
    {
        lock (_lock)
        {
            // Closed: drop the mapping; rolled: drop the writable one (later reads map read-only on demand).
            if (--_readers == 0 && (_closed || !_active && _log is { Writable: true })) CloseMappingLocked();
        }
    }

    private void MapReadOnlyLocked()
    {
        // keepFile: the descriptor stays open while mapped so large fetches can sendfile(2) from it
        // (FetchSlice.TryGetFile); bounded like the maps by SegmentMapCache, not one per partition.
        _log = MappedFile.Open(LogPath, 0, writable: false, keepFile: true);
        try
        {
            _offsetIndex.OpenReadOnly(_offsetIndexEntries);
            _timeIndex.OpenReadOnly(_timeIndexEntries);
        }
        catch
        {
            _log.Dispose(); _log = null;
            _offsetIndex.Close(); _timeIndex.Close();
            throw;
        }
    }

    private void CloseMappingLocked()
    {
        var log = _log;
        _log = null;
        bool trim = log is { Writable: true } && !_deleted;
        log?.Dispose(trim ? _size : -1);
        _offsetIndex.Close();
        _timeIndex.Close();
    }

    /// <summary>Cache eviction: unmaps an idle inactive segment. True when the segment no longer needs a cache slot.</summary>
    public bool TryUnmapIdle()
    {
        lock (_lock)
        {
            if (_active || _closed || _log is null) return true;
            if (_readers > 0) return false;
            CloseMappingLocked();
            return true;
        }
    }

    /// <summary>Valid bytes of the segment; only while acquired.</summary>
    public unsafe ReadOnlySpan<byte> Data => _log is null ? default : new ReadOnlySpan<byte>(_log.Pointer, Size);

    public ReadOnlyMemory<byte> Memory(int position, int length) => _log!.Memory(position, length);

    /// <summary>
    /// The descriptor of the mapped log file (the same inode as <see cref="Data"/>), or null when the mapping keeps
    /// none; only while acquired. It is closed with the mapping, which happens only after the last reader released.
    /// </summary>
    public Microsoft.Win32.SafeHandles.SafeFileHandle? FileHandle => _log?.FileHandle;

    /// <summary>Largest index entry with base offset ≤ target: the position to start scanning from.</summary>
    public int LookupPosition(long targetOffset)
    {
        int n = _offsetIndex.Count;
        if (n == 0 || !_offsetIndex.IsMapped) return 0;
        long rel = targetOffset - BaseOffset;
        int lo = 0, hi = n - 1, found = -1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            int r = BinaryPrimitives.ReadInt32BigEndian(_offsetIndex.Entry(mid));
            if (r <= rel) { found = mid; lo = mid + 1; } else hi = mid - 1;
        }
        return found < 0 ? 0 : BinaryPrimitives.ReadInt32BigEndian(_offsetIndex.Entry(found)[4..]);
    }

    /// <summary>Base offset to start a timestamp scan at: the latest time-index entry with timestamp &lt; target.</summary>
    public long LookupTimestamp(long targetTimestamp)
    {
        int n = _timeIndex.Count;
        if (n == 0 || !_timeIndex.IsMapped) return BaseOffset;
        int lo = 0, hi = n - 1, found = -1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            long ts = BinaryPrimitives.ReadInt64BigEndian(_timeIndex.Entry(mid));
            if (ts < targetTimestamp) { found = mid; lo = mid + 1; } else hi = mid - 1;
        }
        return found < 0 ? BaseOffset : BaseOffset + BinaryPrimitives.ReadInt32BigEndian(_timeIndex.Entry(found)[8..]);
    }

    /// <summary>
    /// Position of the batch containing <paramref name="offset"/> (or the first batch after it), or -1 when
    /// the segment ends first. Only while acquired. Falls back to a scan from 0 if the index points at
    /// something that is not a batch boundary (a corrupt index must not corrupt fetches).
    /// </summary>
    public int FindBatch(long offset)
    {
        var data = Data;
        int pos = LookupPosition(offset);
        if (pos > 0 && !LooksLikeBatch(data, pos)) pos = 0;
        while (pos + RecordBatchHeader.Size <= data.Length)
        {
            var b = data[pos..];
            long baseOffset = BinaryPrimitives.ReadInt64BigEndian(b);
            int len = BinaryPrimitives.ReadInt32BigEndian(b[RecordBatchHeader.BatchLengthOffset..]);
            if (len < MinBatchLength || (long)pos + RecordBatchHeader.LogOverhead + len > data.Length)
                // Kafka's FileRecords iterator throws CorruptRecordException here: CORRUPT_MESSAGE for this partition.
                StorageThrow.Corrupt($"Corrupt batch at position {pos} of {LogPath}: length {len}");
            int lastDelta = BinaryPrimitives.ReadInt32BigEndian(b[RecordBatchHeader.LastOffsetDeltaOffset..]);
            if (baseOffset + lastDelta >= offset) return pos;
            pos += RecordBatchHeader.LogOverhead + len;
        }
        return -1;
    }

    private bool LooksLikeBatch(ReadOnlySpan<byte> data, int pos)
    {
        if (pos + RecordBatchHeader.Size > data.Length) return false;
        var b = data[pos..];
        long baseOffset = BinaryPrimitives.ReadInt64BigEndian(b);
        return b[RecordBatchHeader.MagicOffset] == 2 && baseOffset >= BaseOffset && baseOffset < NextOffsetOrMax();
    }

    private long NextOffsetOrMax() => NextOffset > BaseOffset ? NextOffset : long.MaxValue;

    // ---------------------------------------------------------------- delete / close

    /// <summary>Retention / topic deletion: removes the files now; the mapping goes when the last reader releases.</summary>
    public void Delete()
    {
        lock (_lock)
        {
            _deleted = true;
            _closed = true;
            TryDelete(LogPath);
            TryDelete(IndexPath);
            TryDelete(TimeIndexPath);
            TryDelete(TxnIndexPath); // aborted-transaction index (ProducerState.Log.cs)
            if (_readers == 0) CloseMappingLocked();
        }
        _cache?.Remove(this);
    }

    /// <summary>
    /// Compaction swap: the log file was already atomically replaced by its cleaned version; drop this
    /// segment (mapping released once readers are done; they keep the old inode) and its index files.
    /// </summary>
    public void RetireReplaced()
    {
        lock (_lock)
        {
            _deleted = true;
            _closed = true;
            TryDelete(IndexPath);
            TryDelete(TimeIndexPath);
            if (_readers == 0) CloseMappingLocked();
        }
        _cache?.Remove(this);
    }

    /// <summary>Shutdown: seals (active segments get their final time-index entry) and unmaps, trimming files.</summary>
    public void Close()
    {
        if (_active) AppendFinalTimeIndexEntry();
        lock (_lock)
        {
            _closed = true;
            _active = false;
            if (_readers == 0) CloseMappingLocked();
        }
        _cache?.Remove(this);
    }

    /// <summary>Marks the segment as belonging to a deleted topic whose directory is about to be removed.</summary>
    public void CloseForDelete()
    {
        lock (_lock)
        {
            _deleted = true;
            _closed = true;
            if (_readers == 0) CloseMappingLocked();
        }
        _cache?.Remove(this);
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { }
    }

    /// <summary>Test hook simulating a crash: drops all maps without trimming, flushing or checkpoints.</summary>
    internal void Abandon()
    {
        lock (_lock)
        {
            _closed = true;
            var log = _log;
            _log = null;
            log?.Dispose(-1);
            _offsetIndex.Abandon();
            _timeIndex.Abandon();
        }
        _cache?.Remove(this);
    }

    // ---------------------------------------------------------------- timestamps

    /// <summary>
    /// First record with timestamp ≥ target in this segment (only while acquired). Uncompressed CreateTime
    /// batches are resolved to the exact record by walking record headers; compressed batches resolve to
    /// their base offset and max timestamp (batch granularity); LogAppendTime batches carry one timestamp.
    /// </summary>
    public bool TryFindTimestamp(long target, out long offset, out long timestamp)
    {
        var data = Data;
        long start = LookupTimestamp(target);
        int pos = start > BaseOffset ? FindBatch(start) : 0;
        if (pos < 0) pos = 0;
        while (pos + RecordBatchHeader.Size <= data.Length)
        {
            var b = data[pos..];
            int len = BinaryPrimitives.ReadInt32BigEndian(b[RecordBatchHeader.BatchLengthOffset..]);
            int total = RecordBatchHeader.LogOverhead + len;
            long maxTs = BinaryPrimitives.ReadInt64BigEndian(b[RecordBatchHeader.MaxTimestampOffset..]);
            if (maxTs >= target)
            {
                long baseOffset = BinaryPrimitives.ReadInt64BigEndian(b);
                short attrs = BinaryPrimitives.ReadInt16BigEndian(b[RecordBatchHeader.AttributesOffset..]);
                if ((attrs & 0x7) == 0 && (attrs & 0x8) == 0 &&
                    TryFindRecord(b[..total], baseOffset, target, out offset, out timestamp))
                    return true;
                offset = baseOffset;
                timestamp = maxTs;
                return true;
            }
            pos += total;
        }
        offset = timestamp = -1;
        return false;
    }

    /// <summary>Walks the records of an uncompressed batch (KIP-98 record format) for the first timestamp ≥ target.</summary>
    internal static bool TryFindRecord(ReadOnlySpan<byte> batch, long baseOffset, long target, out long offset, out long timestamp)
    {
        long baseTs = BinaryPrimitives.ReadInt64BigEndian(batch[RecordBatchHeader.BaseTimestampOffset..]);
        int count = BinaryPrimitives.ReadInt32BigEndian(batch[RecordBatchHeader.RecordsCountOffset..]);
        var r = batch[RecordBatchHeader.Size..];
        for (int i = 0; i < count; i++)
        {
            if (!VarInt.TryReadVarInt(r, out int length, out int n) || length < 0 || n + length > r.Length) break;
            var rec = r.Slice(n, length);
            // attributes (int8), timestampDelta (varlong), offsetDelta (varint)
            if (rec.Length < 1 || !VarInt.TryReadVarLong(rec[1..], out long tsDelta, out int n2)) break;
            if (!VarInt.TryReadVarInt(rec[(1 + n2)..], out int offsetDelta, out _)) break;
            if (baseTs + tsDelta >= target)
            {
                offset = baseOffset + offsetDelta;
                timestamp = baseTs + tsDelta;
                return true;
            }
            r = r[(n + length)..];
        }
        offset = timestamp = -1;
        return false;
    }

    /// <summary>Offset of the record carrying <paramref name="maxTimestamp"/> in the batch at <see cref="OffsetOfMaxTimestamp"/> (KIP-734).</summary>
    public long ResolveMaxTimestampOffset()
    {
        long batchOffset = OffsetOfMaxTimestamp;
        var data = Data;
        int pos = FindBatch(batchOffset);
        if (pos < 0) return batchOffset;
        var b = data[pos..];
        int total = RecordBatchHeader.LogOverhead + BinaryPrimitives.ReadInt32BigEndian(b[RecordBatchHeader.BatchLengthOffset..]);
        long baseOffset = BinaryPrimitives.ReadInt64BigEndian(b);
        short attrs = BinaryPrimitives.ReadInt16BigEndian(b[RecordBatchHeader.AttributesOffset..]);
        long lastOffset = baseOffset + BinaryPrimitives.ReadInt32BigEndian(b[RecordBatchHeader.LastOffsetDeltaOffset..]);
        if ((attrs & 0x7) == 0 && (attrs & 0x8) == 0 && TryFindRecord(b[..total], baseOffset, MaxTimestamp, out long off, out _))
            return off;
        return lastOffset;
    }
}

/// <summary>
/// LRU of inactive segments that are currently mapped. Beyond the capacity the least recently used idle
/// ones are unmapped; segments with readers are skipped. Lock order: cache lock, then segment lock —
/// segments call <see cref="Touch"/>/<see cref="Remove"/> only after releasing their own lock.
/// </summary>
internal sealed class SegmentMapCache
{
    private readonly LinkedList<LogSegment> _lru = new();
    private readonly int _capacity;

    public SegmentMapCache(int capacity) => _capacity = Math.Max(1, capacity);

    public int Count { get { lock (_lru) return _lru.Count; } }

    public void Touch(LogSegment s)
    {
        lock (_lru)
        {
            if (s.CacheNode is { } node) _lru.Remove(node);
            else s.CacheNode = new LinkedListNode<LogSegment>(s);
            _lru.AddLast(s.CacheNode);
            var cur = _lru.First;
            while (_lru.Count > _capacity && cur is not null)
            {
                var next = cur.Next;
                if (cur.Value.TryUnmapIdle()) { _lru.Remove(cur); cur.Value.CacheNode = null; }
                cur = next;
            }
        }
    }

    public void Remove(LogSegment s)
    {
        lock (_lru)
        {
            if (s.CacheNode is { } node) { _lru.Remove(node); s.CacheNode = null; }
        }
    }
}
