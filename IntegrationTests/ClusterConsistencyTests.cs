using System.Collections.Concurrent;
using System.Globalization;
using Confluent.Kafka;
using Kayak.Broker.Cluster;
using Kayak.IntegrationTests.Drivers;
using Kayak.IntegrationTests.Infrastructure;
using NUnit.Framework;
using KafkaErrorCode = Kayak.Protocol.ErrorCode;
using ApiKey = Kayak.Protocol.ApiKey;

namespace Kayak.IntegrationTests;

/// <summary>
/// Issue 14: a randomized consistency check of replication with a stock client. A seeded random schedule of broker
/// crashes (kill -9), clean stops, restarts, short pauses and injected Produce errors/latencies/dropped connections
/// runs over a 3-broker in-process <see cref="KafkaCluster"/> while a Confluent.Kafka 2.16 idempotent acks=all
/// producer writes to an RF=3, min.insync.replicas=2 topic. At most one broker is down at a time, so the ISR can
/// always reach min.insync.replicas. At the end every acknowledged record is read back exactly once, in produce order
/// per partition, and every replica's log is byte-identical to the leader's up to the high watermark.
/// Replay a failure with KAYAK_CONSISTENCY_SEED=&lt;seed printed in the message&gt;.
/// </summary>
[TestFixture]
public sealed class ClusterConsistencyTests : ScratchDirectoryTest
{
    public ClusterConsistencyTests() : base("consistency") { }

    [Test]
    [CancelAfter(60_000)]
    public async Task RandomFaultSchedule_EveryAckedRecordReadBackOnceInOrder_ReplicasAgreeUpToTheHighWatermark()
    {
        int seed = int.TryParse(Environment.GetEnvironmentVariable("KAYAK_CONSISTENCY_SEED"), NumberStyles.Integer, CultureInfo.InvariantCulture, out int s)
            ? s : Random.Shared.Next();
        string replay = $"seed {seed} (replay with KAYAK_CONSISTENCY_SEED={seed})";
        TestContext.Out.WriteLine(replay);
        var random = new Random(seed);
        var log = new List<string>();

        await using var cluster = new KafkaCluster(new KafkaClusterOptions { Brokers = 3, DataDir = Dir, Port = 0, PlacementSeed = seed });
        await cluster.StartAsync(Token);
        const string topic = "consistency";
        const int partitions = 3;
        await cluster.CreateTopicAsync(topic, partitions, 3, new Dictionary<string, string> { ["min.insync.replicas"] = "2" });
        string bootstrap = string.Join(',', cluster.Brokers.Select(b => b.BootstrapServers));

        var acked = new ConcurrentDictionary<(int Partition, long Offset), int>();
        var errors = new ConcurrentBag<string>();
        int duplicateOffsets = 0;
        const int count = 3000;
        using (var producer = ConfluentClients.Producer(bootstrap, c =>
               {
                   c.EnableIdempotence = true;
                   c.Acks = Acks.All;
                   c.MaxInFlight = 5;
                   c.MessageTimeoutMs = 45_000;
                   c.RetryBackoffMs = 50;
                   c.LingerMs = 2;
               }))
        {
            int steps = 6;
            int stepEvery = count / (steps + 1);
            int? down = null;
            for (int i = 0; i < count; i++)
            {
                int index = i;
                producer.Produce(new TopicPartition(topic, i % partitions),
                    new Message<byte[], byte[]> { Key = ConfluentClients.Utf8($"k{i}")!, Value = ConfluentClients.Utf8($"v{i}")! }, r =>
                    {
                        if (r.Error.IsError) errors.Add($"{index}: {r.Error.Code} {r.Error.Reason}");
                        else if (!acked.TryAdd((r.Partition.Value, r.Offset.Value), index)) Interlocked.Increment(ref duplicateOffsets);
                    });
                if (i % stepEvery != stepEvery - 1) continue;
                // Let part of what was sent be acknowledged so each fault lands on in-flight and acked data alike.
                for (int w = 0; w < 200 && acked.Count < i / 2; w++) await Task.Delay(10, Token);
                int node = random.Next(1, 4);
                if (down is int stopped)
                {
                    log.Add($"@{i} start {stopped}");
                    await cluster.StartBrokerAsync(stopped, Token);
                    down = null;
                    continue;
                }
                switch (random.Next(5))
                {
                    case 0:
                        log.Add($"@{i} crash {node}");
                        await cluster.CrashBrokerAsync(node);
                        down = node;
                        break;
                    case 1:
                        log.Add($"@{i} stop {node}");
                        await cluster.StopBrokerAsync(node);
                        down = node;
                        break;
                    case 2:
                        int ms = random.Next(100, 400);
                        log.Add($"@{i} pause {node} {ms}ms");
                        cluster.PauseBroker(node);
                        await Task.Delay(ms, Token);
                        cluster.ResumeBroker(node);
                        break;
                    case 3:
                        var error = random.Next(2) == 0 ? KafkaErrorCode.NotLeaderOrFollower : KafkaErrorCode.RequestTimedOut;
                        log.Add($"@{i} inject {error} on {node}");
                        cluster.Faults(node).InjectError(ApiKey.Produce, error, count: random.Next(1, 4));
                        break;
                    default:
                        log.Add($"@{i} latency+drop on {node}");
                        cluster.Faults(node).AddLatency(ApiKey.Produce, TimeSpan.FromMilliseconds(random.Next(20, 150)), count: 5);
                        cluster.Faults(node).DropConnections(ApiKey.Produce, afterRequest: random.Next(2) == 0);
                        break;
                }
            }
            if (down is int last)
            {
                log.Add($"end start {last}");
                await cluster.StartBrokerAsync(last, Token);
            }
            Assert.That(producer.Flush(TimeSpan.FromSeconds(45)), Is.EqualTo(0), $"every record delivered or failed; {replay}; {string.Join(", ", log)}");
        }
        cluster.ClearFaults();
        string context = $"{replay}; schedule: {string.Join(", ", log)}";
        TestContext.Out.WriteLine($"{acked.Count} acknowledged, {errors.Count} failed; {context}");
        Assert.That(duplicateOffsets, Is.EqualTo(0), "an offset acknowledged twice; " + context);
        Assert.That(acked.Count + errors.Count, Is.EqualTo(count), context);
        // One broker down at a time leaves two in-sync replicas: nothing may be refused.
        Assert.That(errors, Is.Empty, context);

        // Read every partition from its beginning to its end.
        var stored = new SortedDictionary<(int Partition, long Offset), int>();
        var ends = new long[partitions];
        using (var consumer = ConfluentClients.Consumer(bootstrap))
        {
            for (int p = 0; p < partitions; p++)
                ends[p] = consumer.QueryWatermarkOffsets(new TopicPartition(topic, p), TimeSpan.FromSeconds(20)).High.Value;
            consumer.Assign(Enumerable.Range(0, partitions).Select(p => new TopicPartitionOffset(topic, p, Offset.Beginning)));
            while (stored.Count < ends.Sum())
            {
                var r = consumer.Consume(Token);
                stored[(r.Partition.Value, r.Offset.Value)] = int.Parse(ConfluentClients.FromUtf8(r.Message.Value)![1..], CultureInfo.InvariantCulture);
            }
        }
        var lost = acked.Where(a => !stored.TryGetValue(a.Key, out int v) || v != a.Value).Select(a => a.Key).ToList();
        Assert.That(lost, Is.Empty, "acknowledged records lost or changed; " + context);
        Assert.That(stored.Values.Distinct().Count(), Is.EqualTo(stored.Count), "a record stored twice; " + context);
        for (int p = 0; p < partitions; p++)
        {
            var order = stored.Where(e => e.Key.Partition == p).Select(e => e.Value).ToList();
            Assert.That(order, Is.Ordered.Ascending, $"partition {p} not in produce order; {context}");
            Assert.That(order.All(v => v % partitions == p), $"partition {p} holds another partition's record; {context}");
        }

        // Every replica rejoins the ISR and holds the leader's bytes up to the high watermark.
        for (int p = 0; p < partitions; p++)
        {
            for (int w = 0; w < 400 && cluster.Partition(topic, p).Isr.Count < 3; w++) await Task.Delay(50, Token);
            var info = cluster.Partition(topic, p);
            Assert.That(info.Isr, Has.Count.EqualTo(3), $"partition {p} ISR after the schedule; {context}");
            var leaderLog = cluster.Broker(info.Leader)!.State.Catalog.Lookup(topic).Topic!.GetPartition(p)!;
            long hw = leaderLog.HighWatermark;
            Assert.That(hw, Is.EqualTo(ends[p]), $"partition {p} high watermark; {context}");
            var expected = ClusterTests.LogBytes(leaderLog, hw);
            foreach (int replica in info.Replicas)
            {
                var replicaLog = cluster.Broker(replica)!.State.Catalog.Lookup(topic).Topic!.GetPartition(p)!;
                for (int w = 0; w < 200 && replicaLog.LogEndOffset < hw; w++) await Task.Delay(50, Token);
                Assert.That(ClusterTests.LogBytes(replicaLog, hw), Is.EqualTo(expected), $"partition {p} replica {replica}; {context}");
            }
        }
    }
}
