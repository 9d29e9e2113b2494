using System.Buffers.Binary;
using Kayak.Protocol.Records;
using NUnit.Framework;

namespace Kayak.Storage.Tests;

/// <summary>Issue 14: the follower's append path (the leader's bytes as they are) and the separate high watermark.</summary>
public class ReplicationTests
{
    private TempLogs _leaderDir = null!, _followerDir = null!;
    private static readonly Dictionary<string, string> NoConfig = [];

    [SetUp]
    public void SetUp()
    {
        _leaderDir = new TempLogs();
        _followerDir = new TempLogs();
    }

    [TearDown]
    public void TearDown()
    {
        _leaderDir.Dispose();
        _followerDir.Dispose();
    }

    private static LogManager Open(TempLogs dir, bool replicated)
    {
        var m = new LogManager(new LogOptions { LogDirs = [dir.Root], Time = dir.Time, SegmentBytes = 4096, SegmentIndexBytes = 4096, IndexIntervalBytes = 256, Replicated = replicated });
        m.Open();
        return m;
    }

    /// <summary>What a fetcher does: read the leader from the follower's log end offset and append as follower.</summary>
    private static void Replicate(PartitionLog leader, PartitionLog follower, int maxBytes = 1500)
    {
        while (follower.LogEndOffset < leader.LogEndOffset)
        {
            using var slice = leader.Read(follower.LogEndOffset, maxBytes);
            follower.AppendAsFollower(slice.Data.Span);
        }
    }

    private static byte[] AllBytes(PartitionLog log)
    {
        var all = new MemoryStream();
        long offset = log.LogStartOffset;
        while (offset < log.LogEndOffset)
        {
            using var slice = log.Read(offset, int.MaxValue);
            all.Write(slice.Data.Span);
            var last = slice.Data.Span;
            int pos = 0;
            while (pos < last.Length)
            {
                offset = BinaryPrimitives.ReadInt64BigEndian(last[pos..]) + BinaryPrimitives.ReadInt32BigEndian(last[(pos + RecordBatchHeader.LastOffsetDeltaOffset)..]) + 1;
                pos += BinaryPrimitives.ReadInt32BigEndian(last[(pos + RecordBatchHeader.BatchLengthOffset)..]) + RecordBatchHeader.LogOverhead;
            }
        }
        return all.ToArray();
    }

    [Test]
    public void AppendAsFollower_KeepsTheLeadersOffsetsEpochsAndBytes_AcrossRolls()
    {
        using var lm = Open(_leaderDir, replicated: true);
        using var fm = Open(_followerDir, replicated: true);
        var leader = lm.CreateTopic("t", 1, NoConfig).Partitions[0];
        var follower = fm.CreateTopic("t", 1, NoConfig).Partitions[0];
        for (int i = 0; i < 60; i++)
        {
            leader.Append(BatchBuilder.Build(1 + i % 4, _leaderDir.Time.NowMs + i, valueSize: 30 + i, tag: "b" + i), 1, partitionLeaderEpoch: 3 + i / 30);
            if (i % 7 == 0) Replicate(leader, follower);
        }
        Replicate(leader, follower);
        Assert.That(follower.LogEndOffset, Is.EqualTo(leader.LogEndOffset));
        Assert.That(leader.SegmentCount, Is.GreaterThan(2), "the test crosses segment rolls");
        Assert.That(AllBytes(follower), Is.EqualTo(AllBytes(leader)), "the follower's log is the leader's, byte for byte");
        // The leader epoch of each batch is the leader's, not rewritten.
        using var last = follower.Read(follower.LogEndOffset - 1, 1 << 20);
        Assert.That(BinaryPrimitives.ReadInt32BigEndian(last.Data.Span[RecordBatchHeader.PartitionLeaderEpochOffset..]), Is.EqualTo(4));
    }

    [Test]
    public void AppendAsFollower_SkipsWhatItHolds_AndRefusesAGap()
    {
        using var lm = Open(_leaderDir, replicated: true);
        using var fm = Open(_followerDir, replicated: true);
        var leader = lm.CreateTopic("t", 1, NoConfig).Partitions[0];
        var follower = fm.CreateTopic("t", 1, NoConfig).Partitions[0];
        for (int i = 0; i < 5; i++) leader.Append(BatchBuilder.Build(2, _leaderDir.Time.NowMs), 1);
        using (var first = leader.Read(0, 1)) follower.AppendAsFollower(first.Data.Span);
        Assert.That(follower.LogEndOffset, Is.EqualTo(2));
        // A resent fetch from offset 0: the held batch is skipped, the rest appended.
        using (var again = leader.Read(0, int.MaxValue))
        {
            var r = follower.AppendAsFollower(again.Data.Span);
            Assert.That(r.BaseOffset, Is.EqualTo(2));
        }
        Assert.That(follower.LogEndOffset, Is.EqualTo(10));
        Assert.That(follower.AppendAsFollower(leader.Read(0, int.MaxValue).Data.Span).IsDuplicate, Is.True, "nothing new");
        // Batches from offset 12 onwards on a follower ending at 10: a gap, refused, nothing written.
        leader.Append(BatchBuilder.Build(2, _leaderDir.Time.NowMs), 1);
        leader.Append(BatchBuilder.Build(2, _leaderDir.Time.NowMs), 1);
        using var ahead = leader.Read(12, int.MaxValue);
        var e = Assert.Throws<StorageErrorException>(() => follower.AppendAsFollower(ahead.Data.Span));
        Assert.That(e!.Code, Is.EqualTo(Kayak.Protocol.ErrorCode.CorruptMessage));
        Assert.That(follower.LogEndOffset, Is.EqualTo(10));
    }

    [Test]
    public void AppendAsFollower_RebuildsProducerState()
    {
        using var lm = Open(_leaderDir, replicated: true);
        using var fm = Open(_followerDir, replicated: true);
        var leader = lm.CreateTopic("t", 1, NoConfig).Partitions[0];
        var follower = fm.CreateTopic("t", 1, NoConfig).Partitions[0];
        var b = BatchBuilder.Build(3, _leaderDir.Time.NowMs);
        BinaryPrimitives.WriteInt64BigEndian(b.AsSpan(RecordBatchHeader.ProducerIdOffset), 42);
        BinaryPrimitives.WriteInt16BigEndian(b.AsSpan(RecordBatchHeader.ProducerEpochOffset), 0);
        BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(RecordBatchHeader.BaseSequenceOffset), 0);
        BatchBuilder.FixCrc(b);
        leader.AppendFromClient(b, 1, null);
        Replicate(leader, follower);
        var producers = follower.ActiveProducers();
        Assert.That(producers.Select(p => p.ProducerId), Is.EqualTo(new long[] { 42 }), "a follower that becomes leader knows the producer's sequence");
    }

    [Test]
    public void HighWatermark_IsSeparateFromTheLogEnd_WhenReplicated()
    {
        using var lm = Open(_leaderDir, replicated: true);
        var log = lm.CreateTopic("t", 1, NoConfig).Partitions[0];
        for (int i = 0; i < 3; i++) log.Append(BatchBuilder.Build(2, _leaderDir.Time.NowMs), 1);
        Assert.That(log.LogEndOffset, Is.EqualTo(6));
        Assert.That(log.HighWatermark, Is.EqualTo(0), "nothing committed until the ISR has it");
        Assert.That(log.LastStableOffset, Is.EqualTo(0), "the last stable offset never passes the high watermark");
        Assert.That(log.UpdateHighWatermark(4), Is.True);
        Assert.That(log.HighWatermark, Is.EqualTo(4));
        Assert.That(log.UpdateHighWatermark(2), Is.False, "the leader's high watermark never goes back");
        Assert.That(log.HighWatermark, Is.EqualTo(4));
        log.UpdateHighWatermark(100);
        Assert.That(log.HighWatermark, Is.EqualTo(6), "capped at the log end offset");
        log.UpdateHighWatermark(2, allowDecrease: true);
        Assert.That(log.HighWatermark, Is.EqualTo(2), "a follower takes the leader's value");
        var wait = log.WaitForHighWatermarkAsync(2, CancellationToken.None);
        Assert.That(wait.IsCompleted, Is.False);
        log.SetHighWatermarkFollowsLogEnd(true);
        Assert.That(wait.Wait(TimeSpan.FromSeconds(10)), Is.True, "woken by the high watermark");
        Assert.That(log.HighWatermark, Is.EqualTo(6));
        log.Append(BatchBuilder.Build(1, _leaderDir.Time.NowMs), 1);
        Assert.That(log.HighWatermark, Is.EqualTo(7), "the leader alone in the ISR: each append commits");
    }

    [Test]
    public void HighWatermark_IsTheLogEnd_OnASingleBroker()
    {
        using var lm = Open(_leaderDir, replicated: false);
        var log = lm.CreateTopic("t", 1, NoConfig).Partitions[0];
        log.Append(BatchBuilder.Build(2, _leaderDir.Time.NowMs), 1);
        Assert.That(log.HighWatermark, Is.EqualTo(2));
        Assert.That(log.UpdateHighWatermark(1, allowDecrease: true), Is.False, "a single broker's high watermark is not set from outside");
        Assert.That(log.HighWatermark, Is.EqualTo(2));
    }

    [Test]
    public void TruncateTo_RemovesTheTail_AcrossSegments_AndTheLogContinuesAndReloads()
    {
        byte[] leaderBytes;
        long end;
        using (var fm = Open(_followerDir, replicated: true))
        {
            var log = fm.CreateTopic("t", 1, NoConfig).Partitions[0];
            for (int i = 0; i < 60; i++) log.Append(BatchBuilder.Build(2, _followerDir.Time.NowMs, valueSize: 100, tag: "a" + i), 1, partitionLeaderEpoch: 0);
            Assert.That(log.SegmentCount, Is.GreaterThan(3));
            log.UpdateHighWatermark(100);
            // Into the middle of a batch: whole batches go, so the end is the batch's base offset (Kafka's rule).
            Assert.That(log.TruncateTo(41), Is.EqualTo(40));
            Assert.That(log.LogEndOffset, Is.EqualTo(40));
            Assert.That(log.HighWatermark, Is.EqualTo(40), "never above the log end");
            Assert.That(log.LatestLeaderEpoch(), Is.EqualTo(0));
            Assert.That(() => log.Read(41, 100), Throws.TypeOf<StorageErrorException>(), "offsets past the new end are out of range");
            // The log continues at the new end, with another epoch (the new leader's batches).
            var idem = BatchBuilder.Build(3, _followerDir.Time.NowMs, valueSize: 50, tag: "b");
            BinaryPrimitives.WriteInt64BigEndian(idem.AsSpan(RecordBatchHeader.ProducerIdOffset), 7);
            BinaryPrimitives.WriteInt16BigEndian(idem.AsSpan(RecordBatchHeader.ProducerEpochOffset), 0);
            BinaryPrimitives.WriteInt32BigEndian(idem.AsSpan(RecordBatchHeader.BaseSequenceOffset), 0);
            BatchBuilder.FixCrc(idem);
            Assert.That(log.AppendFromClient(idem, 1, null, partitionLeaderEpoch: 1).BaseOffset, Is.EqualTo(40));
            for (int i = 0; i < 10; i++) log.Append(BatchBuilder.Build(2, _followerDir.Time.NowMs, valueSize: 100, tag: "c" + i), 1, partitionLeaderEpoch: 1);
            Assert.That(log.EndOffsetForLeaderEpoch(0, 1), Is.EqualTo((0, 40L)), "epoch 0 ends where epoch 1 starts");
            Assert.That(log.EndOffsetForLeaderEpoch(1, 1), Is.EqualTo((1, log.LogEndOffset)));
            // Truncating the producer's batch away forgets the producer (state rebuilt from a snapshot below 40).
            log.TruncateTo(43);
            Assert.That(log.ActiveProducers().Select(p => p.ProducerId), Is.EqualTo(new long[] { 7 }));
            log.TruncateTo(40);
            Assert.That(log.ActiveProducers(), Is.Empty, "its only batch was truncated");
            for (int i = 0; i < 5; i++) log.Append(BatchBuilder.Build(2, _followerDir.Time.NowMs, valueSize: 100, tag: "d" + i), 1, partitionLeaderEpoch: 2);
            end = log.LogEndOffset;
            log.UpdateHighWatermark(end);
            leaderBytes = AllBytes(log);
        }
        using var again = Open(_followerDir, replicated: true);
        var reloaded = again.Topics.Single().Partitions[0];
        Assert.That(reloaded.LogEndOffset, Is.EqualTo(end));
        Assert.That(AllBytes(reloaded), Is.EqualTo(leaderBytes), "the truncated and continued log loads back as written");
    }
}
