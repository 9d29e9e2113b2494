using NUnit.Framework;

namespace Kayak.Storage.Tests;

public class CompactionTests
{
    private TempLogs _tmp = null!;

    [SetUp] public void SetUp() => _tmp = new TempLogs();
    [TearDown] public void TearDown() => _tmp.Dispose();

    private static List<(long Offset, string? Key, string? Value)> ReadAll(PartitionLog p)
    {
        var all = new List<(long, string?, string?)>();
        long o = p.LogStartOffset;
        while (o < p.LogEndOffset)
        {
            using var s = p.Read(o, int.MaxValue);
            if (s.IsEmpty) break;
            var recs = KeyedBatch.Records(s.Data.Span);
            all.AddRange(recs);
            Assert.That(BatchBuilder.CrcValid(s.Data.Span[..(System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(s.Data.Span[8..]) + 12)]), Is.True);
            o = BatchBuilder.Split(s.Data.Span).Select(b => BatchBuilder.LastOffset(b.Bytes)).Max() + 1;
        }
        return all;
    }

    [Test]
    public void Compaction_KeepsLatestValuePerKey_DropsOldTombstones_AndSurvivesRestart()
    {
        var cfg = new Dictionary<string, string> { ["cleanup.policy"] = "compact", ["delete.retention.ms"] = "1000" };
        long now = _tmp.Time.NowMs;
        List<(long, string?, string?)> afterFirst;
        using (var m = _tmp.Open())
        {
            var p = m.CreateTopic("c", 1, cfg).Partitions[0];
            p.Append(KeyedBatch.Build(now, ("a", "1"), ("b", "1"), ("c", "1")), 1);   // 0,1,2
            p.Append(KeyedBatch.Build(now, ("a", "2"), (null, "keyless")), 1);         // 3,4
            p.Roll();
            p.Append(KeyedBatch.Build(now, ("b", "2"), ("a", "3")), 1);                // 5,6
            p.Append(KeyedBatch.Build(now, ("c", null)), 1);                           // 7 tombstone
            p.Append(KeyedBatch.Build(now, ("d", "1")), 1);                            // 8
            p.Roll();
            p.Append(KeyedBatch.Build(now, ("a", "active")), 1);                       // 9, active segment: never cleaned
            Assert.That(m.RunCompaction(), Is.EqualTo(4), "a@0, b@1, c@2, a@3 are superseded");
            afterFirst = ReadAll(p);
            Assert.That(afterFirst, Is.EqualTo(new List<(long, string?, string?)>
            {
                (4, null, "keyless"), (5, "b", "2"), (6, "a", "3"), (7, "c", null), (8, "d", "1"), (9, "a", "active"),
            }));
            Assert.That(m.RunCompaction(), Is.EqualTo(0), "nothing rolled since the last pass");
            Assert.That(p.LogStartOffset, Is.EqualTo(0));
            using (var s = p.Read(0, 1)) Assert.That(KeyedBatch.Records(s.Data.Span)[0].Offset, Is.EqualTo(4), "reads skip the gap");
            using (var s2 = p.Read(2, 1000)) Assert.That(s2.Data.Length, Is.GreaterThan(0));
        }
        using (var m = _tmp.Open())
        {
            m.TryGetTopic("c", out var t);
            var p = t.Partitions[0];
            Assert.That(ReadAll(p), Is.EqualTo(afterFirst));
            _tmp.Time.Advance(1001);
            p.Roll();
            p.Append(KeyedBatch.Build(_tmp.Time.NowMs, ("e", "1")), 1);
            Assert.That(m.RunCompaction(), Is.EqualTo(2), "a@6 superseded by a@9 (now inactive) and the expired tombstone c@7");
            Assert.That(ReadAll(p).Select(r => r.Offset), Is.EqualTo(new long[] { 4, 5, 8, 9, 10 }));
        }
    }

    [Test]
    public void InterruptedSwap_IsCompletedOnLoad()
    {
        var cfg = new Dictionary<string, string> { ["cleanup.policy"] = "compact" };
        byte[] compactedSegment;
        using (var m = _tmp.Open())
        {
            var p = m.CreateTopic("c", 1, cfg).Partitions[0];
            p.Append(KeyedBatch.Build(0, ("a", "1")), 1);
            p.Append(KeyedBatch.Build(0, ("a", "2")), 1);
            p.Roll();
            p.Append(KeyedBatch.Build(0, ("b", "1")), 1);
            compactedSegment = KeyedBatch.Build(0, ("a", "2"));
            System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(compactedSegment, 1);
        }
        var log = Path.Combine(_tmp.Root, "c-0", $"{0:D20}.log");
        File.WriteAllBytes(log + ".swap", compactedSegment);
        using (var m = _tmp.Open())
        {
            m.TryGetTopic("c", out var t);
            Assert.That(ReadAll(t.Partitions[0]).Select(r => (r.Offset, r.Value)), Is.EqualTo(new[] { (1L, (string?)"2"), (2L, "1") }));
        }
        Assert.That(File.Exists(log + ".swap"), Is.False);
    }
}
