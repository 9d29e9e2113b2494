using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;

namespace Kayak.Storage;

/// <summary>
/// Kafka's LeaderEpochFileCache and its <c>leader-epoch-checkpoint</c> file in the partition directory (KIP-101): the
/// start offset of each leader epoch the log's batches carry, so OffsetForLeaderEpoch and a follower's truncation
/// answer from memory instead of scanning batch headers. The file has Kafka's format (version 0, the entry count, then
/// "epoch startOffset" lines) and is written atomically on every change, which is rare: a new epoch, a truncation, a
/// log start offset moving up. It is derived data: a missing, malformed or unwritable file is never a reason to refuse
/// the log; the cache is then rebuilt from the batches on first use (<see cref="PartitionLog"/>). All calls are made
/// under the partition's lock. Kept (and its file written) only in a replicated cluster, where OffsetForLeaderEpoch and
/// follower truncation use it: a single broker answers OffsetForLeaderEpoch from its one epoch, so <paramref name="persist"/>
/// false keeps the entries in memory only: its partitions have no file and their appends no I/O for it.
/// </summary>
internal sealed class LeaderEpochCache(string dir, string partitionId, ILogger log, bool persist)
{
    public const string FileName = "leader-epoch-checkpoint";
    private readonly string _path = Path.Combine(dir, FileName);

    // Ascending by epoch and by start offset; null while unknown (a log with batches but no readable file).
    private List<(int Epoch, long StartOffset)>? _entries;

    public bool Known => _entries is not null;

    /// <summary>The largest epoch with an entry, -1 when there is none.</summary>
    public int LatestEpoch => _entries is { Count: > 0 } e ? e[^1].Epoch : -1;

    /// <summary>At load: the file, cut to the log's offsets; unknown (rebuilt later) when it is missing or malformed and the log has batches.</summary>
    public void Load(long logStartOffset, long logEndOffset)
    {
        _entries = persist ? TryRead() : null;
        if (_entries is null)
        {
            if (logEndOffset == logStartOffset) _entries = new();
            return;
        }
        // A crash may have cut the log below what the file lists, and a log start offset may have moved after it.
        TruncateFromEnd(logEndOffset);
        TruncateFromStart(logStartOffset);
    }

    /// <summary>The entries scanned from the batches of a log whose file could not be used; written out at once.</summary>
    public void Rebuild(List<(int Epoch, long StartOffset)> scanned)
    {
        _entries = scanned;
        Write();
    }

    /// <summary>
    /// An appended batch (leader or follower): a higher epoch than the latest starts an entry at the batch's base
    /// offset. A lower one replaces the entries it conflicts with, as Kafka's assign does for non-monotonic epochs.
    /// -1 (no epoch) changes nothing. One comparison on the append path.
    /// </summary>
    public void Observe(int epoch, long baseOffset)
    {
        if (epoch < 0 || _entries is not { } entries) return;
        if (entries.Count > 0 && entries[^1].Epoch == epoch) return;
        if (entries.Count > 0 && (entries[^1].Epoch > epoch || entries[^1].StartOffset >= baseOffset))
        {
            log.LogWarning("Leader epoch {Epoch} at offset {Offset} of {Partition} is not above the latest entry ({Latest} at {Start}): later entries are dropped",
                epoch, baseOffset, partitionId, entries[^1].Epoch, entries[^1].StartOffset);
            entries.RemoveAll(e => e.Epoch >= epoch || e.StartOffset >= baseOffset);
        }
        entries.Add((epoch, baseOffset));
        Write();
    }

    /// <summary>The log was truncated to <paramref name="endOffset"/>: epochs starting there or later are gone.</summary>
    public void TruncateFromEnd(long endOffset)
    {
        if (_entries is not { } entries) return;
        int keep = entries.Count;
        while (keep > 0 && entries[keep - 1].StartOffset >= endOffset) keep--;
        if (keep == entries.Count) return;
        entries.RemoveRange(keep, entries.Count - keep);
        Write();
    }

    /// <summary>The log start offset moved up: the epoch holding it now starts there, earlier ones are gone.</summary>
    public void TruncateFromStart(long startOffset)
    {
        if (_entries is not { } entries || entries.Count == 0 || entries[0].StartOffset >= startOffset) return;
        int floor = 0;
        while (floor + 1 < entries.Count && entries[floor + 1].StartOffset <= startOffset) floor++;
        entries.RemoveRange(0, floor);
        if (entries[0].StartOffset < startOffset) entries[0] = (entries[0].Epoch, startOffset);
        Write();
    }

    /// <summary>
    /// Kafka's endOffsetFor: for the latest (or the caller's current) epoch the log end offset; else the largest epoch
    /// at or below <paramref name="requested"/> and the start offset of the first later epoch; for a requested epoch
    /// older than every entry, itself and the first entry's start (the data before was removed); (-1, -1) for an
    /// undefined epoch or one above every entry. An epoch above every entry but below the current one ends at the log
    /// end: the current leader epoch has no entry until its first append here.
    /// </summary>
    public (int Epoch, long EndOffset) EndOffsetFor(int requested, int currentLeaderEpoch, long logEndOffset)
    {
        var entries = _entries ?? throw new InvalidOperationException("leader epochs not loaded");
        if (requested < 0) return (-1, -1);
        if (requested == currentLeaderEpoch || requested == LatestEpoch) return (requested, logEndOffset);
        int higher = 0;
        while (higher < entries.Count && entries[higher].Epoch <= requested) higher++;
        // Above every entry: Kafka's leader has an entry for its current epoch, so only an epoch above that is unknown.
        if (higher == entries.Count) return higher > 0 && requested < currentLeaderEpoch ? (entries[^1].Epoch, logEndOffset) : (-1, -1);
        return higher == 0 ? (requested, entries[0].StartOffset) : (entries[higher - 1].Epoch, entries[higher].StartOffset);
    }

    private List<(int, long)>? TryRead()
    {
        string[] lines;
        try
        {
            if (!File.Exists(_path)) return null;
            lines = File.ReadAllLines(_path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            log.LogWarning(e, "Cannot read {File} of {Partition}; its leader epochs are rebuilt from the log", _path, partitionId);
            return null;
        }
        var entries = new List<(int, long)>();
        bool ok = lines.Length >= 2 && lines[0].Trim() == "0" && int.TryParse(lines[1], NumberStyles.None, CultureInfo.InvariantCulture, out int count)
            && count >= 0 && lines.Length >= 2 + count;
        for (int i = 0; ok && i < int.Parse(lines[1], CultureInfo.InvariantCulture); i++)
        {
            var parts = lines[2 + i].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            ok = parts.Length == 2 && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int epoch)
                && long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out long start)
                && (entries.Count == 0 || (entries[^1].Item1 < epoch && entries[^1].Item2 <= start));
            if (ok) entries.Add((int.Parse(parts[0], CultureInfo.InvariantCulture), long.Parse(parts[1], CultureInfo.InvariantCulture)));
        }
        if (ok) return entries;
        // Kafka refuses a malformed checkpoint; here it is rebuilt from the batches, which are the truth it summarises.
        log.LogWarning("Malformed {File} of {Partition}; its leader epochs are rebuilt from the log", _path, partitionId);
        return null;
    }

    private void Write()
    {
        if (!persist) return;
        var sb = new StringBuilder("0\n").Append(_entries!.Count.ToString(CultureInfo.InvariantCulture)).Append('\n');
        foreach (var (epoch, start) in _entries)
            sb.Append(epoch.ToString(CultureInfo.InvariantCulture)).Append(' ').Append(start.ToString(CultureInfo.InvariantCulture)).Append('\n');
        try
        {
            AtomicFile.Write(_path, sb.ToString());
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A full disk must not fail the append that changed the epochs. A stale file would be trusted at the next
            // load, so it goes: that load rebuilds the epochs from the batches.
            log.LogWarning(e, "Cannot write {File} of {Partition}; it is removed so the next start rebuilds it from the log", _path, partitionId);
            try { File.Delete(_path); } catch (Exception d) when (d is IOException or UnauthorizedAccessException) { }
        }
    }
}
