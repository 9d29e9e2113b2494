using System.Text;
using Kayak.Protocol.Compression;
using Kayak.Protocol.Records;
using NUnit.Framework;
using Kayak.Protocol;

namespace Kayak.Storage.Tests;

/// <summary>One record as read back: offset, key, value, "k=v;" headers, absolute timestamp.</summary>
internal readonly record struct ReadRecord(long Offset, string? Key, string? Value, string Headers, long Timestamp);

/// <summary>Reads a partition back through the Protocol decoders (any codec), checking every batch's CRC.</summary>
internal static class LogReader
{
    public static List<ReadRecord> Records(PartitionLog p) => Batches(p).SelectMany(b => b.Records).ToList();

    public static List<(RecordBatchHeader Header, List<ReadRecord> Records)> Batches(PartitionLog p)
    {
        var result = new List<(RecordBatchHeader, List<ReadRecord>)>();
        long o = p.LogStartOffset;
        while (o < p.LogEndOffset)
        {
            using var s = p.Read(o, int.MaxValue);
            if (s.IsEmpty) break;
            var rest = s.Data.Span;
            while (RecordBatchHeader.TryRead(rest, out var h))
            {
                var batch = rest[..h.TotalSize];
                Assert.That(RecordBatch.ComputeCrc(batch), Is.EqualTo(h.Crc), $"CRC of the batch at {h.BaseOffset}");
                result.Add((h, Decode(batch, h)));
                o = h.LastOffset + 1;
                rest = rest[h.TotalSize..];
            }
        }
        return result;
    }

    private static List<ReadRecord> Decode(ReadOnlySpan<byte> batch, RecordBatchHeader h)
    {
        var list = new List<ReadRecord>();
        using var plain = new PooledBufferWriter(1024);
        RecordBatch.DecompressRecords(batch, plain);
        foreach (var r in new RecordEnumerator(plain.WrittenSpan, h.RecordsCount))
        {
            var headers = new StringBuilder();
            foreach (var x in r.Headers) headers.Append(x.KeyString).Append('=').Append(Encoding.UTF8.GetString(x.Value)).Append(';');
            list.Add(new ReadRecord(h.BaseOffset + r.OffsetDelta, r.KeyIsNull ? null : Encoding.UTF8.GetString(r.Key),
                r.ValueIsNull ? null : Encoding.UTF8.GetString(r.Value), headers.ToString(), h.BaseTimestamp + r.TimestampDelta));
        }
        return list;
    }
}

internal static class CodecBatch
{
    /// <summary>A batch built by the Protocol's RecordBatchBuilder; record i has timestamp ts + i and, for keys starting with 'h', a header.</summary>
    public static byte[] Build(CompressionType codec, long ts, (string Key, string? Value)[] records, long producerId = -1, int baseSequence = -1, bool transactional = false)
    {
        using var b = new RecordBatchBuilder(new RecordBatchOptions
        {
            Compression = codec, ProducerId = producerId, ProducerEpoch = (short)(producerId >= 0 ? 0 : -1), BaseSequence = baseSequence,
            IsTransactional = transactional,
        });
        for (int i = 0; i < records.Length; i++)
        {
            var (k, v) = records[i];
            var headers = k.StartsWith('h') ? new[] { new RecordHeader("src", Encoding.UTF8.GetBytes(k + "@" + i)) } : null;
            b.Append(ts + i, Encoding.UTF8.GetBytes(k), v is null ? null : Encoding.UTF8.GetBytes(v), headers);
        }
        return b.ToArray();
    }
}

public class CompactionCodecTests
{
    private TempLogs _tmp = null!;

    [SetUp] public void SetUp() => _tmp = new TempLogs();
    [TearDown] public void TearDown() => _tmp.Dispose();

    private static readonly Dictionary<string, string> Compact = new() { ["cleanup.policy"] = "compact", ["delete.retention.ms"] = "1000" };

    /// <summary>Offsets 0..9 in two inactive segments and the active one; see the expected list in the test.</summary>
    private static PartitionLog Write(LogManager m, CompressionType codec, long now)
    {
        var p = m.CreateTopic("c", 1, Compact).Partitions[0];
        p.Append(CodecBatch.Build(codec, now, [("h1", "v1"), ("k2", "v1"), ("k3", "v1"), ("h1", "v2")]), 1); // 0-3
        p.Append(CodecBatch.Build(codec, now + 10, [("k2", "v2"), ("k3", null), ("k4", "v1")]), 1);         // 4-6
        p.Roll();
        p.Append(CodecBatch.Build(codec, now + 20, [("k4", "v2"), ("h5", "v1")]), 1);                       // 7-8
        p.Roll();
        p.Append(CodecBatch.Build(codec, now + 30, [("h5", "v2")]), 1);                                     // 9, active
        return p;
    }

    [TestCase(CompressionType.None)]
    [TestCase(CompressionType.Gzip)]
    [TestCase(CompressionType.Snappy)]
    [TestCase(CompressionType.Lz4)]
    [TestCase(CompressionType.Zstd)]
    public void CompressedBatches_AreCleaned_Recompressed_AndReadBackExactly(CompressionType codec)
    {
        long now = _tmp.Time.NowMs;
        using (var m = _tmp.Open())
        {
            var p = Write(m, codec, now);
            Assert.That(m.RunCompaction(), Is.EqualTo(4), "h1@0, k2@1, k3@2 and k4@6 are superseded");
            var expected = new List<ReadRecord>
            {
                new(3, "h1", "v2", "src=h1@3;", now + 3),
                new(4, "k2", "v2", "", now + 10),
                new(5, "k3", null, "", now + 11),
                new(7, "k4", "v2", "", now + 20),
                new(8, "h5", "v1", "src=h5@1;", now + 21),
                new(9, "h5", "v2", "src=h5@0;", now + 30),
            };
            Assert.That(LogReader.Records(p), Is.EqualTo(expected));
            var batches = LogReader.Batches(p);
            Assert.That(batches.Select(b => b.Header.Compression), Is.All.EqualTo(codec), "kept records are recompressed with their batch's codec");
            Assert.That(batches.Select(b => (b.Header.BaseOffset, b.Header.LastOffset)), Is.EqualTo(new[] { (0L, 3L), (4L, 6L), (7L, 8L), (9L, 9L) }),
                "base and last offsets survive (the last offset carries the producer's last sequence)");
            Assert.That(batches[1].Header.HasDeleteHorizon && batches[1].Header.BaseTimestamp == now + 1000, Is.True,
                "KIP-534: the batch keeping a tombstone gets delete horizon now + delete.retention.ms");
            Assert.That(batches[0].Header.MaxTimestamp, Is.EqualTo(now + 3), "max timestamp of the kept records");
            Assert.That(p.SegmentCount, Is.EqualTo(2), "the two small inactive segments were cleaned into one");

            _tmp.Time.Advance(999);
            Assert.That(m.RunCompaction(), Is.Zero, "nothing rolled and the delete horizon is still ahead");
            _tmp.Time.Advance(1);
            Assert.That(m.RunCompaction(), Is.EqualTo(1), "the horizon came: the tombstone goes without a roll");
            expected.RemoveAt(2);
            Assert.That(LogReader.Records(p), Is.EqualTo(expected));
        }
        using (var m = _tmp.Open())
        {
            m.TryGetTopic("c", out var t);
            Assert.That(LogReader.Records(t.Partitions[0]).Select(r => r.Offset), Is.EqualTo(new long[] { 3, 4, 7, 8, 9 }));
        }
    }

    [TestCase(CompressionType.Lz4, "cleaned", false)]
    [TestCase(CompressionType.Zstd, "swap", true)]
    [TestCase(CompressionType.Gzip, "deleted", true)]
    [TestCase(CompressionType.Snappy, "deleted", true)]
    public void CrashDuringTheSwap_LosesNothing(CompressionType codec, string step, bool swapCompleted)
    {
        long now = _tmp.Time.NowMs;
        List<ReadRecord> original;
        using (var m = _tmp.Open())
        {
            var p = Write(m, codec, now);
            original = LogReader.Records(p);
            p.CleanerStep = s => { if (s == step) throw new IOException("crash at " + s); };
            Assert.Throws<IOException>(() => m.RunCompaction());
            m.SimulateCrash();
        }
        var dir = Path.Combine(_tmp.Root, "c-0");
        using (var m = _tmp.Open())
        {
            m.TryGetTopic("c", out var t);
            var p = t.Partitions[0];
            var after = LogReader.Records(p);
            var compacted = new long[] { 3, 4, 5, 7, 8, 9 };
            Assert.That(after.Select(r => r.Offset), Is.EqualTo(swapCompleted ? compacted : original.Select(r => r.Offset)));
            Assert.That(after, Is.SubsetOf(original), "every record read back is one that was written, unchanged");
            Assert.That(Directory.GetFiles(dir).Where(f => f.EndsWith(".cleaned") || f.EndsWith(".swap")), Is.Empty);
            Assert.That(p.SegmentCount, Is.EqualTo(swapCompleted ? 2 : 3));
            Assert.That(p.LogEndOffset, Is.EqualTo(10));
            m.RunCompaction();
            Assert.That(LogReader.Records(p).Select(r => r.Offset), Is.EqualTo(compacted), "the next pass finishes the job");
            p.Append(CodecBatch.Build(codec, now, [("k9", "x")]), 1);
            Assert.That(LogReader.Records(p)[^1], Is.EqualTo(new ReadRecord(10, "k9", "x", "", now)));
        }
    }

    [Test]
    public void RepeatedOverwrites_KeepTheSegmentCountBounded_K12()
    {
        var cfg = new Dictionary<string, string>(Compact) { ["segment.bytes"] = "8192" };
        var codecs = new[] { CompressionType.None, CompressionType.Gzip, CompressionType.Snappy, CompressionType.Lz4, CompressionType.Zstd };
        var latest = new Dictionary<string, string>();
        const long pid = 7;
        int seq = 0;
        using var m = _tmp.Open();
        var p = m.CreateTopic("k12", 1, cfg).Partitions[0];
        var dir = Path.Combine(_tmp.Root, "k12-0");
        for (int cycle = 0; cycle < 12; cycle++)
        {
            // 40 keys, 5 per batch, ~100-byte values: ~5 KB a cycle, rolling by size every ~1.5 cycles, plus a forced roll.
            var codec = codecs[cycle % codecs.Length];
            for (int b = 0; b < 8; b++)
            {
                var recs = Enumerable.Range(b * 5, 5).Select(k => ($"key{k}", (string?)$"c{cycle}-{new string('x', 96)}")).ToArray();
                foreach (var (k, v) in recs) latest[k] = v!;
                p.Append(CodecBatch.Build(codec, _tmp.Time.NowMs, recs, pid, seq), 1);
                seq += recs.Length;
            }
            p.Roll();
            m.RunCompaction();
            Assert.That(p.SegmentCount, Is.LessThanOrEqualTo(3), $"cycle {cycle}: segments stay bounded");
            Assert.That(Directory.GetFiles(dir, "*.log").Length, Is.EqualTo(p.SegmentCount));
            var read = LogReader.Records(p);
            var lastRead = new Dictionary<string, string?>();
            foreach (var r in read) lastRead[r.Key!] = r.Value;
            Assert.That(lastRead, Is.EquivalentTo(latest.ToDictionary(kv => kv.Key, kv => (string?)kv.Value)), $"cycle {cycle}: the latest values");
            Assert.That(read.Select(r => r.Key).Distinct().Count(), Is.EqualTo(read.Count), "one record per key: the active segment is empty after the roll");
        }
        // Only the producer's last batch may stay without records (Kafka's RETAIN_EMPTY), none of the others.
        var empty = LogReader.Batches(p).Where(b => b.Records.Count == 0).ToList();
        Assert.That(empty.Count, Is.LessThanOrEqualTo(1));
    }

    [Test]
    public void ProducerState_SurvivesCleaning_TheLastBatchIsKeptEmpty()
    {
        const long pid = 42;
        long now = _tmp.Time.NowMs;
        using (var m = _tmp.Open())
        {
            var p = m.CreateTopic("ps", 1, Compact).Partitions[0];
            p.Append(CodecBatch.Build(CompressionType.Lz4, now, [("a", "1")], pid, 0), 1);     // 0: superseded, not the last: dropped
            p.Append(CodecBatch.Build(CompressionType.Lz4, now, [("a", "2"), ("b", "1")], pid, 1), 1); // 1-2: last of pid 42
            p.Append(CodecBatch.Build(CompressionType.None, now, [("c", "1")]), 1);            // 3: no producer, superseded: dropped
            p.Roll();
            p.Append(CodecBatch.Build(CompressionType.None, now, [("a", "3"), ("b", "2"), ("c", "2")]), 1); // 4-6
            p.Roll();
            Assert.That(m.RunCompaction(), Is.EqualTo(4));
            var batches = LogReader.Batches(p);
            Assert.That(batches.Count, Is.EqualTo(2));
            var h = batches[0].Header;
            Assert.That((h.BaseOffset, h.LastOffset, h.RecordsCount, h.TotalSize), Is.EqualTo((1L, 2L, 0, RecordBatchHeader.Size)));
            Assert.That((h.ProducerId, h.ProducerEpoch, h.BaseSequence, h.Compression), Is.EqualTo((pid, (short)0, 1, CompressionType.None)));
            m.SimulateCrash(); // no snapshot: producer state is rebuilt from the cleaned log
        }
        using (var m = _tmp.Open())
        {
            m.TryGetTopic("ps", out var t);
            var p = t.Partitions[0];
            var retry = p.Append(CodecBatch.Build(CompressionType.Lz4, now, [("a", "2"), ("b", "1")], pid, 1), 1);
            Assert.That((retry.IsDuplicate, retry.BaseOffset), Is.EqualTo((true, 1L)), "the retried last batch is still recognised");
            var gap = Assert.Throws<ProducerStateException>(() => p.Append(CodecBatch.Build(CompressionType.None, now, [("a", "x")], pid, 9), 1));
            Assert.That(gap!.Code, Is.EqualTo(ErrorCode.OutOfOrderSequenceNumber));
            Assert.That(p.Append(CodecBatch.Build(CompressionType.None, now, [("a", "4")], pid, 3), 1).BaseOffset, Is.EqualTo(7));
        }
    }

    [Test]
    public void AbortedTransactions_StayAborted_WhenTheirSegmentsAreMerged()
    {
        const long txnPid = 5;
        long now = _tmp.Time.NowMs;
        using (var m = _tmp.Open())
        {
            var p = m.CreateTopic("tx", 1, Compact).Partitions[0];
            p.Append(CodecBatch.Build(CompressionType.Zstd, now, [("a", "committed")]), 1);       // 0
            p.Roll();
            p.Append(CodecBatch.Build(CompressionType.Zstd, now, [("a", "aborted"), ("b", "aborted")], txnPid, 0, transactional: true), 1); // 1-2
            p.AppendEndTxnMarker(txnPid, 0, 0, commit: false);                                   // 3, abort: entry in this segment's .txnindex
            p.Roll();
            p.Append(CodecBatch.Build(CompressionType.None, now, [("c", "1")]), 1);               // 4
            p.Roll();
            m.RunCompaction();
            Assert.That(p.SegmentCount, Is.EqualTo(2), "merged");
            var read = LogReader.Records(p);
            Assert.That(read.Select(r => r.Offset), Is.EqualTo(new long[] { 0, 1, 2, 3, 4 }), "aborted values neither shadow a@0 nor vanish; the marker stays");
            Assert.That(read[0].Value, Is.EqualTo("committed"));
        }
        using (var m = _tmp.Open()) // clean shutdown: the aborted list comes from the .txnindex files
        {
            m.TryGetTopic("tx", out var t);
            var aborted = new List<AbortedTransaction>();
            t.Partitions[0].CollectAbortedTransactions(0, 10, aborted);
            Assert.That(aborted.Select(a => (a.ProducerId, a.FirstOffset, a.LastOffset)), Is.EqualTo(new[] { (txnPid, 1L, 3L) }));
        }
    }
}
