using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Kayak.IntegrationTests.Drivers;
using Kayak.IntegrationTests.Infrastructure;
using NUnit.Framework;

namespace Kayak.IntegrationTests;

/// <summary>
/// The transaction coordinator's one write path seen by librdkafka (issue 10): a TransactionLog record that
/// <c>__transaction_state</c> refuses (here: larger than the topic's max.message.bytes, which Kafka answers with
/// UNKNOWN_SERVER_ERROR) fails the producer's InitTransactions and leaves no trace of the transactional id, so once
/// the log accepts records again the same id starts afresh at epoch 0, commits, and keeps that state across a restart.
/// </summary>
[TestFixture]
public sealed class TransactionStateLogTests : BrokerTestBase
{
    private static readonly TimeSpan TxnTimeout = TimeSpan.FromSeconds(30);

    private static IProducer<byte[], byte[]> TransactionalProducer(string bootstrap, string transactionalId) =>
        ConfluentClients.Producer(bootstrap, c =>
        {
            c.TransactionalId = transactionalId;
            c.EnableIdempotence = true;
            c.TransactionTimeoutMs = 60_000;
        });

    private static Task AlterStateTopicAsync(IAdminClient admin, ConfigEntry entry) =>
        admin.IncrementalAlterConfigsAsync(new Dictionary<ConfigResource, List<ConfigEntry>>
        {
            [new ConfigResource { Type = ResourceType.Topic, Name = "__transaction_state" }] = [entry],
        });

    [Test]
    [CancelAfter(180_000)]
    public async Task ARefusedStateRecordLeavesNoTrace_AndTheIdStartsAfreshOnceTheLogAcceptsRecords()
    {
        RequireKayak("reads the transaction coordinator's state in-process");
        var broker = (InProcessBroker)await StartBrokerAsync(BrokerMode.InProcess);
        var topic = TopicName("txlog");
        await broker.CreateTopicAsync(topic, 1, cancellationToken: Token);
        string id = "refused-" + Guid.NewGuid().ToString("N");
        using var admin = ConfluentClients.Admin(broker.BootstrapServers);

        // A first transactional producer makes the broker create __transaction_state.
        using (var warm = TransactionalProducer(broker.BootstrapServers, "warm-" + Guid.NewGuid().ToString("N")))
            warm.InitTransactions(TxnTimeout);

        // Smaller than any record batch: every TransactionLog append is refused (MESSAGE_TOO_LARGE in the log).
        await AlterStateTopicAsync(admin, new ConfigEntry { Name = "max.message.bytes", Value = "64", IncrementalOperation = AlterConfigOpType.Set });
        using (var refused = TransactionalProducer(broker.BootstrapServers, id))
        {
            var e = Assert.Catch<KafkaException>(() => refused.InitTransactions(TimeSpan.FromSeconds(10)))!;
            TestContext.Out.WriteLine($"InitTransactions on a refusing state log: {e.GetType().Name} {e.Error.Code}: {e.Error.Reason}");
            Assert.That(e.Error.Code, Is.EqualTo(ErrorCode.Unknown), "UNKNOWN_SERVER_ERROR, as Kafka maps MESSAGE_TOO_LARGE from its state log");
        }
        Assert.That(broker.Instance!.State.Transactions.Describe(id), Is.Null, "a refused InitProducerId leaves no transactional id behind");

        await AlterStateTopicAsync(admin, new ConfigEntry { Name = "max.message.bytes", IncrementalOperation = AlterConfigOpType.Delete });
        using (var producer = TransactionalProducer(broker.BootstrapServers, id))
        {
            producer.InitTransactions(TxnTimeout);
            var fresh = broker.Instance.State.Transactions.Describe(id)!;
            Assert.That(fresh.ProducerEpoch, Is.EqualTo(0), "no epoch was bumped by the refused attempt");
            producer.BeginTransaction();
            producer.Produce(new TopicPartition(topic, 0), new Message<byte[], byte[]> { Key = ConfluentClients.Utf8("k")!, Value = ConfluentClients.Utf8("committed")! });
            Assert.That(producer.Flush(TimeSpan.FromSeconds(20)), Is.EqualTo(0));
            producer.CommitTransaction(TxnTimeout);
        }
        var before = broker.Instance.State.Transactions.Describe(id)!;
        Assert.That((before.State, before.ProducerEpoch), Is.EqualTo((Kayak.Coordinator.Transactions.TransactionState.CompleteCommit, (short)0)));

        // The state a restart loads (the same replay) is the state the coordinator held.
        await broker.RestartAsync(Token);
        var after = broker.Instance!.State.Transactions.Describe(id)!;
        Assert.That((after.ProducerId, after.ProducerEpoch, after.State, after.TimeoutMs), Is.EqualTo((before.ProducerId, before.ProducerEpoch, before.State, before.TimeoutMs)));
        using var consumer = ConfluentClients.Consumer(broker.BootstrapServers, c => c.IsolationLevel = IsolationLevel.ReadCommitted);
        consumer.Assign(new TopicPartitionOffset(topic, 0, Offset.Beginning));
        var r = consumer.Consume(TimeSpan.FromSeconds(20));
        Assert.That(r is { IsPartitionEOF: false } ? ConfluentClients.FromUtf8(r.Message.Value) : null, Is.EqualTo("committed"));
        consumer.Close();
    }
}
