using Microsoft.Extensions.Logging;

namespace Kayak.Storage;

/// <summary>
/// Log compaction (cleanup.policy=compact), after Kafka's LogCleaner / Cleaner:
/// <list type="bullet">
/// <item>A pass runs when a segment was rolled since the last one, or when a tombstone's delete horizon
/// (KIP-534) has come. The active segment is never cleaned and its keys are not considered (in Kafka the dirty
/// section ends before the active segment); nor is anything at or above the last stable offset (open
/// transactions may still abort).</item>
/// <item>Pass 1 maps every key of the cleanable segments to its latest offset, decompressing compressed batches;
/// pass 2 rewrites the segments through <see cref="CompactionFilter"/> (which records are kept, tombstones,
/// transactions, producer-state batches).</item>
/// <item>Consecutive segments are cleaned into one (Kafka's groupSegmentsBySize): a group grows while its log
/// bytes stay within segment.bytes, each of its index files within segment.index.bytes and its offsets within an
/// int of the first base offset. Without it a compacted partition keeps every segment it ever rolled (K12).</item>
/// <item>Crash safety, Kafka's replaceSegments protocol: the group is written to <c>&lt;first&gt;.log.cleaned</c>
/// (and <c>.txnindex.cleaned</c> when aborted-transaction entries must move) and fsynced; then, under the append
/// lock, renamed to <c>.swap</c> (the commit point), the group's other segments are deleted, and the <c>.swap</c>
/// files are renamed over the first segment's. Load (<see cref="CompleteInterruptedSwaps"/>) finishes a swap it
/// finds: it deletes the segments the swap's offsets cover and renames it; a lone <c>.cleaned</c> is discarded
/// (the originals are intact).</item>
/// </list>
/// Not done: min.cleanable.dirty.ratio / min.compaction.lag.ms / max.compaction.lag.ms, a cleaner-offset checkpoint
/// (every pass re-reads the cleanable log, as if it were all dirty), removal of aborted transactions' data and of
/// transaction markers (both kept whole).
/// </summary>
public sealed partial class PartitionLog
{
    private const string CleanedSuffix = ".cleaned";
    private const string SwapSuffix = ".swap";

    private readonly object _compactionLock = new();
    private long _cleanedUpTo = -1;
    private long _nextDeleteHorizon = long.MaxValue;
    private bool _uncleanableLogged;

    /// <summary>Test hook: called at each step of a swap ("cleaned", "swap", "deleted"); throwing there simulates a crash.</summary>
    internal Action<string>? CleanerStep;

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
            if (activeBase <= _cleanedUpTo && now < _nextDeleteHorizon) return 0;
            int cleanable = FindSegmentIndex(segs, LastStableOffset); // the segments before the one holding the LSO
            if (cleanable == 0) return 0;

            using var filter = new CompactionFilter(now, cfg.DeleteRetentionMs, ProducerState.AbortedSnapshot, ActiveProducers());
            for (int i = 0; i < cleanable; i++)
            {
                if (!segs[i].TryAcquire()) continue;
                try
                {
                    // The cleaner rewrites batches under a fresh CRC, so a damaged batch in a segment trusted at load
                    // must not reach it: Kafka marks a partition whose cleaning fails uncleanable and leaves it as is.
                    if (segs[i].VerifyAll(_log, Id) >= 0)
                    {
                        if (!_uncleanableLogged)
                            _log.LogWarning("Not compacting {Partition}: its segment {File} holds an invalid batch (left as it is, as Kafka leaves an uncleanable partition)",
                                Id, segs[i].LogPath);
                        _uncleanableLogged = true;
                        return 0;
                    }
                    filter.MapKeys(segs[i].Data);
                }
                finally { segs[i].Release(); }
            }
            foreach (var (start, count) in GroupSegmentsBySize(segs, cleanable, cfg))
                CleanGroup(segs[start..(start + count)], filter, cfg);
            _nextDeleteHorizon = filter.NextDeleteHorizon;
            if (cleanable == segs.Length - 1) _cleanedUpTo = activeBase;
            return filter.RecordsRemoved;
        }
    }

    /// <summary>
    /// Kafka's Cleaner.groupSegmentsBySize over <c>segs[..cleanable]</c>: runs of consecutive segments whose
    /// combined log size fits segment.bytes, whose offset and time index sizes each fit segment.index.bytes, and
    /// whose last offset is within int range of the first base offset (relative offsets in the indexes are ints).
    /// An empty segment skips the offset check, so a long gap cannot strand it.
    /// </summary>
    internal static List<(int Start, int Count)> GroupSegmentsBySize(LogSegment[] segs, int cleanable, TopicConfig cfg)
    {
        var groups = new List<(int, int)>();
        int i = 0;
        while (i < cleanable)
        {
            int start = i;
            long logBytes = segs[i].Size, indexBytes = segs[i].OffsetIndexBytes, timeIndexBytes = segs[i].TimeIndexBytes;
            i++;
            while (i < cleanable
                   && logBytes + segs[i].Size <= cfg.SegmentBytes
                   && indexBytes + segs[i].OffsetIndexBytes <= cfg.SegmentIndexBytes
                   && timeIndexBytes + segs[i].TimeIndexBytes <= cfg.SegmentIndexBytes
                   && (segs[i].Size == 0 || segs[i + 1].BaseOffset - 1 - segs[start].BaseOffset <= int.MaxValue))
            {
                logBytes += segs[i].Size;
                indexBytes += segs[i].OffsetIndexBytes;
                timeIndexBytes += segs[i].TimeIndexBytes;
                i++;
            }
            groups.Add((start, i - start));
        }
        return groups;
    }

    /// <summary>Cleans one group into a single segment with the first one's base offset and swaps it in.</summary>
    private void CleanGroup(LogSegment[] group, CompactionFilter filter, TopicConfig cfg)
    {
        var first = group[0];
        string cleaned = first.LogPath + CleanedSuffix;
        string? txnCleaned = null;
        long removedBefore = filter.RecordsRemoved;
        bool changed = group.Length > 1, complete = true;
        try
        {
            using (var output = new FileStream(cleaned, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
            {
                foreach (var seg in group)
                {
                    if (!seg.TryAcquire()) { complete = false; break; } // deleted meanwhile (retention, topic deletion, close)
                    try
                    {
                        foreach (var batch in CompactionFilter.Batches(seg.Data)) changed |= filter.Filter(batch, output);
                    }
                    finally { seg.Release(); }
                }
                output.Flush(flushToDisk: true);
            }
            if (complete && changed) txnCleaned = MergeTxnIndexes(group);
        }
        catch
        {
            File.Delete(cleaned);
            throw;
        }
        if (!complete || !changed)
        {
            File.Delete(cleaned);
            if (!complete) filter.RecordsRemoved = removedBefore;
            return;
        }
        CleanerStep?.Invoke("cleaned");
        if (!SwapIn(group, cleaned, txnCleaned, cfg)) filter.RecordsRemoved = removedBefore;
    }

    /// <summary>
    /// The aborted-transaction entries of a merged group must move to the surviving segment's <c>.txnindex</c>
    /// (they are kept in log order: segment order). Null when only the first segment has any, or none does.
    /// </summary>
    private static string? MergeTxnIndexes(LogSegment[] group)
    {
        bool needed = false;
        for (int i = 1; i < group.Length; i++) needed |= File.Exists(group[i].TxnIndexPath);
        if (!needed) return null;
        string path = group[0].TxnIndexPath + CleanedSuffix;
        using (var output = new FileStream(path, FileMode.Create, FileAccess.Write))
        {
            foreach (var seg in group)
            {
                if (!File.Exists(seg.TxnIndexPath)) continue;
                using var input = new FileStream(seg.TxnIndexPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                input.CopyTo(output);
            }
            output.Flush(flushToDisk: true);
        }
        return path;
    }

    /// <summary>Kafka's replaceSegments, under the append lock (retention, roll and close cannot interleave). False when the group changed meanwhile.</summary>
    private bool SwapIn(LogSegment[] group, string cleaned, string? txnCleaned, TopicConfig cfg)
    {
        var first = group[0];
        lock (_lock)
        {
            int idx = Array.IndexOf(_segments, first);
            bool intact = !_closed && idx >= 0 && idx + group.Length < _segments.Length; // never the active segment
            for (int k = 1; intact && k < group.Length; k++) intact = _segments[idx + k] == group[k];
            if (!intact)
            {
                File.Delete(cleaned);
                if (txnCleaned is not null) File.Delete(txnCleaned);
                return false;
            }
            string logSwap = first.LogPath + SwapSuffix, txnSwap = first.TxnIndexPath + SwapSuffix;
            // The .txnindex goes first: a .log.swap on disk means the whole swap is complete and durable.
            if (txnCleaned is not null) File.Move(txnCleaned, txnSwap, overwrite: true);
            File.Move(cleaned, logSwap, overwrite: true);
            Posix.FsyncDirectory(Dir);
            CleanerStep?.Invoke("swap");
            // Readers holding these segments keep their mappings (the inodes live on); new reads retry on the new list.
            for (int k = 1; k < group.Length; k++) group[k].Delete();
            CleanerStep?.Invoke("deleted");
            if (txnCleaned is not null) File.Move(txnSwap, first.TxnIndexPath, overwrite: true);
            File.Move(logSwap, first.LogPath, overwrite: true);
            Posix.FsyncDirectory(Dir);
            first.RetireReplaced();
            var fresh = LogSegment.Existing(Dir, first.BaseOffset, _cache);
            fresh.Recover(cfg.IndexIntervalBytes, cfg.SegmentIndexBytes);
            fresh.NextOffset = group[^1].NextOffset; // the offsets up to the next segment stay this segment's, even if removed
            var segs = new LogSegment[_segments.Length - group.Length + 1];
            Array.Copy(_segments, segs, idx);
            segs[idx] = fresh;
            Array.Copy(_segments, idx + group.Length, segs, idx + 1, _segments.Length - idx - group.Length);
            Volatile.Write(ref _segments, segs);
        }
        return true;
    }

    /// <summary>
    /// On load, before segments are listed (Kafka's LogLoader swap recovery): each <c>&lt;base&gt;.log.swap</c> is a
    /// cleaned group whose swap was interrupted after its commit point. The segments whose base offsets fall
    /// inside the swap's offsets are the group's other members (or already gone) and are deleted; the
    /// <c>.txnindex.swap</c> and <c>.log.swap</c> then replace the first segment's files, whose indexes are
    /// dropped to be rebuilt. Remaining <c>.cleaned</c>/<c>.swap</c> files are leftovers that Load deletes.
    /// </summary>
    private void CompleteInterruptedSwaps()
    {
        var swaps = Directory.GetFiles(Dir, "*.log" + SwapSuffix);
        Array.Sort(swaps, StringComparer.Ordinal);
        foreach (var swap in swaps)
        {
            string log = swap[..^SwapSuffix.Length];
            if (!TryParseBaseOffset(Path.GetFileName(log), out long baseOffset)) continue;
            long end = NextOffsetOf(swap, baseOffset);
            // Kafka's LogLoader logs the same at INFO: "Found log file ... from interrupted swap operation, which is
            // recoverable from .swap files by renaming" (the swap holds everything the replaced segments held).
            _log.LogInformation("Found log file {File} ({Bytes} bytes, offsets {From} to {To}) from an interrupted compaction swap; completing it, " +
                "replacing the segments it covers", swap, new FileInfo(swap).Length, baseOffset, end - 1);
            foreach (var f in Directory.GetFiles(Dir, "*.log"))
            {
                if (!TryParseBaseOffset(Path.GetFileName(f), out long b) || b <= baseOffset || b >= end) continue;
                _log.LogInformation("Deleting segment {File}: compacted into {Swap} but not deleted before the crash", f, swap);
                foreach (var ext in new[] { ".index", ".timeindex", ".txnindex" }) File.Delete(Path.ChangeExtension(f, ext));
                File.Delete(f);
            }
            string txn = Path.ChangeExtension(log, ".txnindex");
            if (File.Exists(txn + SwapSuffix)) File.Move(txn + SwapSuffix, txn, overwrite: true);
            File.Move(swap, log, overwrite: true);
            File.Delete(Path.ChangeExtension(log, ".index"));
            File.Delete(Path.ChangeExtension(log, ".timeindex"));
        }
        if (swaps.Length > 0) Posix.FsyncDirectory(Dir);
    }

    private static bool TryParseBaseOffset(string fileName, out long baseOffset)
    {
        baseOffset = 0;
        return fileName.Length == 24 && fileName.EndsWith(".log", StringComparison.Ordinal) &&
            long.TryParse(fileName.AsSpan(0, 20), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out baseOffset);
    }

    /// <summary>The offset after the last whole batch of a log file, reading batch headers only.</summary>
    private static long NextOffsetOf(string path, long baseOffset)
    {
        using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1);
        Span<byte> h = stackalloc byte[Protocol.Records.RecordBatchHeader.Size];
        long pos = 0, next = baseOffset;
        while (RandomAccess.Read(f.SafeFileHandle, h, pos) == h.Length)
        {
            int len = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(h[Protocol.Records.RecordBatchHeader.BatchLengthOffset..]);
            long total = (long)len + Protocol.Records.RecordBatchHeader.LogOverhead;
            if (total < h.Length || pos + total > f.Length) break;
            next = System.Buffers.Binary.BinaryPrimitives.ReadInt64BigEndian(h)
                + System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(h[Protocol.Records.RecordBatchHeader.LastOffsetDeltaOffset..]) + 1;
            pos += total;
        }
        return next;
    }
}
