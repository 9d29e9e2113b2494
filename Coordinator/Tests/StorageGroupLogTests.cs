using Kayak.Storage;
using NUnit.Framework;

namespace Kayak.Coordinator.Tests;

[TestFixture]
public class StorageGroupLogTests
{
    private string _dir = null!;

    [SetUp] public void SetUp() => _dir = Directory.CreateTempSubdirectory("kayak-groups-").FullName;
    [TearDown] public void TearDown() => Directory.Delete(_dir, recursive: true);

    private LogManager OpenLogs()
    {
        var logs = new LogManager(new LogOptions { LogDirs = [_dir], SegmentBytes = 1 << 20 });
        logs.Open();
        return logs;
    }

    [Test]
    public void TopicIsCreatedOnFirstWriteOnly()
    {
        using var logs = OpenLogs();
        var log = new StorageGroupLog(logs, 5);
        int replayed = 0;
        log.Replay(0, _ => replayed++);
        Assert.That(replayed, Is.EqualTo(0));
        Assert.That(logs.TryGetTopic(StorageGroupLog.TopicName, out _), Is.False, "no group activity, no __consumer_offsets");
        Assert.That(log.Topic.Partitions, Has.Count.EqualTo(5));
        Assert.That(logs.TryGetTopic(StorageGroupLog.TopicName, out _), Is.True);
    }

    [Test]
    public void OffsetsAndGroupsSurviveReopeningTheLogs()
    {
        var time = new ManualTimeProvider();
        string a;
        int gen;
        using (var logs = OpenLogs())
        {
            var log = new StorageGroupLog(logs, 50);
            Assert.That(log.Topic.Partitions, Has.Count.EqualTo(50));
            Assert.That(log.Topic.Config.Compact, Is.True);
            using var h = new Harness(log, time);
            (a, gen) = h.StableSingle(assignment: [3]);
            for (int i = 0; i < 50; i++) h.Commit("t1", i % 3, 100 + i, a, gen);
        }
        using (var logs = OpenLogs())
        {
            using var c = new GroupCoordinator(Harness.Options(time), new StorageGroupLog(logs, 50));
            c.Load();
            var offsets = c.CommittedOffsets(Harness.Group);
            Assert.That(offsets[("t1", 0)].Offset, Is.EqualTo(148));
            Assert.That(offsets[("t1", 1)].Offset, Is.EqualTo(149));
            Assert.That(offsets[("t1", 2)].Offset, Is.EqualTo(147));
            var g = c.Describe(Harness.Group)!;
            Assert.That((g.State, g.GenerationId, g.LeaderId), Is.EqualTo((GroupState.Stable, gen, a)));
        }
    }
}
