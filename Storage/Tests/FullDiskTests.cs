using Kayak.Tests.Filesystems;
using NUnit.Framework;
using Kayak.Protocol;

namespace Kayak.Storage.Tests;

/// <summary>
/// Issue 15, K4–K6 and K10 on a real full filesystem: a small tmpfs mounted for the test (CI runs as root; a
/// non-root run cannot mount and says so). Appends on a full disk fail with KAFKA_STORAGE_ERROR and publish nothing,
/// a dense index never faults in its mapping (K5 aborted the process), writes resume when space returns, topic
/// creation is all or nothing, and shutdown completes — without marking the shutdown clean when it could not flush.
/// </summary>
[NonParallelizable]
public class FullDiskTests
{
    private SmallFilesystem _fs = null!;
    private string _mount = null!;
    private FakeTime _time = null!;

    [SetUp]
    public void SetUp()
    {
        _fs = SmallFilesystem.Mount("1m");
        _mount = _fs.Path;
        _time = new FakeTime();
    }

    [TearDown]
    public void TearDown() => _fs?.Dispose();

    private LogManager Open()
    {
        var m = new LogManager(new LogOptions
        {
            LogDirs = [Path.Combine(_mount, "logs")], Time = _time,
            SegmentBytes = 128 * 1024, SegmentIndexBytes = 64 * 1024, IndexIntervalBytes = 1,
        });
        m.Open();
        return m;
    }

    /// <summary>Takes the rest of the filesystem with a plain file, so that "space returns" is one delete away.</summary>
    private string FillDisk()
    {
        string filler = Path.Combine(_mount, "filler");
        using var fs = new FileStream(filler, FileMode.Create, FileAccess.Write);
        var chunk = new byte[4096];
        try { while (true) fs.Write(chunk); }
        catch (IOException) { }
        return filler;
    }

    [Test]
    public void AppendsOnAFullDisk_FailWithStorageError_PublishNothing_AndResumeWhenSpaceReturns()
    {
        var acked = new List<long>();
        using (var m = Open())
        {
            var p = m.CreateTopic("t", 1, new Dictionary<string, string>()).Partitions[0];
            string ballast = Path.Combine(_mount, "ballast");
            File.WriteAllBytes(ballast, new byte[512 * 1024]);
            StorageErrorException? failure = null;
            // A dense index (index.interval.bytes=1) and rolling segments: every batch adds index entries, the place
            // where a store into a mapped hole page used to abort the process.
            for (int i = 0; i < 100_000 && failure is null; i++)
            {
                try { acked.Add(p.Append(BatchBuilder.Build(3, 1000 + i, valueSize: 40), 1).BaseOffset); }
                catch (StorageErrorException e) { failure = e; }
            }
            Assert.That(failure, Is.Not.Null, "a 1 MiB filesystem must fill up");
            Assert.That(failure!.Code, Is.EqualTo(ErrorCode.KafkaStorageError));
            Assert.That(failure.Message, Does.Contain("No space left on device"));
            long leo = p.LogEndOffset;
            Assert.That(leo, Is.EqualTo(acked.Count * 3L), "nothing of the failed append is published");

            // Reads keep working and serve exactly what was acknowledged.
            AssertReadsBack(p, acked.Count);

            // Still full: the same error again, still nothing published.
            Assert.Throws<StorageErrorException>(() => p.Append(BatchBuilder.Build(3, 5, valueSize: 40), 1));
            Assert.That(p.LogEndOffset, Is.EqualTo(leo));

            // Space returns: the next append lands right after the acknowledged ones.
            File.Delete(ballast);
            var r = p.Append(BatchBuilder.Build(3, 7, valueSize: 40), 1);
            Assert.That(r.BaseOffset, Is.EqualTo(leo));
            acked.Add(r.BaseOffset);
        }
        // Clean reopen: everything acknowledged is there, at its offset, CRCs valid.
        using (var m = Open())
        {
            Assert.That(m.TryGetTopic("t", out var t));
            Assert.That(t.Partitions[0].LogEndOffset, Is.EqualTo(acked[^1] + 3));
            AssertReadsBack(t.Partitions[0], acked.Count);
        }
    }

    [Test]
    public void ShutdownOnAFullDisk_Completes_AndTheNextStartHasEverything()
    {
        long leo;
        var m = Open();
        var p = m.CreateTopic("t", 2, new Dictionary<string, string>()).Partitions[0];
        for (int i = 0; i < 20; i++) p.Append(BatchBuilder.Build(2, 1000 + i, valueSize: 30), 1);
        leo = p.LogEndOffset;
        FillDisk();
        Assert.DoesNotThrow(m.Dispose, "K6: shutdown on a full disk must complete");
        // (Trimming the active segments' preallocated indexes on close may give enough space back for the
        // checkpoints; ShutdownWhoseCheckpointCannotBeWritten covers the case where it does not.)
        File.Delete(Path.Combine(_mount, "filler"));
        using var again = Open();
        Assert.That(again.TryGetTopic("t", out var t));
        Assert.That(t.Partitions[0].LogEndOffset, Is.EqualTo(leo));
        AssertReadsBack(t.Partitions[0], 20);
    }

    [Test]
    public void TopicCreationOnAFullDisk_IsAllOrNothing_AcrossRestarts()
    {
        using (var m = Open())
        {
            FillDisk();
            var e = Assert.Throws<StorageErrorException>(() => m.CreateTopic("big", 50, new Dictionary<string, string>()))!;
            Assert.That(e.Code, Is.EqualTo(ErrorCode.KafkaStorageError));
            Assert.That(m.TryGetTopic("big", out _), Is.False);
            Assert.That(Directory.GetDirectories(Path.Combine(_mount, "logs"), "big-*"), Is.Empty, "no partition dir left behind");
            File.Delete(Path.Combine(_mount, "filler"));
        }
        using (var m = Open())
        {
            Assert.That(m.TryGetTopic("big", out _), Is.False, "no half-created topic comes back");
            Assert.That(m.CreateTopic("big", 5, new Dictionary<string, string>()).Partitions, Has.Count.EqualTo(5));
        }
    }

    [Test]
    public void ShutdownWhoseCheckpointCannotBeWritten_Completes_WithoutTheCleanShutdownMarker()
    {
        var m = Open();
        var p = m.CreateTopic("t", 1, new Dictionary<string, string>()).Partitions[0];
        for (int i = 0; i < 10; i++) p.Append(BatchBuilder.Build(2, 1000 + i, valueSize: 30), 1);
        string logs = Path.Combine(_mount, "logs");
        // The checkpoint's temp file cannot be created (a directory is in the way): the write fails as on ENOSPC.
        Directory.CreateDirectory(Path.Combine(logs, "recovery-point-offset-checkpoint.tmp"));
        Assert.DoesNotThrow(m.Dispose);
        Assert.That(File.Exists(Path.Combine(logs, ".kafka_cleanshutdown")), Is.False, "a shutdown that could not checkpoint is not clean");
        Directory.Delete(Path.Combine(logs, "recovery-point-offset-checkpoint.tmp"));
        using var again = Open();
        Assert.That(again.TryGetTopic("t", out var t) && t.Partitions[0].LogEndOffset == 20);
        AssertReadsBack(t.Partitions[0], 10);
    }

    private static void AssertReadsBack(PartitionLog p, int batches)
    {
        long offset = p.LogStartOffset;
        int seen = 0;
        while (offset < p.LogEndOffset)
        {
            using var slice = p.Read(offset, 1 << 20);
            var data = slice.Data.Span;
            Assert.That(data.Length, Is.GreaterThan(0));
            foreach (var (baseOffset, _, bytes) in BatchBuilder.Split(data))
            {
                Assert.That(BatchBuilder.CrcValid(bytes), $"CRC of batch {baseOffset}");
                Assert.That(baseOffset, Is.EqualTo(offset));
                offset = BatchBuilder.LastOffset(bytes) + 1;
                seen++;
            }
        }
        Assert.That(offset, Is.EqualTo(p.LogEndOffset));
        if (p.LogStartOffset == 0) Assert.That(seen, Is.EqualTo(batches));
    }
}
