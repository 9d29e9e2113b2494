using Confluent.Kafka;
using Kayak.Broker.Transactions;
using Kayak.IntegrationTests.Drivers;
using Kayak.IntegrationTests.Infrastructure;
using NUnit.Framework;

namespace Kayak.IntegrationTests;

/// <summary>
/// Consume-transform-produce with Confluent.Kafka when the broker is killed (-9) while CommitTransaction is in
/// flight, after PrepareCommit is persisted and before any marker is written: after the restart the output
/// records and the group's committed offsets are visible together (the transaction coordinator completes the
/// commit on load), never one without the other. Needs the process broker's test hook
/// (<see cref="LocalMarkerWriter.HoldBeforeMarkersHookFile"/>) to stop at exactly that point.
/// </summary>
[TestFixture]
public sealed class TransactionOffsetsDurabilityTests : BrokerTestBase
{
    private static readonly TimeSpan TxnTimeout = TimeSpan.FromSeconds(30);

    [Test]
    [CancelAfter(240_000)]
    public async Task Kill9BetweenPrepareCommitAndMarkersKeepsOutputAndOffsetsTogether()
    {
        RequireKayak("kill -9 with a broker test hook");
        var broker = await StartBrokerAsync(BrokerMode.Process);
        var input = TopicName("in");
        var output = TopicName("out");
        await broker.CreateTopicAsync(input, 1, cancellationToken: Token);
        await broker.CreateTopicAsync(output, 1, cancellationToken: Token);
        using (var plain = ConfluentClients.Producer(broker.BootstrapServers))
        {
            for (int i = 0; i < 10; i++)
                plain.Produce(new TopicPartition(input, 0), new Message<byte[], byte[]> { Key = ConfluentClients.Utf8("k")!, Value = ConfluentClients.Utf8($"in{i}")! });
            Assert.That(plain.Flush(TimeSpan.FromSeconds(20)), Is.EqualTo(0), "input produced");
        }

        // Arm the hook: it is read when the broker starts.
        await broker.StopAsync(Token);
        await File.WriteAllTextAsync(Path.Combine(broker.DataDir, LocalMarkerWriter.HoldBeforeMarkersHookFile), "", Token);
        await broker.StartAgainAsync(Token);
        await broker.WaitForTopicAsync(input, 1, Token);

        string group = "ctp-kill-" + Guid.NewGuid().ToString("N");
        var inputPartition = new TopicPartition(input, 0);
        var consumer = ConfluentClients.Consumer(broker.BootstrapServers, c =>
        {
            c.GroupId = group;
            c.IsolationLevel = IsolationLevel.ReadCommitted;
            c.EnableAutoCommit = false;
        });
        var producer = ConfluentClients.Producer(broker.BootstrapServers, c =>
        {
            c.TransactionalId = "ctp-kill-" + Guid.NewGuid().ToString("N");
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

            var held = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (!broker.Describe().Contains(LocalMarkerWriter.HoldBeforeMarkersLine, StringComparison.Ordinal))
            {
                Assert.That(DateTime.UtcNow, Is.LessThan(held), $"the broker never reached the hook\n{broker.Describe()}");
                Assert.That(commit.IsCompleted, Is.False, $"CommitTransaction finished before the hook: {commit.Exception?.GetBaseException().Message}");
                await Task.Delay(100, Token);
            }
            await broker.KillAsync();
            await broker.StartAgainAsync(Token);
            await broker.WaitForTopicAsync(output, 1, Token);
            // The producer's retried EndTxn now finds the transaction completed by recovery (or times out); either
            // way the outcome below was decided by the broker alone.
            try { await commit.WaitAsync(TimeSpan.FromSeconds(100), Token); }
            catch (Exception e) when (e is KafkaException or TimeoutException)
            {
                TestContext.Out.WriteLine($"CommitTransaction after the kill: {e.GetType().Name}: {e.Message}");
            }
        }
        finally
        {
            consumer.Close();
            consumer.Dispose();
            producer.Dispose();
        }

        // Both visible: the commit was decided (PrepareCommit persisted) before the kill.
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
        Assert.That(File.Exists(Path.Combine(broker.DataDir, LocalMarkerWriter.HoldBeforeMarkersHookFile)), Is.False, "the hook fires once");
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
