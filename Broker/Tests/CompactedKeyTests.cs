using Kayak.Protocol;
using Kayak.Protocol.Compression;
using Kayak.Protocol.Messages;
using Kayak.Protocol.Records;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>
/// Kafka's LogValidator.validateKey: a cleanup.policy=compact topic refuses records without a key, reporting each one
/// (KIP-467 record_errors) with INVALID_RECORD for the partition and appending nothing there.
/// </summary>
[CancelAfter(30_000)]
public sealed class CompactedKeyTests
{
    private const string PerRecord = "Compacted topic cannot accept message without key in topic partition compacted-0";

    [TestCase(CompressionType.None, (short)9)]
    [TestCase(CompressionType.Lz4, (short)9)]
    [TestCase(CompressionType.Gzip, (short)11)]
    public async Task KeylessRecordsAreRefusedWithRecordErrors(CompressionType codec, short version)
    {
        await using var fx = await BrokerFixture.StartAsync();
        var topic = fx.CreateTopic("compacted", 2, new Dictionary<string, string> { ["cleanup.policy"] = "compact" });
        // Records 1 and 3 have no key; record 2 has an empty key, which is a key.
        var batch = Batch(codec, [[1], null, [], null, [4]]);
        var good = Batch(codec, [[9]]);
        var r = await fx.Client.SendAsync<ProduceResponse>(Request(("compacted", 0, batch), ("compacted", 1, good)), version);

        var p0 = r.Responses[0].PartitionResponses.Single(p => p.Index == 0);
        Assert.That(p0.ErrorCode, Is.EqualTo((short)ErrorCode.InvalidRecord));
        Assert.That(p0.BaseOffset, Is.EqualTo(-1));
        Assert.That(p0.RecordErrors.Select(e => e.BatchIndex), Is.EqualTo(new[] { 1, 3 }));
        Assert.That(p0.RecordErrors.Select(e => e.BatchIndexErrorMessage), Is.All.EqualTo(PerRecord));
        Assert.That(p0.ErrorMessage, Is.EqualTo(
            "One or more records have been rejected due to 2 record errors in total, and only showing the first three errors at most: " +
            $"[RecordError(batchIndex=1, message='{PerRecord}'), RecordError(batchIndex=3, message='{PerRecord}')]"));
        Assert.That(p0.LogStartOffset, Is.EqualTo(0));
        Assert.That(topic.Partitions[0].LogEndOffset, Is.EqualTo(0), "nothing appended for the refused partition");

        var p1 = r.Responses[0].PartitionResponses.Single(p => p.Index == 1);
        Assert.That(p1.ErrorCode, Is.EqualTo(0));
        Assert.That(topic.Partitions[1].LogEndOffset, Is.EqualTo(1), "the other partition of the request is appended");
    }

    [Test]
    public async Task TheMessageShowsAtMostThreeRecordErrors()
    {
        await using var fx = await BrokerFixture.StartAsync();
        fx.CreateTopic("compacted", 1, new Dictionary<string, string> { ["cleanup.policy"] = "compact,delete" });
        var r = await fx.Client.SendAsync<ProduceResponse>(Request(("compacted", 0, Batch(CompressionType.None, [null, null, null, null, null]))), 9);
        var p = r.Responses[0].PartitionResponses.Single();
        Assert.That(p.ErrorCode, Is.EqualTo((short)ErrorCode.InvalidRecord));
        Assert.That(p.RecordErrors, Has.Count.EqualTo(5));
        Assert.That(p.ErrorMessage, Does.StartWith("One or more records have been rejected due to 5 record errors in total"));
        Assert.That(p.ErrorMessage!.Split("RecordError(").Length - 1, Is.EqualTo(3));
    }

    [Test]
    public async Task KeyedRecordsAndDeleteTopicsAreAccepted()
    {
        await using var fx = await BrokerFixture.StartAsync();
        var compacted = fx.CreateTopic("compacted", 1, new Dictionary<string, string> { ["cleanup.policy"] = "compact" });
        var plain = fx.CreateTopic("plain", 1);
        var r = await fx.Client.SendAsync<ProduceResponse>(Request(("compacted", 0, Batch(CompressionType.None, [[1], []])), ("plain", 0, Batch(CompressionType.None, [null]))), 9);
        Assert.That(r.Responses.SelectMany(t => t.PartitionResponses).Select(p => p.ErrorCode), Is.All.EqualTo((short)0));
        Assert.That(compacted.Partitions[0].LogEndOffset, Is.EqualTo(2));
        Assert.That(plain.Partitions[0].LogEndOffset, Is.EqualTo(1));
    }

    /// <summary>Produce v2 (magic 1 message set, converted to v2 on the way in) is checked the same way.</summary>
    [Test]
    public async Task LegacyMessageSetsAreCheckedToo()
    {
        await using var fx = await BrokerFixture.StartAsync();
        var topic = fx.CreateTopic("compacted", 1, new Dictionary<string, string> { ["cleanup.policy"] = "compact" });
        var set = new System.Buffers.ArrayBufferWriter<byte>();
        DownConverter.WriteMessage(set, 0, 1, 0, 1_700_000_000_000, [1], false, [1], false);
        DownConverter.WriteMessage(set, 1, 1, 0, 1_700_000_000_001, default, true, [2], false);
        var r = await fx.Client.SendAsync<ProduceResponse>(Request(("compacted", 0, set.WrittenMemory.ToArray())), 2);
        var p = r.Responses[0].PartitionResponses.Single();
        Assert.That(p.ErrorCode, Is.EqualTo((short)ErrorCode.InvalidRecord));
        Assert.That(topic.Partitions[0].LogEndOffset, Is.EqualTo(0));
    }

    private static byte[] Batch(CompressionType codec, byte[]?[] keys)
    {
        using var builder = new RecordBatchBuilder(new RecordBatchOptions { Compression = codec });
        for (int i = 0; i < keys.Length; i++) builder.Append(1_700_000_000_000 + i, keys[i], [(byte)i, 2, 3]);
        return builder.ToArray();
    }

    private static ProduceRequest Request(params (string Topic, int Partition, byte[] Records)[] parts)
    {
        var request = new ProduceRequest { Acks = -1, TimeoutMs = 5000 };
        foreach (var g in parts.GroupBy(p => p.Topic))
            request.TopicData.Add(new ProduceRequest.TopicProduceData
            {
                Name = g.Key,
                PartitionData = g.Select(p => new ProduceRequest.PartitionProduceData { Index = p.Partition, Records = p.Records }).ToList(),
            });
        return request;
    }
}
