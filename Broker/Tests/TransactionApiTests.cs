using Kayak.Protocol;
using Kayak.Protocol.Messages;
using Kayak.Protocol.Records;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>Idempotent/transactional producer APIs over the wire, with hand-built requests.</summary>
[CancelAfter(30_000)]
public class TransactionApiTests
{
    private static byte[] Batch(long pid, short epoch, int seq, int count, bool transactional)
    {
        using var b = new RecordBatchBuilder(new RecordBatchOptions { ProducerId = pid, ProducerEpoch = epoch, BaseSequence = seq, IsTransactional = transactional });
        for (int i = 0; i < count; i++) b.Append(1_700_000_000_000 + i, null, new byte[] { (byte)(seq + i) });
        return b.ToArray();
    }

    private static async Task<ProduceResponse.PartitionProduceResponse> Produce(BrokerFixture f, string topic, int partition, byte[] batch, string? transactionalId = null)
    {
        var r = await f.Client.SendAsync<ProduceResponse>(new ProduceRequest
        {
            TransactionalId = transactionalId,
            Acks = -1,
            TimeoutMs = 5000,
            TopicData = [new ProduceRequest.TopicProduceData { Name = topic, PartitionData = [new ProduceRequest.PartitionProduceData { Index = partition, Records = batch }] }],
        }, 9);
        return r.Responses[0].PartitionResponses[0];
    }

    private static async Task<FetchResponse.PartitionData> Fetch(BrokerFixture f, string topic, sbyte isolation)
    {
        var r = await f.Client.SendAsync<FetchResponse>(new FetchRequest
        {
            MaxWaitMs = 0,
            MinBytes = 0,
            IsolationLevel = isolation,
            Topics = [new FetchRequest.FetchTopic { Topic = topic, Partitions = [new FetchRequest.FetchPartition { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 1 << 20 }] }],
        }, 11);
        return r.Responses[0].Partitions[0];
    }

    private static int BatchCount(ReadOnlyMemory<byte>? records)
    {
        int n = 0;
        foreach (var _ in new BatchEnumerator(records.GetValueOrDefault().Span)) n++;
        return n;
    }

    [Test]
    public async Task IdempotentProduceDeduplicatesAndChecksSequences()
    {
        await using var f = await BrokerFixture.StartAsync();
        f.CreateTopic("idem", 1);
        var init = await f.Client.SendAsync<InitProducerIdResponse>(new InitProducerIdRequest { TransactionalId = null, TransactionTimeoutMs = -1 }, 4);
        Assert.That((init.ErrorCode, init.ProducerEpoch), Is.EqualTo(((short)0, (short)0)));
        long pid = init.ProducerId;

        var first = await Produce(f, "idem", 0, Batch(pid, 0, 0, 3, false));
        var second = await Produce(f, "idem", 0, Batch(pid, 0, 3, 2, false));
        var retry = await Produce(f, "idem", 0, Batch(pid, 0, 0, 3, false));
        Assert.That((first.ErrorCode, first.BaseOffset, second.BaseOffset), Is.EqualTo(((short)0, 0L, 3L)));
        Assert.That((retry.ErrorCode, retry.BaseOffset), Is.EqualTo(((short)0, 0L)), "a duplicate gets the original offset");
        Assert.That(f.State.Logs.TryGetTopic("idem", out var topic) ? topic.Partitions[0].LogEndOffset : -1, Is.EqualTo(5), "and is not appended");

        var gap = await Produce(f, "idem", 0, Batch(pid, 0, 9, 1, false));
        Assert.That(gap.ErrorCode, Is.EqualTo((short)ErrorCode.OutOfOrderSequenceNumber));

        var producers = await f.Client.SendAsync<DescribeProducersResponse>(new DescribeProducersRequest
        {
            Topics = [new DescribeProducersRequest.TopicRequest { Name = "idem", PartitionIndexes = [0, 7] }],
        }, 0);
        var p0 = producers.Topics[0].Partitions[0];
        Assert.That(p0.ActiveProducers.Select(p => (p.ProducerId, p.ProducerEpoch, p.LastSequence, p.CurrentTxnStartOffset)), Is.EqualTo(new[] { (pid, 0, 4, -1L) }));
        Assert.That(producers.Topics[0].Partitions[1].ErrorCode, Is.EqualTo((short)ErrorCode.UnknownTopicOrPartition));
    }

    [Test]
    public async Task AbortedTransactionIsHiddenFromReadCommitted()
    {
        await using var f = await BrokerFixture.StartAsync();
        f.CreateTopic("tx", 1);
        var init = await f.Client.SendAsync<InitProducerIdResponse>(new InitProducerIdRequest { TransactionalId = "app", TransactionTimeoutMs = 60_000 }, 4);
        Assert.That(init.ErrorCode, Is.EqualTo((short)0));
        long pid = init.ProducerId;
        short epoch = init.ProducerEpoch;

        var notAdded = await Produce(f, "tx", 0, Batch(pid, epoch, 0, 2, true), "app");
        Assert.That(notAdded.ErrorCode, Is.EqualTo((short)ErrorCode.InvalidTxnState), "partition not in the transaction");

        var add = await f.Client.SendAsync<AddPartitionsToTxnResponse>(new AddPartitionsToTxnRequest
        {
            V3AndBelowTransactionalId = "app", V3AndBelowProducerId = pid, V3AndBelowProducerEpoch = epoch,
            V3AndBelowTopics = [new AddPartitionsToTxnRequest.AddPartitionsToTxnTopic { Name = "tx", Partitions = [0] }],
        }, 3);
        Assert.That(add.ResultsByTopicV3AndBelow[0].ResultsByPartition[0].PartitionErrorCode, Is.EqualTo((short)0));
        Assert.That((await Produce(f, "tx", 0, Batch(pid, epoch, 0, 2, true), "app")).ErrorCode, Is.EqualTo((short)0));

        var open = await Fetch(f, "tx", 1);
        Assert.That((open.HighWatermark, open.LastStableOffset, BatchCount(open.Records)), Is.EqualTo((2L, 0L, 0)));
        Assert.That(BatchCount((await Fetch(f, "tx", 0)).Records), Is.EqualTo(1));

        var describe = await f.Client.SendAsync<DescribeTransactionsResponse>(new DescribeTransactionsRequest { TransactionalIds = ["app", "nope"] }, 0);
        var d = describe.TransactionStates[0];
        Assert.That((d.TransactionState, d.ProducerId, d.Topics.Single().Topic, d.Topics.Single().Partitions.Single()), Is.EqualTo(("Ongoing", pid, "tx", 0)));
        Assert.That(describe.TransactionStates[1].ErrorCode, Is.EqualTo((short)ErrorCode.TransactionalIdNotFound));

        var end = await f.Client.SendAsync<EndTxnResponse>(new EndTxnRequest { TransactionalId = "app", ProducerId = pid, ProducerEpoch = epoch, Committed = false }, 3);
        Assert.That(end.ErrorCode, Is.EqualTo((short)0));

        var committed = await Fetch(f, "tx", 1);
        Assert.That((committed.HighWatermark, committed.LastStableOffset), Is.EqualTo((3L, 3L)));
        Assert.That(BatchCount(committed.Records), Is.EqualTo(2), "data batch and abort marker");
        Assert.That(committed.AbortedTransactions!.Select(a => (a.ProducerId, a.FirstOffset)), Is.EqualTo(new[] { (pid, 0L) }));
        Assert.That((await Fetch(f, "tx", 0)).AbortedTransactions, Is.Null, "read_uncommitted gets no list");

        var list = await f.Client.SendAsync<ListTransactionsResponse>(new ListTransactionsRequest { StateFilters = ["CompleteAbort", "Bogus"] }, 1);
        Assert.That(list.TransactionStates.Select(s => (s.TransactionalId, s.TransactionState)), Is.EqualTo(new[] { ("app", "CompleteAbort") }));
        Assert.That(list.UnknownStateFilters, Is.EqualTo(new[] { "Bogus" }));
    }

    [TestCase((short)1, ErrorCode.InvalidProducerEpoch)]
    [TestCase((short)2, ErrorCode.ProducerFenced)]
    public async Task FencedEpochErrorDependsOnVersion(short version, ErrorCode expected)
    {
        await using var f = await BrokerFixture.StartAsync();
        var init = await f.Client.SendAsync<InitProducerIdResponse>(new InitProducerIdRequest { TransactionalId = "fence", TransactionTimeoutMs = 60_000 }, 4);
        await f.Client.SendAsync<InitProducerIdResponse>(new InitProducerIdRequest { TransactionalId = "fence", TransactionTimeoutMs = 60_000 }, 4);
        var end = await f.Client.SendAsync<EndTxnResponse>(new EndTxnRequest { TransactionalId = "fence", ProducerId = init.ProducerId, ProducerEpoch = init.ProducerEpoch, Committed = true }, version);
        Assert.That(end.ErrorCode, Is.EqualTo((short)expected));
    }

    [Test]
    public async Task AddPartitionsErrorsAndBatchedVerify()
    {
        await using var f = await BrokerFixture.StartAsync();
        f.CreateTopic("known", 1);
        var init = await f.Client.SendAsync<InitProducerIdResponse>(new InitProducerIdRequest { TransactionalId = "v", TransactionTimeoutMs = 60_000 }, 4);
        var bad = await f.Client.SendAsync<AddPartitionsToTxnResponse>(new AddPartitionsToTxnRequest
        {
            V3AndBelowTransactionalId = "v", V3AndBelowProducerId = init.ProducerId, V3AndBelowProducerEpoch = init.ProducerEpoch,
            V3AndBelowTopics =
            [
                new AddPartitionsToTxnRequest.AddPartitionsToTxnTopic { Name = "known", Partitions = [0] },
                new AddPartitionsToTxnRequest.AddPartitionsToTxnTopic { Name = "unknown", Partitions = [0] },
            ],
        }, 3);
        Assert.That(bad.ResultsByTopicV3AndBelow.Select(t => t.ResultsByPartition[0].PartitionErrorCode),
            Is.EqualTo(new[] { (short)ErrorCode.OperationNotAttempted, (short)ErrorCode.UnknownTopicOrPartition }));

        AddPartitionsToTxnRequest.AddPartitionsToTxnTransaction Txn(bool verify) => new()
        {
            TransactionalId = "v", ProducerId = init.ProducerId, ProducerEpoch = init.ProducerEpoch, VerifyOnly = verify,
            Topics = [new AddPartitionsToTxnRequest.AddPartitionsToTxnTopic { Name = "known", Partitions = [0] }],
        };
        var verify = await f.Client.SendAsync<AddPartitionsToTxnResponse>(new AddPartitionsToTxnRequest { Transactions = [Txn(true)] }, 4);
        Assert.That(verify.ResultsByTransaction[0].TopicResults[0].ResultsByPartition[0].PartitionErrorCode, Is.EqualTo((short)ErrorCode.InvalidTxnState));
        await f.Client.SendAsync<AddPartitionsToTxnResponse>(new AddPartitionsToTxnRequest { Transactions = [Txn(false)] }, 4);
        verify = await f.Client.SendAsync<AddPartitionsToTxnResponse>(new AddPartitionsToTxnRequest { Transactions = [Txn(true)] }, 4);
        Assert.That(verify.ResultsByTransaction[0].TopicResults[0].ResultsByPartition[0].PartitionErrorCode, Is.EqualTo((short)0));
    }
}
