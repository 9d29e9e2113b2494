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
}
