using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;
using Kayak.Protocol.Records;

namespace Kayak.Storage;

/// <summary>Result of <see cref="PartitionLog.Append"/>, mirroring the fields of a ProduceResponse partition.</summary>
/// <remarks><paramref name="IsDuplicate"/>: an idempotent producer's retry of one of its last five batches; nothing
/// was appended and the offsets are the original batch's (Kafka's duplicate handling in analyzeAndValidateProducerState).</remarks>
public readonly record struct AppendResult(long BaseOffset, long LastOffset, long LogAppendTime, long LogStartOffset, bool IsDuplicate = false);

/// <summary>
/// Whole record batches read from one segment, as zero-copy memory over the mapped file. Holds a reference
/// on the segment until disposed, so retention, roll or topic deletion cannot unmap the bytes (or close the
/// segment's descriptor) while the broker is still writing them to a socket. Dispose exactly once (extra calls
/// are ignored).
/// </summary>
public sealed class FetchSlice : IDisposable
{
    private LogSegment? _segment;
    private readonly SafeFileHandle? _file;
    private readonly long _fileOffset;

    /// <summary>An empty result (fetch at the log end offset).</summary>
    public static FetchSlice Empty { get; } = new(null, default, null, 0);

    /// <summary>Concatenated v2 batches; the first contains the requested offset.</summary>
    public ReadOnlyMemory<byte> Data { get; }
    public bool IsEmpty => Data.IsEmpty;

    internal FetchSlice(LogSegment? segment, ReadOnlyMemory<byte> data, SafeFileHandle? file, long fileOffset)
    {
        _segment = segment; Data = data; _file = file; _fileOffset = fileOffset;
    }

    /// <summary>
    /// The segment file behind <see cref="Data"/>: a readable descriptor and the file offset of <c>Data[0]</c>, so
    /// the bytes can be sent with sendfile(2) as Kafka's FileRecords.writeTo (FileChannel.transferTo) does. The
    /// descriptor is the mapped inode itself (still valid after retention unlinked or compaction replaced the
    /// path) and stays open until this slice is disposed; do not close it. False when the segment keeps no
    /// descriptor, the slice is empty or already disposed: send <see cref="Data"/> instead.
    /// </summary>
    public bool TryGetFile([NotNullWhen(true)] out SafeFileHandle? file, out long fileOffset)
    {
        file = _file;
        fileOffset = _fileOffset;
        return file is not null && !Data.IsEmpty && Volatile.Read(ref _segment) is not null;
    }

    public void Dispose() => Interlocked.Exchange(ref _segment, null)?.Release();
}

/// <summary>
/// One partition's log: an ordered list of segments, the last one active. Appends are serialized by a
/// per-partition lock; reads are lock-free against a copy-on-write segment array plus volatile offsets.
/// On a single node the high watermark equals the log end offset.
/// </summary>
public sealed partial class PartitionLog
{
    private readonly object _lock = new();
    private readonly LeaderEpochCache _epochs;
    private readonly LogOptions _options;
    private readonly ILogger _log;
    private readonly TopicLog _topic;
    private readonly SegmentMapCache _cache;
    private LogSegment[] _segments = [];
    private long _logStartOffset;
    private long _logEndOffset;
    private long _recoveryPoint;
    private long _unflushedMessages;
    private bool _dirty;
    private long _lastFlushMs;
    private TaskCompletionSource? _appendSignal;
    private bool _closed;

    public int Partition { get; }
    public string TopicName => _topic.Name;

    /// <summary>Closed (a stop, a crash, a deleted topic or replica): its waits have ended and nothing more is appended.</summary>
    public bool IsClosed => Volatile.Read(ref _closed);
    internal string Dir { get; }
    internal LogDirectory LogDirectory { get; }
    internal string Id { get; }

    public long LogStartOffset => Volatile.Read(ref _logStartOffset);
    /// <summary>The offset the next appended record gets.</summary>
    public long LogEndOffset => Volatile.Read(ref _logEndOffset);
    /// <summary>
    /// What consumers may read: the log end offset on a single broker; in a replicated cluster the offset every ISR
    /// member holds (<see cref="UpdateHighWatermark"/>, PartitionLog.Replica.cs).
    /// </summary>
    public long HighWatermark => _replicated ? Math.Max(Volatile.Read(ref _highWatermark), LogStartOffset) : LogEndOffset;
    /// <summary>
    /// Last stable offset (KIP-98): the first offset of the oldest open transaction, else the high watermark.
    /// read_committed fetches and ListOffsets stop here.
    /// </summary>
    public long LastStableOffset => Math.Min(ProducerState.FirstUnstableOffset, HighWatermark);
    /// <summary>Idempotent/transactional producer state; written under the append lock (see ProducerState.cs).</summary>
    public ProducerStateManager ProducerState { get; private set; } = new();
    /// <summary>Offsets below this are known to be fsynced (persisted in recovery-point-offset-checkpoint).</summary>
    public long RecoveryPoint => Volatile.Read(ref _recoveryPoint);
    /// <summary>Total bytes of all segments.</summary>
    public long Size
    {
        get
        {
            long n = 0;
            foreach (var s in Volatile.Read(ref _segments)) n += s.Size;
            return n;
        }
    }
    public int SegmentCount => Volatile.Read(ref _segments).Length;
    internal LogSegment[] Segments => Volatile.Read(ref _segments);

    internal PartitionLog(TopicLog topic, int partition, string dir, LogDirectory logDir, LogOptions options, SegmentMapCache cache)
    {
        _topic = topic;
        Partition = partition;
        Dir = dir;
        LogDirectory = logDir;
        _options = options;
        _log = options.Logger;
        _cache = cache;
        Id = topic.Name + "-" + partition.ToString(System.Globalization.CultureInfo.InvariantCulture);
        _epochs = new LeaderEpochCache(dir, Id, _log, persist: options.Replicated);
        _lastFlushMs = NowMs();
        _replicated = options.Replicated;
    }

    private long NowMs() => _options.Time.GetUtcNow().ToUnixTimeMilliseconds();
    private TopicConfig Config => _topic.Config;

    // ---------------------------------------------------------------- load

    /// <summary>A new empty partition directory with one active segment at offset 0.</summary>
    internal void InitializeEmpty()
    {
        Directory.CreateDirectory(Dir);
        var cfg = Config;
        _segments = [LogSegment.CreateActive(Dir, 0, cfg.SegmentBytes, cfg.SegmentIndexBytes, _cache)];
        _epochs.Load(0, 0);
    }

    // ---------------------------------------------------------------- reads

    /// <summary>
    /// Whole batches starting with the one containing <paramref name="offset"/>, from a single segment,
    /// adding following batches while the total stays within <paramref name="maxBytes"/> but always at least
    /// one batch (KIP-74). Empty at the log end offset. Dispose the slice after sending it.
    /// </summary>
    /// <exception cref="StorageErrorException">OffsetOutOfRange when offset &lt; LogStartOffset or &gt; LogEndOffset.</exception>
    public FetchSlice Read(long offset, int maxBytes) => Read(offset, maxBytes, long.MaxValue);

    /// <summary>
    /// As <see cref="Read(long,int)"/>, but only batches whose base offset is below <paramref name="maxOffset"/>
    /// (read_committed passes the last stable offset, like Kafka's fetch isolation).
    /// </summary>
    public FetchSlice Read(long offset, int maxBytes, long maxOffset)
    {
        while (true)
        {
            var segs = Volatile.Read(ref _segments);
            long start = LogStartOffset, end = LogEndOffset;
            if (offset < start || offset > end) StorageThrow.OffsetOutOfRange(Id, offset, start, end);
            if (offset == end) return FetchSlice.Empty;
            bool retry = false;
            for (int i = FindSegmentIndex(segs, offset); i < segs.Length; i++)
            {
                var seg = segs[i];
                if (!seg.TryAcquire()) { retry = true; break; } // deleted by retention meanwhile: re-read the list
                bool keep = false;
                try
                {
                    int pos = seg.FindBatch(offset);
                    if (pos < 0) continue; // offset beyond this segment's batches: try the next segment
                    var data = seg.Data;
                    if (BinaryPrimitives.ReadInt64BigEndian(data[pos..]) >= maxOffset) return FetchSlice.Empty;
                    int first = RecordBatchHeader.LogOverhead + BinaryPrimitives.ReadInt32BigEndian(data[(pos + RecordBatchHeader.BatchLengthOffset)..]);
                    int endPos = pos + first;
                    while (endPos + RecordBatchHeader.LogOverhead <= data.Length)
                    {
                        int next = RecordBatchHeader.LogOverhead + BinaryPrimitives.ReadInt32BigEndian(data[(endPos + RecordBatchHeader.BatchLengthOffset)..]);
                        if ((long)endPos - pos + next > maxBytes || endPos + next > data.Length) break;
                        if (maxOffset != long.MaxValue && BinaryPrimitives.ReadInt64BigEndian(data[endPos..]) >= maxOffset) break;
                        endPos += next;
                    }
                    // A segment trusted at load gets each batch CRC-checked on its first read (issue 15): serve up to
                    // the first invalid batch; a read that starts at one is CORRUPT_MESSAGE for this partition.
                    int bad = seg.VerifyBatches(pos, endPos, _log, Id);
                    if (bad == pos)
                        StorageThrow.Corrupt($"Corrupt batch at position {pos} of {seg.LogPath} (offset {BinaryPrimitives.ReadInt64BigEndian(data[pos..])}): CRC or header check failed");
                    if (bad > pos) endPos = bad;
                    keep = true;
                    return new FetchSlice(seg, seg.Memory(pos, endPos - pos), seg.FileHandle, pos);
                }
                finally
                {
                    if (!keep) seg.Release();
                }
            }
            if (!retry) return FetchSlice.Empty;
        }
    }

    private static int FindSegmentIndex(LogSegment[] segs, long offset)
    {
        int lo = 0, hi = segs.Length - 1, found = 0;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            if (segs[mid].BaseOffset <= offset) { found = mid; lo = mid + 1; } else hi = mid - 1;
        }
        return found;
    }

    /// <summary>
    /// ListOffsets by timestamp: the first record with timestamp ≥ <paramref name="timestamp"/>, or null when
    /// every record is older. Record-exact for uncompressed CreateTime batches; compressed batches resolve to
    /// their base offset and batch max timestamp. Never returns an offset below the log start offset.
    /// </summary>
    public (long Offset, long Timestamp)? FindOffsetByTimestamp(long timestamp)
    {
        foreach (var seg in Volatile.Read(ref _segments))
        {
            if (seg.MaxTimestamp < timestamp || seg.Size == 0) continue;
            if (!seg.TryAcquire()) continue;
            try
            {
                if (seg.TryFindTimestamp(timestamp, out long off, out long ts))
                    return (Math.Max(off, LogStartOffset), ts);
            }
            finally { seg.Release(); }
        }
        return null;
    }

    /// <summary>ListOffsets MAX_TIMESTAMP (KIP-734): the record with the largest timestamp; (-1, -1) when empty.</summary>
    public (long Offset, long Timestamp) MaxTimestamp()
    {
        LogSegment? best = null;
        foreach (var seg in Volatile.Read(ref _segments))
            if (seg.Size > 0 && seg.MaxTimestamp >= 0 && (best is null || seg.MaxTimestamp > best.MaxTimestamp)) best = seg;
        if (best is null || !best.TryAcquire()) return (-1, -1);
        try { return (best.ResolveMaxTimestampOffset(), best.MaxTimestamp); }
        finally { best.Release(); }
    }

    // ---------------------------------------------------------------- log start offset / retention

    /// <summary>
    /// DeleteRecords: moves the log start offset up to <paramref name="offset"/> (no-op if already past it),
    /// deletes segments wholly below it and persists log-start-offset-checkpoint. Returns the new log start offset.
    /// </summary>
    /// <exception cref="StorageErrorException">OffsetOutOfRange when offset &gt; high watermark or negative.</exception>
    public long DeleteRecordsBefore(long offset)
    {
        long result;
        lock (_lock)
        {
            if (offset == -1) offset = _logEndOffset; // DeleteRecords: -1 means "up to the high watermark"
            if (offset < 0 || offset > _logEndOffset) StorageThrow.OffsetOutOfRange(Id, offset, _logStartOffset, _logEndOffset);
            if (offset <= _logStartOffset) return _logStartOffset;
            Volatile.Write(ref _logStartOffset, offset);
            DeleteOldestLocked(FindSegmentIndex(_segments, offset)); // the segments before the one holding offset
            _epochs.TruncateFromStart(_logStartOffset);
            result = _logStartOffset;
        }
        LogDirectory.WriteLogStartOffsets();
        return result;
    }

    /// <summary>
    /// Time and size retention for cleanup.policy=delete (Kafka's deleteRetentionMsBreachedSegments /
    /// deleteRetentionSizeBreachedSegments): drops the oldest segments whose largest timestamp is older than
    /// retention.ms, then while the log exceeds retention.bytes by a whole segment. An expired non-empty
    /// active segment is rolled first so it can go too. Returns the number of segments deleted.
    /// </summary>
    internal int ApplyRetention(long now)
    {
        var cfg = Config;
        if (!cfg.Delete) return 0;
        int deleted = 0;
        lock (_lock)
        {
            if (_closed) return 0;
            if (cfg.RetentionMs >= 0)
            {
                int n = 0;
                while (n < _segments.Length && (_segments[n].Size > 0 ? now - _segments[n].MaxTimestamp > cfg.RetentionMs : n < _segments.Length - 1)) n++;
                if (n == _segments.Length) { RollLocked(cfg.SegmentBytes); }
                deleted += DeleteOldestLocked(Math.Min(n, _segments.Length - 1));
            }
            if (cfg.RetentionBytes >= 0)
            {
                long diff = Size - cfg.RetentionBytes;
                int n = 0;
                while (n < _segments.Length - 1 && diff - _segments[n].Size >= 0) { diff -= _segments[n].Size; n++; }
                deleted += DeleteOldestLocked(n);
            }
        }
        if (deleted > 0) LogDirectory.WriteLogStartOffsets();
        return deleted;
    }

    private int DeleteOldestLocked(int n)
    {
        if (n <= 0) return 0;
        var old = _segments;
        var segs = old[n..];
        Volatile.Write(ref _segments, segs);
        if (segs[0].BaseOffset > _logStartOffset) Volatile.Write(ref _logStartOffset, segs[0].BaseOffset);
        for (int i = 0; i < n; i++) old[i].Delete();
        DeleteSnapshotsBelow(segs[0].BaseOffset);
        ProducerState.TruncateAbortedBefore(_logStartOffset);
        _epochs.TruncateFromStart(_logStartOffset);
        return n;
    }

    // ---------------------------------------------------------------- waiting / flushing / closing

    /// <summary>
    /// Reads the whole partition from its log start offset in order, handing <paramref name="onBatches"/> chunks of
    /// whole batches (up to <paramref name="chunkBytes"/> each, more for a larger batch). Coordinators replay their
    /// internal topics with it on start; compaction gaps are skipped.
    /// </summary>
    public void Replay(Action<ReadOnlyMemory<byte>> onBatches, int chunkBytes = 1 << 20)
    {
        long offset = LogStartOffset;
        while (offset < LogEndOffset)
        {
            using var slice = Read(offset, chunkBytes);
            if (slice.IsEmpty) break;
            onBatches(slice.Data);
            long next = offset;
            var rest = slice.Data.Span;
            while (RecordBatchHeader.TryRead(rest, out var h) && h.TotalSize <= rest.Length)
            {
                next = h.LastOffset + 1;
                rest = rest[h.TotalSize..];
            }
            if (next <= offset) break;
            offset = next;
        }
    }

    /// <summary>
    /// Completes once the log end offset is greater than <paramref name="offset"/> (long-poll fetch), woken
    /// directly by the append. Cancel via <paramref name="ct"/> (the fetch's max wait).
    /// </summary>
    public Task WaitForAppendAsync(long offset, CancellationToken ct)
    {
        if (LogEndOffset > offset) return Task.CompletedTask;
        return WaitSlowAsync(offset, highWatermark: false, ct);
    }

    /// <summary>The slow path of both waits: the log end or the high watermark passing <paramref name="offset"/>.</summary>
    private async Task WaitSlowAsync(long offset, bool highWatermark, CancellationToken ct)
    {
        while (true)
        {
            TaskCompletionSource signal;
            lock (_lock)
            {
                if ((highWatermark ? HighWatermark : _logEndOffset) > offset || _closed) return;
                signal = _appendSignal ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }
            await signal.Task.WaitAsync(ct).ConfigureAwait(false);
        }
    }

    /// <summary>flush.ms: fsyncs when unflushed messages are older than the topic's flush interval.</summary>
    internal bool FlushIfDue(long now)
    {
        lock (_lock)
        {
            if (_closed || _unflushedMessages == 0 || now - _lastFlushMs < Config.FlushMs) return false;
            FlushLocked(now);
            return true;
        }
    }

    /// <summary>fsync the active segment and its indexes; advances the recovery point to the log end offset.</summary>
    public void Flush()
    {
        lock (_lock) FlushLocked(NowMs());
    }

    private void FlushLocked(long now)
    {
        if (_closed) return;
        FlushRecoveredSegments(); // segments recovered at load, if the log dir's queue has not reached them yet
        _rollFlushes.Wait(); // rolled segments first (their fsync does not need the partition lock)
        if (_dirty) _segments[^1].Flush();
        _dirty = false;
        _unflushedMessages = 0;
        _lastFlushMs = now;
        AdvanceRecoveryPoint(_logEndOffset);
    }

    /// <summary>
    /// Clean close: final time-index entry, trim, unmap. False when the flush or the producer snapshot failed
    /// (a full disk, EIO): the files are still closed, and the caller must not mark the shutdown clean, so the next
    /// start recovers this partition from its recovery point (issue 15, K6).
    /// </summary>
    internal bool Close()
    {
        bool ok = true;
        lock (_lock)
        {
            if (_closed) return true;
            try
            {
                FlushLocked(NowMs()); // no-op unless something was appended since the last flush
                WriteProducerSnapshotLocked(); // read back on the next clean load instead of scanning the log
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                _ = StorageFailure("close", e); // logs it
                ok = false;
            }
            _closed = true;
            foreach (var s in _segments)
            {
                try { s.Close(); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException) { _ = StorageFailure("close a segment of", e); ok = false; }
            }
        }
        Interlocked.Exchange(ref _appendSignal, null)?.TrySetResult();
        return ok;
    }

    /// <summary>Test hook: a crash — no flush, no trim, no checkpoints.</summary>
    internal void Abandon()
    {
        lock (_lock)
        {
            _closed = true;
            foreach (var s in _segments) s.Abandon();
        }
    }

    /// <summary>Topic deletion: stop appends and release maps (files go with the directory).</summary>
    internal void CloseForDelete()
    {
        lock (_lock)
        {
            if (_closed) return;
            _closed = true;
            foreach (var s in _segments) s.CloseForDelete();
        }
        Interlocked.Exchange(ref _appendSignal, null)?.TrySetResult();
    }
}
