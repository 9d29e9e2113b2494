using Kayak.Broker.Handlers;
using Kayak.Broker.Services;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using Kayak.Protocol.Records;
using NUnit.Framework;

namespace Kayak.Broker.Tests.Handlers;

/// <summary>Produce called directly with in-process services: no broker, no socket (issue 10, step 1).</summary>
public class ProduceHandlerTests
{
    /// <summary>Answers every verification with one error and counts the questions.</summary>
    private sealed class FakeVerifier(ErrorCode answer) : ITransactionVerifier
    {
        public int Asked;
        public ErrorCode CheckProduce(string? transactionalId, long producerId, short producerEpoch, string topic, int partition)
        {
            Asked++;
            return answer;
        }

        public ErrorCode Verify(string transactionalId, long producerId, short producerEpoch, string topic, int partition) =>
            CheckProduce(transactionalId, producerId, producerEpoch, topic, partition);
    }

    private static ProduceRequest Request(short acks, string topic, int partition, byte[] records) => new()
    {
        Acks = acks,
        TimeoutMs = 1000,
        TopicData = [new ProduceRequest.TopicProduceData { Name = topic, PartitionData = [new() { Index = partition, Records = records }] }],
    };

    private static async Task<ProduceResponse.PartitionProduceResponse> ProduceOne(ProduceHandler handler, short acks, string topic, int partition, byte[] records, short version = 9)
    {
        var response = await ServiceHarness.Call<ProduceResponse>(handler, ServiceHarness.Context(ApiKey.Produce, version), Request(acks, topic, partition, records));
        return response.Responses.Single().PartitionResponses.Single();
    }

    [Test]
    public async Task AppendsAndAnswersTheBaseOffsetOfEachBatch()
    {
        using var h = new ServiceHarness();
        var topic = h.CreateTopic("t", 2);
        var handler = new ProduceHandler(h.Catalog, new FakeVerifier(ErrorCode.None), h.Leadership, h.Cluster);

        var first = await ProduceOne(handler, 1, "t", 1, ServiceHarness.Batch(3));
        var second = await ProduceOne(handler, -1, "t", 1, ServiceHarness.Batch(2));

        Assert.That((first.ErrorCode, first.BaseOffset, first.ErrorMessage), Is.EqualTo(((short)0, 0L, (string?)null)));
        Assert.That((second.ErrorCode, second.BaseOffset), Is.EqualTo(((short)0, 3L)));
        Assert.That(topic.Partitions[1].LogEndOffset, Is.EqualTo(5));
        Assert.That(topic.Partitions[0].LogEndOffset, Is.EqualTo(0), "the other partition is untouched");
    }

    [Test]
    public async Task UnknownTopicAndPartitionAreUnknownTopicOrPartitionWithoutAMessage()
    {
        using var h = new ServiceHarness();
        h.CreateTopic("t", 1);
        var handler = new ProduceHandler(h.Catalog, new FakeVerifier(ErrorCode.None), h.Leadership, h.Cluster);

        foreach (var (topic, partition) in new[] { ("nope", 0), ("t", 1) })
        {
            var rp = await ProduceOne(handler, 1, topic, partition, ServiceHarness.Batch(1));
            Assert.That((ErrorCode)rp.ErrorCode, Is.EqualTo(ErrorCode.UnknownTopicOrPartition), $"{topic}-{partition}");
            Assert.That((rp.ErrorMessage, rp.BaseOffset), Is.EqualTo(((string?)null, -1L)), $"{topic}-{partition}");
        }
        Assert.That(h.Catalog.TryGet("nope", out _), Is.False, "Produce never auto-creates");
    }

    [Test]
    public async Task BadAcksInternalTopicsAndAcksZero()
    {
        using var h = new ServiceHarness();
        var topic = h.CreateTopic("t", 1);
        h.Topics.CreateInternal(TopicService.ConsumerOffsetsTopic);
        var handler = new ProduceHandler(h.Catalog, new FakeVerifier(ErrorCode.None), h.Leadership, h.Cluster);

        var badAcks = await ProduceOne(handler, 2, "t", 0, ServiceHarness.Batch(1));
        Assert.That((ErrorCode)badAcks.ErrorCode, Is.EqualTo(ErrorCode.InvalidRequiredAcks));

        var internalTopic = await ProduceOne(handler, 1, TopicService.ConsumerOffsetsTopic, 0, ServiceHarness.Batch(1));
        Assert.That((ErrorCode)internalTopic.ErrorCode, Is.EqualTo(ErrorCode.InvalidTopicException));
        Assert.That(internalTopic.ErrorMessage, Does.Contain("internal topic"));

        var none = await handler.HandleAsync(ServiceHarness.Context(ApiKey.Produce, 9), Request(0, "t", 0, ServiceHarness.Batch(4)));
        Assert.That(none.Message, Is.Null, "acks=0 has no response");
        Assert.That(topic.Partitions[0].LogEndOffset, Is.EqualTo(4), "but is appended");
    }

    [Test]
    public async Task CorruptBatchIsCorruptMessageAndNothingIsAppended()
    {
        using var h = new ServiceHarness();
        var topic = h.CreateTopic("t", 1);
        var handler = new ProduceHandler(h.Catalog, new FakeVerifier(ErrorCode.None), h.Leadership, h.Cluster);
        var batch = ServiceHarness.Batch(2);
        batch[^1] ^= 0xFF; // the CRC covers the records

        var rp = await ProduceOne(handler, 1, "t", 0, batch);

        Assert.That((ErrorCode)rp.ErrorCode, Is.EqualTo(ErrorCode.CorruptMessage));
        Assert.That(rp.ErrorMessage, Is.Not.Null);
        Assert.That(topic.Partitions[0].LogEndOffset, Is.EqualTo(0));
    }

    [Test]
    public async Task FirstTransactionalBatchIsVerifiedAndARefusalIsThePartitionsError()
    {
        using var h = new ServiceHarness();
        var topic = h.CreateTopic("t", 1);
        var verifier = new FakeVerifier(ErrorCode.InvalidTxnState);
        var handler = new ProduceHandler(h.Catalog, verifier, h.Leadership, h.Cluster);
        var txnBatch = ServiceHarness.Batch(1, new RecordBatchOptions { ProducerId = 42, ProducerEpoch = 0, BaseSequence = 0, IsTransactional = true });

        var rp = await ProduceOne(handler, -1, "t", 0, txnBatch);

        Assert.That(verifier.Asked, Is.EqualTo(1));
        Assert.That((ErrorCode)rp.ErrorCode, Is.EqualTo(ErrorCode.InvalidTxnState));
        Assert.That(rp.ErrorMessage, Does.Contain("not part of an ongoing transaction"));
        Assert.That(topic.Partitions[0].LogEndOffset, Is.EqualTo(0));

        var plain = await ProduceOne(handler, -1, "t", 0, ServiceHarness.Batch(1));
        Assert.That((plain.ErrorCode, verifier.Asked), Is.EqualTo(((short)0, 1)), "a non-transactional batch asks nobody");
    }

    [Test]
    public async Task OutOfOrderSequenceComesFromStoragesProducerState()
    {
        using var h = new ServiceHarness();
        h.CreateTopic("t", 1);
        var handler = new ProduceHandler(h.Catalog, new FakeVerifier(ErrorCode.None), h.Leadership, h.Cluster);
        var idempotent = new RecordBatchOptions { ProducerId = 7, ProducerEpoch = 0, BaseSequence = 0 };
        var gap = new RecordBatchOptions { ProducerId = 7, ProducerEpoch = 0, BaseSequence = 5 };

        Assert.That((await ProduceOne(handler, -1, "t", 0, ServiceHarness.Batch(1, idempotent))).ErrorCode, Is.EqualTo(0));
        var rp = await ProduceOne(handler, -1, "t", 0, ServiceHarness.Batch(1, gap));

        Assert.That((ErrorCode)rp.ErrorCode, Is.EqualTo(ErrorCode.OutOfOrderSequenceNumber));
        Assert.That(rp.ErrorMessage, Is.Not.Null.And.Not.Empty);
    }
}
