using NUnit.Framework;

namespace Kayak.Storage.Tests;

/// <summary>
/// Kafka's leader-epoch-checkpoint (KIP-101) in each partition directory: written in Kafka's format as epochs start,
/// cut by truncation and by the log start offset, loaded at start; a missing, malformed or stale file never refuses
/// the log, it is rebuilt from the batches. OffsetForLeaderEpoch's answers follow Kafka's endOffsetFor.
/// </summary>
public class LeaderEpochCheckpointTests
{
    private TempLogs _dir = null!;
    private static readonly Dictionary<string, string> NoConfig = [];

    [SetUp]
    public void SetUp() => _dir = new TempLogs();

    [TearDown]
    public void TearDown() => _dir.Dispose();

    /// <summary>As a cluster member opens its logs: the file is kept only where replication uses it.</summary>
    private LogManager Open() => _dir.Open(new LogOptions { LogDirs = [_dir.Root], Time = _dir.Time, SegmentBytes = 64 * 1024, SegmentIndexBytes = 4096, IndexIntervalBytes = 256, Replicated = true });

    private static string FileOf(PartitionLog log) => Path.Combine(log.Dir, LeaderEpochCache.FileName);

    /// <summary>Epoch 1 from offset 0, epoch 3 from 6, epoch 5 from 10; 12 records, 2 per batch.</summary>
    private PartitionLog Written(LogManager logs)
    {
        var log = logs.CreateTopic("t", 1, NoConfig).Partitions[0];
        foreach (int epoch in new[] { 1, 1, 1, 3, 3, 5 })
            log.Append(BatchBuilder.Build(2, _dir.Time.NowMs), 1, partitionLeaderEpoch: epoch);
        return log;
    }

    private static void AssertAnswers(PartitionLog log)
    {
        Assert.That(log.LatestLeaderEpoch(), Is.EqualTo(5));
        Assert.That(log.EndOffsetForLeaderEpoch(1, 5), Is.EqualTo((1, 6L)), "epoch 1 ends where 3 starts");
        Assert.That(log.EndOffsetForLeaderEpoch(2, 5), Is.EqualTo((1, 6L)), "an epoch without batches: the one before it");
        Assert.That(log.EndOffsetForLeaderEpoch(3, 5), Is.EqualTo((3, 10L)));
        Assert.That(log.EndOffsetForLeaderEpoch(5, 5), Is.EqualTo((5, 12L)), "the latest epoch ends at the log end");
        Assert.That(log.EndOffsetForLeaderEpoch(0, 5), Is.EqualTo((0, 0L)), "older than every entry: the first start (Kafka)");
        Assert.That(log.EndOffsetForLeaderEpoch(6, 7), Is.EqualTo((5, 12L)), "between the latest and the current leader epoch");
        Assert.That(log.EndOffsetForLeaderEpoch(8, 7), Is.EqualTo((-1, -1L)), "above the current epoch: unknown");
        Assert.That(log.EndOffsetForLeaderEpoch(-1, 5), Is.EqualTo((-1, -1L)), "undefined");
    }

    [Test]
    public void WrittenInKafkasFormat_LoadedBack_AndRebuiltWhenMissingOrMalformed()
    {
        string file;
        using (var logs = Open())
        {
            var log = Written(logs);
            file = FileOf(log);
            Assert.That(File.ReadAllText(file), Is.EqualTo("0\n3\n1 0\n3 6\n5 10\n"));
            AssertAnswers(log);
        }
        using (var logs = Open())
            AssertAnswers(logs.Topics.Single().Partitions[0]);

        File.Delete(file);
        using (var logs = Open())
            AssertAnswers(logs.Topics.Single().Partitions[0]);
        Assert.That(File.ReadAllText(file), Is.EqualTo("0\n3\n1 0\n3 6\n5 10\n"), "rebuilt from the batches and written");

        File.WriteAllText(file, "0\n7\n1 0\n");
        using (var logs = Open())
            AssertAnswers(logs.Topics.Single().Partitions[0]);
        Assert.That(File.ReadAllText(file), Is.EqualTo("0\n3\n1 0\n3 6\n5 10\n"), "a malformed file is rebuilt, the log kept");
    }

    [Test]
    public void ASingleBrokerWritesNoFile_ButAnswersTheSame()
    {
        using (var logs = _dir.Open())
        {
            var log = Written(logs);
            Assert.That(File.Exists(FileOf(log)), Is.False);
            AssertAnswers(log);
        }
        using (var logs = _dir.Open())
            AssertAnswers(logs.Topics.Single().Partitions[0]);
    }

    [Test]
    public void TruncationAndLogStartOffsetCutTheEntries_AndAStaleFileIsCutAtLoad()
    {
        string file;
        using (var logs = Open())
        {
            var log = Written(logs);
            file = FileOf(log);
            Assert.That(log.TruncateTo(8), Is.EqualTo(8));
            Assert.That(File.ReadAllText(file), Is.EqualTo("0\n2\n1 0\n3 6\n"), "epoch 5 started after the new end");
            Assert.That(log.EndOffsetForLeaderEpoch(3, 6), Is.EqualTo((3, 8L)));
            log.Append(BatchBuilder.Build(2, _dir.Time.NowMs), 1, partitionLeaderEpoch: 6);
            Assert.That(File.ReadAllText(file), Is.EqualTo("0\n3\n1 0\n3 6\n6 8\n"));
            Assert.That(log.DeleteRecordsBefore(7), Is.EqualTo(7));
            Assert.That(File.ReadAllText(file), Is.EqualTo("0\n2\n3 7\n6 8\n"), "the epoch holding the log start offset starts there");
            Assert.That(log.EndOffsetForLeaderEpoch(1, 6), Is.EqualTo((1, 7L)), "an epoch whose records were deleted");
        }
        // A file that lists more than the log holds (the log lost its tail after the file was written) is cut to it.
        File.WriteAllText(file, "0\n4\n3 7\n6 8\n7 10\n9 40\n");
        using (var logs = Open())
        {
            var log = logs.Topics.Single().Partitions[0];
            Assert.That(log.LogEndOffset, Is.EqualTo(10));
            Assert.That(log.LatestLeaderEpoch(), Is.EqualTo(6), "epochs starting at or after the log end hold nothing");
            Assert.That(log.EndOffsetForLeaderEpoch(3, 6), Is.EqualTo((3, 8L)));
            Assert.That(File.ReadAllText(file), Is.EqualTo("0\n2\n3 7\n6 8\n"));
        }
    }
}
