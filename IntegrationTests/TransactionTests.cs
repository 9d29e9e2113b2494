using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Confluent.Kafka;
using Kayak.Broker;
using Kayak.IntegrationTests.Drivers;
using Kayak.IntegrationTests.Infrastructure;
using NUnit.Framework;

namespace Kayak.IntegrationTests;

/// <summary>
/// Exactly-once as Kafka defines it, driven by librdkafka (Confluent.Kafka): the idempotent producer survives
/// lost responses without duplicates or gaps, transactions commit and abort, read_committed consumers see
/// only committed records in order, a new instance fences the old one, and all of it survives a restart.
/// </summary>
[TestFixture]
public sealed class TransactionTests : BrokerTestBase
{
    private static readonly TimeSpan TxnTimeout = TimeSpan.FromSeconds(30);

    private static IProducer<byte[], byte[]> TransactionalProducer(string bootstrap, string transactionalId) =>
        ConfluentClients.Producer(bootstrap, c =>
        {
            c.TransactionalId = transactionalId;
            c.EnableIdempotence = true;
            c.MaxInFlight = 5;
            c.TransactionTimeoutMs = 60_000;
        });

    private static void Send(IProducer<byte[], byte[]> producer, string topic, int partition, IEnumerable<string> values)
    {
        foreach (var v in values)
            producer.Produce(new TopicPartition(topic, partition), new Message<byte[], byte[]> { Key = ConfluentClients.Utf8("k")!, Value = ConfluentClients.Utf8(v)! },
                r => { if (r.Error.IsError) TestContext.Out.WriteLine($"delivery of {v} failed: {r.Error}"); });
        producer.Flush(TimeSpan.FromSeconds(20));
    }

    private static IEnumerable<string> Values(string prefix, int n) => Enumerable.Range(0, n).Select(i => $"{prefix}{i}");

    /// <summary>
    /// Reads one partition from the beginning until <paramref name="expected"/> records arrived (or the deadline),
    /// then keeps polling briefly so duplicates or stray aborted records would show up too.
    /// </summary>
    private static List<(long Offset, string Value)> Read(string bootstrap, string topic, int partition, IsolationLevel isolation, int expected, TimeSpan? timeout = null)
    {
        using var consumer = ConfluentClients.Consumer(bootstrap, c => c.IsolationLevel = isolation);
        consumer.Assign(new TopicPartitionOffset(topic, partition, Offset.Beginning));
        var result = new List<(long, string)>();
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        DateTime? settleUntil = null;
        while (DateTime.UtcNow < (settleUntil ?? deadline))
        {
            Token.ThrowIfCancellationRequested();
            var r = consumer.Consume(TimeSpan.FromMilliseconds(200));
            if (r is not null && !r.IsPartitionEOF) result.Add((r.Offset.Value, ConfluentClients.FromUtf8(r.Message.Value)!));
            if (result.Count >= expected && settleUntil is null) settleUntil = DateTime.UtcNow + TimeSpan.FromMilliseconds(1000);
        }
        consumer.Close();
        return result;
    }

    private static long LatestOffset(string bootstrap, string topic, IsolationLevel isolation)
    {
        using var consumer = ConfluentClients.Consumer(bootstrap, c => c.IsolationLevel = isolation);
        return consumer.QueryWatermarkOffsets(new TopicPartition(topic, 0), TimeSpan.FromSeconds(10)).High.Value;
    }

    private static void AssertValues(List<(long Offset, string Value)> read, IEnumerable<string> expected, string what)
    {
        Assert.That(read.Select(r => r.Value), Is.EqualTo(expected), what);
        Assert.That(read.Select(r => r.Offset), Is.Ordered.Ascending, what + ": offsets in order");
    }

    [Test]
    [CancelAfter(120_000)]
    public async Task IdempotentProducerRetriesLostResponsesWithoutDuplicatesOrGaps()
    {
        RequireKayak("broker-side fault hook");
        string dir = Path.Combine(Path.GetTempPath(), "kayak-idem-" + Guid.NewGuid().ToString("N"));
        int produceCount = 0, dropped = 0;
        var options = new KafkaBrokerOptions
        {
            Port = 0,
            DataDir = dir,
            // Lose the responses of a few produce requests after they were appended: the client must retry
            // them over a new connection and the broker must answer with the original offsets.
            Faults = new BrokerFaults
            {
                OnRequest = request =>
                {
                    if (request.ApiKey != Kayak.Protocol.ApiKey.Produce) return RequestFault.None;
                    int n = Interlocked.Increment(ref produceCount);
                    bool drop = n is 2 or 5 or 9 or 14;
                    if (drop) Interlocked.Increment(ref dropped);
                    return drop ? RequestFault.LoseResponse : RequestFault.None;
                },
            },
        };
        await using var broker = new KafkaBroker(options);
        try
        {
            await broker.StartAsync(Token);
            const string topic = "idem";
            using (var admin = ConfluentClients.Admin(broker.BootstrapServers))
                await admin.CreateTopicsAsync([new Confluent.Kafka.Admin.TopicSpecification { Name = topic, NumPartitions = 1, ReplicationFactor = 1 }]);

            var acked = new ConcurrentDictionary<string, long>();
            var errors = new ConcurrentQueue<string>();
            using (var producer = ConfluentClients.Producer(broker.BootstrapServers, c =>
            {
                c.EnableIdempotence = true;
                c.MaxInFlight = 5;
                c.LingerMs = 2;
                c.BatchNumMessages = 10;
                c.RetryBackoffMs = 50;
            }))
            {
                for (int i = 0; i < 300; i++)
                {
                    string v = "m" + i;
                    producer.Produce(topic, new Message<byte[], byte[]> { Value = ConfluentClients.Utf8(v)! }, r =>
                    {
                        if (r.Error.IsError) errors.Enqueue($"{v}: {r.Error}");
                        else acked[v] = r.Offset.Value;
                    });
                    if (i % 20 == 19) await Task.Delay(10, Token); // several requests, several in flight
                }
                Assert.That(producer.Flush(TimeSpan.FromSeconds(60)), Is.EqualTo(0), "all delivered");
            }
            Assert.That(errors, Is.Empty);
            Assert.That(dropped, Is.GreaterThanOrEqualTo(2), "responses were actually lost");
            Assert.That(acked, Has.Count.EqualTo(300));
            // Every acknowledged offset is the record's real offset: exactly 0..299 in produce order.
            Assert.That(Enumerable.Range(0, 300).Select(i => acked["m" + i]), Is.EqualTo(Enumerable.Range(0, 300).Select(i => (long)i)));

            var read = Read(broker.BootstrapServers, topic, 0, IsolationLevel.ReadUncommitted, 300);
            AssertValues(read, Values("m", 300), "log content");
            Assert.That(read.Select(r => r.Offset), Is.EqualTo(Enumerable.Range(0, 300).Select(i => (long)i)), "no gaps");
        }
        finally
        {
            await broker.DisposeAsync();
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }

    [TestCase(BrokerMode.InProcess)]
    [TestCase(BrokerMode.Process)]
    [CancelAfter(120_000)]
    public async Task CommittedAndAbortedTransactions(BrokerMode mode)
    {
        RequireKayak("transactions");
        var broker = await StartBrokerAsync(mode);
        var topic = TopicName("txn");
        await broker.CreateTopicAsync(topic, 1, cancellationToken: Token);

        using (var producer = TransactionalProducer(broker.BootstrapServers, "tx-" + Guid.NewGuid().ToString("N")))
        {
            producer.InitTransactions(TxnTimeout);
            producer.BeginTransaction();
            Send(producer, topic, 0, Values("a", 5));
            producer.CommitTransaction(TxnTimeout);

            producer.BeginTransaction();
            Send(producer, topic, 0, Values("b", 5));
            producer.AbortTransaction(TxnTimeout);

            producer.BeginTransaction();
            Send(producer, topic, 0, Values("c", 5));
            producer.CommitTransaction(TxnTimeout);
        }

        // read_committed: only committed records, in order, and no blocking after the aborted transaction.
        var committed = Read(broker.BootstrapServers, topic, 0, IsolationLevel.ReadCommitted, 10);
        AssertValues(committed, Values("a", 5).Concat(Values("c", 5)), "read_committed");
        // read_uncommitted sees the aborted records too (markers are never returned as records).
        var uncommitted = Read(broker.BootstrapServers, topic, 0, IsolationLevel.ReadUncommitted, 15);
        AssertValues(uncommitted, Values("a", 5).Concat(Values("b", 5)).Concat(Values("c", 5)), "read_uncommitted");
    }

    [Test]
    [CancelAfter(120_000)]
    public async Task KafkaJsTransactionsAreReadCommittedByLibrdkafka()
    {
        RequireKayak("transactions");
        var broker = await StartBrokerAsync(BrokerMode.InProcess);
        var topic = TopicName("jstx");
        await broker.CreateTopicAsync(topic, 2, cancellationToken: Token);
        JsonObject Step(string prefix, int partition, bool commit) => new()
        {
            ["values"] = new JsonArray(Values(prefix, 3).Select(v => (JsonNode?)JsonValue.Create(v)).ToArray()),
            ["partition"] = partition,
            ["commit"] = commit,
        };
        var steps = new JsonArray(Step("a", 0, true), Step("b", 1, false), Step("c", 1, true), Step("d", 0, false));
        await new KafkaJs().RunAsync("txn", new JsonObject
        {
            ["bootstrap"] = broker.BootstrapServers,
            ["topic"] = topic,
            ["transactionalId"] = "js-" + Guid.NewGuid().ToString("N"),
            ["steps"] = steps,
        }, cancellationToken: Token);

        AssertValues(Read(broker.BootstrapServers, topic, 0, IsolationLevel.ReadCommitted, 3), Values("a", 3), "partition 0");
        AssertValues(Read(broker.BootstrapServers, topic, 1, IsolationLevel.ReadCommitted, 3), Values("c", 3), "partition 1");
        Assert.That(Read(broker.BootstrapServers, topic, 1, IsolationLevel.ReadUncommitted, 6).Select(r => r.Value), Is.EqualTo(Values("b", 3).Concat(Values("c", 3))));
    }

    [Test]
    [CancelAfter(120_000)]
    public async Task OpenTransactionIsInvisibleToReadCommittedUntilCommitted()
    {
        RequireKayak("transactions");
        var broker = await StartBrokerAsync(BrokerMode.InProcess);
        var topic = TopicName("lso");
        await broker.CreateTopicAsync(topic, 1, cancellationToken: Token);

        using var producer = TransactionalProducer(broker.BootstrapServers, "lso-" + Guid.NewGuid().ToString("N"));
        using var plain = ConfluentClients.Producer(broker.BootstrapServers);
        producer.InitTransactions(TxnTimeout);
        producer.BeginTransaction();
        Send(producer, topic, 0, Values("t", 3));
        // A non-transactional record after the open transaction is held back too (it is above the LSO).
        Send(plain, topic, 0, ["plain"]);

        Assert.That(Read(broker.BootstrapServers, topic, 0, IsolationLevel.ReadCommitted, 1, TimeSpan.FromSeconds(3)), Is.Empty, "open transaction hidden");
        Assert.That(Read(broker.BootstrapServers, topic, 0, IsolationLevel.ReadUncommitted, 4).Count, Is.EqualTo(4));
        // ListOffsets(latest) honours the isolation level: the last stable offset for read_committed.
        Assert.That(LatestOffset(broker.BootstrapServers, topic, IsolationLevel.ReadCommitted), Is.EqualTo(0), "read_committed latest = LSO");
        Assert.That(LatestOffset(broker.BootstrapServers, topic, IsolationLevel.ReadUncommitted), Is.EqualTo(4), "read_uncommitted latest = high watermark");

        producer.CommitTransaction(TxnTimeout);
        AssertValues(Read(broker.BootstrapServers, topic, 0, IsolationLevel.ReadCommitted, 4), Values("t", 3).Append("plain"), "after commit");
        Assert.That(LatestOffset(broker.BootstrapServers, topic, IsolationLevel.ReadCommitted), Is.EqualTo(5), "LSO after the commit marker");
    }

    [TestCase(false)]
    [TestCase(true)]
    [CancelAfter(120_000)]
    public async Task ConsumeTransformProduceMovesGroupOffsetsAtomically(bool subscribe)
    {
        RequireKayak("transactions");
        var broker = await StartBrokerAsync(BrokerMode.InProcess);
        var input = TopicName("in");
        var output = TopicName("out");
        await broker.CreateTopicAsync(input, 1, cancellationToken: Token);
        await broker.CreateTopicAsync(output, 1, cancellationToken: Token);
        using (var plain = ConfluentClients.Producer(broker.BootstrapServers))
            Send(plain, input, 0, Values("in", 10));
        string group = "ctp-" + Guid.NewGuid().ToString("N");
        var inputPartition = new TopicPartition(input, 0);

        using (var consumer = ConfluentClients.Consumer(broker.BootstrapServers, c =>
        {
            c.GroupId = group;
            c.IsolationLevel = IsolationLevel.ReadCommitted;
            c.EnableAutoCommit = false;
        }))
        using (var producer = TransactionalProducer(broker.BootstrapServers, "ctp-" + Guid.NewGuid().ToString("N")))
        {
            if (subscribe) consumer.Subscribe(input);
            else consumer.Assign(new TopicPartitionOffset(inputPartition, Offset.Beginning));
            producer.InitTransactions(TxnTimeout);

            // Two rounds of 5: the first commits its output and offsets, the second aborts both.
            foreach (bool commit in new[] { true, false })
            {
                var batch = new List<ConsumeResult<byte[], byte[]>>();
                var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
                while (batch.Count < 5 && DateTime.UtcNow < deadline)
                    if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is { IsPartitionEOF: false } r) batch.Add(r);
                Assert.That(batch, Has.Count.EqualTo(5), "consumed a round");
                producer.BeginTransaction();
                Send(producer, output, 0, batch.Select(r => "out-" + ConfluentClients.FromUtf8(r.Message.Value)));
                producer.SendOffsetsToTransaction([new TopicPartitionOffset(inputPartition, batch[^1].Offset + 1)], consumer.ConsumerGroupMetadata, TxnTimeout);
                if (commit) producer.CommitTransaction(TxnTimeout); else producer.AbortTransaction(TxnTimeout);
            }
            var committed = consumer.Committed([inputPartition], TimeSpan.FromSeconds(10)).Single();
            Assert.That(committed.Offset.Value, Is.EqualTo(5), "only the committed transaction moved the group");
            consumer.Close();
        }

        AssertValues(Read(broker.BootstrapServers, output, 0, IsolationLevel.ReadCommitted, 5), Values("in", 5).Select(v => "out-" + v), "output of the committed round only");
        // A restarted instance of the group resumes after the committed round.
        using var resumed = ConfluentClients.Consumer(broker.BootstrapServers, c => c.GroupId = group);
        resumed.Assign(inputPartition);
        ConsumeResult<byte[], byte[]>? first = null;
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (first is null && DateTime.UtcNow < until) first = resumed.Consume(TimeSpan.FromMilliseconds(200));
        Assert.That(first?.Offset.Value, Is.EqualTo(5));
        Assert.That(ConfluentClients.FromUtf8(first!.Message.Value), Is.EqualTo("in5"));
    }

    /// <summary>
    /// KIP-848 with KIP-447: a group.protocol=consumer member's SendOffsetsToTransaction carries its member epoch,
    /// which the coordinator checks (STALE_MEMBER_EPOCH otherwise); the committed transaction moves the group.
    /// </summary>
    [Test]
    [CancelAfter(120_000)]
    public async Task ConsumerProtocolMemberCommitsOffsetsInATransaction()
    {
        RequireKayak("transactions");
        var broker = await StartBrokerAsync(BrokerMode.InProcess, GroupAssert.FastGroups());
        var input = TopicName("in848");
        var output = TopicName("out848");
        await broker.CreateTopicAsync(input, 1, cancellationToken: Token);
        await broker.CreateTopicAsync(output, 1, cancellationToken: Token);
        using (var plain = ConfluentClients.Producer(broker.BootstrapServers))
            Send(plain, input, 0, Values("in", 5));
        string group = "ctp848-" + Guid.NewGuid().ToString("N");
        var inputPartition = new TopicPartition(input, 0);

        using var consumer = ConfluentClients.Consumer(broker.BootstrapServers, c =>
        {
            c.GroupId = group;
            c.GroupProtocol = GroupProtocol.Consumer;
            c.SessionTimeoutMs = null;
            c.HeartbeatIntervalMs = null;
            c.IsolationLevel = IsolationLevel.ReadCommitted;
            c.EnableAutoCommit = false;
        });
        using var producer = TransactionalProducer(broker.BootstrapServers, "ctp848-" + Guid.NewGuid().ToString("N"));
        consumer.Subscribe(input);
        producer.InitTransactions(TxnTimeout);
        var batch = new List<ConsumeResult<byte[], byte[]>>();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (batch.Count < 5 && DateTime.UtcNow < deadline)
            if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is { IsPartitionEOF: false } r) batch.Add(r);
        Assert.That(batch, Has.Count.EqualTo(5), "consumed the input");
        producer.BeginTransaction();
        Send(producer, output, 0, batch.Select(r => "out-" + ConfluentClients.FromUtf8(r.Message.Value)));
        producer.SendOffsetsToTransaction([new TopicPartitionOffset(inputPartition, batch[^1].Offset + 1)], consumer.ConsumerGroupMetadata, TxnTimeout);
        producer.CommitTransaction(TxnTimeout);

        var committed = consumer.Committed([inputPartition], TimeSpan.FromSeconds(10)).Single();
        Assert.That(committed.Offset.Value, Is.EqualTo(5), "the transaction moved the consumer group");
        AssertValues(Read(broker.BootstrapServers, output, 0, IsolationLevel.ReadCommitted, 5), Values("in", 5).Select(v => "out-" + v), "output committed");
        consumer.Close();
    }

    [Test]
    [CancelAfter(120_000)]
    public async Task SecondProducerWithSameTransactionalIdFencesTheFirst()
    {
        RequireKayak("transactions");
        var broker = await StartBrokerAsync(BrokerMode.InProcess);
        var topic = TopicName("fence");
        await broker.CreateTopicAsync(topic, 1, cancellationToken: Token);
        string id = "fence-" + Guid.NewGuid().ToString("N");

        using var first = TransactionalProducer(broker.BootstrapServers, id);
        first.InitTransactions(TxnTimeout);
        first.BeginTransaction();
        Send(first, topic, 0, Values("zombie", 3));

        using var second = TransactionalProducer(broker.BootstrapServers, id);
        second.InitTransactions(TxnTimeout); // bumps the epoch and aborts the first one's transaction
        second.BeginTransaction();
        Send(second, topic, 0, Values("live", 3));
        second.CommitTransaction(TxnTimeout);

        var e = Assert.Catch<KafkaException>(() => first.CommitTransaction(TxnTimeout))!;
        TestContext.Out.WriteLine($"first producer: {e.Error.Code} {e.Error.Reason}");
        Assert.That(e.Error.IsFatal || e.Error.Code is ErrorCode.ProducerFenced or ErrorCode.InvalidProducerEpoch, Is.True, e.Error.ToString());

        AssertValues(Read(broker.BootstrapServers, topic, 0, IsolationLevel.ReadCommitted, 3), Values("live", 3), "only the live producer's records");
    }

    [Test]
    [CancelAfter(120_000)]
    public async Task TimedOutTransactionIsAbortedAndStopsBlockingReadCommitted()
    {
        RequireKayak("transaction timeout");
        var settings = new BrokerSettings();
        settings.Properties["transaction.abort.timed.out.transaction.cleanup.interval.ms"] = "200";
        var broker = await StartBrokerAsync(BrokerMode.InProcess, settings);
        var topic = TopicName("txto");
        await broker.CreateTopicAsync(topic, 1, cancellationToken: Token);

        using var stuck = ConfluentClients.Producer(broker.BootstrapServers, c =>
        {
            c.TransactionalId = "stuck-" + Guid.NewGuid().ToString("N");
            c.EnableIdempotence = true;
            c.TransactionTimeoutMs = 3_000;
            c.SocketTimeoutMs = 3_000;
            c.MessageTimeoutMs = 3_000;
            c.RequestTimeoutMs = 3_000;
        });
        stuck.InitTransactions(TxnTimeout);
        stuck.BeginTransaction();
        Send(stuck, topic, 0, Values("stuck", 2));
        using (var plain = ConfluentClients.Producer(broker.BootstrapServers))
            Send(plain, topic, 0, ["after"]);

        // The coordinator aborts the abandoned transaction after its timeout; the LSO then moves past it.
        AssertValues(Read(broker.BootstrapServers, topic, 0, IsolationLevel.ReadCommitted, 1), ["after"], "read_committed after the timeout");
        Assert.Catch<KafkaException>(() => stuck.CommitTransaction(TxnTimeout), "the timed-out producer was fenced");
    }

    [TestCase(true, false)]
    [TestCase(false, false)]
    [TestCase(true, true)]
    [CancelAfter(180_000)]
    public async Task RestartInTheMiddleOfATransaction(bool sameProducerCommits, bool kill)
    {
        RequireKayak("restart");
        var broker = await StartBrokerAsync(BrokerMode.Process);
        var topic = TopicName("txrs");
        await broker.CreateTopicAsync(topic, 1, cancellationToken: Token);
        string id = "rs-" + Guid.NewGuid().ToString("N");

        var producer = TransactionalProducer(broker.BootstrapServers, id);
        try
        {
            producer.InitTransactions(TxnTimeout);
            producer.BeginTransaction();
            Send(producer, topic, 0, Values("before", 3));

            // kill -9 leaves no producer snapshot: the partition rebuilds its producer state from the log.
            if (kill) await broker.KillAsync(); else await broker.StopAsync(Token);
            await broker.StartAgainAsync(Token);
            await broker.WaitForTopicAsync(topic, 1, Token);

            // Still open after the restart: nothing visible to read_committed.
            Assert.That(Read(broker.BootstrapServers, topic, 0, IsolationLevel.ReadCommitted, 1, TimeSpan.FromSeconds(3)), Is.Empty, "open transaction hidden after restart");

            if (sameProducerCommits)
            {
                Send(producer, topic, 0, Values("after", 2));
                producer.CommitTransaction(TxnTimeout);
                AssertValues(Read(broker.BootstrapServers, topic, 0, IsolationLevel.ReadCommitted, 5), Values("before", 3).Concat(Values("after", 2)), "committed after restart");
            }
            else
            {
                producer.Dispose();
                producer = TransactionalProducer(broker.BootstrapServers, id);
                producer.InitTransactions(TxnTimeout); // the new instance aborts the abandoned transaction
                producer.BeginTransaction();
                Send(producer, topic, 0, Values("new", 2));
                producer.CommitTransaction(TxnTimeout);
                AssertValues(Read(broker.BootstrapServers, topic, 0, IsolationLevel.ReadCommitted, 2), Values("new", 2), "abandoned transaction aborted");
            }
        }
        finally
        {
            producer.Dispose();
        }
    }
}
