using Kayak.Protocol;
using Kayak.Protocol.Compression;
using Kayak.Protocol.Messages;
using Kayak.Protocol.Records;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

[CancelAfter(30_000)]
public class ProduceTests
{
    [TestCase("zstd", CompressionType.None, CompressionType.Zstd)]
    [TestCase("gzip", CompressionType.Lz4, CompressionType.Gzip)]
    [TestCase("uncompressed", CompressionType.Snappy, CompressionType.None)]
    [TestCase("producer", CompressionType.Lz4, CompressionType.Lz4)]
    public async Task TopicCompressionTypeDecidesTheStoredCodec(string topicCodec, CompressionType sent, CompressionType stored)
    {
        await using var fx = await BrokerFixture.StartAsync();
        var topic = fx.CreateTopic("codec", 1, new Dictionary<string, string> { ["compression.type"] = topicCodec });
        using var builder = new RecordBatchBuilder(new RecordBatchOptions { Compression = sent, ProducerId = 7, ProducerEpoch = 1, BaseSequence = 0 });
        for (int i = 0; i < 5; i++)
            builder.Append(1_700_000_000_000 + i, new byte[] { (byte)i }, new byte[] { 1, 2, (byte)i }, [new RecordHeader("h", [(byte)i])]);
        var batch = builder.ToArray();
        var r = await fx.Client.SendAsync<ProduceResponse>(new ProduceRequest
        {
            Acks = -1,
            TimeoutMs = 5000,
            TopicData = [new ProduceRequest.TopicProduceData { Name = "codec", PartitionData = [new ProduceRequest.PartitionProduceData { Index = 0, Records = batch }] }],
        }, 9);
        Assert.That(r.Responses[0].PartitionResponses[0].ErrorCode, Is.EqualTo(0));

        using var slice = topic.Partitions[0].Read(0, 1 << 20);
        var storedBatch = slice.Data.ToArray();
        Assert.That(RecordBatchHeader.TryRead(storedBatch, out var h), Is.True);
        Assert.That(h.Compression, Is.EqualTo(stored));
        Assert.That((h.ProducerId, h.ProducerEpoch, h.BaseSequence, h.LastOffsetDelta), Is.EqualTo((7L, (short)1, 0, 4)));
        Assert.That(RecordBatch.Validate(storedBatch).IsValid, Is.True);
        using var records = new PooledBufferWriter();
        RecordBatch.DecompressRecords(storedBatch, records);
        var e = new RecordEnumerator(records.WrittenSpan, h.RecordsCount);
        int n = 0;
        while (e.MoveNext())
        {
            var rec = e.Current;
            Assert.That(rec.Key.ToArray(), Is.EqualTo(new byte[] { (byte)n }));
            Assert.That(rec.Value.ToArray(), Is.EqualTo(new byte[] { 1, 2, (byte)n }));
            Assert.That(h.BaseTimestamp + rec.TimestampDelta, Is.EqualTo(1_700_000_000_000 + n));
            Assert.That(rec.HeaderCount, Is.EqualTo(1));
            n++;
        }
        Assert.That(n, Is.EqualTo(5));
    }

    /// <summary>
    /// KIP-110: a zstd batch needs Produce v7. Kafka's ProduceRequest.validateRecords answers v3-6 with
    /// UNSUPPORTED_COMPRESSION_TYPE for that partition and appends nothing (sarama 1.22 sends zstd in Produce v3);
    /// other partitions of the same request and the same batch at v7 are appended.
    /// </summary>
    [TestCase((short)3, false)]
    [TestCase((short)6, false)]
    [TestCase((short)7, true)]
    [TestCase((short)9, true)]
    public async Task ZstdNeedsProduceV7(short version, bool accepted)
    {
        await using var fx = await BrokerFixture.StartAsync();
        var topic = fx.CreateTopic("zstdv", 2);
        byte[] Batch(CompressionType compression)
        {
            using var builder = new RecordBatchBuilder(new RecordBatchOptions { Compression = compression });
            for (int i = 0; i < 3; i++)
                builder.Append(1_700_000_000_000 + i, null, new byte[] { 9, (byte)i }, []);
            return builder.ToArray();
        }
        var r = await fx.Client.SendAsync<ProduceResponse>(new ProduceRequest
        {
            Acks = -1,
            TimeoutMs = 5000,
            TopicData =
            [
                new ProduceRequest.TopicProduceData
                {
                    Name = "zstdv",
                    PartitionData =
                    [
                        new ProduceRequest.PartitionProduceData { Index = 0, Records = Batch(CompressionType.Zstd) },
                        new ProduceRequest.PartitionProduceData { Index = 1, Records = Batch(CompressionType.Gzip) },
                    ],
                },
            ],
        }, version);
        var zstd = r.Responses[0].PartitionResponses.Single(p => p.Index == 0);
        var gzip = r.Responses[0].PartitionResponses.Single(p => p.Index == 1);
        Assert.That(zstd.ErrorCode, Is.EqualTo(accepted ? (short)0 : (short)ErrorCode.UnsupportedCompressionType));
        Assert.That(zstd.BaseOffset, Is.EqualTo(accepted ? 0L : -1L));
        Assert.That(topic.Partitions[0].LogEndOffset, Is.EqualTo(accepted ? 3L : 0L), "zstd partition's log end");
        Assert.That(gzip.ErrorCode, Is.EqualTo(0), "the other partition of the request is unaffected");
        Assert.That(topic.Partitions[1].LogEndOffset, Is.EqualTo(3L));
    }

    // Issue 15, K13: a batch within max.message.bytes on the wire that decompresses past the broker's 64 MiB
    // validation limit is refused as too large (MESSAGE_TOO_LARGE, which the Java producer answers by splitting the
    // batch), not as corrupt (CORRUPT_MESSAGE, retried unchanged), and nothing is appended.
    [TestCase(CompressionType.Gzip)]
    [TestCase(CompressionType.Zstd)]
    public async Task DecompressionBombIsMessageTooLarge(CompressionType codec)
    {
        await using var fx = await BrokerFixture.StartAsync();
        var topic = fx.CreateTopic("bombs", 1);
        byte[] bomb;
        using (var builder = new RecordBatchBuilder(new RecordBatchOptions { Compression = codec }))
        {
            builder.Append(1_700_000_000_000, null, new byte[(int)DecompressionOptions.DefaultMaxOutputBytes + 4096]);
            bomb = builder.ToArray();
        }
        Assert.That(bomb.Length, Is.LessThan(topic.Config.MaxMessageBytes));
        var r = await fx.Client.SendAsync<ProduceResponse>(new ProduceRequest
        {
            Acks = -1,
            TimeoutMs = 5000,
            TopicData = [new ProduceRequest.TopicProduceData { Name = "bombs", PartitionData = [new ProduceRequest.PartitionProduceData { Index = 0, Records = bomb }] }],
        }, 9);
        var p = r.Responses[0].PartitionResponses[0];
        Assert.That(p.ErrorCode, Is.EqualTo((short)ErrorCode.MessageTooLarge), p.ErrorMessage);
        Assert.That(topic.Partitions[0].LogEndOffset, Is.EqualTo(0));
    }
}
