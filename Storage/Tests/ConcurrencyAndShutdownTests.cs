using System.Buffers.Binary;
using NUnit.Framework;
using Kayak.Protocol;

namespace Kayak.Storage.Tests;

public class ConcurrencyAndShutdownTests
{
    private TempLogs _tmp = null!;

    [SetUp] public void SetUp() => _tmp = new TempLogs();
    [TearDown] public void TearDown() => _tmp.Dispose();

    [Test]
    public void ConcurrentAppendsReadsWaitsAndDeletes_StayConsistent()
    {
        using var m = _tmp.Open();
        var p = m.CreateTopic("t", 1, new Dictionary<string, string> { ["segment.bytes"] = "4000", ["index.interval.bytes"] = "100" }).Partitions[0];
        const int Batches = 1500;
        var errors = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var done = new CancellationTokenSource();

        var writer = Task.Run(() =>
        {
            for (int i = 0; i < Batches; i++)
            {
                var r = p.Append(BatchBuilder.Build(1 + i % 4, i, valueSize: 30), 1);
                if (i % 300 == 299) p.DeleteRecordsBefore(r.BaseOffset - 50);
            }
        });
        Action reader = () =>
        {
            var rnd = new Random(Environment.CurrentManagedThreadId);
            while (!done.IsCancellationRequested)
            {
                long start = p.LogStartOffset, end = p.LogEndOffset;
                if (end == start) continue;
                long o = start + rnd.NextInt64(end - start);
                try
                {
                    using var s = p.Read(o, rnd.Next(1, 3000));
                    var span = s.Data.Span;
                    while (span.Length > 0)
                    {
                        int len = BinaryPrimitives.ReadInt32BigEndian(span[8..]) + 12;
                        if (!BatchBuilder.CrcValid(span[..len])) errors.Enqueue($"bad crc reading {o}");
                        span = span[len..];
                    }
                    if (BatchBuilder.LastOffset(s.Data.Span) < o || BinaryPrimitives.ReadInt64BigEndian(s.Data.Span) > o)
                        errors.Enqueue($"wrong batch for {o}");
                }
                catch (StorageErrorException e) when (e.Code == ErrorCode.OffsetOutOfRange && o < p.LogStartOffset)
                {
                    // DeleteRecords moved the start past o meanwhile: expected.
                }
            }
        };
        var readers = new[] { Task.Run(reader), Task.Run(reader) };
        long expectedEnd = 0;
        for (int i = 0; i < Batches; i++) expectedEnd += 1 + i % 4;
        var waiter = Task.Run(async () =>
        {
            long seen = 0;
            while (seen < expectedEnd)
            {
                await p.WaitForAppendAsync(seen, CancellationToken.None);
                long now = p.LogEndOffset;
                if (now <= seen) errors.Enqueue($"woken without progress at {seen}");
                seen = now;
            }
            return seen;
        });
        Assert.That(writer.Wait(TimeSpan.FromMinutes(2)), Is.True);
        Assert.That(waiter.Wait(TimeSpan.FromMinutes(2)), Is.True);
        done.Cancel();
        Task.WaitAll(readers, TimeSpan.FromMinutes(2));
        Assert.That(errors, Is.Empty);
        Assert.That(p.LogEndOffset, Is.EqualTo(expectedEnd));
        Assert.That(waiter.Result, Is.EqualTo(expectedEnd));
        Assert.That(p.SegmentCount, Is.GreaterThan(1));
    }

    [Test]
    public void ShutdownWithASliceStillHeld_RestartsCleanly()
    {
        FetchSlice held;
        var m = _tmp.Open();
        var p = m.CreateTopic("t", 1, new Dictionary<string, string>()).Partitions[0];
        for (int i = 0; i < 5; i++) p.Append(BatchBuilder.Build(2, 100 + i), 1);
        held = p.Read(0, int.MaxValue);
        m.Dispose();
        Assert.That(File.Exists(Path.Combine(_tmp.Root, ".kafka_cleanshutdown")), Is.True);
        Assert.That(held.Data.Length, Is.GreaterThan(0));
        held.Dispose(); // the last reader unmaps and trims
        var log = Path.Combine(_tmp.Root, "t-0", $"{0:D20}.log");
        Assert.That(new FileInfo(log).Length, Is.EqualTo(5 * BatchBuilder.Build(2, 0).Length));
        using var m2 = _tmp.Open();
        m2.TryGetTopic("t", out var t);
        Assert.That(t.Partitions[0].LogEndOffset, Is.EqualTo(10));
        Assert.That(t.Partitions[0].Append(BatchBuilder.Build(1, 0), 1).BaseOffset, Is.EqualTo(10));
    }

    [Test]
    public void CleanShutdownMarker_WithAnUntrimmedActiveFile_StillFindsTheEnd()
    {
        var m = _tmp.Open();
        var p = m.CreateTopic("t", 1, new Dictionary<string, string>()).Partitions[0];
        for (int i = 0; i < 3; i++) p.Append(BatchBuilder.Build(2, 0), 1);
        m.SimulateCrash();
        File.WriteAllText(Path.Combine(_tmp.Root, ".kafka_cleanshutdown"), ""); // lie: claims a clean shutdown
        using var m2 = _tmp.Open();
        m2.TryGetTopic("t", out var t);
        Assert.That(t.Partitions[0].LogEndOffset, Is.EqualTo(6));
        using var s = t.Partitions[0].Read(0, int.MaxValue);
        Assert.That(s.Data.Length, Is.EqualTo(3 * BatchBuilder.Build(2, 0).Length));
    }

    [Test]
    public void DeleteRecords_MinusOne_MeansHighWatermark()
    {
        using var m = _tmp.Open();
        var p = m.CreateTopic("t", 1, new Dictionary<string, string>()).Partitions[0];
        p.Append(BatchBuilder.Build(4, 0), 1);
        Assert.That(p.DeleteRecordsBefore(-1), Is.EqualTo(4));
        using var s = p.Read(4, 100);
        Assert.That(s.IsEmpty, Is.True);
    }

    [Test]
    public void ScheduledFlush_HonoursFlushMs()
    {
        using var m = _tmp.Open();
        var p = m.CreateTopic("t", 1, new Dictionary<string, string> { ["flush.ms"] = "1000" }).Partitions[0];
        _tmp.Time.Advance(5000);
        Assert.That(m.RunScheduledFlush(), Is.EqualTo(0), "nothing unflushed");
        p.Append(BatchBuilder.Build(2, 0), 1);
        Assert.That(p.RecoveryPoint, Is.EqualTo(2), "the append itself was past flush.ms since the last flush");
        p.Append(BatchBuilder.Build(2, 0), 1);
        Assert.That(p.RecoveryPoint, Is.EqualTo(2));
        Assert.That(m.RunScheduledFlush(), Is.EqualTo(0));
        _tmp.Time.Advance(1000);
        Assert.That(m.RunScheduledFlush(), Is.EqualTo(1));
        Assert.That(p.RecoveryPoint, Is.EqualTo(4));
        Assert.That(File.ReadAllText(Path.Combine(_tmp.Root, "recovery-point-offset-checkpoint")), Does.Contain("t 0 4"));
    }
}

public class ResourceTests
{
    [Test]
    public void Partitions_HoldOneFileDescriptorEach()
    {
        using var tmp = new TempLogs();
        using var m = tmp.Open();
        // Only descriptors on this test's partition files count: the process's others come and go meanwhile (finalizers,
        // directory scans of background deletions left by earlier tests), which made a plain count flaky.
        int before = DescriptorsUnder(tmp.Root);
        var t = m.CreateTopic("many", 40, new Dictionary<string, string>());
        foreach (var p in t.Partitions) p.Append(BatchBuilder.Build(1, 0), 1);
        var slices = t.Partitions.Select(p => p.Read(0, 100)).ToList();
        int after = DescriptorsUnder(tmp.Root);
        // The active log keeps its descriptor for pwrite appends; indexes and read maps keep none.
        Assert.That(after - before, Is.InRange(40, 50), "40 partitions with 120 mapped files keep one fd each (the active log)");
        foreach (var s in slices)
        {
            Assert.That(BatchBuilder.CrcValid(s.Data.Span), Is.True);
            s.Dispose();
        }
    }

    private static int DescriptorsUnder(string root)
    {
        int n = 0;
        foreach (var fd in Directory.GetFiles("/proc/self/fd"))
        {
            try
            {
                if (new FileInfo(fd).LinkTarget is { } target && target.StartsWith(root + "/", StringComparison.Ordinal)) n++;
            }
            catch (IOException) { } // closed meanwhile
        }
        return n;
    }
}
