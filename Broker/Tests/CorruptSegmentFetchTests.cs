using System.Buffers.Binary;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>
/// Issue 15, K9: a corrupt batch length inside an old segment used to make every Fetch touching it close the
/// connection, so healthy partitions fetched on the same connection starved. Kafka answers that partition with
/// CORRUPT_MESSAGE (its FileRecords iterator's CorruptRecordException) and serves the others.
/// </summary>
[CancelAfter(30_000)]
public class CorruptSegmentFetchTests
{
    [Test]
    public async Task CorruptBatchInAnOldSegment_AnswersThatPartitionWithCorruptMessage_AndServesTheOthers()
    {
        await using var fx = await BrokerFixture.StartAsync();
        var bad = fx.CreateTopic("bad", 1, new Dictionary<string, string> { ["segment.bytes"] = "1024" });
        var good = fx.CreateTopic("good", 1);
        BrokerFixture.Produce(bad.Partitions[0], 60); // ~70 B batches: several rolled segments
        BrokerFixture.Produce(good.Partitions[0], 5);
        var oldest = Directory.GetFiles(Path.Combine(fx.DataDir, "bad-0"), "*.log").Order().First();
        // The third batch's length becomes nonsense (larger than the segment), as a flipped byte on disk would.
        using (var fs = new FileStream(oldest, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete))
        {
            var buf = new byte[12];
            long pos = 0;
            for (int i = 0; i < 2; i++)
            {
                fs.Position = pos;
                fs.ReadExactly(buf);
                pos += 12 + BinaryPrimitives.ReadInt32BigEndian(buf.AsSpan(8));
            }
            fs.Position = pos + 8;
            fs.Write([0x7F, 0, 0, 0]);
        }

        for (int round = 0; round < 3; round++)
        {
            var r = await fx.Client.SendAsync<FetchResponse>(new FetchRequest
            {
                MaxWaitMs = 0,
                MinBytes = 1,
                MaxBytes = 1 << 20,
                Topics =
                [
                    new FetchRequest.FetchTopic { Topic = "bad", Partitions = [new FetchRequest.FetchPartition { Partition = 0, FetchOffset = 3, PartitionMaxBytes = 1 << 20 }] },
                    new FetchRequest.FetchTopic { Topic = "good", Partitions = [new FetchRequest.FetchPartition { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 1 << 20 }] },
                ],
            }, 11);
            var badPart = r.Responses.Single(t => t.Topic == "bad").Partitions[0];
            var goodPart = r.Responses.Single(t => t.Topic == "good").Partitions[0];
            Assert.That(badPart.ErrorCode, Is.EqualTo((short)ErrorCode.CorruptMessage), $"round {round}");
            Assert.That(goodPart.ErrorCode, Is.EqualTo((short)ErrorCode.None));
            Assert.That(goodPart.Records?.Length ?? 0, Is.GreaterThan(0), "the healthy partition is served on the same connection");
            Assert.That(goodPart.HighWatermark, Is.EqualTo(5));
        }

        // ListOffsets by timestamp walks the same segment: an error for the partition, the connection stays.
        var lo = await fx.Client.SendAsync<ListOffsetsResponse>(new ListOffsetsRequest
        {
            ReplicaId = -1,
            Topics = [new ListOffsetsRequest.ListOffsetsTopic { Name = "bad", Partitions = [new ListOffsetsRequest.ListOffsetsPartition { PartitionIndex = 0, Timestamp = 1_700_000_000_003 }] }],
        }, 5);
        Assert.That(lo.Topics[0].Partitions[0].ErrorCode, Is.AnyOf((short)ErrorCode.None, (short)ErrorCode.CorruptMessage));
        var md = await fx.Client.SendAsync<MetadataResponse>(new MetadataRequest { Topics = null }, 9);
        Assert.That(md.Topics.Select(t => t.Name), Is.SupersetOf(new[] { "bad", "good" }));
    }

    /// <summary>
    /// Issue 15: a flipped bit inside a record of an old segment, after a clean stop. The segment is trusted at start
    /// (no read), and its batches get their CRC check on the first fetch: the fetch from the beginning ends before the
    /// damaged batch, a fetch at it is CORRUPT_MESSAGE, the batch after it is served.
    /// </summary>
    [Test]
    public async Task FlippedByteInATrustedSegment_IsRefusedOnFetch_AndTheBatchesAroundItAreServed()
    {
        var dir = Path.Combine(Path.GetTempPath(), "kayak-broker-tests-" + Guid.NewGuid().ToString("N"));
        try
        {
            await using (var first = new KafkaBroker(new KafkaBrokerOptions { Port = 0, DataDir = dir }))
            {
                await first.StartAsync();
                var t = first.State.Topics.Create("bad", 1, 1, new Dictionary<string, string> { ["segment.bytes"] = "1024" }, validateOnly: false).Topic!;
                BrokerFixture.Produce(t.Partitions[0], 60);
            }
            var oldest = Directory.GetFiles(Path.Combine(dir, "bad-0"), "*.log").Order().First();
            int firstBatch;
            using (var fs = new FileStream(oldest, FileMode.Open, FileAccess.ReadWrite))
            {
                var len = new byte[12];
                fs.ReadExactly(len);
                firstBatch = 12 + BinaryPrimitives.ReadInt32BigEndian(len.AsSpan(8));
                fs.Position = firstBatch + 66; // inside the second batch's record (offset 1)
                int v = fs.ReadByte();
                fs.Position--;
                fs.WriteByte((byte)(v ^ 0x10));
            }

            await using var broker = new KafkaBroker(new KafkaBrokerOptions { Port = 0, DataDir = dir });
            await broker.StartAsync();
            using var client = await RawClient.ConnectAsync(broker.BootstrapServers);
            async Task<FetchResponse.PartitionData> FetchAt(long offset)
            {
                var r = await client.SendAsync<FetchResponse>(new FetchRequest
                {
                    MaxWaitMs = 0, MinBytes = 1, MaxBytes = 1 << 20,
                    Topics = [new FetchRequest.FetchTopic { Topic = "bad", Partitions = [new FetchRequest.FetchPartition { Partition = 0, FetchOffset = offset, PartitionMaxBytes = 1 << 20 }] }],
                }, 11);
                return r.Responses[0].Partitions[0];
            }
            var fromStart = await FetchAt(0);
            Assert.That(fromStart.ErrorCode, Is.EqualTo((short)ErrorCode.None));
            Assert.That(fromStart.Records?.Length, Is.EqualTo(firstBatch), "only the batch before the damaged one");
            var atDamage = await FetchAt(1);
            Assert.That(atDamage.ErrorCode, Is.EqualTo((short)ErrorCode.CorruptMessage));
            Assert.That(atDamage.Records?.Length ?? 0, Is.EqualTo(0), "no bytes of the damaged batch");
            var after = await FetchAt(2);
            Assert.That(after.ErrorCode, Is.EqualTo((short)ErrorCode.None));
            Assert.That(BinaryPrimitives.ReadInt64BigEndian(after.Records!.Value.Span), Is.EqualTo(2));
            Assert.That(after.HighWatermark, Is.EqualTo(60), "nothing was truncated");
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }
}
