using Kayak.Protocol;
using Kayak.Protocol.Messages;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>
/// Issue 10, step 8: two brokers in one process (different ports and log dirs) share no state — topics, committed
/// offsets, producer ids and transactions of one are invisible to the other. The in-process cluster (issue 14)
/// builds on this.
/// </summary>
[CancelAfter(30_000)]
public class TwoBrokersTests
{
    [Test]
    public async Task TwoBrokersInOneProcess_ShareNoState()
    {
        await using var a = await BrokerFixture.StartAsync();
        await using var b = await BrokerFixture.StartAsync();
        Assert.That(a.Broker.BootstrapServers, Is.Not.EqualTo(b.Broker.BootstrapServers));
        Assert.That(a.State.ClusterId, Is.Not.EqualTo(b.State.ClusterId));

        // Topics: the same name, created independently with different shapes; records only where produced.
        var ta = a.CreateTopic("t", 3);
        var tb = b.CreateTopic("t", 1);
        BrokerFixture.Produce(ta.Partitions[0], 5);
        var mdB = await b.Client.SendAsync<MetadataResponse>(new MetadataRequest { Topics = null }, 12);
        Assert.That(mdB.Topics.Single(t => t.Name == "t").Partitions, Has.Count.EqualTo(1));
        Assert.That(mdB.Topics.Single(t => t.Name == "t").TopicId, Is.Not.EqualTo(ta.TopicId));
        Assert.That(tb.Partitions[0].LogEndOffset, Is.EqualTo(0));
        Assert.That(a.CreateTopic("only-a", 1), Is.Not.Null);
        var mdB2 = await b.Client.SendAsync<MetadataResponse>(new MetadataRequest { Topics = null, AllowAutoTopicCreation = false }, 12);
        Assert.That(mdB2.Topics.Select(t => t.Name), Has.No.Member("only-a"));

        // Committed offsets: a group's commit on A is unknown to B.
        var commit = await a.Client.SendAsync<OffsetCommitResponse>(new OffsetCommitRequest
        {
            GroupId = "g",
            Topics = [new() { Name = "t", Partitions = [new() { PartitionIndex = 0, CommittedOffset = 4 }] }],
        }, 8);
        Assert.That(commit.Topics[0].Partitions[0].ErrorCode, Is.EqualTo((short)ErrorCode.None));
        Assert.That(await Committed(a, "g"), Is.EqualTo(4));
        Assert.That(await Committed(b, "g"), Is.EqualTo(-1));

        // Producer ids: each broker hands out its own sequence (B's first id is not moved by A's requests).
        long firstA = (await a.Client.SendAsync<InitProducerIdResponse>(new InitProducerIdRequest { TransactionalId = null, TransactionTimeoutMs = -1 }, 4)).ProducerId;
        for (int i = 0; i < 5; i++)
            await a.Client.SendAsync<InitProducerIdResponse>(new InitProducerIdRequest { TransactionalId = null, TransactionTimeoutMs = -1 }, 4);
        long firstB = (await b.Client.SendAsync<InitProducerIdResponse>(new InitProducerIdRequest { TransactionalId = null, TransactionTimeoutMs = -1 }, 4)).ProducerId;
        Assert.That(firstB, Is.EqualTo(firstA));

        // Transactions: a transactional id registered on A is not listed by B.
        var init = await a.Client.SendAsync<InitProducerIdResponse>(new InitProducerIdRequest { TransactionalId = "tx", TransactionTimeoutMs = 60_000 }, 4);
        Assert.That(init.ErrorCode, Is.EqualTo((short)ErrorCode.None));
        var listA = await a.Client.SendAsync<ListTransactionsResponse>(new ListTransactionsRequest(), 1);
        var listB = await b.Client.SendAsync<ListTransactionsResponse>(new ListTransactionsRequest(), 1);
        Assert.That(listA.TransactionStates.Select(t => t.TransactionalId), Has.Member("tx"));
        Assert.That(listB.TransactionStates, Is.Empty);

        // Stopping one leaves the other serving.
        await a.DisposeAsync();
        var md = await b.Client.SendAsync<MetadataResponse>(new MetadataRequest { Topics = null }, 12);
        Assert.That(md.Topics.Select(t => t.Name), Has.Member("t"));
    }

    private static async Task<long> Committed(BrokerFixture f, string group)
    {
        var r = await f.Client.SendAsync<OffsetFetchResponse>(new OffsetFetchRequest
        {
            GroupId = group,
            Topics = [new() { Name = "t", PartitionIndexes = [0] }],
        }, 7);
        return r.Topics[0].Partitions[0].CommittedOffset;
    }
}
