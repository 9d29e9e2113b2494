using System.Text.Json;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Kayak.Broker.Cluster;
using Kayak.IntegrationTests.Drivers;
using Kayak.IntegrationTests.Infrastructure;
using NUnit.Framework;

namespace Kayak.IntegrationTests;

/// <summary>
/// Issue 14, first slice, with stock clients: a 3-broker in-process <see cref="KafkaCluster"/>; Confluent.Kafka 2.16's
/// AdminClient creates a replication-factor-3 topic and sees every broker and the controller's leaders; an
/// idempotent acks=all producer writes to the leaders spread over the three brokers and a consumer group reads every
/// record back; kcat -L lists the three brokers and the same leaders.
/// </summary>
[TestFixture]
public sealed class ClusterTests : ScratchDirectoryTest
{
    public ClusterTests() : base("cluster") { }

    /// <summary>Three in-process brokers on free ports under this test's directory.</summary>
    private async Task<KafkaCluster> StartThreeBrokersAsync()
    {
        var cluster = new KafkaCluster(new KafkaClusterOptions { Brokers = 3, DataDir = Dir, Port = 0 });
        try { await cluster.StartAsync(Token); }
        catch { await cluster.DisposeAsync(); throw; }
        return cluster;
    }

    [Test]
    [CancelAfter(120_000)]
    public async Task ThreeBrokers_AdminCreatesRf3Topic_IdempotentProducerAndConsumerUseEveryLeader_KcatSeesThem()
    {
        await using var cluster = await StartThreeBrokersAsync();
        // Bootstrap through one broker only: the clients must learn the other two from Metadata.
        string bootstrap = cluster.Broker(1)!.BootstrapServers;
        const string topic = "replicated";

        using (var admin = ConfluentClients.Admin(bootstrap))
        {
            await admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = 6, ReplicationFactor = 3 }]);
            var tooMany = Assert.ThrowsAsync<CreateTopicsException>(() =>
                admin.CreateTopicsAsync([new TopicSpecification { Name = "rf4", NumPartitions = 1, ReplicationFactor = 4 }]))!;
            Assert.That(tooMany.Results[0].Error.Code, Is.EqualTo(ErrorCode.InvalidReplicationFactor));

            var described = await admin.DescribeClusterAsync();
            Assert.That(described.Nodes.Select(n => n.Id).OrderBy(i => i), Is.EqualTo(new[] { 1, 2, 3 }));
            Assert.That(described.ClusterId, Is.EqualTo(cluster.ClusterId));

            var topics = await admin.DescribeTopicsAsync(TopicCollection.OfTopicNames([topic]));
            var partitions = topics.TopicDescriptions[0].Partitions;
            Assert.That(partitions, Has.Count.EqualTo(6));
            foreach (var p in partitions)
            {
                var expected = cluster.Partition(topic, p.Partition);
                Assert.That(p.Leader.Id, Is.EqualTo(expected.Leader));
                Assert.That(p.Replicas.Select(r => r.Id), Is.EqualTo(expected.Replicas));
                Assert.That(p.ISR.Select(r => r.Id), Is.EqualTo(expected.Isr));
            }
            Assert.That(partitions.Select(p => p.Leader.Id).Distinct().Count(), Is.EqualTo(3), "leaders on all three brokers");
        }

        const int count = 600;
        using (var producer = ConfluentClients.Producer(bootstrap, c =>
               {
                   c.EnableIdempotence = true;
                   c.Acks = Acks.All;
                   c.MaxInFlight = 5;
               }))
        {
            var deliveries = new List<Task<DeliveryResult<byte[], byte[]>>>();
            for (int i = 0; i < count; i++)
                deliveries.Add(producer.ProduceAsync(new TopicPartition(topic, i % 6),
                    new Message<byte[], byte[]> { Key = ConfluentClients.Utf8($"k{i}")!, Value = ConfluentClients.Utf8($"v{i}")! }, Token));
            var results = await Task.WhenAll(deliveries);
            Assert.That(results.Select(r => r.Status), Is.All.EqualTo(PersistenceStatus.Persisted));
            // Each partition's records landed on its leader, in order, with no duplicate.
            foreach (var g in results.GroupBy(r => r.Partition.Value))
                Assert.That(g.Select(r => r.Offset.Value).OrderBy(o => o), Is.EqualTo(Enumerable.Range(0, count / 6).Select(o => (long)o)));
        }
        for (int p = 0; p < 6; p++)
        {
            var leader = cluster.Broker(cluster.Partition(topic, p).Leader)!;
            Assert.That(leader.State.Catalog.Lookup(topic).Topic!.GetPartition(p)!.LogEndOffset, Is.EqualTo(count / 6));
        }

        using (var consumer = ConfluentClients.Consumer(bootstrap))
        {
            consumer.Subscribe(topic);
            var seen = new HashSet<string>();
            while (seen.Count < count)
            {
                var r = consumer.Consume(Token);
                Assert.That(ConfluentClients.FromUtf8(r.Message.Value), Is.EqualTo("v" + ConfluentClients.FromUtf8(r.Message.Key)![1..]));
                seen.Add(ConfluentClients.FromUtf8(r.Message.Key)!);
            }
            Assert.That(seen, Has.Count.EqualTo(count));
            consumer.Commit();
            consumer.Close();
        }

        var (kcatTopics, json) = await Kcat.MetadataAsync(bootstrap, topic, Token);
        Assert.That(kcatTopics[topic], Is.EqualTo(6));
        using var doc = JsonDocument.Parse(json);
        var brokers = doc.RootElement.GetProperty("brokers").EnumerateArray()
            .Select(b => (b.GetProperty("id").GetInt32(), b.GetProperty("name").GetString())).OrderBy(b => b.Item1).ToList();
        Assert.That(brokers, Is.EqualTo(cluster.Brokers.Select(b => (b.Config.NodeId, (string?)b.BootstrapServers)).ToList()));
        foreach (var p in doc.RootElement.GetProperty("topics")[0].GetProperty("partitions").EnumerateArray())
        {
            int index = p.GetProperty("partition").GetInt32();
            Assert.That(p.GetProperty("leader").GetInt32(), Is.EqualTo(cluster.Partition(topic, index).Leader));
            Assert.That(p.GetProperty("replicas").GetArrayLength(), Is.EqualTo(3));
        }
    }

    /// <summary>
    /// kill -9 of a partition leader while an idempotent acks=all producer writes: the partition fails over to an
    /// in-sync replica (librdkafka follows it), the other leaders keep accepting, and after the broker is started again
    /// on its recovered log dirs every acknowledged record is there, each exactly once.
    /// </summary>
    [Test]
    [CancelAfter(180_000)]
    public async Task LeaderKilledMidProduce_NoAcknowledgedRecordIsLost_AfterItComesBack()
    {
        await using var cluster = await StartThreeBrokersAsync();
        const string topic = "crash";
        await cluster.CreateTopicAsync(topic, 3, 3);
        int victim = cluster.Partition(topic, 0).Leader;
        string bootstrap = cluster.Broker(victim % 3 + 1)!.BootstrapServers; // a broker that stays up

        var acked = new System.Collections.Concurrent.ConcurrentDictionary<(int Partition, long Offset), string>();
        int failed = 0, duplicateOffsets = 0;
        const int count = 3000;
        using (var producer = ConfluentClients.Producer(bootstrap, c =>
               {
                   c.EnableIdempotence = true;
                   c.Acks = Acks.All;
                   c.MaxInFlight = 5;
                   c.MessageTimeoutMs = 120_000;
                   c.RetryBackoffMs = 50;
               }))
        {
            for (int i = 0; i < count; i++)
            {
                string value = $"v{i}";
                producer.Produce(new TopicPartition(topic, i % 3), new Message<byte[], byte[]> { Key = ConfluentClients.Utf8($"k{i}")!, Value = ConfluentClients.Utf8(value)! }, r =>
                {
                    if (r.Error.IsError) Interlocked.Increment(ref failed);
                    else if (!acked.TryAdd((r.Partition.Value, r.Offset.Value), value)) Interlocked.Increment(ref duplicateOffsets);
                });
                if (i == count / 3)
                {
                    // Mid-produce: some of the victim's records acknowledged, more in flight or queued.
                    while (acked.Keys.Count(k => k.Partition == 0) < 50) await Task.Delay(10, Token);
                    await cluster.CrashBrokerAsync(victim);
                }
                if (i == 2 * count / 3) await cluster.StartBrokerAsync(victim, Token);
            }
            Assert.That(producer.Flush(TimeSpan.FromSeconds(150)), Is.EqualTo(0), "every record delivered or failed");
        }
        Assert.That(duplicateOffsets, Is.EqualTo(0), "an offset acknowledged twice");
        Assert.That(acked.Count + failed, Is.EqualTo(count));
        TestContext.Out.WriteLine($"{acked.Count} acknowledged, {failed} failed");

        // Read every partition from its (restarted) leader to its end: each acknowledged record, unchanged, once.
        var stored = new Dictionary<(int, long), string>();
        using (var consumer = ConfluentClients.Consumer(bootstrap))
        {
            var ends = new long[3];
            for (int p = 0; p < 3; p++)
                ends[p] = consumer.QueryWatermarkOffsets(new TopicPartition(topic, p), TimeSpan.FromSeconds(30)).High.Value;
            consumer.Assign(Enumerable.Range(0, 3).Select(p => new TopicPartitionOffset(topic, p, Offset.Beginning)));
            while (stored.Count < ends.Sum())
            {
                var r = consumer.Consume(Token);
                stored[(r.Partition.Value, r.Offset.Value)] = ConfluentClients.FromUtf8(r.Message.Value)!;
            }
        }
        var lost = acked.Where(a => !stored.TryGetValue(a.Key, out var v) || v != a.Value).ToList();
        Assert.That(lost, Is.Empty, $"acknowledged records lost or changed ({acked.Count} acknowledged, {failed} failed)");
        Assert.That(stored.Values.Distinct().Count(), Is.EqualTo(stored.Count), "no record stored twice (idempotence)");
        var victimIndexes = acked.Where(a => a.Key.Partition == 0).Select(a => int.Parse(a.Value[1..], System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.That(victimIndexes.Min(), Is.LessThan(count / 3), "written before the kill");
        Assert.That(victimIndexes.Max(), Is.GreaterThan(count / 3), "held while its leader was down and delivered after the restart");
    }

    /// <summary>
    /// Issue 14, replication, with Confluent.Kafka 2.16: a replication-factor-3 topic with min.insync.replicas=2, an
    /// idempotent acks=all producer, the leader killed (kill -9) mid-produce. The controller elects a new leader from
    /// the ISR at the next leader epoch, librdkafka moves to it, every record is acknowledged and none acknowledged is
    /// lost or duplicated, and the surviving replicas' logs are byte-identical up to the high watermark. The killed broker,
    /// started again, truncates by OffsetForLeaderEpoch, catches up and rejoins the ISR with the same bytes. With two
    /// brokers down the ISR is below min.insync.replicas: NOT_ENOUGH_REPLICAS.
    /// </summary>
    [Test]
    [CancelAfter(180_000)]
    public async Task Rf3_LeaderKilledMidProduce_NewLeaderFromTheIsr_NoAcknowledgedRecordLost_ReplicasIdentical_RestartRejoins()
    {
        await using var cluster = await StartThreeBrokersAsync();
        const string topic = "failover";
        await cluster.CreateTopicAsync(topic, 1, 3, new Dictionary<string, string> { ["min.insync.replicas"] = "2" });
        var (victim, epoch, replicas, isr) = cluster.Partition(topic, 0);
        Assert.That(isr, Has.Count.EqualTo(3));
        string bootstrap = cluster.Broker(victim % 3 + 1)!.BootstrapServers; // a broker that stays up
        string victimAddress = cluster.Broker(victim)!.BootstrapServers;

        var acked = new System.Collections.Concurrent.ConcurrentDictionary<long, string>();
        var errors = new System.Collections.Concurrent.ConcurrentBag<ErrorCode>();
        int duplicateOffsets = 0;
        const int count = 3000;
        using (var producer = ConfluentClients.Producer(bootstrap, c =>
               {
                   c.EnableIdempotence = true;
                   c.Acks = Acks.All;
                   c.MaxInFlight = 5;
                   c.MessageTimeoutMs = 120_000;
                   c.RetryBackoffMs = 50;
                   c.LingerMs = 2;
               }))
        {
            for (int i = 0; i < count; i++)
            {
                string value = $"v{i}";
                producer.Produce(topic, new Message<byte[], byte[]> { Key = ConfluentClients.Utf8($"k{i}")!, Value = ConfluentClients.Utf8(value)! }, r =>
                {
                    if (r.Error.IsError) errors.Add(r.Error.Code);
                    else if (!acked.TryAdd(r.Offset.Value, value)) Interlocked.Increment(ref duplicateOffsets);
                });
                if (i == count / 3)
                {
                    // Mid-produce: some records acknowledged (so on the whole ISR), more in flight or queued.
                    while (acked.Count < 100) await Task.Delay(10, Token);
                    await cluster.CrashBrokerAsync(victim);
                }
            }
            Assert.That(producer.Flush(TimeSpan.FromSeconds(150)), Is.EqualTo(0), "every record delivered or failed");
        }
        Assert.That(errors, Is.Empty, "two in-sync replicas are left: min.insync.replicas=2 accepts");
        Assert.That(duplicateOffsets, Is.EqualTo(0), "an offset acknowledged twice");
        Assert.That(acked, Has.Count.EqualTo(count));

        var after = cluster.Partition(topic, 0);
        Assert.That(after.Leader, Is.Not.EqualTo(victim).And.AnyOf(replicas.ToArray()), "the new leader is a replica");
        Assert.That(after.LeaderEpoch, Is.EqualTo(epoch + 1));
        Assert.That(after.Isr, Does.Not.Contain(victim));
        Assert.That(after.Isr, Has.Count.EqualTo(2));

        // Everything acknowledged is on the new leader, unchanged, once.
        var stored = new Dictionary<long, string>();
        using (var consumer = ConfluentClients.Consumer(bootstrap))
        {
            long end = consumer.QueryWatermarkOffsets(new TopicPartition(topic, 0), TimeSpan.FromSeconds(30)).High.Value;
            Assert.That(end, Is.EqualTo(count), "idempotence: the retried batches were not appended twice");
            consumer.Assign(new TopicPartitionOffset(topic, 0, Offset.Beginning));
            while (stored.Count < end)
            {
                var r = consumer.Consume(Token);
                stored[r.Offset.Value] = ConfluentClients.FromUtf8(r.Message.Value)!;
            }
        }
        var lost = acked.Where(a => !stored.TryGetValue(a.Key, out var v) || v != a.Value).ToList();
        Assert.That(lost, Is.Empty, "acknowledged records lost or changed");
        Assert.That(stored.Values.Distinct().Count(), Is.EqualTo(count));

        // The surviving replicas hold the same bytes up to the high watermark (the follower takes the leader's batches
        // as they are); wait for the follower's next fetch to bring its high watermark along.
        var leaderLog = cluster.Broker(after.Leader)!.State.Catalog.Lookup(topic).Topic!.GetPartition(0)!;
        long hw = leaderLog.HighWatermark;
        Assert.That(hw, Is.EqualTo(count));
        var expected = LogBytes(leaderLog, hw);
        foreach (int node in after.Isr)
            Assert.That(LogBytes(cluster.Broker(node)!.State.Catalog.Lookup(topic).Topic!.GetPartition(0)!, hw), Is.EqualTo(expected), $"replica {node}");

        // The killed leader starts again on its recovered log dirs: it truncates what the ISR never had (KIP-101),
        // catches up and rejoins the ISR, with the leader's bytes.
        await cluster.StartBrokerAsync(victim, Token);
        // As a restarted Kafka broker, it is back on the port it had, so the clients' bootstrap list stays valid.
        Assert.That(cluster.Broker(victim)!.BootstrapServers, Is.EqualTo(victimAddress), "the restarted broker's port");
        for (int i = 0; i < 600 && !cluster.Partition(topic, 0).Isr.Contains(victim); i++) await Task.Delay(50, Token);
        Assert.That(cluster.Partition(topic, 0).Isr, Does.Contain(victim), "the restarted broker rejoins the ISR");
        Assert.That(LogBytes(cluster.Broker(victim)!.State.Catalog.Lookup(topic).Topic!.GetPartition(0)!, hw), Is.EqualTo(expected), "the restarted replica");

        // Two brokers down: one in-sync replica, below min.insync.replicas=2.
        foreach (int r in cluster.Partition(topic, 0).Isr.Where(r => r != after.Leader).ToList()) await cluster.StopBrokerAsync(r);
        Assert.That(cluster.Partition(topic, 0).Isr, Is.EqualTo(new[] { after.Leader }));
        using (var producer = ConfluentClients.Producer(cluster.Broker(after.Leader)!.BootstrapServers, c =>
               {
                   c.Acks = Acks.All;
                   c.EnableIdempotence = false;
                   c.MessageSendMaxRetries = 0;
               }))
        {
            var e = Assert.ThrowsAsync<ProduceException<byte[], byte[]>>(() =>
                producer.ProduceAsync(topic, new Message<byte[], byte[]> { Value = ConfluentClients.Utf8("refused")! }, Token))!;
            Assert.That(e.Error.Code, Is.EqualTo(ErrorCode.NotEnoughReplicas));
        }
    }

    /// <summary>
    /// A Confluent.Kafka 2.16 consumer reading through a failover: librdkafka sees the new leader epoch in Metadata,
    /// validates its position with OffsetForLeaderEpoch (KIP-320) against the new leader and goes on from where it was,
    /// with auto.offset.reset=error so a wrong answer (a "truncation" or an out-of-range position) would fail the test.
    /// </summary>
    [Test]
    [CancelAfter(120_000)]
    public async Task Consumer_ContinuesThroughAFailover_WithoutAResetOrAGap()
    {
        await using var cluster = await StartThreeBrokersAsync();
        const string topic = "through";
        await cluster.CreateTopicAsync(topic, 1, 3);
        var (victim, epoch, _, _) = cluster.Partition(topic, 0);
        string bootstrap = cluster.Broker(victim % 3 + 1)!.BootstrapServers;
        using (var producer = ConfluentClients.Producer(bootstrap, c => { c.EnableIdempotence = true; c.Acks = Acks.All; }))
        {
            for (int i = 0; i < 1000; i++)
                producer.Produce(topic, new Message<byte[], byte[]> { Value = ConfluentClients.Utf8($"v{i}")! });
            Assert.That(producer.Flush(TimeSpan.FromSeconds(60)), Is.EqualTo(0));
        }
        var errors = new List<string>();
        using var consumer = new ConsumerBuilder<byte[], byte[]>(new ConsumerConfig(ConfluentClients.ConsumerConfig(bootstrap)) { AutoOffsetReset = AutoOffsetReset.Error })
            .SetErrorHandler((_, e) => { lock (errors) errors.Add(e.Reason); })
            .Build();
        consumer.Assign(new TopicPartitionOffset(topic, 0, Offset.Beginning));
        long next = 0;
        while (next < 500)
        {
            var r = consumer.Consume(Token);
            Assert.That(r.Offset.Value, Is.EqualTo(next));
            next++;
        }
        await cluster.CrashBrokerAsync(victim);
        Assert.That(cluster.Partition(topic, 0).LeaderEpoch, Is.EqualTo(epoch + 1));
        using (var producer = ConfluentClients.Producer(bootstrap, c => { c.EnableIdempotence = true; c.Acks = Acks.All; }))
        {
            for (int i = 1000; i < 1200; i++)
                producer.Produce(topic, new Message<byte[], byte[]> { Value = ConfluentClients.Utf8($"v{i}")! });
            Assert.That(producer.Flush(TimeSpan.FromSeconds(60)), Is.EqualTo(0), "the new leader takes acks=all writes");
        }
        while (next < 1200)
        {
            var r = consumer.Consume(Token);
            Assert.That(r.Offset.Value, Is.EqualTo(next), "in order, no gap, no reset");
            Assert.That(ConfluentClients.FromUtf8(r.Message.Value), Is.EqualTo($"v{next}"));
            next++;
        }
        lock (errors) Assert.That(errors.Where(e => e.Contains("reset", StringComparison.OrdinalIgnoreCase) || e.Contains("truncat", StringComparison.OrdinalIgnoreCase)), Is.Empty);
        consumer.Close();
    }

    internal static byte[] LogBytes(Kayak.Storage.PartitionLog log, long upTo)
    {
        var all = new MemoryStream();
        long offset = log.LogStartOffset;
        while (offset < upTo)
        {
            using var slice = log.Read(offset, int.MaxValue, upTo);
            if (slice.IsEmpty) break;
            all.Write(slice.Data.Span);
            foreach (var b in new Kayak.Protocol.Records.BatchEnumerator(slice.Data.Span))
                offset = System.Buffers.Binary.BinaryPrimitives.ReadInt64BigEndian(b)
                    + System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(b[Kayak.Protocol.Records.RecordBatchHeader.LastOffsetDeltaOffset..]) + 1;
        }
        return all.ToArray();
    }
}
