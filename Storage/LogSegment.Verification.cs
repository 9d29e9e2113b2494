using Microsoft.Extensions.Logging;

namespace Kayak.Storage;

/// <summary>
/// Lazy CRC verification of trusted segments (issue 15). After a clean shutdown, and below the recovery point after a
/// crash, a segment is loaded without reading it (Kafka's loadSegmentFiles trusts it too, so a restart stays fast), and
/// Kafka then serves whatever bytes the disk returns: a bit flipped on disk reaches consumers, which stop at it with a
/// CRC error (Java with check.crcs=true; librdkafka only when asked) or, worse, take the damaged records. Kayak checks
/// each batch of such a segment once, the first time a read covers it: a fetch ends before the first invalid batch, and
/// a fetch that starts at it gets CORRUPT_MESSAGE for that partition (what Kafka answers for a batch its reader cannot
/// parse), with a WARN naming the file. Nothing is deleted: the batches after it stay readable by seeking past it.
/// Data appended by this process was CRC-checked by Produce, and recovered segments were checked by recovery, so only
/// the bytes a segment held when it was loaded trusted are ever checked here.
/// </summary>
internal sealed partial class LogSegment
{
    /// <summary>Null once every byte of the segment is known good (the usual case): one volatile read per fetch.</summary>
    private VerifiedRanges? _unverified;

    /// <summary>The load trusted this segment without reading it; its batches are checked as reads reach them.</summary>
    internal void MarkTrustedUnread()
    {
        if (Size > 0) Volatile.Write(ref _unverified, new VerifiedRanges(Size));
    }

    /// <summary>True while some bytes the segment held at load have not been read and checked yet (tests).</summary>
    internal bool HasUnverifiedBytes => Volatile.Read(ref _unverified) is not null;

    /// <summary>
    /// Checks the whole batches in [<paramref name="pos"/>, <paramref name="end"/>) that no earlier read checked. Returns
    /// -1 when they are all valid, else the position of the first invalid one (logged at WARN the first time it is
    /// found). Only while acquired; <paramref name="pos"/> is a batch boundary.
    /// </summary>
    internal int VerifyBatches(int pos, int end, ILogger log, string partition)
    {
        var v = Volatile.Read(ref _unverified);
        if (v is null) return -1;
        end = Math.Min(end, v.Limit); // bytes past the size at load were appended (and checked) by this process
        var data = Data;
        int from = pos;
        while (v.NextGap(from, end, out int gapStart, out int gapEnd))
        {
            int p = gapStart;
            while (p < gapEnd)
            {
                string? problem = CheckBatch(data, p, BaseOffset);
                if (problem is not null)
                {
                    v.Add(gapStart, p);
                    if (v.ReportOnce(p))
                        log.LogWarning("Found an invalid batch in log segment {File} of {Partition} at byte offset {Position}: {Problem}. " +
                            "The segment was trusted at start without a CRC check (clean shutdown or below the recovery point); fetches " +
                            "reaching this batch get CORRUPT_MESSAGE and the batches after it stay readable. Nothing was deleted",
                            LogPath, partition, p, problem);
                    return p;
                }
                p += Protocol.Records.RecordBatchHeader.LogOverhead +
                     System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(data[(p + Protocol.Records.RecordBatchHeader.BatchLengthOffset)..]);
            }
            v.Add(gapStart, p);
            from = p;
        }
        if (v.IsComplete) Interlocked.CompareExchange(ref _unverified, null, v);
        return -1;
    }

    /// <summary>
    /// Every batch of the segment, checked (the cleaner must not rewrite damaged bytes under a fresh CRC). Returns -1 or
    /// the position of the first invalid batch. Only while acquired.
    /// </summary>
    internal int VerifyAll(ILogger log, string partition) => VerifyBatches(0, Size, log, partition);

    /// <summary>
    /// The byte ranges of a trusted segment already checked, as sorted disjoint [start, end) intervals. Reads are
    /// mostly sequential, so this is one interval that grows; random reads add a few. Bounded by the batches.
    /// </summary>
    private sealed class VerifiedRanges(int limit)
    {
        private readonly List<(int Start, int End)> _ranges = [];
        private List<int>? _reported;

        /// <summary>The segment's size at load: bytes at and after it need no check.</summary>
        public int Limit { get; } = limit;

        public bool IsComplete
        {
            get { lock (_ranges) return _ranges.Count == 1 && _ranges[0].Start == 0 && _ranges[0].End >= Limit; }
        }

        /// <summary>The first unchecked range in [from, end), if any.</summary>
        public bool NextGap(int from, int end, out int gapStart, out int gapEnd)
        {
            lock (_ranges)
            {
                int p = from;
                foreach (var (s, e) in _ranges)
                {
                    if (e <= p) continue;
                    if (s > p) { gapStart = p; gapEnd = Math.Min(s, end); return gapStart < gapEnd; }
                    p = e; // inside a checked range: skip to its end
                }
                gapStart = p;
                gapEnd = end;
                return p < end;
            }
        }

        public void Add(int start, int end)
        {
            if (end <= start) return;
            lock (_ranges)
            {
                int i = 0;
                while (i < _ranges.Count && _ranges[i].End < start) i++;
                int s = start, e = end;
                while (i < _ranges.Count && _ranges[i].Start <= e)
                {
                    s = Math.Min(s, _ranges[i].Start);
                    e = Math.Max(e, _ranges[i].End);
                    _ranges.RemoveAt(i);
                }
                _ranges.Insert(i, (s, e));
            }
        }

        /// <summary>True the first time an invalid batch at this position is reported.</summary>
        public bool ReportOnce(int position)
        {
            lock (_ranges)
            {
                _reported ??= [];
                if (_reported.Contains(position)) return false;
                _reported.Add(position);
                return true;
            }
        }
    }
}
