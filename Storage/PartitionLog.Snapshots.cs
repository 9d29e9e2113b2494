using System.Globalization;
using Microsoft.Extensions.Logging;

namespace Kayak.Storage;

/// <summary>
/// Producer-state snapshots (<c>&lt;offset&gt;.snapshot</c>, Kafka's ProducerStateManager snapshot files): one is written
/// on every roll at the new segment's base offset and on a clean close at the log end offset, and fsynced before the
/// recovery point passes it. A load starts from the latest readable snapshot at or below the log end offset and replays
/// only the batches after it (Kafka's UnifiedLog.rebuildProducerState), so a restart after a crash reads the segments
/// after the recovery point, not the whole log. Snapshots above the log end (recovery truncated the log below them) are
/// deleted; those below the first segment go with retention.
/// </summary>
public sealed partial class PartitionLog
{
    private const string SnapshotSuffix = ".snapshot";

    private string SnapshotPath(long offset) => Path.Combine(Dir, LogSegment.FileStem(offset) + SnapshotSuffix);

    private List<(long Offset, string Path)> ListSnapshots()
    {
        var list = new List<(long, string)>();
        foreach (var f in Directory.EnumerateFiles(Dir, "*" + SnapshotSuffix))
        {
            string name = Path.GetFileName(f);
            if (name.Length == 20 + SnapshotSuffix.Length &&
                long.TryParse(name.AsSpan(0, 20), NumberStyles.None, CultureInfo.InvariantCulture, out long offset))
                list.Add((offset, f));
        }
        list.Sort(static (a, b) => a.Item1.CompareTo(b.Item1));
        return list;
    }

    /// <summary>
    /// Producer state on load: the latest snapshot at or below <paramref name="limit"/>, the aborted transactions below
    /// it from the <c>.txnindex</c> files, then the batches from its offset on replayed (their aborts rewritten to the
    /// index files). Without a readable snapshot the whole log is replayed, as Kafka's LogLoader does.
    /// </summary>
    /// <param name="limit">The log end offset after a clean shutdown; after a crash the base offset of the first
    /// recovered segment. Kafka rebuilds the transaction index of every recovered segment (LogSegment.recover); here the
    /// replay does it, so a recovered segment's <c>.txnindex</c>, which may not have reached the disk, is never trusted.
    /// Snapshots at or below the limit were fsynced before the recovery point passed them (the roll's flush).</param>
    private void RebuildProducerState(long limit)
    {
        long end = _logEndOffset;
        var snapshots = ListSnapshots();
        var state = new ProducerStateManager();
        long from = -1;
        for (int k = snapshots.Count - 1; k >= 0; k--)
        {
            var (offset, path) = snapshots[k];
            if (offset > end)
            {
                _log.LogInformation("Deleting producer snapshot {File}: it is above the log end offset {End} of {Partition} (recovery truncated the log)", path, end, Id);
                File.Delete(path);
                continue;
            }
            if (offset > limit) continue; // kept: valid, but this load must replay the recovered segments anyway
            byte[] bytes;
            try { bytes = File.ReadAllBytes(path); }
            catch (IOException) { bytes = []; }
            if (state.TryLoadSnapshot(bytes, ReadTxnIndexes(below: offset)))
            {
                from = offset;
                break;
            }
            _log.LogWarning("Producer snapshot {File} of {Partition} is unreadable ({Bytes} bytes); deleting it and trying an older one", path, Id, bytes.Length);
            File.Delete(path);
        }
        int replayed = 0;
        if (from < end)
        {
            if (from < 0) state = new ProducerStateManager();
            long start = Math.Max(from, 0);
            TruncateTxnIndexes(start);
            foreach (var seg in _segments)
            {
                if (seg.Size == 0 || seg.NextOffset <= start || !seg.TryAcquire()) continue;
                try
                {
                    int pos = seg.BaseOffset >= start ? 0 : seg.FindBatch(start);
                    if (pos < 0) continue;
                    string path = seg.TxnIndexPath;
                    state.Replay(seg.Data[pos..], a => AppendTxnIndex(path, a));
                    replayed++;
                }
                finally { seg.Release(); }
            }
            _log.LogInformation("Rebuilt the producer state of {Partition} up to offset {End} from {Source}, replaying {Segments} segments",
                Id, end, from < 0 ? "the whole log (no usable snapshot)" : "the snapshot at offset " + from.ToString(CultureInfo.InvariantCulture), replayed);
        }
        state.TruncateAbortedBefore(_logStartOffset);
        ProducerState = state;
        LastLoad = LastLoad with { ProducerSnapshotOffset = from, ProducerStateReplayedSegments = replayed };
    }

    /// <summary>The aborted transactions whose markers lie below <paramref name="below"/>, from the <c>.txnindex</c> files.</summary>
    private AbortedTransaction[] ReadTxnIndexes(long below)
    {
        var list = new List<AbortedTransaction>();
        foreach (var seg in _segments)
        {
            if (seg.BaseOffset >= below || !File.Exists(seg.TxnIndexPath)) continue;
            var bytes = File.ReadAllBytes(seg.TxnIndexPath);
            for (int p = 0; p + AbortedTransaction.EntrySize <= bytes.Length; p += AbortedTransaction.EntrySize)
            {
                var a = AbortedTransaction.Read(bytes.AsSpan(p));
                if (a.LastOffset < below) list.Add(a);
            }
        }
        return list.ToArray();
    }

    /// <summary>Drops the <c>.txnindex</c> entries at or above <paramref name="from"/>: the replay writes them again.</summary>
    private void TruncateTxnIndexes(long from)
    {
        foreach (var seg in _segments)
        {
            string path = seg.TxnIndexPath;
            if (!File.Exists(path)) continue;
            if (seg.BaseOffset >= from) { File.Delete(path); continue; }
            var bytes = File.ReadAllBytes(path);
            int keep = 0;
            for (int p = 0; p + AbortedTransaction.EntrySize <= bytes.Length; p += AbortedTransaction.EntrySize)
                if (AbortedTransaction.Read(bytes.AsSpan(p)).LastOffset < from) keep = p + AbortedTransaction.EntrySize;
                else break;
            if (keep < bytes.Length) File.WriteAllBytes(path, bytes.AsSpan(0, keep).ToArray());
        }
    }

    /// <summary>Clean close: persists the producer state at the log end offset (under the append lock).</summary>
    private void WriteProducerSnapshotLocked()
    {
        // Without it the next load replays from an older snapshot (or the log): slower, never wrong.
        try { WriteSnapshotFile(_logEndOffset, ProducerState, fsync: true); }
        catch (IOException) { }
    }

    /// <summary>
    /// Roll (under the append lock): the state covering every batch below the new segment, as Kafka's roll takes a
    /// snapshot. Not fsynced here; the roll's background flush does it before moving the recovery point past it.
    /// </summary>
    private void WriteRollSnapshotLocked(long offset)
    {
        try { WriteSnapshotFile(offset, ProducerState, fsync: false); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Only costs the next load a longer replay (from an older snapshot).
            _log.LogWarning("Could not write the producer snapshot at offset {Offset} of {Partition}: {Message}", offset, Id, e.Message);
        }
    }

    private void WriteSnapshotFile(long offset, ProducerStateManager state, bool fsync)
    {
        // Written even without producers: an empty snapshot still spares the next load the log scan.
        string path = SnapshotPath(offset);
        try
        {
            using var f = new FileStream(path, FileMode.Create, FileAccess.Write);
            f.Write(state.WriteSnapshot());
            f.Flush(flushToDisk: fsync);
        }
        catch (IOException)
        {
            // Without this snapshot the next load replays from an older one or from the log.
            File.Delete(path);
            throw;
        }
    }

    /// <summary>Retention moved the first segment: snapshots below it can never be the latest usable one again.</summary>
    private void DeleteSnapshotsBelow(long offset)
    {
        foreach (var (o, path) in ListSnapshots())
            if (o < offset)
                try { File.Delete(path); } catch (IOException) { }
    }
}
