using Kayak.Broker.Cluster;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>
/// Issue 14, replication: followers fetch from their leaders over the Fetch protocol, the leader's high watermark is
/// the ISR's smallest log end offset, acks=all waits for the ISR, lagging followers leave the ISR and come back, and a
/// stopped leader's partitions move to an in-sync replica.
/// </summary>
[CancelAfter(120_000)]
public class ReplicationTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = Path.Combine(Path.GetTempPath(), "kayak-replication-tests-" + Guid.NewGuid().ToString("N"));

    [TearDown]
    public void TearDown()
    {
        try { Directory.Delete(_dir, recursive: true); }
        catch (IOException) { }
    }

    private async Task<KafkaCluster> StartAsync(Action<KafkaClusterOptions>? configure = null)
    {
        var options = new KafkaClusterOptions { Brokers = 3, DataDir = _dir, Port = 0 };
        configure?.Invoke(options);
        var cluster = new KafkaCluster(options);
        await cluster.StartAsync();
        return cluster;
    }

    private static ProduceRequest Produce(string topic, short acks, int records = 1, int timeoutMs = 30_000) => new()
    {
        Acks = acks,
        TimeoutMs = timeoutMs,
        TopicData = [new() { Name = topic, PartitionData = [new() { Index = 0, Records = Batch(records) }] }],
    };

    private static byte[] Batch(int records)
    {
        using var builder = new Kayak.Protocol.Records.RecordBatchBuilder(new Kayak.Protocol.Records.RecordBatchOptions());
        for (int i = 0; i < records; i++) builder.Append(1_700_000_000_000 + i, null, new byte[] { (byte)i, 2, 3 });
        return builder.ToArray();
    }

    private static Storage.PartitionLog Log(KafkaCluster cluster, int node, string topic) =>
        cluster.Broker(node)!.State.Catalog.Lookup(topic).Topic!.GetPartition(0)!;

    private static async Task Eventually(Func<bool> condition, string what)
    {
        for (int i = 0; i < 600 && !condition(); i++) await Task.Delay(50);
        Assert.That(condition(), Is.True, what);
    }

    private static byte[] Bytes(Storage.PartitionLog log, long upTo)
    {
        var all = new MemoryStream();
        long offset = 0;
        while (offset < upTo)
        {
            using var slice = log.Read(offset, int.MaxValue, upTo);
            if (slice.IsEmpty) break;
            all.Write(slice.Data.Span);
            foreach (var b in new Kayak.Protocol.Records.BatchEnumerator(slice.Data.Span))
                offset = System.Buffers.Binary.BinaryPrimitives.ReadInt64BigEndian(b) + System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(b[Kayak.Protocol.Records.RecordBatchHeader.LastOffsetDeltaOffset..]) + 1;
        }
        return all.ToArray();
    }

    [Test]
    public async Task AcksAll_IsAcknowledgedOnceTheIsrHasIt_AndEveryReplicaHoldsTheSameBytes()
    {
        await using var cluster = await StartAsync();
        await cluster.CreateTopicAsync("r", 1, 3, new Dictionary<string, string> { ["min.insync.replicas"] = "3" });
        var (leader, _, replicas, isr) = cluster.Partition("r", 0);
        Assert.That(isr.Order(), Is.EqualTo(replicas.Order()));
        using var client = await RawClient.ConnectAsync(cluster.Broker(leader)!.BootstrapServers);
        for (int i = 0; i < 20; i++)
        {
            var r = await client.SendAsync<ProduceResponse>(Produce("r", -1, records: 1 + i % 3), 11);
            var p = r.Responses[0].PartitionResponses[0];
            Assert.That(p.ErrorCode, Is.EqualTo((short)ErrorCode.None), p.ErrorMessage);
            long end = p.BaseOffset + 1 + i % 3;
            // Acknowledged: every replica of the ISR holds it (the high watermark passed it).
            foreach (int node in replicas) Assert.That(Log(cluster, node, "r").LogEndOffset, Is.GreaterThanOrEqualTo(end), $"replica {node} after ack {i}");
            Assert.That(Log(cluster, leader, "r").HighWatermark, Is.GreaterThanOrEqualTo(end));
        }
        long hw = Log(cluster, leader, "r").HighWatermark;
        Assert.That(hw, Is.EqualTo(Log(cluster, leader, "r").LogEndOffset));
        var expected = Bytes(Log(cluster, leader, "r"), hw);
        Assert.That(expected, Is.Not.Empty);
        foreach (int node in replicas) Assert.That(Bytes(Log(cluster, node, "r"), hw), Is.EqualTo(expected), $"replica {node} is the leader's log byte for byte");
        // Followers learn the high watermark from their fetches.
        await Eventually(() => replicas.All(n => Log(cluster, n, "r").HighWatermark == hw), "every replica's high watermark");
    }

    [Test]
    public async Task Consumers_ReadUpToTheHighWatermark_FollowersPastIt_AndFollowerFetchesAreChecked()
    {
        await using var cluster = await StartAsync();
        await cluster.CreateTopicAsync("hw", 1, 2);
        var (leader, epoch, replicas, _) = cluster.Partition("hw", 0);
        int follower = replicas.Single(r => r != leader);
        int outsider = new[] { 1, 2, 3 }.Single(n => !replicas.Contains(n));
        using var client = await RawClient.ConnectAsync(cluster.Broker(leader)!.BootstrapServers);
        var acked = await client.SendAsync<ProduceResponse>(Produce("hw", 1, records: 5), 11);
        Assert.That(acked.Responses[0].PartitionResponses[0].ErrorCode, Is.EqualTo((short)ErrorCode.None));
        var log = Log(cluster, leader, "hw");
        var topicId = cluster.Broker(leader)!.State.Catalog.Lookup("hw").Topic!.TopicId;
        await Eventually(() => log.HighWatermark == 5, "the follower's fetch commits the records");

        FetchRequest Fetch(int replicaId, long offset, int currentEpoch) => new()
        {
            ReplicaState = new FetchRequest.ReplicaStateData { ReplicaId = replicaId, ReplicaEpoch = -1 },
            MaxWaitMs = 0, MinBytes = 0, MaxBytes = 1 << 20, SessionId = 0, SessionEpoch = -1,
            Topics = [new() { TopicId = topicId, Partitions = [new() { Partition = 0, FetchOffset = offset, CurrentLeaderEpoch = currentEpoch, PartitionMaxBytes = 1 << 20 }] }],
        };
        // A non-replica is not a follower; stale and future leader epochs are refused (KIP-320).
        var r = await client.SendAsync<FetchResponse>(Fetch(outsider, 0, epoch), 15);
        Assert.That(r.Responses[0].Partitions[0].ErrorCode, Is.EqualTo((short)ErrorCode.NotLeaderOrFollower));
        r = await client.SendAsync<FetchResponse>(Fetch(follower, 0, epoch + 1), 15);
        Assert.That(r.Responses[0].Partitions[0].ErrorCode, Is.EqualTo((short)ErrorCode.UnknownLeaderEpoch));

        var more = await client.SendAsync<ProduceResponse>(Produce("hw", 1, records: 3), 11);
        Assert.That(more.Responses[0].PartitionResponses[0].BaseOffset, Is.EqualTo(5));
        // A consumer (replica id -1) gets only what is committed; it may be less than the log end while the real
        // follower catches up, never more.
        var consumer = await client.SendAsync<FetchResponse>(Fetch(-1, 0, -1), 15);
        var cp = consumer.Responses[0].Partitions[0];
        Assert.That(cp.ErrorCode, Is.EqualTo((short)ErrorCode.None));
        long lastRead = 0;
        foreach (var b in new Kayak.Protocol.Records.BatchEnumerator(cp.Records!.Value.Span))
            lastRead = System.Buffers.Binary.BinaryPrimitives.ReadInt64BigEndian(b) + System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(b[Kayak.Protocol.Records.RecordBatchHeader.LastOffsetDeltaOffset..]) + 1;
        Assert.That(lastRead, Is.LessThanOrEqualTo(cp.HighWatermark), "consumers never read past the high watermark");
        await Eventually(() => log.HighWatermark == 8, "committed once the follower has it");
    }

    [Test]
    public async Task LaggingFollower_LeavesTheIsr_AndRejoinsWhenCaughtUp()
    {
        // One rule on every broker: the fetches of one follower (by its fetcher's client id) are dropped, so it stops
        // catching up while its broker stays up; the leader alone decides it lags (replica.lag.time.max.ms).
        string? blocked = null;
        var faults = new BrokerFaults
        {
            OnRequest = r => r.ApiKey == ApiKey.Fetch && r.ClientId is { } id && id == Volatile.Read(ref blocked) ? RequestFault.DropConnection : RequestFault.None,
        };
        await using var cluster = await StartAsync(o =>
        {
            o.Properties["replica.lag.time.max.ms"] = "1000";
            o.Properties["replica.fetch.backoff.ms"] = "50";
            for (int n = 1; n <= 3; n++) o.Faults[n] = faults;
        });
        await cluster.CreateTopicAsync("lag", 1, 3, new Dictionary<string, string> { ["min.insync.replicas"] = "3" });
        var (leader, epoch, replicas, _) = cluster.Partition("lag", 0);
        int lagging = replicas.First(r => r != leader);
        using var client = await RawClient.ConnectAsync(cluster.Broker(leader)!.BootstrapServers);
        Assert.That((await client.SendAsync<ProduceResponse>(Produce("lag", -1), 11)).Responses[0].PartitionResponses[0].ErrorCode, Is.EqualTo((short)ErrorCode.None));

        Volatile.Write(ref blocked, $"replica-fetcher-{lagging}-from-{leader}");
        // Records the lagging follower never gets: with it in the ISR they cannot be committed.
        Assert.That((await client.SendAsync<ProduceResponse>(Produce("lag", 1, records: 4), 11)).Responses[0].PartitionResponses[0].ErrorCode, Is.EqualTo((short)ErrorCode.None));
        await Eventually(() => !cluster.Partition("lag", 0).Isr.Contains(lagging), "the lagging follower is removed from the ISR");
        var shrunk = cluster.Partition("lag", 0);
        Assert.That(shrunk.LeaderEpoch, Is.EqualTo(epoch), "an ISR change is not a leader change");
        Assert.That(shrunk.Isr, Has.Count.EqualTo(2));
        await Eventually(() => Log(cluster, leader, "lag").HighWatermark == 5, "the smaller ISR commits the records");
        // The ISR is below min.insync.replicas=3 now.
        var refused = await client.SendAsync<ProduceResponse>(Produce("lag", -1), 11);
        Assert.That(refused.Responses[0].PartitionResponses[0].ErrorCode, Is.EqualTo((short)ErrorCode.NotEnoughReplicas));
        // Persisted by the controller: the metadata file has the shrunk ISR.
        var onDisk = ClusterMetadata.LoadOrCreate(Path.Combine(_dir, ClusterMetadata.FileName));
        Assert.That(onDisk.Topics["lag"].Partitions[0].Isr, Does.Not.Contain(lagging));

        Volatile.Write(ref blocked, null);
        await Eventually(() => cluster.Partition("lag", 0).Isr.Contains(lagging), "caught up: back in the ISR");
        Assert.That(Log(cluster, lagging, "lag").LogEndOffset, Is.EqualTo(5));
        var accepted = await client.SendAsync<ProduceResponse>(Produce("lag", -1), 11);
        Assert.That(accepted.Responses[0].PartitionResponses[0].ErrorCode, Is.EqualTo((short)ErrorCode.None));
    }

    [Test]
    public async Task AcksAll_TimesOut_WhenTheIsrDoesNotCatchUp()
    {
        string? blocked = null;
        var faults = new BrokerFaults
        {
            OnRequest = r => r.ApiKey == ApiKey.Fetch && r.ClientId is { } id && id.StartsWith(Volatile.Read(ref blocked) ?? "\0", StringComparison.Ordinal) ? RequestFault.DropConnection : RequestFault.None,
        };
        await using var cluster = await StartAsync(o =>
        {
            for (int n = 1; n <= 3; n++) o.Faults[n] = faults;
        });
        await cluster.CreateTopicAsync("slow", 1, 3);
        int leader = cluster.Partition("slow", 0).Leader;
        Volatile.Write(ref blocked, "replica-fetcher-");
        using var client = await RawClient.ConnectAsync(cluster.Broker(leader)!.BootstrapServers);
        var r = await client.SendAsync<ProduceResponse>(Produce("slow", -1, timeoutMs: 200), 11);
        Assert.That(r.Responses[0].PartitionResponses[0].ErrorCode, Is.EqualTo((short)ErrorCode.RequestTimedOut));
        Assert.That(Log(cluster, leader, "slow").LogEndOffset, Is.EqualTo(1), "the records stay in the leader's log, as in Kafka");
        Assert.That(Log(cluster, leader, "slow").HighWatermark, Is.EqualTo(0));
    }

    [Test]
    public async Task StoppedLeader_IsReplacedByAnIsrMember_WithTheNextEpoch_AndNothingAcknowledgedIsLost()
    {
        await using var cluster = await StartAsync();
        await cluster.CreateTopicAsync("f", 1, 3, new Dictionary<string, string> { ["min.insync.replicas"] = "2" });
        var (leader, epoch, replicas, _) = cluster.Partition("f", 0);
        using (var client = await RawClient.ConnectAsync(cluster.Broker(leader)!.BootstrapServers))
            for (int i = 0; i < 10; i++)
                Assert.That((await client.SendAsync<ProduceResponse>(Produce("f", -1, records: 2), 11)).Responses[0].PartitionResponses[0].ErrorCode, Is.EqualTo((short)ErrorCode.None));
        var before = Bytes(Log(cluster, leader, "f"), 20);
        await cluster.CrashBrokerAsync(leader);
        var after = cluster.Partition("f", 0);
        Assert.That(after.Leader, Is.Not.EqualTo(leader).And.AnyOf(replicas.ToArray()));
        Assert.That(after.LeaderEpoch, Is.EqualTo(epoch + 1));
        Assert.That(after.Isr, Does.Not.Contain(leader));
        var newLeader = Log(cluster, after.Leader, "f");
        Assert.That(Bytes(newLeader, 20), Is.EqualTo(before), "every acknowledged record is on the new leader");
        using var c2 = await RawClient.ConnectAsync(cluster.Broker(after.Leader)!.BootstrapServers);
        var p = (await c2.SendAsync<ProduceResponse>(Produce("f", -1), 11)).Responses[0].PartitionResponses[0];
        Assert.That(p.ErrorCode, Is.EqualTo((short)ErrorCode.None), "two in-sync replicas left: min.insync.replicas=2 holds");
        Assert.That(p.BaseOffset, Is.EqualTo(20));
        // KIP-101/320: the new leader answers OffsetForLeaderEpoch from the epochs stamped on the batches.
        OffsetForLeaderEpochRequest Ofle(int current, int requested) => new()
        {
            ReplicaId = -1,
            Topics = [new() { Topic = "f", Partitions = [new() { Partition = 0, CurrentLeaderEpoch = current, LeaderEpoch = requested }] }],
        };
        var old = (await c2.SendAsync<OffsetForLeaderEpochResponse>(Ofle(epoch + 1, epoch), 4)).Topics[0].Partitions[0];
        Assert.That((old.ErrorCode, old.LeaderEpoch, old.EndOffset), Is.EqualTo(((short)0, epoch, 20L)), "epoch 0 ended where epoch 1 began");
        var now = (await c2.SendAsync<OffsetForLeaderEpochResponse>(Ofle(epoch + 1, epoch + 1), 4)).Topics[0].Partitions[0];
        Assert.That((now.ErrorCode, now.LeaderEpoch, now.EndOffset), Is.EqualTo(((short)0, epoch + 1, 21L)));
        var stale = (await c2.SendAsync<OffsetForLeaderEpochResponse>(Ofle(epoch, epoch), 4)).Topics[0].Partitions[0];
        Assert.That(stale.ErrorCode, Is.EqualTo((short)ErrorCode.FencedLeaderEpoch));
        // A second broker down: the ISR is one, below min.insync.replicas.
        int other = after.Isr.Single(r => r != after.Leader);
        await cluster.StopBrokerAsync(other);
        var refused = (await c2.SendAsync<ProduceResponse>(Produce("f", -1), 11)).Responses[0].PartitionResponses[0];
        Assert.That(refused.ErrorCode, Is.EqualTo((short)ErrorCode.NotEnoughReplicas));
        // The stopped follower comes back, catches up and rejoins.
        await cluster.StartBrokerAsync(other);
        await Eventually(() => cluster.Partition("f", 0).Isr.Contains(other), "the restarted follower rejoins the ISR");
        Assert.That(Bytes(Log(cluster, other, "f"), 21), Is.EqualTo(Bytes(newLeader, 21)));
    }

    [Test]
    public async Task RestartedFormerLeader_TruncatesItsUnreplicatedTail_ByOffsetForLeaderEpoch_AndRejoinsTheIsr()
    {
        string? blocked = null;
        var faults = new BrokerFaults
        {
            OnRequest = r => r.ApiKey == ApiKey.Fetch && r.ClientId is { } id && Volatile.Read(ref blocked) is { } b && id.EndsWith(b, StringComparison.Ordinal) ? RequestFault.DropConnection : RequestFault.None,
        };
        await using var cluster = await StartAsync(o => { for (int n = 1; n <= 3; n++) o.Faults[n] = faults; });
        await cluster.CreateTopicAsync("div", 1, 3);
        var (old, epoch, replicas, _) = cluster.Partition("div", 0);
        using (var client = await RawClient.ConnectAsync(cluster.Broker(old)!.BootstrapServers))
        {
            Assert.That((await client.SendAsync<ProduceResponse>(Produce("div", -1, records: 4), 11)).Responses[0].PartitionResponses[0].ErrorCode, Is.EqualTo((short)ErrorCode.None));
            // The followers stop getting the leader's records; acks=1 records land on the leader only.
            Volatile.Write(ref blocked, $"-from-{old}");
            for (int i = 0; i < 3; i++)
                Assert.That((await client.SendAsync<ProduceResponse>(Produce("div", 1, records: 2), 11)).Responses[0].PartitionResponses[0].ErrorCode, Is.EqualTo((short)ErrorCode.None));
        }
        Assert.That(Log(cluster, old, "div").LogEndOffset, Is.EqualTo(10));
        await cluster.CrashBrokerAsync(old);
        var (leader, newEpoch, _, _) = cluster.Partition("div", 0);
        Assert.That(newEpoch, Is.EqualTo(epoch + 1));
        // A fetch already waiting at the leader may have carried the first acks=1 batch; the later ones it never got.
        long common = Log(cluster, leader, "div").LogEndOffset;
        Assert.That(common, Is.InRange(4L, 6L), "the new leader has what it had fetched");
        using (var client = await RawClient.ConnectAsync(cluster.Broker(leader)!.BootstrapServers))
            Assert.That((await client.SendAsync<ProduceResponse>(Produce("div", -1, records: 3), 11)).Responses[0].PartitionResponses[0].ErrorCode, Is.EqualTo((short)ErrorCode.None));

        // The former leader comes back with offsets up to 9 of epoch 0; from `common` on the new leader has epoch 1.
        Volatile.Write(ref blocked, null);
        await cluster.StartBrokerAsync(old);
        Assert.That(Log(cluster, old, "div").LogEndOffset, Is.EqualTo(10), "recovered its own log first");
        await Eventually(() => cluster.Partition("div", 0).Isr.Contains(old), "truncated, caught up and back in the ISR");
        var leaderLog = Log(cluster, leader, "div");
        Assert.That(Log(cluster, old, "div").LogEndOffset, Is.EqualTo(leaderLog.LogEndOffset));
        Assert.That(leaderLog.LogEndOffset, Is.EqualTo(common + 3));
        Assert.That(Bytes(Log(cluster, old, "div"), common + 3), Is.EqualTo(Bytes(leaderLog, common + 3)), "the same log as the leader's, byte for byte");
    }
}
