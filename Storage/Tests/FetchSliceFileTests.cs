using Microsoft.Win32.SafeHandles;
using NUnit.Framework;

namespace Kayak.Storage.Tests;

/// <summary>
/// <see cref="FetchSlice.TryGetFile"/>: the descriptor and offset the broker hands to sendfile(2) must name exactly
/// the bytes of <see cref="FetchSlice.Data"/>, and stay open as long as the slice lives, whatever happens to the
/// segment meanwhile (roll, retention, topic deletion), and no longer.
/// </summary>
public class FetchSliceFileTests
{
    private TempLogs _tmp = null!;

    [SetUp] public void SetUp() => _tmp = new TempLogs();
    [TearDown] public void TearDown() => _tmp.Dispose();

    private static Dictionary<string, string> Cfg(params (string K, string V)[] kv) => kv.ToDictionary(x => x.K, x => x.V);

    private static byte[] ReadFile(FetchSlice slice, out SafeFileHandle file)
    {
        Assert.That(slice.TryGetFile(out var f, out long offset), Is.True, "segment file available");
        file = f!;
        var bytes = new byte[slice.Data.Length];
        int got = 0;
        while (got < bytes.Length)
        {
            int n = RandomAccess.Read(file, bytes.AsSpan(got), offset + got);
            if (n == 0) break;
            got += n;
        }
        Assert.That(got, Is.EqualTo(bytes.Length), "file holds the whole slice");
        return bytes;
    }

    [Test]
    public void ActiveSegment_FileBytesEqualData_AtTheSliceOffset()
    {
        using var m = _tmp.Open();
        var p = m.CreateTopic("t", 1, Cfg()).Partitions[0];
        for (int i = 0; i < 20; i++) p.Append(BatchBuilder.Build(3, 1000 + i, valueSize: 50 + i, tag: "a" + i), 1);
        using var slice = p.Read(12, int.MaxValue); // starts mid-file
        Assert.That(slice.TryGetFile(out _, out long offset), Is.True);
        Assert.That(offset, Is.GreaterThan(0));
        Assert.That(ReadFile(slice, out _), Is.EqualTo(slice.Data.ToArray()));
    }

    [Test]
    public void InactiveSegment_FileBytesEqualData_AndTheDescriptorOutlivesRetentionUntilDispose()
    {
        using var m = _tmp.Open();
        var p = m.CreateTopic("t", 1, Cfg(("segment.bytes", "1000"), ("retention.ms", "1000"))).Partitions[0];
        for (int i = 0; i < 3; i++) p.Append(BatchBuilder.Build(2, 0, valueSize: 100, tag: "old" + i), 1);
        for (int i = 0; i < 3; i++) p.Append(BatchBuilder.Build(2, _tmp.Time.NowMs, valueSize: 100), 1);
        Assert.That(p.SegmentCount, Is.GreaterThan(1));

        var slice = p.Read(2, int.MaxValue); // rolled segment, mapped read-only on demand
        var data = slice.Data.ToArray();
        Assert.That(ReadFile(slice, out var file), Is.EqualTo(data));

        Assert.That(m.RunRetention(), Is.EqualTo(1));
        Assert.That(File.Exists(Path.Combine(_tmp.Root, "t-0", $"{0:D20}.log")), Is.False);
        Assert.That(file.IsClosed, Is.False, "a slice keeps its segment's descriptor open");
        Assert.That(ReadFile(slice, out _), Is.EqualTo(data), "the unlinked inode still holds the bytes");

        slice.Dispose();
        Assert.That(slice.TryGetFile(out _, out _), Is.False, "no file after dispose");
        Assert.That(file.IsClosed, Is.True, "the last reader of a deleted segment closes its descriptor");
    }

    [Test]
    public void RollWhileReading_KeepsTheActiveDescriptor_UntilTheSliceIsDisposed()
    {
        using var m = _tmp.Open();
        var p = m.CreateTopic("t", 1, Cfg(("segment.bytes", "1000"))).Partitions[0];
        p.Append(BatchBuilder.Build(2, 0, valueSize: 100, tag: "first"), 1);
        var slice = p.Read(0, int.MaxValue);
        var data = slice.Data.ToArray();
        ReadFile(slice, out var file);
        for (int i = 0; i < 6; i++) p.Append(BatchBuilder.Build(2, 0, valueSize: 100), 1); // rolls past the first segment
        Assert.That(p.SegmentCount, Is.GreaterThan(1));
        Assert.That(file.IsClosed, Is.False);
        Assert.That(ReadFile(slice, out _), Is.EqualTo(data));
        slice.Dispose();
        Assert.That(file.IsClosed, Is.True, "the rolled segment's write descriptor goes with its last reader");

        // Read again: the rolled segment is mapped read-only with a descriptor of its own.
        using var again = p.Read(0, int.MaxValue);
        Assert.That(ReadFile(again, out var second), Is.EqualTo(again.Data.ToArray()));
        Assert.That(second, Is.Not.SameAs(file));
    }

    [Test]
    public void TopicDeletion_WhileASliceIsHeld_KeepsTheBytesReadable()
    {
        using var m = _tmp.Open();
        var p = m.CreateTopic("gone", 1, Cfg()).Partitions[0];
        for (int i = 0; i < 5; i++) p.Append(BatchBuilder.Build(4, 1000, valueSize: 200, tag: "g" + i), 1);
        var slice = p.Read(0, int.MaxValue);
        var data = slice.Data.ToArray();
        ReadFile(slice, out var file);
        m.DeleteTopic("gone");
        Assert.That(Directory.Exists(Path.Combine(_tmp.Root, "gone-0")), Is.False);
        Assert.That(ReadFile(slice, out _), Is.EqualTo(data));
        slice.Dispose();
        Assert.That(file.IsClosed, Is.True);
    }

    [Test]
    public void EmptySlice_HasNoFile()
    {
        using var m = _tmp.Open();
        var p = m.CreateTopic("t", 1, Cfg()).Partitions[0];
        p.Append(BatchBuilder.Build(1, 0), 1);
        using var slice = p.Read(1, int.MaxValue);
        Assert.That(slice.IsEmpty, Is.True);
        Assert.That(slice.TryGetFile(out var f, out _), Is.False);
        Assert.That(f, Is.Null);
    }

    [Test]
    public void EvictedFromTheMapCache_IdleInactiveSegmentsCloseTheirDescriptors()
    {
        using var m = _tmp.Open(_tmp.Options(o => new LogOptions
        {
            LogDirs = o.LogDirs, Time = o.Time, SegmentBytes = o.SegmentBytes, SegmentIndexBytes = o.SegmentIndexBytes,
            IndexIntervalBytes = o.IndexIntervalBytes, MaxMappedInactiveSegments = 1,
        }));
        var p = m.CreateTopic("t", 1, Cfg(("segment.bytes", "1000"))).Partitions[0];
        for (int i = 0; i < 10; i++) p.Append(BatchBuilder.Build(2, 0, valueSize: 100, tag: "e" + i), 1); // 3 rolled segments
        SafeFileHandle first;
        using (var s0 = p.Read(0, int.MaxValue)) ReadFile(s0, out first);
        Assert.That(first.IsClosed, Is.False, "idle but still mapped in the cache");
        using (var s1 = p.Read(6, int.MaxValue))
        {
            Assert.That(ReadFile(s1, out _), Is.EqualTo(s1.Data.ToArray()));
            Assert.That(first.IsClosed, Is.True, "unmapped by the LRU: its descriptor is closed too");
        }
    }
}
