using System.Globalization;
using Microsoft.Extensions.Logging;

namespace Kayak.Storage;

/// <summary>What the last <see cref="PartitionLog.Load"/> did (tests and diagnostics; each action is also logged).</summary>
/// <param name="RecoveredSegments">Segments fully recovered because they lie at or after the recovery point (Kafka's "unflushed" segments).</param>
/// <param name="RebuiltSegments">Segments below the recovery point recovered anyway: a missing or corrupt index, or an end that did not match it.</param>
/// <param name="DeletedSegments">Segments deleted because an earlier one in the recovery range held an invalid batch.</param>
/// <param name="ProducerSnapshotOffset">Offset of the producer-state snapshot loaded, -1 when the state was rebuilt from the whole log.</param>
/// <param name="ProducerStateReplayedSegments">Segments whose batches were read to bring the producer state up to the log end offset.</param>
internal readonly record struct LoadReport(int RecoveredSegments, int RebuiltSegments, int DeletedSegments, long ProducerSnapshotOffset, int ProducerStateReplayedSegments);

/// <summary>
/// Loading a partition at startup (Kafka's LogLoader): leftovers of interrupted operations, segment recovery from the
/// recovery point on, truncation of the log at the first invalid batch, then the producer state
/// (PartitionLog.Snapshots.cs). Every action that changes or drops files is logged, WARN when data is dropped.
/// </summary>
public sealed partial class PartitionLog
{
    internal LoadReport LastLoad { get; private set; }

    /// <summary>
    /// Loads segments from disk. After a clean shutdown indexes are trusted (sanity-checked) and only each segment's
    /// end is located from its last index entry; otherwise every segment from the one holding the recovery point on is
    /// fully recovered (CRC-checked, torn tail truncated, indexes rebuilt), as Kafka's LogLoader.recoverLog does. The
    /// first invalid batch found there ends the log: the rest of its segment and all later segments are deleted, so the
    /// log never has an offset gap (Kafka: "Corruption found in segment ..., truncating to offset ...").
    /// </summary>
    internal void Load(bool cleanShutdown, long recoveryPoint, long logStartOffset)
    {
        var cfg = Config;
        // A .log.swap is a finished compaction output whose swap was interrupted: complete it (Kafka does the
        // same; PartitionLog.Compaction.cs), its indexes are rebuilt from the new file.
        CompleteInterruptedSwaps();
        var bases = new List<long>();
        foreach (var f in Directory.EnumerateFiles(Dir))
        {
            string name = Path.GetFileName(f);
            if (name.EndsWith(".deleted", StringComparison.Ordinal) || name.EndsWith(".cleaned", StringComparison.Ordinal)
                || name.EndsWith(".swap", StringComparison.Ordinal) || name.EndsWith(".tmp", StringComparison.Ordinal))
            {
                // Kafka's removeTempFilesAndCollectSwapFiles (it logs these at DEBUG): an interrupted delete, compaction
                // (the originals are intact) or atomic write. Nothing the log holds is lost, but every recovery action
                // is said out loud (issue 15, K11), so at WARN.
                _log.LogWarning("Deleting stray temporary file {File} ({Bytes} bytes) of {Partition}, left by an operation a crash interrupted",
                    f, FileLength(f), Id);
                File.Delete(f);
                continue;
            }
            if (name.EndsWith(".log", StringComparison.Ordinal) && name.Length == 24 &&
                long.TryParse(name.AsSpan(0, 20), NumberStyles.None, CultureInfo.InvariantCulture, out long b))
                bases.Add(b);
        }
        bases.Sort();
        // Index files without a log are leftovers from an interrupted delete (Kafka's loadSegmentFiles warns the same).
        foreach (var f in Directory.EnumerateFiles(Dir, "*index"))
        {
            string stem = Path.GetFileNameWithoutExtension(f);
            if (File.Exists(Path.Combine(Dir, stem + ".log"))) continue;
            _log.LogWarning("Found an orphaned index file {File} ({Bytes} bytes), with no corresponding log file; deleting it", f, FileLength(f));
            File.Delete(f);
        }
        if (bases.Count == 0)
        {
            _segments = [LogSegment.CreateActive(Dir, Math.Max(0, logStartOffset), cfg.SegmentBytes, cfg.SegmentIndexBytes, _cache)];
            _logStartOffset = _logEndOffset = _recoveryPoint = Math.Max(0, logStartOffset);
            _epochs.Load(_logStartOffset, _logEndOffset);
            LastLoad = new LoadReport(0, 0, 0, -1, 0);
            RebuildProducerState(_logEndOffset);
            return;
        }
        var segs = new LogSegment[bases.Count];
        for (int i = 0; i < bases.Count; i++) segs[i] = LogSegment.Existing(Dir, bases[i], _cache);
        segs = LoadSegments(segs, cleanShutdown, recoveryPoint, out int firstRecovered, out int recovered, out int rebuilt, out int deleted);
        for (int i = 0; i < segs.Length - 1; i++) segs[i].ComputeMaxTimestampIfMissing();
        var active = segs[^1];
        active.Activate(Math.Max(cfg.SegmentBytes, active.Size), cfg.SegmentIndexBytes);
        active.RollStartMs = active.Size > 0 ? NowMs() : -1;
        _segments = segs;
        _logEndOffset = active.NextOffset;
        _logStartOffset = Math.Max(segs[0].BaseOffset, Math.Min(logStartOffset, _logEndOffset));
        // Records up to the recovery point were fsynced, and nothing but recovery lowers the log end: a log that now
        // ends below it lost flushed records (a zeroed or truncated tail; after a clean stop, when segments are trusted,
        // the end is found by walking to the first zero header, which would otherwise hide this).
        if (recoveryPoint > _logEndOffset)
            _log.LogWarning("Log end offset {LogEnd} of {Partition} in dir {Dir} is below its checkpointed recovery point {RecoveryPoint}: " +
                "offsets {From} to {To}, which were flushed, are missing (a truncated or zeroed segment tail)",
                _logEndOffset, Id, Dir, recoveryPoint, _logEndOffset, recoveryPoint - 1);
        // Kafka's recoverLog: after a clean shutdown the log is durable up to its end; after a crash the recovery point
        // stays where the checkpoint had it (never past the end). Recovery read the segments after it from the page
        // cache of the dead process without fsyncing them, so a power loss now could still tear them: moving the
        // recovery point to the log end here would make the next load trust them unchecked.
        _recoveryPoint = cleanShutdown ? _logEndOffset : Math.Min(recoveryPoint, _logEndOffset);
        _epochs.Load(_logStartOffset, _logEndOffset);
        LastLoad = new LoadReport(recovered, rebuilt, deleted, -1, 0);
        // Idempotent/transactional producers (PartitionLog.Snapshots.cs): from a snapshot no later than the first
        // recovered segment, so the replay rewrites the transaction index of every recovered segment.
        RebuildProducerState(firstRecovered < segs.Length ? segs[firstRecovered].BaseOffset : _logEndOffset);
        if (firstRecovered < segs.Length - 1) DeferRecoveredFlush(segs[firstRecovered..^1], active.BaseOffset);
    }

    /// <summary>
    /// After a crash, the recovered inactive segments hold data that may never have reached the disk. Kafka's next flush
    /// covers every segment from the recovery point on (LocalLog.flush); here they are fsynced once
    /// <see cref="LogManager.Open"/> has loaded every partition, by one queue per log dir
    /// (<see cref="FlushRecoveredSegments"/>), with the snapshot at the active segment's base (which the next load would
    /// start from), and only then does the recovery point move to the active segment. Until then later rolls' fsyncs
    /// chain after this one, so the recovery point never passes an unsynced segment. Started during the load, one
    /// fsync task per partition competed with the recovery of the next thousands of partitions.
    /// </summary>
    private void DeferRecoveredFlush(LogSegment[] recovered, long activeBase)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _recoveredFlush = new RecoveredFlush(recovered, activeBase, done);
        _rollFlushes = done.Task;
    }

    private sealed record RecoveredFlush(LogSegment[] Segments, long ActiveBase, TaskCompletionSource Done);

    /// <summary>Set by the load, taken by the log dir's flush queue (started after the load: the task start orders the two).</summary>
    private RecoveredFlush? _recoveredFlush;

    /// <summary>True while the segments recovered at load are not yet fsynced (tests).</summary>
    internal bool HasPendingRecoveredFlush => Volatile.Read(ref _recoveredFlush) is not null;

    /// <summary>The log dir's flush queue (LogManager.Open): fsyncs the segments recovered at load, then moves the recovery point.</summary>
    internal void FlushRecoveredSegments()
    {
        var pending = Interlocked.Exchange(ref _recoveredFlush, null);
        if (pending is null) return;
        try
        {
            foreach (var s in pending.Segments) s.FsyncFiles();
            MappedFile.FsyncPath(SnapshotPath(pending.ActiveBase));
            AdvanceRecoveryPoint(pending.ActiveBase);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _log.LogWarning("Could not fsync the recovered segments of {Partition}: {Message}; the next start recovers them again", Id, e.Message);
        }
        finally { pending.Done.TrySetResult(); }
    }

    /// <summary>Loads or recovers each segment in order; returns the segments kept (a truncation drops the later ones).</summary>
    private LogSegment[] LoadSegments(LogSegment[] segs, bool cleanShutdown, long recoveryPoint, out int firstUnflushed, out int recovered, out int rebuilt, out int deleted)
    {
        var cfg = Config;
        recovered = rebuilt = deleted = 0;
        // Kafka's segments.values(recoveryPoint, ∞): the segment holding the recovery point and every later one.
        firstUnflushed = segs.Length;
        if (!cleanShutdown)
            for (int i = 0; i < segs.Length; i++)
                if (i == segs.Length - 1 || segs[i + 1].BaseOffset > recoveryPoint) { firstUnflushed = i; break; }
        int unflushed = segs.Length - firstUnflushed;
        for (int i = 0; i < segs.Length; i++)
        {
            var s = segs[i];
            bool inRecoveryRange = i >= firstUnflushed;
            SegmentRecovery r;
            if (inRecoveryRange)
            {
                _log.LogInformation("Recovering unflushed segment {BaseOffset} of {Partition} in dir {Dir} ({Done}/{Total}; recovery point {RecoveryPoint})",
                    s.BaseOffset, Id, LogDirectory.Path, i - firstUnflushed + 1, unflushed, recoveryPoint);
                r = s.Recover(cfg.IndexIntervalBytes, cfg.SegmentIndexBytes, fsyncIndexes: false);
                recovered++;
            }
            else if (!s.TryLoadIndexes())
            {
                // Kafka's loadSegmentFiles: "Could not find offset index file corresponding to log file ..., recovering
                // segment and rebuilding index files..." (an empty segment's missing indexes are simply recreated).
                if (!File.Exists(s.IndexPath) || !File.Exists(s.TimeIndexPath))
                    _log.LogWarning("Could not find the index files of log file {File} ({Bytes} bytes); recovering the segment and rebuilding its index files",
                        s.LogPath, s.Size);
                else
                    _log.LogWarning("Found a corrupted index file corresponding to log file {File}; recovering the segment and rebuilding its index files", s.LogPath);
                r = s.Recover(cfg.IndexIntervalBytes, cfg.SegmentIndexBytes);
                rebuilt++;
            }
            else if (!s.TryFindEnd())
            {
                // Trusted segments still get a cheap header walk from their last index entry: it yields the exact next
                // offset and catches a file left torn despite the clean-shutdown marker or the recovery point.
                _log.LogWarning("Log segment {File} does not end where its index says (a torn or garbled tail below the recovery point " +
                    "or after a clean shutdown); recovering the segment and rebuilding its index files", s.LogPath);
                r = s.Recover(cfg.IndexIntervalBytes, cfg.SegmentIndexBytes);
                rebuilt++;
            }
            else
            {
                // Trusted unread: its batches get their CRC check on first read instead (LogSegment.Verification.cs).
                s.MarkTrustedUnread();
                continue;
            }

            if (!r.FoundInvalidData)
            {
                if (r.TruncatedBytes > 0)
                    _log.LogDebug("Trimmed {Bytes} bytes of zero-filled preallocated space from {File}", r.TruncatedBytes, s.LogPath);
                continue;
            }
            // Kafka's LogSegment.recover: "Found invalid messages in log segment ... at byte offset ...".
            _log.LogWarning("Found invalid messages in log segment {File} at byte offset {Position}: {Problem}. Truncated the segment to " +
                "{Position} bytes, ending it at offset {NextOffset}: dropped {DroppedBytes} bytes of data ({TruncatedBytes} bytes in all with the preallocated tail)",
                s.LogPath, r.ValidBytes, r.Problem, r.ValidBytes, r.NextOffset, r.DroppedDataBytes, r.TruncatedBytes);
            if (i == segs.Length - 1) break;
            if (inRecoveryRange)
            {
                // Kafka's recoverLog: "we had an invalid message, delete all remaining log" — later segments would leave
                // an offset gap after the truncation, and data after a bad batch in the unflushed range is not trusted.
                var later = segs[(i + 1)..];
                long laterBytes = 0;
                foreach (var l in later) laterBytes += FileLength(l.LogPath);
                _log.LogWarning("Corruption found in segment {BaseOffset} of {Partition}, truncating to offset {NextOffset}: deleting the {Count} later " +
                    "segments {Segments} ({Bytes} bytes, offsets from {From})", s.BaseOffset, Id, r.NextOffset, later.Length,
                    string.Join(",", later.Select(static l => l.BaseOffset)), laterBytes, later[0].BaseOffset);
                foreach (var l in later) l.Delete();
                deleted = later.Length;
                return segs[..(i + 1)];
            }
            // Below the recovery point (flushed data the disk later damaged; reached here only via a bad index or end): Kafka's
            // loadSegmentFiles recovers the segment and keeps the later ones, leaving the gap it reports here.
            _log.LogWarning("Segment {BaseOffset} of {Partition} lies below the recovery point: keeping the later segments; offsets {From} to {To} are lost",
                s.BaseOffset, Id, r.NextOffset, segs[i + 1].BaseOffset - 1);
        }
        return segs;
    }

    private static long FileLength(string path)
    {
        try { return new FileInfo(path).Length; }
        catch (IOException) { return -1; }
    }
}
