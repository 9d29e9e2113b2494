using Confluent.Kafka;
using Kayak.Broker;
using Kayak.Coordinator.Transactions;
using Kayak.IntegrationTests.Drivers;
using Kayak.IntegrationTests.Infrastructure;
using NUnit.Framework;

namespace Kayak.IntegrationTests;

/// <summary>
/// Consume-transform-produce with Confluent.Kafka when the broker crashes while CommitTransaction is in flight,
/// after PrepareCommit is persisted and before any marker is written: after the restart the output records and the
/// group's committed offsets are visible together (the transaction coordinator completes the commit on load), never
/// one without the other. The in-process broker's <see cref="ITransactionMarkerHook"/> holds EndTxn at exactly that
/// point; <see cref="KafkaBroker.CrashAsync"/> then leaves the data directory as kill -9 would (nothing flushed,
/// trimmed or checkpointed, no clean-shutdown marker).
/// </summary>
[TestFixture]
public sealed class TransactionOffsetsDurabilityTests : BrokerTestBase
{
    private static readonly TimeSpan TxnTimeout = TimeSpan.FromSeconds(30);

    [Test]
    [CancelAfter(240_000)]
    public async Task CrashBetweenPrepareCommitAndMarkersKeepsOutputAndOffsetsTogether()
    {
        RequireKayak("a broker crash with a transaction coordinator test hook");
        string dataDir = Path.Combine(Path.GetTempPath(), "kayak-txn-crash-" + Guid.NewGuid().ToString("N"));
        var hook = new HoldBeforeFirstCommitMarkers();
        var broker = await StartAsync(dataDir, 0, hook);
        try
        {
            int port = int.Parse(broker.BootstrapServers[(broker.BootstrapServers.LastIndexOf(':') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
            var input = TopicName("in");
            var output = TopicName("out");
            CreateTopic(broker, input);
            CreateTopic(broker, output);
            using (var plain = ConfluentClients.Producer(broker.BootstrapServers))
            {
                for (int i = 0; i < 10; i++)
                    plain.Produce(new TopicPartition(input, 0), new Message<byte[], byte[]> { Key = ConfluentClients.Utf8("k")!, Value = ConfluentClients.Utf8($"in{i}")! });
                Assert.That(plain.Flush(TimeSpan.FromSeconds(20)), Is.EqualTo(0), "input produced");
            }

            string group = "ctp-crash-" + Guid.NewGuid().ToString("N");
            var inputPartition = new TopicPartition(input, 0);
            var consumer = ConfluentClients.Consumer(broker.BootstrapServers, c =>
            {
                c.GroupId = group;
                c.IsolationLevel = IsolationLevel.ReadCommitted;
                c.EnableAutoCommit = false;
            });
            var producer = ConfluentClients.Producer(broker.BootstrapServers, c =>
            {
                c.TransactionalId = "ctp-crash-" + Guid.NewGuid().ToString("N");
                c.EnableIdempotence = true;
                c.TransactionTimeoutMs = 60_000;
            });
            Task commit;
            try
            {
                consumer.Assign(new TopicPartitionOffset(inputPartition, Offset.Beginning));
                producer.InitTransactions(TxnTimeout);
                var batch = new List<ConsumeResult<byte[], byte[]>>();
                var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
                while (batch.Count < 5 && DateTime.UtcNow < deadline)
                    if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is { IsPartitionEOF: false } r) batch.Add(r);
                Assert.That(batch, Has.Count.EqualTo(5), "consumed the input");

                producer.BeginTransaction();
                foreach (var r in batch)
                    producer.Produce(new TopicPartition(output, 0), new Message<byte[], byte[]> { Key = r.Message.Key, Value = ConfluentClients.Utf8("out-" + ConfluentClients.FromUtf8(r.Message.Value))! });
                Assert.That(producer.Flush(TimeSpan.FromSeconds(20)), Is.EqualTo(0), "output produced inside the transaction");
                producer.SendOffsetsToTransaction([new TopicPartitionOffset(inputPartition, batch[^1].Offset + 1)], consumer.ConsumerGroupMetadata, TxnTimeout);
                // EndTxn(commit) in flight: the broker persists PrepareCommit, then the hook holds it before any marker.
                commit = Task.Run(() => producer.CommitTransaction(TimeSpan.FromSeconds(90)));

                Assert.That(await Task.Run(() => hook.Reached.Wait(TimeSpan.FromSeconds(30)), Token), Is.True, "the broker never reached the hook");
                Assert.That(commit.IsCompleted, Is.False, $"CommitTransaction finished before the hook: {commit.Exception?.GetBaseException().Message}");
                // The held EndTxn's markers fail: it answers NONE (decided, markers left to the timer) and writes nothing
                // more; then the broker stops as if killed, before the timer's next pass, so recovery writes the markers.
                hook.Release.Set();
                await broker.CrashAsync();
                broker = await StartAsync(dataDir, port, hook: null);
                // The producer's retried EndTxn now finds the transaction completed by recovery (or times out); either
                // way the outcome below was decided by the broker alone.
                try { await commit.WaitAsync(TimeSpan.FromSeconds(100), Token); }
                catch (Exception e) when (e is KafkaException or TimeoutException)
                {
                    TestContext.Out.WriteLine($"CommitTransaction after the crash: {e.GetType().Name}: {e.Message}");
                }
            }
            finally
            {
                consumer.Close();
                consumer.Dispose();
                producer.Dispose();
            }

            // Both visible: the commit was decided (PrepareCommit persisted) before the crash.
            var outputValues = ReadCommitted(broker.BootstrapServers, output, expected: 5);
            long committed;
            using (var check = ConfluentClients.Consumer(broker.BootstrapServers, c =>
            {
                c.GroupId = group;
                c.IsolationLevel = IsolationLevel.ReadCommitted;
            }))
            {
                committed = check.Committed([inputPartition], TimeSpan.FromSeconds(20)).Single().Offset.Value;
                check.Close();
            }
            TestContext.Out.WriteLine($"after restart: committed offset {committed}, output [{string.Join(", ", outputValues)}]");
            Assert.That((committed, outputValues.Count), Is.EqualTo((5L, 5)).Or.EqualTo((Offset.Unset.Value, 0)),
                "output and group offsets must be visible together or not at all");
            Assert.That(outputValues, Is.EqualTo(Enumerable.Range(0, 5).Select(i => $"out-in{i}")), "PrepareCommit was persisted: recovery commits");
            Assert.That(committed, Is.EqualTo(5));
            Assert.That(hook.Fired, Is.EqualTo(1), "the hook held one commit");
        }
        finally
        {
            await broker.DisposeAsync();
            if (Environment.GetEnvironmentVariable("KAYAK_KEEP_DATA") != "1")
                try { Directory.Delete(dataDir, recursive: true); } catch (IOException) { }
        }
    }

    private static async Task<KafkaBroker> StartAsync(string dataDir, int port, ITransactionMarkerHook? hook)
    {
        var broker = new KafkaBroker(new KafkaBrokerOptions { Port = port, DataDir = dataDir, Faults = new BrokerFaults { BeforeTransactionMarkers = hook } });
        await broker.StartAsync();
        return broker;
    }

    private static void CreateTopic(KafkaBroker broker, string name)
    {
        var created = broker.State.Topics.Create(name, 1, 1, new Dictionary<string, string>(), validateOnly: false);
        Assert.That(created.Topic, Is.Not.Null, $"{created.Error}: {created.Message}");
    }

    /// <summary>Holds the first commit's EndTxn before its markers until released, then fails its markers (the "crash").</summary>
    private sealed class HoldBeforeFirstCommitMarkers : ITransactionMarkerHook
    {
        private int _fired;
        public ManualResetEventSlim Reached { get; } = new();
        public ManualResetEventSlim Release { get; } = new();
        public int Fired => Volatile.Read(ref _fired);

        public void BeforeMarkers(string transactionalId, long producerId, short producerEpoch, bool commit)
        {
            if (!commit || Interlocked.Increment(ref _fired) != 1) return;
            Reached.Set();
            Release.Wait();
            throw new IOException("test hook: the broker crashed before the transaction markers");
        }
    }

    private static List<string> ReadCommitted(string bootstrap, string topic, int expected)
    {
        using var consumer = ConfluentClients.Consumer(bootstrap, c => c.IsolationLevel = IsolationLevel.ReadCommitted);
        consumer.Assign(new TopicPartitionOffset(topic, 0, Offset.Beginning));
        var result = new List<string>();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        DateTime? settleUntil = null;
        while (DateTime.UtcNow < (settleUntil ?? deadline))
        {
            Token.ThrowIfCancellationRequested();
            var r = consumer.Consume(TimeSpan.FromMilliseconds(200));
            if (r is not null && !r.IsPartitionEOF) result.Add(ConfluentClients.FromUtf8(r.Message.Value)!);
            if (result.Count >= expected && settleUntil is null) settleUntil = DateTime.UtcNow + TimeSpan.FromSeconds(1);
        }
        consumer.Close();
        return result;
    }
}
