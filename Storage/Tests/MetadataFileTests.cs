using Microsoft.Extensions.Logging;
using NUnit.Framework;
using Kayak.Protocol;

namespace Kayak.Storage.Tests;

/// <summary>
/// Issue 15, K1 and K2: a topic's metadata files and the log dir lock. A torn or missing metadata file must never
/// make a topic vanish (and its data be wiped by the next create of that name); a second LogManager on the same dir
/// must be refused before it writes anything.
/// </summary>
public class MetadataFileTests
{
    private TempLogs _tmp = null!;

    [SetUp] public void SetUp() => _tmp = new TempLogs();
    [TearDown] public void TearDown() => _tmp.Dispose();

    private static Dictionary<string, string> Cfg(params (string K, string V)[] kv) => kv.ToDictionary(x => x.K, x => x.V);

    private string PartitionDir(string topic, int p) => Path.Combine(_tmp.Root, $"{topic}-{p}");

    private void Populate(string topic, int partitions, int batches, params (string K, string V)[] cfg)
    {
        using var m = _tmp.Open();
        var t = m.CreateTopic(topic, partitions, Cfg(cfg));
        foreach (var p in t.Partitions)
            for (int i = 0; i < batches; i++) p.Append(BatchBuilder.Build(5, 1000 + i, valueSize: 50), 1);
    }

    private static long LogBytes(string dir) => Directory.GetFiles(dir, "*.log").Sum(f => new FileInfo(f).Length);

    [Test]
    public void TruncatedTopicFile_OfTheOnlyPartition_RefusesToLoad_NamingTheFile_AndKeepsTheData()
    {
        Populate("orders", 1, 20, ("cleanup.policy", "compact"));
        string dir = PartitionDir("orders", 0);
        string file = Path.Combine(dir, LogManager.TopicConfigFile);
        string good = File.ReadAllText(file);
        long bytes = LogBytes(dir);
        File.WriteAllText(file, good[..(good.Length / 2)]); // torn in the middle of the JSON

        var e = Assert.Throws<StorageErrorException>(() => _tmp.Open())!;
        Assert.That(e.Code, Is.EqualTo(ErrorCode.KafkaStorageError));
        Assert.That(e.Message, Does.Contain(file).And.Contain("orders"));
        Assert.That(LogBytes(dir), Is.EqualTo(bytes), "the refused load must not touch the data");

        // The operator restores the file: everything is back, with the topic's config.
        File.WriteAllText(file, good);
        using var m = _tmp.Open();
        Assert.That(m.TryGetTopic("orders", out var t));
        Assert.That(t.Config.Compact);
        Assert.That(t.Partitions[0].LogEndOffset, Is.EqualTo(100));
    }

    [Test]
    public void CorruptTopicFile_IsRepairedFromASiblingPartition_WithItsConfig()
    {
        Populate("events", 3, 4, ("retention.ms", "-1"), ("cleanup.policy", "compact"));
        string file = Path.Combine(PartitionDir("events", 1), LogManager.TopicConfigFile);
        File.WriteAllBytes(file, [0x7B, 0x00, 0xFF, 0x13]); // garbage
        File.Delete(Path.Combine(PartitionDir("events", 2), LogManager.TopicConfigFile)); // and one missing

        var log = new ListLogger();
        using (var m = _tmp.Open(_tmp.Options(o => new LogOptions
               {
                   LogDirs = o.LogDirs, Time = o.Time, SegmentBytes = o.SegmentBytes, SegmentIndexBytes = o.SegmentIndexBytes,
                   IndexIntervalBytes = o.IndexIntervalBytes, Logger = log,
               })))
        {
            Assert.That(m.TryGetTopic("events", out var t));
            Assert.That(t.Partitions, Has.Count.EqualTo(3));
            Assert.That(t.Config.Compact);
            Assert.That(t.Config.Overrides["retention.ms"], Is.EqualTo("-1"));
            foreach (var p in t.Partitions) Assert.That(p.LogEndOffset, Is.EqualTo(20));
        }
        Assert.That(log.Warnings, Has.Some.Contain(file), "the repair is said out loud");
        // Rewritten: a later load no longer depends on the sibling.
        Assert.That(File.ReadAllText(file), Does.Contain("\"compact\""));
        Assert.That(File.ReadAllText(Path.Combine(PartitionDir("events", 2), LogManager.TopicConfigFile)), Does.Contain("\"compact\""));
    }

    [Test]
    public void CorruptPartitionMetadata_IsRewrittenFromTheTopicFile()
    {
        Populate("m", 1, 2);
        string meta = Path.Combine(PartitionDir("m", 0), LogManager.PartitionMetadataFile);
        string good = File.ReadAllText(meta);
        File.WriteAllText(meta, "version: 0\ntopic_");
        using (var m = _tmp.Open())
            Assert.That(m.TryGetTopic("m", out var t) && t.Partitions[0].LogEndOffset == 10);
        Assert.That(File.ReadAllText(meta), Is.EqualTo(good));
    }

    [Test]
    public void TopicIdsThatDisagree_RefuseToLoad()
    {
        Populate("a", 2, 1);
        File.WriteAllText(Path.Combine(PartitionDir("a", 1), LogManager.PartitionMetadataFile), "version: 0\ntopic_id: AAAAAAAAAAAAAAAAAAAAEA\n");
        var e = Assert.Throws<StorageErrorException>(() => _tmp.Open())!;
        Assert.That(e.Message, Does.Contain("Topic id mismatch").And.Contain(PartitionDir("a", 1)));
    }

    [Test]
    public void PartitionDirWithDataButNoMetadata_RefusesToLoad_AndIsNeverReusedByACreate()
    {
        Populate("lost", 1, 10);
        string dir = PartitionDir("lost", 0);
        File.Delete(Path.Combine(dir, LogManager.TopicConfigFile));
        File.Delete(Path.Combine(dir, LogManager.PartitionMetadataFile));
        long bytes = LogBytes(dir);

        var e = Assert.Throws<StorageErrorException>(() => _tmp.Open())!;
        Assert.That(e.Message, Does.Contain(dir).And.Contain("holds log data"));
        Assert.That(LogBytes(dir), Is.EqualTo(bytes));
    }

    [Test]
    public void CreateTopic_NeverWipesADirectoryThatHoldsData()
    {
        using var m = _tmp.Open();
        // A directory with data appears under the name after the load (copied in by hand, another tool...).
        string dir = PartitionDir("late", 0);
        Directory.CreateDirectory(dir);
        File.WriteAllBytes(Path.Combine(dir, "00000000000000000000.log"), BatchBuilder.Build(3, 1));
        var e = Assert.Throws<StorageErrorException>(() => m.CreateTopic("late", 1, Cfg()))!;
        Assert.That(e.Code, Is.EqualTo(ErrorCode.KafkaStorageError));
        Assert.That(e.Message, Does.Contain(dir));
        Assert.That(new FileInfo(Path.Combine(dir, "00000000000000000000.log")).Length, Is.GreaterThan(0));
        Assert.That(m.TryGetTopic("late", out _), Is.False);
    }

    [Test]
    public void EmptyLeftoverDirOfAnInterruptedCreate_IsRemoved_AndTheNameCanBeCreated()
    {
        string dir = PartitionDir("half", 0);
        Directory.CreateDirectory(dir);
        File.WriteAllBytes(Path.Combine(dir, "00000000000000000000.log"), new byte[4096]); // preallocated, never written
        var log = new ListLogger();
        using var m = _tmp.Open(new LogOptions { LogDirs = [_tmp.Root], Time = _tmp.Time, Logger = log });
        Assert.That(Directory.Exists(dir), Is.False);
        Assert.That(log.Warnings, Has.Some.Contain(dir));
        Assert.That(m.CreateTopic("half", 1, Cfg()).Partitions[0].LogEndOffset, Is.EqualTo(0));
    }

    [Test]
    public void TopicFileNamingAnotherTopic_RefusesToLoad()
    {
        Populate("x", 1, 1);
        string src = PartitionDir("x", 0), dst = PartitionDir("y", 0);
        Directory.Move(src, dst); // a copied or renamed dir: the file still says "x"
        var e = Assert.Throws<StorageErrorException>(() => _tmp.Open())!;
        Assert.That(e.Message, Does.Contain("names topic 'x'"));
    }

    [Test]
    public void CreateInterruptedByACrash_IsCompletedOnLoad_FromTheRecordedPartitionCount()
    {
        var m = _tmp.Open();
        m.CreateTopic("half", 4, Cfg(("retention.ms", "123456")));
        m.SimulateCrash();
        // As if the crash came after partition 1's directory: 2 and 3 were never made.
        Directory.Delete(PartitionDir("half", 2), recursive: true);
        Directory.Delete(PartitionDir("half", 3), recursive: true);
        var log = new ListLogger();
        using var again = _tmp.Open(new LogOptions { LogDirs = [_tmp.Root], Time = _tmp.Time, Logger = log });
        Assert.That(again.TryGetTopic("half", out var t));
        Assert.That(t.Partitions, Has.Count.EqualTo(4), "the topic comes back whole, not with the partitions made before the crash");
        Assert.That(t.Config.Overrides["retention.ms"], Is.EqualTo("123456"));
        Assert.That(log.Warnings, Has.Some.Contain("Creating missing partition 3 of topic half"));
    }

    [TestCase(0)]
    [TestCase(2)]
    public void KillBetweenAPartitionsTwoMetadataFiles_LeavesNoTopicWithDefaultsOrMissingPartitions(int killedAt)
    {
        // Found by the fault campaign (kill -9 during creates): partition.metadata written first left a dir that
        // loaded as a plain Kafka partition — a 1-partition topic with broker defaults instead of the requested 3
        // partitions and retention.ms.
        var m = _tmp.Open();
        m.CreateStep = p => { if (p == killedAt) throw new InvalidOperationException("killed"); };
        Assert.Throws<InvalidOperationException>(() => m.CreateTopic("torn", 3, Cfg(("retention.ms", "3817064"))));
        m.SimulateCrash();
        using var again = _tmp.Open();
        Assert.That(again.TryGetTopic("torn", out var t), "the topic file was written: the create is completed");
        Assert.That(t.Partitions, Has.Count.EqualTo(3));
        Assert.That(t.Config.Overrides["retention.ms"], Is.EqualTo("3817064"));
        for (int p = 0; p < 3; p++)
            Assert.That(File.Exists(Path.Combine(PartitionDir("torn", p), TopicMetadataFiles.PartitionMetadataFile)), $"partition {p}");
    }

    [Test]
    public void TopicFileWithoutAPartitionCount_FromAnOlderVersion_StillLoads()
    {
        Populate("old", 2, 1);
        foreach (var p in new[] { 0, 1 })
        {
            string file = Path.Combine(PartitionDir("old", p), LogManager.TopicConfigFile);
            var lines = File.ReadAllLines(file).Where(l => !l.Contains("\"partitions\"")).ToArray();
            File.WriteAllLines(file, lines);
        }
        using var m = _tmp.Open();
        Assert.That(m.TryGetTopic("old", out var t) && t.Partitions.Count == 2);
    }

    [Test]
    public void SecondManagerOnTheSameDir_IsRefusedWithKafkasMessage_UntilTheFirstCloses()
    {
        var first = _tmp.Open();
        var e = Assert.Throws<StorageErrorException>(() => _tmp.Open())!;
        Assert.That(e.Message, Is.EqualTo($"Failed to acquire lock on file .lock in {Path.GetFullPath(_tmp.Root)}. A Kafka instance in another process or thread is using this directory."));
        first.Dispose();
        using var second = _tmp.Open();
        Assert.That(File.Exists(Path.Combine(_tmp.Root, ".lock")));
    }

    [Test]
    public void LockOfACrashedManager_DoesNotOutliveIt()
    {
        var first = _tmp.Open();
        first.CreateTopic("t", 1, Cfg());
        first.SimulateCrash();
        using var second = _tmp.Open();
        Assert.That(second.TryGetTopic("t", out _));
    }

    [Test]
    public void RefusedLoad_ReleasesTheLock()
    {
        Populate("r", 1, 1);
        File.WriteAllText(Path.Combine(PartitionDir("r", 0), LogManager.TopicConfigFile), "{");
        var m = new LogManager(_tmp.Options());
        Assert.Throws<StorageErrorException>(m.Open);
        m.Dispose();
        File.Delete(Path.Combine(PartitionDir("r", 0), LogManager.TopicConfigFile)); // partition.metadata alone suffices
        using var again = _tmp.Open();
        Assert.That(again.TryGetTopic("r", out _));
    }

    private sealed class ListLogger : ILogger
    {
        public List<string> Warnings { get; } = [];
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;
        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (logLevel >= LogLevel.Warning) lock (Warnings) Warnings.Add(formatter(state, exception));
        }
    }
}
