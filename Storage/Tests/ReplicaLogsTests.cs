using NUnit.Framework;

namespace Kayak.Storage.Tests;

/// <summary>
/// Issue 14: a cluster member (LogOptions.Replicated) holds logs only for the partitions it is a replica of, and a
/// replica moved away is deleted as Kafka's LogManager.asyncDelete does (renamed -delete, removed after the delay).
/// </summary>
public class ReplicaLogsTests
{
    private TempLogs _dir = null!;
    private static readonly Dictionary<string, string> NoConfig = [];

    [SetUp]
    public void SetUp() => _dir = new TempLogs();

    [TearDown]
    public void TearDown() => _dir.Dispose();

    private LogManager Open(long deleteDelayMs = 60_000, bool replicated = true, TimeProvider? time = null)
    {
        var m = new LogManager(new LogOptions { LogDirs = [_dir.Root], Time = time ?? _dir.Time, Replicated = replicated, FileDeleteDelayMs = deleteDelayMs });
        m.Open();
        return m;
    }

    private string[] PartitionDirs() =>
        Directory.GetDirectories(_dir.Root).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray()!;

    [Test]
    public void OnlyHostedPartitions_GetADirectory_AndARestartKeepsTheLayout()
    {
        using (var m = Open())
        {
            var t = m.CreateTopic("t", 3, NoConfig, hosted: [true, false, true]);
            Assert.That(t.PartitionCount, Is.EqualTo(3));
            Assert.That(t.GetPartition(1), Is.Null, "not a replica here");
            Assert.That(t.GetPartition(0), Is.Not.Null);
            t.GetPartition(2)!.Append(BatchBuilder.Build(2, 1_700_000_000_000), 0);
            m.AddPartitions("t", 5, hosted: [false, false, false, true, false]);
            Assert.That(t.PartitionCount, Is.EqualTo(5));
            var none = m.CreateTopic("elsewhere", 2, NoConfig, hosted: [false, false]);
            Assert.That(none.GetPartition(0), Is.Null);
        }
        Assert.That(PartitionDirs(), Is.EqualTo(new[] { "t-0", "t-2", "t-3" }));

        using (var m = Open())
        {
            Assert.That(m.TryGetTopic("t", out var t), Is.True);
            Assert.That(t.GetPartition(1), Is.Null, "a replicated broker does not recreate partitions it does not host");
            Assert.That(t.GetPartition(2)!.LogEndOffset, Is.EqualTo(2));
            Assert.That(t.GetPartition(3), Is.Not.Null);
            Assert.That(m.TryGetTopic("elsewhere", out _), Is.False, "nothing on disk: the cluster controller tells the broker about it");
        }
        Assert.That(PartitionDirs(), Is.EqualTo(new[] { "t-0", "t-2", "t-3" }));
    }

    [Test]
    public void SingleBroker_StillRecreatesALostPartitionDirectory()
    {
        using (var m = Open(replicated: false)) m.CreateTopic("t", 2, NoConfig);
        Directory.Delete(Path.Combine(_dir.Root, "t-1"), recursive: true);
        using (var m = Open(replicated: false))
        {
            Assert.That(m.TryGetTopic("t", out var t), Is.True);
            Assert.That(t.GetPartition(1), Is.Not.Null);
        }
    }

    [Test]
    public void CreateReplica_AddsTheLog_AndDeleteReplica_RenamesItAndTheNextStartRemovesIt()
    {
        using (var m = Open())
        {
            var t = m.CreateTopic("t", 2, NoConfig, hosted: [true, false]);
            var added = m.CreateReplica("t", 1, 2);
            Assert.That(t.GetPartition(1), Is.SameAs(added));
            Assert.That(Directory.Exists(Path.Combine(_dir.Root, "t-1")), Is.True);

            t.GetPartition(0)!.Append(BatchBuilder.Build(3, 1_700_000_000_000), 0);
            var removed = t.GetPartition(0)!;
            Assert.That(m.DeleteReplica("t", 0), Is.True);
            Assert.That(t.GetPartition(0), Is.Null);
            Assert.That(m.DeleteReplica("t", 0), Is.False, "already gone");
            Assert.Throws<StorageErrorException>(() => removed.Append(BatchBuilder.Build(1, 1_700_000_000_000), 0), "closed for appends");
            var dirs = PartitionDirs();
            Assert.That(dirs, Has.Length.EqualTo(2));
            Assert.That(dirs[0], Does.Match(@"^t-0\.[0-9a-f]{32}-delete$"), "renamed as Kafka's asyncDelete does, kept for file.delete.delay.ms");
            Assert.That(dirs[1], Is.EqualTo("t-1"));
        }
        using (var m = Open())
        {
            Assert.That(PartitionDirs(), Is.EqualTo(new[] { "t-1" }), "a leftover -delete directory is removed at load");
            Assert.That(m.TryGetTopic("t", out var t) && t.GetPartition(0) is null && t.GetPartition(1) is not null, Is.True);
        }
    }

    [Test]
    public void HighWatermark_IsCheckpointedInKafkasFormat_AndRestoredAtStart_WithinTheLog()
    {
        using (var m = Open())
        {
            var t = m.CreateTopic("t", 1, NoConfig);
            var p = t.GetPartition(0)!;
            p.Append(BatchBuilder.Build(5, 1_700_000_000_000), 0);
            Assert.That(p.UpdateHighWatermark(3), Is.True);
        }
        var file = Path.Combine(_dir.Root, LogDirectory.ReplicationOffsetFile);
        Assert.That(File.ReadAllText(file), Is.EqualTo("0\n1\nt 0 3\n"), "replication-offset-checkpoint: version, count, topic partition offset");
        using (var m = Open())
        {
            Assert.That(m.TryGetTopic("t", out var t), Is.True);
            Assert.That(t.GetPartition(0)!.HighWatermark, Is.EqualTo(3), "not back at the log start offset");
        }
        // A checkpoint past the log end (a crash lost the tail) is capped by what the log holds.
        File.WriteAllText(file, "0\n1\nt 0 99\n");
        using (var m = Open())
        {
            Assert.That(m.TryGetTopic("t", out var t), Is.True);
            Assert.That(t.GetPartition(0)!.HighWatermark, Is.EqualTo(5));
        }
        File.WriteAllText(file, "0\n1\nt 0 99\n");
        using (var single = Open(replicated: false)) Assert.That(single.TryGetTopic("t", out var t) && t.GetPartition(0)!.HighWatermark == 5, Is.True, "the log end");
        Assert.That(File.ReadAllText(file), Is.EqualTo("0\n1\nt 0 99\n"), "a single broker neither reads nor writes it");
    }

    [Test]
    public async Task DeleteReplica_RemovesTheRenamedDirectory_AfterTheDelay()
    {
        using var m = Open(deleteDelayMs: 50, time: TimeProvider.System);
        m.CreateTopic("t", 1, NoConfig, hosted: [true]);
        Assert.That(m.DeleteReplica("t", 0), Is.True);
        for (int i = 0; i < 200 && PartitionDirs().Length > 0; i++) await Task.Delay(50);
        Assert.That(PartitionDirs(), Is.Empty);
    }
}
