using System.Buffers.Binary;
using Kayak.Protocol;
using NUnit.Framework;

namespace Kayak.Storage.Tests;

public class DurabilityTests
{
    private TempLogs _tmp = null!;

    [SetUp] public void SetUp() => _tmp = new TempLogs();
    [TearDown] public void TearDown() => _tmp.Dispose();

    private string PartDir(string topic = "t", int p = 0) => Path.Combine(_tmp.Root, $"{topic}-{p}");
    private string Seg(long baseOffset, string ext, string topic = "t") => Path.Combine(PartDir(topic), $"{baseOffset:D20}.{ext}");

    private static void AssertReadable(PartitionLog p)
    {
        for (long o = p.LogStartOffset; o < p.LogEndOffset; o++)
        {
            using var s = p.Read(o, 1);
            var span = s.Data.Span;
            Assert.That(BinaryPrimitives.ReadInt64BigEndian(span), Is.LessThanOrEqualTo(o));
            Assert.That(BatchBuilder.LastOffset(span), Is.GreaterThanOrEqualTo(o));
            Assert.That(BatchBuilder.CrcValid(span[..(BinaryPrimitives.ReadInt32BigEndian(span[8..]) + 12)]), Is.True);
        }
    }

    [Test]
    public void CleanRestart_KeepsDataIdsAndConfigs()
    {
        Uuid id;
        var cfg = new Dictionary<string, string> { ["segment.bytes"] = "1000", ["retention.ms"] = "12345", ["cleanup.policy"] = "delete" };
        using (var m = _tmp.Open())
        {
            var t = m.CreateTopic("orders", 3, cfg);
            id = t.TopicId;
            for (int i = 0; i < 10; i++) t.Partitions[1].Append(BatchBuilder.Build(2, 100 + i, valueSize: 100), 1);
            t.Partitions[2].Append(BatchBuilder.Build(1, 5), 1);
        }
        Assert.That(File.Exists(Path.Combine(_tmp.Root, ".kafka_cleanshutdown")), Is.True);
        Assert.That(File.ReadAllText(Path.Combine(_tmp.Root, "orders-0", "partition.metadata")), Is.EqualTo($"version: 0\ntopic_id: {id}\n"));
        var activeLog = Directory.GetFiles(Path.Combine(_tmp.Root, "orders-1"), "*.log").Order().Last();
        Assert.That(new FileInfo(activeLog).Length, Is.LessThan(1000), "the active segment is trimmed on clean shutdown");

        using (var m = _tmp.Open())
        {
            Assert.That(File.Exists(Path.Combine(_tmp.Root, ".kafka_cleanshutdown")), Is.False, "marker is consumed on open");
            Assert.That(m.TryGetTopic("orders", out var t), Is.True);
            Assert.That(t.TopicId, Is.EqualTo(id));
            Assert.That(m.GetTopic(id), Is.SameAs(t));
            Assert.That(t.Partitions, Has.Count.EqualTo(3));
            Assert.That(t.Config.RetentionMs, Is.EqualTo(12345));
            Assert.That(t.Config.SegmentBytes, Is.EqualTo(1000));
            Assert.That(t.Config.Overrides, Is.EquivalentTo(cfg));
            Assert.That(t.Partitions[0].LogEndOffset, Is.EqualTo(0));
            Assert.That(t.Partitions[1].LogEndOffset, Is.EqualTo(20));
            Assert.That(t.Partitions[2].LogEndOffset, Is.EqualTo(1));
            AssertReadable(t.Partitions[1]);
            var r = t.Partitions[1].Append(BatchBuilder.Build(1, 0), 1);
            Assert.That(r.BaseOffset, Is.EqualTo(20));
            Assert.That(t.Partitions[1].MaxTimestamp(), Is.EqualTo((19L, 110L)));
        }
    }

    private (long[] BatchEnds, byte[] Batch) WriteAndCrash(int batches, Dictionary<string, string>? cfg = null)
    {
        var b = BatchBuilder.Build(3, 1000, valueSize: 40);
        var m = _tmp.Open();
        var p = m.CreateTopic("t", 1, cfg ?? new Dictionary<string, string>()).Partitions[0];
        var ends = new long[batches];
        for (int i = 0; i < batches; i++) { p.Append(b, 1); ends[i] = (i + 1L) * b.Length; }
        m.SimulateCrash();
        return (ends, b);
    }

    [Test]
    public void UncleanRestart_WithPreallocatedTail_FindsTheEnd()
    {
        var (_, b) = WriteAndCrash(5);
        Assert.That(new FileInfo(Seg(0, "log")).Length, Is.GreaterThan(5 * b.Length), "crash leaves the preallocated file");
        using var m = _tmp.Open();
        var p = m.TryGetTopic("t", out var t) ? t.Partitions[0] : null!;
        Assert.That(p.LogEndOffset, Is.EqualTo(15));
        AssertReadable(p);
        Assert.That(p.Append(b, 1).BaseOffset, Is.EqualTo(15));
    }

    [Test]
    public void Recovery_TruncatesATornBatch()
    {
        var (ends, b) = WriteAndCrash(5);
        using (var fs = new FileStream(Seg(0, "log"), FileMode.Open)) fs.SetLength(ends[2] + b.Length / 2);
        using var m = _tmp.Open();
        m.TryGetTopic("t", out var t);
        var p = t.Partitions[0];
        Assert.That(p.LogEndOffset, Is.EqualTo(9));
        AssertReadable(p);
        Assert.That(p.Append(b, 1).BaseOffset, Is.EqualTo(9));
        using var s = p.Read(9, 1);
        Assert.That(s.Data.Length, Is.EqualTo(b.Length));
    }

    [Test]
    public void Recovery_TruncatesAGarbageTail()
    {
        var (ends, b) = WriteAndCrash(4);
        var garbage = new byte[3000];
        new Random(7).NextBytes(garbage);
        using (var fs = new FileStream(Seg(0, "log"), FileMode.Open)) { fs.Position = ends[3]; fs.Write(garbage); }
        using var m = _tmp.Open();
        m.TryGetTopic("t", out var t);
        Assert.That(t.Partitions[0].LogEndOffset, Is.EqualTo(12));
        AssertReadable(t.Partitions[0]);
    }

    [Test]
    public void Recovery_DropsABatchWithABadCrc_AndEverythingAfterIt()
    {
        var (ends, _) = WriteAndCrash(4);
        using (var fs = new FileStream(Seg(0, "log"), FileMode.Open)) { fs.Position = ends[1] + 70; fs.WriteByte(0xEE); }
        using var m = _tmp.Open();
        m.TryGetTopic("t", out var t);
        Assert.That(t.Partitions[0].LogEndOffset, Is.EqualTo(6));
        Assert.That(new FileInfo(Seg(0, "log")).Length, Is.GreaterThanOrEqualTo(ends[1]));
    }

    [Test]
    public void Recovery_AfterCrash_WithRolledSegments_KeepsAllData()
    {
        var (_, b) = WriteAndCrash(20, new Dictionary<string, string> { ["segment.bytes"] = "1000" });
        using var m = _tmp.Open();
        m.TryGetTopic("t", out var t);
        var p = t.Partitions[0];
        Assert.That(p.LogEndOffset, Is.EqualTo(60));
        Assert.That(p.SegmentCount, Is.GreaterThan(3));
        AssertReadable(p);
        Assert.That(p.Append(b, 1).BaseOffset, Is.EqualTo(60));
    }

    [Test]
    public void DeletedIndex_IsRebuilt()
    {
        using (var m = _tmp.Open())
        {
            var p = m.CreateTopic("t", 1, new Dictionary<string, string> { ["segment.bytes"] = "3000", ["index.interval.bytes"] = "0" }).Partitions[0];
            for (int i = 0; i < 40; i++) p.Append(BatchBuilder.Build(2, 1000 + i, valueSize: 60), 1);
        }
        var second = Directory.GetFiles(PartDir(), "*.log").Order().ElementAt(1);
        var idx = Path.ChangeExtension(second, ".index");
        long originalLength = new FileInfo(idx).Length;
        Assert.That(originalLength, Is.GreaterThan(0));
        File.Delete(idx);
        File.Delete(Path.ChangeExtension(second, ".timeindex"));
        using (var m = _tmp.Open())
        {
            m.TryGetTopic("t", out var t);
            AssertReadable(t.Partitions[0]);
            Assert.That(t.Partitions[0].FindOffsetByTimestamp(1020), Is.EqualTo(((long, long)?)(39L, 1020L)), "batch 19 holds offsets 38,39 with timestamps 1019,1020");
        }
        Assert.That(new FileInfo(idx).Length, Is.EqualTo(originalLength));
    }

    [Test]
    public void CorruptIndex_IsRebuilt()
    {
        using (var m = _tmp.Open())
        {
            var p = m.CreateTopic("t", 1, new Dictionary<string, string> { ["segment.bytes"] = "3000", ["index.interval.bytes"] = "0" }).Partitions[0];
            for (int i = 0; i < 40; i++) p.Append(BatchBuilder.Build(2, 1000 + i, valueSize: 60), 1);
        }
        var first = Seg(0, "index");
        var good = File.ReadAllBytes(first);
        var bad = new byte[good.Length];
        new Random(3).NextBytes(bad);
        File.WriteAllBytes(first, bad);
        using (var m = _tmp.Open())
        {
            m.TryGetTopic("t", out var t);
            AssertReadable(t.Partitions[0]);
        }
        Assert.That(File.ReadAllBytes(first), Is.EqualTo(good));
    }

    [Test]
    public void DeleteRecordsBefore_MovesLogStart_DeletesSegments_AndSurvivesRestart()
    {
        using (var m = _tmp.Open())
        {
            var p = m.CreateTopic("t", 1, new Dictionary<string, string> { ["segment.bytes"] = "1000" }).Partitions[0];
            for (int i = 0; i < 10; i++) p.Append(BatchBuilder.Build(2, 0, valueSize: 100), 1); // 3 batches per segment
            Assert.That(p.DeleteRecordsBefore(7), Is.EqualTo(7));
            Assert.That(p.LogStartOffset, Is.EqualTo(7));
            Assert.That(p.Segments[0].BaseOffset, Is.EqualTo(6), "segments wholly below the new start are deleted");
            Assert.That(File.Exists(Seg(0, "log")), Is.False);
            Assert.That(p.DeleteRecordsBefore(3), Is.EqualTo(7), "moving backwards is a no-op");
            Assert.That(Assert.Throws<StorageErrorException>(() => p.Read(6, 100))!.Code, Is.EqualTo(ErrorCode.OffsetOutOfRange));
            using (var s = p.Read(7, 1)) Assert.That(BinaryPrimitives.ReadInt64BigEndian(s.Data.Span), Is.EqualTo(6));
            Assert.That(Assert.Throws<StorageErrorException>(() => p.DeleteRecordsBefore(21))!.Code, Is.EqualTo(ErrorCode.OffsetOutOfRange));
            Assert.That(File.ReadAllText(Path.Combine(_tmp.Root, "log-start-offset-checkpoint")), Does.Contain("t 0 7"));
        }
        using (var m = _tmp.Open())
        {
            m.TryGetTopic("t", out var t);
            Assert.That(t.Partitions[0].LogStartOffset, Is.EqualTo(7));
            Assert.That(t.Partitions[0].LogEndOffset, Is.EqualTo(20));
        }
    }

    [Test]
    public void DeleteRecordsBefore_IsPersistedEvenAfterACrash()
    {
        var m = _tmp.Open();
        var p = m.CreateTopic("t", 1, new Dictionary<string, string>()).Partitions[0];
        for (int i = 0; i < 4; i++) p.Append(BatchBuilder.Build(2, 0), 1);
        p.DeleteRecordsBefore(5);
        m.SimulateCrash();
        using var m2 = _tmp.Open();
        m2.TryGetTopic("t", out var t);
        Assert.That(t.Partitions[0].LogStartOffset, Is.EqualTo(5));
        Assert.That(t.Partitions[0].LogEndOffset, Is.EqualTo(8));
    }

    [Test]
    public void Recovery_KeepsAllBatches_WhenSegmentIndexBytesShrank()
    {
        var (_, b) = WriteAndCrash(30, new Dictionary<string, string> { ["index.interval.bytes"] = "0" });
        using var m = _tmp.Open(_tmp.Options(o => new LogOptions
        {
            LogDirs = o.LogDirs, Time = o.Time, SegmentBytes = o.SegmentBytes, IndexIntervalBytes = o.IndexIntervalBytes, SegmentIndexBytes = 16,
        }));
        m.TryGetTopic("t", out var t);
        var p = t.Partitions[0];
        Assert.That(p.LogEndOffset, Is.EqualTo(90));
        AssertReadable(p);
        p.Append(b, 1);
        Assert.That(p.SegmentCount, Is.EqualTo(2), "the over-full index makes the next append roll");
    }
}
