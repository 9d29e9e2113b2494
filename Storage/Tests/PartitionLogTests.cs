using System.Buffers.Binary;
using System.Text;
using Kayak.Protocol;
using NUnit.Framework;

namespace Kayak.Storage.Tests;

public class PartitionLogTests
{
    private TempLogs _tmp = null!;

    [SetUp] public void SetUp() => _tmp = new TempLogs();
    [TearDown] public void TearDown() => _tmp.Dispose();

    private static readonly Dictionary<string, string> NoConfig = [];

    [Test]
    public void Append_AssignsConsecutiveOffsets_AndReadReturnsBatchContainingOffset()
    {
        using var m = _tmp.Open();
        var p = m.CreateTopic("t", 1, NoConfig).Partitions[0];
        var sent = new List<byte[]>();
        long expectedBase = 0;
        for (int i = 0; i < 200; i++)
        {
            var b = BatchBuilder.Build(1 + i % 5, _tmp.Time.NowMs, valueSize: 20 + i, tag: "b" + i);
            var r = p.Append(b, 1);
            Assert.That(r.BaseOffset, Is.EqualTo(expectedBase));
            Assert.That(r.LastOffset, Is.EqualTo(expectedBase + i % 5));
            Assert.That(r.LogAppendTime, Is.EqualTo(-1));
            expectedBase = r.LastOffset + 1;
            sent.Add(b);
        }
        Assert.That(p.LogEndOffset, Is.EqualTo(expectedBase));
        Assert.That(p.HighWatermark, Is.EqualTo(expectedBase));

        // Every offset must come back inside the first returned batch, byte-identical except the base offset.
        long offset = 0;
        int batchIndex = 0;
        while (offset < p.LogEndOffset)
        {
            using var slice = p.Read(offset, 1);
            var batches = BatchBuilder.Split(slice.Data.Span).ToList();
            Assert.That(batches, Has.Count.EqualTo(1), "maxBytes=1 still returns exactly one whole batch (KIP-74)");
            var (baseOffset, _, bytes) = batches[0];
            Assert.That(baseOffset, Is.LessThanOrEqualTo(offset));
            Assert.That(BatchBuilder.LastOffset(bytes), Is.GreaterThanOrEqualTo(offset));
            var expected = (byte[])sent[batchIndex].Clone();
            BinaryPrimitives.WriteInt64BigEndian(expected, baseOffset);
            Assert.That(bytes, Is.EqualTo(expected));
            if (BatchBuilder.LastOffset(bytes) == offset) batchIndex++;
            offset++;
        }
    }

    [Test]
    public void Read_MaxBytes_AddsWholeBatchesOnly()
    {
        using var m = _tmp.Open();
        var p = m.CreateTopic("t", 1, NoConfig).Partitions[0];
        var b = BatchBuilder.Build(2, 1000, valueSize: 50);
        for (int i = 0; i < 5; i++) p.Append(b, 1);
        using (var s = p.Read(0, b.Length * 3 - 1))
            Assert.That(s.Data.Length, Is.EqualTo(b.Length * 2));
        using (var s = p.Read(3, b.Length * 3))
        {
            Assert.That(s.Data.Length, Is.EqualTo(b.Length * 3));
            Assert.That(BinaryPrimitives.ReadInt64BigEndian(s.Data.Span), Is.EqualTo(2));
        }
        using (var s = p.Read(0, int.MaxValue))
            Assert.That(s.Data.Length, Is.EqualTo(b.Length * 5));
    }

    [Test]
    public void Read_OutOfRange_Throws_AndAtLogEndIsEmpty()
    {
        using var m = _tmp.Open();
        var p = m.CreateTopic("t", 1, NoConfig).Partitions[0];
        p.Append(BatchBuilder.Build(3, 1000), 1);
        using (var s = p.Read(3, 1000)) Assert.That(s.IsEmpty, Is.True);
        var ex = Assert.Throws<StorageErrorException>(() => p.Read(4, 1000));
        Assert.That(ex!.Code, Is.EqualTo(ErrorCode.OffsetOutOfRange));
        Assert.That(Assert.Throws<StorageErrorException>(() => p.Read(-1, 1000))!.Code, Is.EqualTo(ErrorCode.OffsetOutOfRange));
    }

    [Test]
    public void Append_RejectsMalformedFraming_WithoutChangingTheLog()
    {
        using var m = _tmp.Open();
        var p = m.CreateTopic("t", 1, NoConfig).Partitions[0];
        var b = BatchBuilder.Build(3, 1000);
        var bad = b.Concat(b.AsSpan(0, 30).ToArray()).ToArray();
        Assert.That(Assert.Throws<StorageErrorException>(() => p.Append(bad, 2))!.Code, Is.EqualTo(ErrorCode.CorruptMessage));
        var badMagic = (byte[])b.Clone(); badMagic[16] = 1;
        Assert.That(Assert.Throws<StorageErrorException>(() => p.Append(badMagic, 1))!.Code, Is.EqualTo(ErrorCode.CorruptMessage));
        Assert.That(p.LogEndOffset, Is.EqualTo(0));
        var r = p.Append(b.Concat(b).ToArray(), 2);
        Assert.That((r.BaseOffset, r.LastOffset), Is.EqualTo((0L, 5L)));
    }

    [Test]
    public void Append_OverMaxMessageBytes_IsRejected()
    {
        using var m = _tmp.Open();
        var p = m.CreateTopic("t", 1, new Dictionary<string, string> { ["max.message.bytes"] = "200" }).Partitions[0];
        Assert.That(Assert.Throws<StorageErrorException>(() => p.Append(BatchBuilder.Build(1, 0, valueSize: 300), 1))!.Code,
            Is.EqualTo(ErrorCode.MessageTooLarge));
    }

    [Test]
    public void RollsBySize_AndReadsAcrossSegments()
    {
        using var m = _tmp.Open();
        var p = m.CreateTopic("t", 1, new Dictionary<string, string> { ["segment.bytes"] = "1000" }).Partitions[0];
        var b = BatchBuilder.Build(2, 1000, valueSize: 100); // ~300 bytes: 3 per segment
        for (int i = 0; i < 10; i++) p.Append(b, 1);
        Assert.That(p.SegmentCount, Is.EqualTo(4));
        var dir = Path.Combine(_tmp.Root, "t-0");
        var logs = Directory.GetFiles(dir, "*.log").Select(Path.GetFileName).Order().ToArray();
        Assert.That(logs, Is.EqualTo(new[] { "00000000000000000000.log", "00000000000000000006.log", "00000000000000000012.log", "00000000000000000018.log" }));
        // Rolled segments are trimmed to their real size.
        Assert.That(new FileInfo(Path.Combine(dir, "00000000000000000000.log")).Length, Is.EqualTo(3 * b.Length));
        for (long o = 0; o < 20; o++)
        {
            using var s = p.Read(o, 1);
            long baseOffset = BinaryPrimitives.ReadInt64BigEndian(s.Data.Span);
            Assert.That(baseOffset, Is.EqualTo(o - o % 2));
        }
        // One read never spans segments.
        using var all = p.Read(0, int.MaxValue);
        Assert.That(all.Data.Length, Is.EqualTo(3 * b.Length));
    }

    [Test]
    public void OversizedBatch_LargerThanSegmentBytes_IsStored()
    {
        using var m = _tmp.Open();
        var p = m.CreateTopic("t", 1, new Dictionary<string, string> { ["segment.bytes"] = "500" }).Partitions[0];
        p.Append(BatchBuilder.Build(1, 0, valueSize: 100), 1);
        var big = BatchBuilder.Build(1, 0, valueSize: 2000);
        p.Append(big, 1);
        p.Append(BatchBuilder.Build(1, 0, valueSize: 100), 1);
        using var s = p.Read(1, 1);
        Assert.That(s.Data.Length, Is.EqualTo(big.Length));
        Assert.That(p.LogEndOffset, Is.EqualTo(3));
    }

    [Test]
    public void RollsByTime()
    {
        using var m = _tmp.Open();
        var p = m.CreateTopic("t", 1, new Dictionary<string, string> { ["segment.ms"] = "1000" }).Partitions[0];
        p.Append(BatchBuilder.Build(1, 0), 1);
        _tmp.Time.Advance(1000);
        p.Append(BatchBuilder.Build(1, 0), 1);
        Assert.That(p.SegmentCount, Is.EqualTo(1), "segment.ms must be exceeded, not just reached");
        _tmp.Time.Advance(1);
        p.Append(BatchBuilder.Build(1, 0), 1);
        Assert.That(p.SegmentCount, Is.EqualTo(2));
        Assert.That(p.Segments[1].BaseOffset, Is.EqualTo(2));
    }

    [Test]
    public void IndexLookup_WithDenseIndex_FindsEveryBatch()
    {
        using var m = _tmp.Open();
        var p = m.CreateTopic("t", 1, new Dictionary<string, string> { ["index.interval.bytes"] = "0", ["segment.bytes"] = "5000" }).Partitions[0];
        var sizes = new List<(long Base, long Last)>();
        for (int i = 0; i < 150; i++)
        {
            var r = p.Append(BatchBuilder.Build(1 + i % 3, 0, valueSize: 10 + i % 7), 1);
            sizes.Add((r.BaseOffset, r.LastOffset));
        }
        Assert.That(p.SegmentCount, Is.GreaterThan(1));
        foreach (var seg in p.Segments)
        {
            if (seg.IsActive) continue;
            Assert.That(new FileInfo(seg.IndexPath).Length, Is.GreaterThan(0).And.Matches<long>(l => l % 8 == 0));
        }
        foreach (var (b, last) in sizes)
            for (long o = b; o <= last; o++)
            {
                using var s = p.Read(o, 1);
                Assert.That(BinaryPrimitives.ReadInt64BigEndian(s.Data.Span), Is.EqualTo(b));
            }
    }

    [Test]
    public void LogAppendTime_RewritesMaxTimestampAndAttribute_KeepingCrcValid()
    {
        using var m = _tmp.Open();
        var p = m.CreateTopic("t", 1, new Dictionary<string, string> { ["message.timestamp.type"] = "LogAppendTime" }).Partitions[0];
        var b = BatchBuilder.Build(3, 42);
        var r = p.Append(b, 1);
        Assert.That(r.LogAppendTime, Is.EqualTo(_tmp.Time.NowMs));
        using var s = p.Read(0, 1000);
        var stored = s.Data.Span;
        Assert.That(BinaryPrimitives.ReadInt64BigEndian(stored[35..]), Is.EqualTo(_tmp.Time.NowMs));
        Assert.That(BinaryPrimitives.ReadInt16BigEndian(stored[21..]) & 0x8, Is.EqualTo(0x8));
        Assert.That(BatchBuilder.CrcValid(stored), Is.True);
        Assert.That(BinaryPrimitives.ReadInt64BigEndian(stored[27..]), Is.EqualTo(42), "base timestamp is left alone");
        Assert.That(BatchBuilder.CrcValid(b), Is.True, "the caller's buffer is not modified");
    }

    [Test]
    public void PartitionLeaderEpoch_IsStamped()
    {
        using var m = _tmp.Open();
        var p = m.CreateTopic("t", 1, NoConfig).Partitions[0];
        p.Append(BatchBuilder.Build(1, 0), 1, partitionLeaderEpoch: 7);
        using var s = p.Read(0, 1000);
        Assert.That(BinaryPrimitives.ReadInt32BigEndian(s.Data.Span[12..]), Is.EqualTo(7));
        Assert.That(BatchBuilder.CrcValid(s.Data.Span), Is.True);
    }

    [Test]
    public async Task WaitForAppendAsync_CompletesOnAppend()
    {
        using var m = _tmp.Open();
        var p = m.CreateTopic("t", 1, NoConfig).Partitions[0];
        p.Append(BatchBuilder.Build(2, 0), 1);
        Assert.That(p.WaitForAppendAsync(1, CancellationToken.None).IsCompleted, Is.True);
        var wait = p.WaitForAppendAsync(2, CancellationToken.None);
        Assert.That(wait.IsCompleted, Is.False);
        p.Append(BatchBuilder.Build(1, 0), 1);
        await wait.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.That(wait.IsCompletedSuccessfully, Is.True);

        using var cts = new CancellationTokenSource();
        var cancelled = p.WaitForAppendAsync(10, cts.Token);
        cts.Cancel();
        Assert.ThrowsAsync<TaskCanceledException>(async () => await cancelled.WaitAsync(TimeSpan.FromSeconds(30)));
    }

    [Test]
    public void FindOffsetByTimestamp_IsRecordExact_ForUncompressedBatches()
    {
        using var m = _tmp.Open();
        var p = m.CreateTopic("t", 1, new Dictionary<string, string> { ["index.interval.bytes"] = "0", ["segment.bytes"] = "2000" }).Partitions[0];
        // Batch i holds 4 records with timestamps 1000*i + 0,10,20,30.
        for (int i = 0; i < 40; i++) p.Append(BatchBuilder.Build(4, 1000L * i, tsStep: 10), 1);
        Assert.That(p.SegmentCount, Is.GreaterThan(2));
        Assert.That(p.FindOffsetByTimestamp(0), Is.EqualTo(((long, long)?)(0L, 0L)));
        Assert.That(p.FindOffsetByTimestamp(5015), Is.EqualTo(((long, long)?)(5 * 4 + 2, 5020L)));
        Assert.That(p.FindOffsetByTimestamp(5031), Is.EqualTo(((long, long)?)(6 * 4, 6000L)));
        Assert.That(p.FindOffsetByTimestamp(39030), Is.EqualTo(((long, long)?)(159L, 39030L)));
        Assert.That(p.FindOffsetByTimestamp(39031), Is.Null);
        Assert.That(p.MaxTimestamp(), Is.EqualTo((159L, 39030L)));
    }

    [Test]
    public void MaxTimestamp_PointsAtTheRecordWithTheLargestTimestamp()
    {
        using var m = _tmp.Open();
        var p = m.CreateTopic("t", 1, NoConfig).Partitions[0];
        Assert.That(p.MaxTimestamp(), Is.EqualTo((-1L, -1L)));
        p.Append(BatchBuilder.Build(3, 5000), 1);
        p.Append(BatchBuilder.Build(3, 100), 1);
        Assert.That(p.MaxTimestamp(), Is.EqualTo((2L, 5002L)));
    }

    [Test]
    public void FlushMessagesOne_AdvancesRecoveryPointOnEveryAppend()
    {
        using var m = _tmp.Open();
        var p = m.CreateTopic("t", 1, new Dictionary<string, string> { ["flush.messages"] = "1" }).Partitions[0];
        p.Append(BatchBuilder.Build(2, 0), 1);
        Assert.That(p.RecoveryPoint, Is.EqualTo(2));
        p.Append(BatchBuilder.Build(2, 0), 1);
        Assert.That(p.RecoveryPoint, Is.EqualTo(4));

        var q = m.CreateTopic("u", 1, NoConfig).Partitions[0];
        q.Append(BatchBuilder.Build(2, 0), 1);
        Assert.That(q.RecoveryPoint, Is.EqualTo(0), "default leaves flushing to the page cache");
    }

    [Test]
    public void Roll_FlushesTheRolledSegmentInTheBackground_AndFlushWaitsForIt()
    {
        using var m = _tmp.Open();
        var p = m.CreateTopic("t", 1, new Dictionary<string, string> { ["segment.bytes"] = "1000" }).Partitions[0];
        for (int i = 0; i < 7; i++) p.Append(BatchBuilder.Build(2, 0, valueSize: 100), 1); // rolls at 6 and 12
        Assert.That(p.SegmentCount, Is.EqualTo(3));
        Assert.That(p.RecoveryPoint, Is.LessThanOrEqualTo(12));
        p.Flush();
        Assert.That(p.RecoveryPoint, Is.EqualTo(14));
    }
}
