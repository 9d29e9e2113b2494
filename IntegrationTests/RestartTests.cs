using System.Collections.Concurrent;
using System.Globalization;
using Confluent.Kafka;
using Kayak.IntegrationTests.Drivers;
using Kayak.IntegrationTests.Infrastructure;
using NUnit.Framework;

namespace Kayak.IntegrationTests;

/// <summary>Durability: data survives a clean stop, and every acks=all record survives kill -9 with flush.messages=1.</summary>
[TestFixture]
public sealed class RestartTests : BrokerTestBase
{
    private const int Partitions = 3;

    [TestCase(BrokerMode.InProcess)]
    [TestCase(BrokerMode.Process)]
    [CancelAfter(180_000)]
    public async Task DataSurvivesCleanRestart(BrokerMode mode)
    {
        RequireKayak("restart");
        var broker = await StartBrokerAsync(mode);
        var topic = TopicName("rs");
        await broker.CreateTopicAsync(topic, Partitions, new Dictionary<string, string> { ["retention.ms"] = "86400000" }, Token);

        var before = TestData.Records("before", 30, Partitions);
        var acksBefore = await ClientDrivers.Confluent.ProduceAsync(broker.BootstrapServers, topic, before, cancellationToken: Token);

        var exitCode = await broker.StopAsync(Token);
        TestContext.Out.WriteLine($"broker exit code after SIGTERM/stop: {exitCode?.ToString(CultureInfo.InvariantCulture) ?? "n/a"}");
        await broker.StartAgainAsync(Token);
        await broker.WaitForTopicAsync(topic, Partitions, Token);

        var consumed = await ClientDrivers.Confluent.ConsumeAllAsync(broker.BootstrapServers, topic, Token);
        TestData.AssertExactlyConsumed(topic, before, acksBefore, consumed, "after restart");

        // Offsets continue where they stopped.
        var after = TestData.Records("after", 30, Partitions);
        var acksAfter = await ClientDrivers.Confluent.ProduceAsync(broker.BootstrapServers, topic, after, cancellationToken: Token);
        var all = before.Concat(after).ToList();
        var allAcks = acksBefore.Concat(acksAfter).ToList();
        var consumedAll = await ClientDrivers.Kcat.ConsumeAllAsync(broker.BootstrapServers, topic, Token);
        TestData.AssertExactlyConsumed(topic, all, allAcks, consumedAll, "after restart and more produce");

        // Topic config survives too.
        using (var admin = ConfluentClients.Admin(broker.BootstrapServers))
        {
            var resource = new Confluent.Kafka.Admin.ConfigResource { Type = Confluent.Kafka.Admin.ResourceType.Topic, Name = topic };
            var described = (await admin.DescribeConfigsAsync([resource])).Single();
            Assert.That(described.Entries["retention.ms"].Value, Is.EqualTo("86400000"), "topic config after restart");
        }
    }

    [Test]
    [CancelAfter(240_000)]
    public async Task AcknowledgedRecordsSurviveKill9()
    {
        RequireKayak("kill -9");
        var broker = await StartBrokerAsync(BrokerMode.Process);
        var topic = TopicName("crash");
        await broker.CreateTopicAsync(topic, Partitions, new Dictionary<string, string> { ["flush.messages"] = "1" }, Token);

        var acked = new ConcurrentDictionary<(int Partition, long Offset), (string Key, string Value)>();
        var failedDeliveries = 0;
        using var inFlight = new SemaphoreSlim(32);
        using var stopProducing = new CancellationTokenSource();
        var producer = ConfluentClients.Producer(broker.BootstrapServers, c =>
        {
            c.Acks = Acks.All;
            c.MessageTimeoutMs = 10_000;
            c.LingerMs = 2;
        });
        var produced = 0;
        var producing = Task.Run(() =>
        {
            for (var i = 0; !stopProducing.IsCancellationRequested; i++)
            {
                if (!inFlight.Wait(100))
                {
                    i--;
                    continue;
                }
                var key = $"crash-{i:D6}";
                var value = $"value-{i}-{new string('x', i % 100)}";
                var message = new Message<byte[], byte[]> { Key = ConfluentClients.Utf8(key)!, Value = ConfluentClients.Utf8(value)! };
                try
                {
                    producer.Produce(new TopicPartition(topic, i % Partitions), message, report =>
                    {
                        if (report.Error.Code == ErrorCode.NoError && report.Status == PersistenceStatus.Persisted)
                            acked[(report.Partition.Value, report.Offset.Value)] = (key, value);
                        else
                            Interlocked.Increment(ref failedDeliveries);
                        inFlight.Release();
                    });
                    Interlocked.Increment(ref produced);
                }
                catch (ProduceException<byte[], byte[]>)
                {
                    inFlight.Release();
                    Interlocked.Increment(ref failedDeliveries);
                }
            }
        }, CancellationToken.None);

        // Kill while the producer is mid-stream: a few hundred records acknowledged, more in flight.
        for (var wait = 0; acked.Count < 300; wait++)
        {
            if (wait > 600 || producing.IsFaulted)
                Assert.Fail($"only {acked.Count} records acknowledged before the kill ({failedDeliveries} failed)\n{broker.Describe()}");
            await Task.Delay(50, Token);
        }
        await broker.KillAsync();
        var ackedAtKill = acked.Count;
        await Task.Delay(200, Token);
        await stopProducing.CancelAsync();
        await producing;
        producer.Flush(TimeSpan.FromSeconds(15));
        producer.Dispose();
        TestContext.Out.WriteLine($"produced {produced}, acknowledged {acked.Count} ({ackedAtKill} when killed), failed {failedDeliveries}");

        await broker.StartAgainAsync(Token);
        await broker.WaitForTopicAsync(topic, Partitions, Token);
        var consumed = ConfluentClients.ConsumeAll(broker.BootstrapServers, topic, TimeSpan.FromSeconds(90), cancellationToken: Token);

        var byPosition = new Dictionary<(int, long), ConsumedRecord>();
        foreach (var r in consumed)
            byPosition[(r.Partition, r.Offset)] = r;
        var lost = new List<string>();
        foreach (var ((partition, offset), (key, value)) in acked.OrderBy(a => a.Key))
        {
            if (!byPosition.TryGetValue((partition, offset), out var r))
                lost.Add($"{partition}/{offset} {key}: missing");
            else if (r.Key != key || r.Value != value)
                lost.Add($"{partition}/{offset}: {r.Key}={r.Value}, acknowledged {key}={value}");
        }
        Assert.That(lost, Is.Empty, $"acknowledged records lost or changed after kill -9 ({acked.Count} acknowledged, {consumed.Count} consumed)");

        // The log has no holes: each partition reads back as offsets 0..n-1.
        foreach (var group in consumed.GroupBy(r => r.Partition))
        {
            var offsets = group.Select(r => r.Offset).Order().ToList();
            Assert.That(offsets, Is.EqualTo(Enumerable.Range(0, offsets.Count).Select(o => (long)o).ToList()), $"partition {group.Key} offsets");
        }
    }
}
