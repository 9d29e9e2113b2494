using System.Buffers.Binary;
using Kayak.Protocol;
using NUnit.Framework;

namespace Kayak.Storage.Tests;

public class ManagerTests
{
    private TempLogs _tmp = null!;

    [SetUp] public void SetUp() => _tmp = new TempLogs();
    [TearDown] public void TearDown() => _tmp.Dispose();

    private static Dictionary<string, string> Cfg(params (string K, string V)[] kv) => kv.ToDictionary(x => x.K, x => x.V);

    [Test]
    public void RetentionByTime_DeletesSegmentsWhoseNewestRecordIsTooOld()
    {
        using var m = _tmp.Open();
        var p = m.CreateTopic("t", 1, Cfg(("segment.bytes", "1000"), ("retention.ms", "10000"))).Partitions[0];
        long now = _tmp.Time.NowMs;
        for (int i = 0; i < 9; i++) p.Append(BatchBuilder.Build(2, now - 20000 + i * 1000, valueSize: 100), 1); // segments: [0..5] [6..11] [12..17]
        for (int i = 0; i < 3; i++) p.Append(BatchBuilder.Build(2, now, valueSize: 100), 1);
        Assert.That(p.SegmentCount, Is.EqualTo(4));
        Assert.That(m.RunRetention(), Is.EqualTo(3));
        Assert.That(p.LogStartOffset, Is.EqualTo(18));
        Assert.That(p.SegmentCount, Is.EqualTo(1));
        Assert.That(Directory.GetFiles(Path.Combine(_tmp.Root, "t-0"), "*.log"), Has.Length.EqualTo(1));
        Assert.That(File.ReadAllText(Path.Combine(_tmp.Root, "log-start-offset-checkpoint")), Does.Contain("t 0 18"));

        // Once everything expires the active segment is rolled and deleted too; the log end offset stays.
        _tmp.Time.Advance(10002); // newest record is at now+1
        Assert.That(m.RunRetention(), Is.EqualTo(1));
        Assert.That(p.LogStartOffset, Is.EqualTo(24));
        Assert.That(p.LogEndOffset, Is.EqualTo(24));
        Assert.That(p.Append(BatchBuilder.Build(1, _tmp.Time.NowMs), 1).BaseOffset, Is.EqualTo(24));
    }

    [Test]
    public void RetentionMsMinusOne_KeepsEverything_AndCompactOnlyTopicsAreSkipped()
    {
        using var m = _tmp.Open();
        var forever = m.CreateTopic("forever", 1, Cfg(("segment.bytes", "1000"), ("retention.ms", "-1"))).Partitions[0];
        var compact = m.CreateTopic("compact", 1, Cfg(("segment.bytes", "1000"), ("retention.ms", "1"), ("cleanup.policy", "compact"))).Partitions[0];
        for (int i = 0; i < 6; i++)
        {
            forever.Append(BatchBuilder.Build(2, 0, valueSize: 100), 1);
            compact.Append(BatchBuilder.Build(2, 0, valueSize: 100), 1);
        }
        Assert.That(m.RunRetention(), Is.EqualTo(0));
        Assert.That(forever.LogStartOffset, Is.EqualTo(0));
        Assert.That(compact.LogStartOffset, Is.EqualTo(0));
    }

    [Test]
    public void RetentionBySize_DeletesOldestWholeSegmentsOverTheLimit()
    {
        using var m = _tmp.Open();
        var b = BatchBuilder.Build(2, 0, valueSize: 100);
        var p = m.CreateTopic("t", 1, Cfg(("segment.bytes", "1000"), ("retention.ms", "-1"), ("retention.bytes", (4 * b.Length).ToString()))).Partitions[0];
        for (int i = 0; i < 10; i++) p.Append(b, 1); // segments of 3,3,3,1 batches
        Assert.That(m.RunRetention(), Is.EqualTo(2));
        Assert.That(p.Size, Is.EqualTo(4 * b.Length));
        Assert.That(p.LogStartOffset, Is.EqualTo(12));
        Assert.That(m.RunRetention(), Is.EqualTo(0));
    }

    [Test]
    public void FetchSlice_SurvivesRetentionDeletingItsSegment()
    {
        using var m = _tmp.Open();
        var p = m.CreateTopic("t", 1, Cfg(("segment.bytes", "1000"), ("retention.ms", "1000"))).Partitions[0];
        for (int i = 0; i < 3; i++) p.Append(BatchBuilder.Build(2, 0, valueSize: 100, tag: "old" + i), 1);
        for (int i = 0; i < 3; i++) p.Append(BatchBuilder.Build(2, _tmp.Time.NowMs, valueSize: 100), 1);
        var slice = p.Read(0, int.MaxValue);
        var copy = slice.Data.ToArray();
        Assert.That(m.RunRetention(), Is.EqualTo(1));
        Assert.That(File.Exists(Path.Combine(_tmp.Root, "t-0", $"{0:D20}.log")), Is.False);
        Assert.That(slice.Data.ToArray(), Is.EqualTo(copy), "mapped bytes stay valid until the slice is disposed");
        Assert.That(BatchBuilder.CrcValid(slice.Data.Span[..(copy.Length / 3)]), Is.True);
        slice.Dispose();
        slice.Dispose(); // idempotent
        Assert.That(Assert.Throws<StorageErrorException>(() => p.Read(0, 100))!.Code, Is.EqualTo(ErrorCode.OffsetOutOfRange));
    }

    [Test]
    public void FetchSlice_SurvivesARollOfItsActiveSegment()
    {
        using var m = _tmp.Open();
        var p = m.CreateTopic("t", 1, Cfg(("segment.bytes", "1000"))).Partitions[0];
        p.Append(BatchBuilder.Build(2, 0, valueSize: 100), 1);
        using var slice = p.Read(0, int.MaxValue);
        var copy = slice.Data.ToArray();
        for (int i = 0; i < 5; i++) p.Append(BatchBuilder.Build(2, 0, valueSize: 100), 1);
        Assert.That(p.SegmentCount, Is.EqualTo(2));
        Assert.That(slice.Data.ToArray(), Is.EqualTo(copy));
    }

    [Test]
    public void InactiveSegments_AreMappedOnDemand_AndEvictedBeyondTheCacheSize()
    {
        using var m = _tmp.Open(_tmp.Options() is var o ? new LogOptions
        {
            LogDirs = o.LogDirs, Time = o.Time, SegmentBytes = o.SegmentBytes, SegmentIndexBytes = o.SegmentIndexBytes,
            IndexIntervalBytes = o.IndexIntervalBytes, MaxMappedInactiveSegments = 2,
        } : null);
        var p = m.CreateTopic("t", 1, Cfg(("segment.bytes", "1000"))).Partitions[0];
        for (int i = 0; i < 30; i++) p.Append(BatchBuilder.Build(2, 0, valueSize: 100), 1);
        Assert.That(p.SegmentCount, Is.EqualTo(10));
        Assert.That(m.MappedInactiveSegments, Is.EqualTo(0), "rolled segments are unmapped");
        var held = new List<FetchSlice>();
        for (long o2 = 0; o2 < 54; o2 += 6)
        {
            var s = p.Read(o2, 1);
            Assert.That(BinaryPrimitives.ReadInt64BigEndian(s.Data.Span), Is.EqualTo(o2));
            held.Add(s);
        }
        Assert.That(m.MappedInactiveSegments, Is.EqualTo(9), "segments in use are never unmapped");
        foreach (var s in held) s.Dispose();
        using (p.Read(0, 1)) { }
        Assert.That(m.MappedInactiveSegments, Is.LessThanOrEqualTo(2));
        for (long o2 = 0; o2 < 60; o2 += 1)
            using (var s = p.Read(o2, 1))
                Assert.That(BatchBuilder.LastOffset(s.Data.Span), Is.GreaterThanOrEqualTo(o2));
        Assert.That(m.MappedInactiveSegments, Is.LessThanOrEqualTo(2));
    }

    [Test]
    public void TopicNames_AreValidatedLikeKafka()
    {
        using var m = _tmp.Open();
        foreach (var bad in new[] { "", ".", "..", "a/b", "sp ace", "ü", new string('x', 250) })
            Assert.That(Assert.Throws<StorageErrorException>(() => m.CreateTopic(bad, 1, Cfg()))!.Code, Is.EqualTo(ErrorCode.InvalidTopicException), bad);
        m.CreateTopic(new string('x', 249), 1, Cfg());
        m.CreateTopic("a.b", 1, Cfg());
        Assert.That(Assert.Throws<StorageErrorException>(() => m.CreateTopic("a_b", 1, Cfg()))!.Code, Is.EqualTo(ErrorCode.InvalidTopicException));
        Assert.That(Assert.Throws<StorageErrorException>(() => m.CreateTopic("a.b", 1, Cfg()))!.Code, Is.EqualTo(ErrorCode.TopicAlreadyExists));
        Assert.That(Assert.Throws<StorageErrorException>(() => m.CreateTopic("z", 0, Cfg()))!.Code, Is.EqualTo(ErrorCode.InvalidPartitions));
    }

    [Test]
    public void Configs_AreValidated_WithTheKeyNamed()
    {
        using var m = _tmp.Open();
        var ex = Assert.Throws<ConfigException>(() => m.CreateTopic("t", 1, Cfg(("retention.ms", "abc"))));
        Assert.That(ex!.Key, Is.EqualTo("retention.ms"));
        Assert.That(ex.Message, Does.Contain("retention.ms"));
        Assert.That(Assert.Throws<ConfigException>(() => m.CreateTopic("t", 1, Cfg(("no.such", "1"))))!.Key, Is.EqualTo("no.such"));
        Assert.That(Assert.Throws<ConfigException>(() => m.CreateTopic("t", 1, Cfg(("cleanup.policy", "delete,foo"))))!.Key, Is.EqualTo("cleanup.policy"));
        Assert.That(Assert.Throws<ConfigException>(() => m.CreateTopic("t", 1, Cfg(("message.timestamp.type", "Now"))))!.Key, Is.EqualTo("message.timestamp.type"));
        Assert.That(Assert.Throws<ConfigException>(() => m.CreateTopic("t", 1, Cfg(("retention.ms", "-2"))))!.Key, Is.EqualTo("retention.ms"));
        Assert.That(Assert.Throws<ConfigException>(() => m.CreateTopic("t", 1, Cfg(("compression.type", "brotli"))))!.Key, Is.EqualTo("compression.type"));
        Assert.That(m.TryGetTopic("t", out _), Is.False, "a failed create leaves nothing behind");
        var t = m.CreateTopic("t", 1, Cfg(("cleanup.policy", "compact,delete")));
        Assert.That(t.Config.Compact && t.Config.Delete, Is.True);
        Assert.That(t.Config.GetValue("retention.ms"), Is.EqualTo(_tmp.Options().RetentionMs.ToString()));
        Assert.That(t.Config.GetValue("min.insync.replicas"), Is.EqualTo("1"));
        Assert.That(t.Config.IsOverride("cleanup.policy"), Is.True);
        Assert.That(TopicConfig.Definitions.Select(d => d.Name), Does.Contain("max.message.bytes").And.Contain("segment.ms"));
        Assert.That(t.Config.MaxMessageBytes, Is.EqualTo(1048588));
        Assert.That(t.Config.MinInSyncReplicas, Is.EqualTo(1));
        Assert.That(m.CreateTopic("isr", 1, Cfg(("min.insync.replicas", "2"))).Config.MinInSyncReplicas, Is.EqualTo(2));
        Assert.That(Assert.Throws<ConfigException>(() => m.CreateTopic("isr0", 1, Cfg(("min.insync.replicas", "0"))))!.Key, Is.EqualTo("min.insync.replicas"));
    }

    [Test]
    public void AlterTopicConfig_ReplacesOverrides_AndPersists()
    {
        using (var m = _tmp.Open())
        {
            m.CreateTopic("t", 2, Cfg(("retention.ms", "1000"), ("segment.bytes", "5000")));
            Assert.Throws<ConfigException>(() => m.AlterTopicConfig("t", Cfg(("segment.bytes", "x"))));
            m.AlterTopicConfig("t", Cfg(("message.timestamp.type", "LogAppendTime")));
            m.TryGetTopic("t", out var t);
            Assert.That(t.Config.LogAppendTime, Is.True);
            Assert.That(t.Config.RetentionMs, Is.EqualTo(_tmp.Options().RetentionMs), "dropped overrides revert to the default");
            Assert.That(t.Partitions[1].Append(BatchBuilder.Build(1, 0), 1).LogAppendTime, Is.EqualTo(_tmp.Time.NowMs));
            Assert.That(Assert.Throws<StorageErrorException>(() => m.AlterTopicConfig("nope", Cfg()))!.Code, Is.EqualTo(ErrorCode.UnknownTopicOrPartition));
        }
        using (var m = _tmp.Open())
        {
            m.TryGetTopic("t", out var t);
            Assert.That(t.Config.Overrides, Is.EquivalentTo(Cfg(("message.timestamp.type", "LogAppendTime"))));
        }
    }

    [Test]
    public void DeleteTopic_RemovesDirectories_AndTheNameCanBeReused()
    {
        using var m = _tmp.Open();
        var t = m.CreateTopic("gone", 2, Cfg());
        t.Partitions[0].Append(BatchBuilder.Build(1, 0), 1);
        var slice = t.Partitions[0].Read(0, 100);
        var copy = slice.Data.ToArray();
        var id = t.TopicId;
        m.DeleteTopic("gone");
        Assert.That(Directory.GetDirectories(_tmp.Root), Is.Empty);
        Assert.That(m.TryGetTopic("gone", out _), Is.False);
        Assert.That(m.GetTopic(id), Is.Null);
        Assert.That(slice.Data.ToArray(), Is.EqualTo(copy));
        slice.Dispose();
        Assert.That(Assert.Throws<StorageErrorException>(() => t.Partitions[0].Append(BatchBuilder.Build(1, 0), 1))!.Code, Is.EqualTo(ErrorCode.UnknownTopicOrPartition));
        Assert.That(Assert.Throws<StorageErrorException>(() => m.DeleteTopic("gone"))!.Code, Is.EqualTo(ErrorCode.UnknownTopicOrPartition));
        var again = m.CreateTopic("gone", 1, Cfg());
        Assert.That(again.TopicId, Is.Not.EqualTo(id));
        Assert.That(again.Partitions[0].LogEndOffset, Is.EqualTo(0));
    }

    [Test]
    public void LeftoverDeleteDirectories_AreRemovedOnOpen()
    {
        Directory.CreateDirectory(Path.Combine(_tmp.Root, "x-0.0123456789abcdef0123456789abcdef-delete"));
        using var m = _tmp.Open();
        Assert.That(Directory.GetDirectories(_tmp.Root), Is.Empty);
        Assert.That(m.Topics, Is.Empty);
    }

    [Test]
    public void AddPartitions_GrowsTheTopic_AndSurvivesRestart()
    {
        using (var m = _tmp.Open())
        {
            m.CreateTopic("t", 1, Cfg(), new Uuid(1234, 5678));
            Assert.That(Assert.Throws<StorageErrorException>(() => m.AddPartitions("t", 1))!.Code, Is.EqualTo(ErrorCode.InvalidPartitions));
            m.AddPartitions("t", 3);
            m.TryGetTopic("t", out var t);
            Assert.That(t.Partitions.Select(p => p.Partition), Is.EqualTo(new[] { 0, 1, 2 }));
            t.Partitions[2].Append(BatchBuilder.Build(1, 0), 1);
        }
        using (var m = _tmp.Open())
        {
            var t = m.GetTopic(new Uuid(1234, 5678));
            Assert.That(t, Is.Not.Null);
            Assert.That(t!.Partitions, Has.Count.EqualTo(3));
            Assert.That(t.Partitions[2].LogEndOffset, Is.EqualTo(1));
            Assert.That(m.Topics, Has.Count.EqualTo(1));
        }
    }

    [Test]
    public void Partitions_AreSpreadOverLogDirs()
    {
        var dirs = new[] { Path.Combine(_tmp.Root, "a"), Path.Combine(_tmp.Root, "b") };
        var opts = new LogOptions { LogDirs = dirs, Time = _tmp.Time, SegmentBytes = 10000, SegmentIndexBytes = 1024 };
        using (var m = new LogManager(opts))
        {
            m.Open();
            var t = m.CreateTopic("t", 4, Cfg());
            foreach (var p in t.Partitions) p.Append(BatchBuilder.Build(p.Partition + 1, 0), 1);
        }
        Assert.That(Directory.GetDirectories(dirs[0]), Has.Length.EqualTo(2));
        Assert.That(Directory.GetDirectories(dirs[1]), Has.Length.EqualTo(2));
        using (var m = new LogManager(opts))
        {
            m.Open();
            m.TryGetTopic("t", out var t);
            foreach (var p in t.Partitions) Assert.That(p.LogEndOffset, Is.EqualTo(p.Partition + 1));
        }
    }
}
