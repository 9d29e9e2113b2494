using Kayak.Broker.Cluster;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>
/// Issue 14, first slice: N brokers in one process (<see cref="KafkaCluster"/>) — Kafka's replica placement, every
/// broker in Metadata / DescribeCluster / DescribeTopicPartitions / FindCoordinator, NOT_LEADER_OR_FOLLOWER (with
/// KIP-951 hints) from non-leaders, and cluster metadata that survives a restart.
/// </summary>
[CancelAfter(60_000)]
public class InProcessClusterTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp()
    {
        _dir = Path.Combine(Path.GetTempPath(), "kayak-cluster-tests-" + Guid.NewGuid().ToString("N"));
    }

    [TearDown]
    public void TearDown()
    {
        try { Directory.Delete(_dir, recursive: true); }
        catch (IOException) { }
    }

    private async Task<KafkaCluster> StartAsync(int brokers = 3, Action<KafkaClusterOptions>? configure = null)
    {
        var options = new KafkaClusterOptions { Brokers = brokers, DataDir = _dir, Port = 0 };
        configure?.Invoke(options);
        var cluster = new KafkaCluster(options);
        await cluster.StartAsync();
        return cluster;
    }

    [Test]
    public void Placement_FollowsKafkasRoundRobinWithShift()
    {
        // The example of Kafka's AdminUtils.assignReplicasToBrokers: 5 brokers, 10 partitions, 3 replicas, start 0.
        var brokers = new[] { 0, 1, 2, 3, 4 };
        var a = ReplicaPlacement.Assign(brokers, 10, 3, 0, 0, new Random(1));
        Assert.That(a[0], Is.EqualTo(new[] { 0, 1, 2 }));
        Assert.That(a[4], Is.EqualTo(new[] { 4, 0, 1 }));
        Assert.That(a[5], Is.EqualTo(new[] { 0, 2, 3 }));
        Assert.That(a[9], Is.EqualTo(new[] { 4, 1, 2 }));
        // Random start: still one partition per broker in turn as leader, and distinct replicas.
        var r = ReplicaPlacement.Assign([1, 2, 3], 6, 3, 0, -1, new Random(7));
        Assert.That(r.Select(x => x[0]).GroupBy(x => x).Select(g => g.Count()), Is.All.EqualTo(2));
        Assert.That(r, Is.All.Unique);
        var e = Assert.Throws<KafkaException>(() => ReplicaPlacement.Assign([1, 2, 3], 1, 4, 0, -1, new Random()));
        Assert.That(e!.Code, Is.EqualTo(ErrorCode.InvalidReplicationFactor));
    }

    [Test]
    public async Task ThreeBrokers_CreateTopicsAndMetadata_ShowEveryBrokerAndTheRealAssignment()
    {
        await using var cluster = await StartAsync();
        Assert.That(cluster.Brokers.Select(b => b.Config.NodeId), Is.EqualTo(new[] { 1, 2, 3 }));
        Assert.That(cluster.Brokers.Select(b => b.Config.LogDirs[0]), Is.EqualTo(new[] { 1, 2, 3 }.Select(i => Path.Combine(_dir, $"broker-{i}"))));
        using var client = await RawClient.ConnectAsync(cluster.Broker(2)!.BootstrapServers);

        var created = await client.SendAsync<CreateTopicsResponse>(new CreateTopicsRequest
        {
            Topics =
            [
                new() { Name = "rf3", NumPartitions = 6, ReplicationFactor = 3 },
                new() { Name = "rf4", NumPartitions = 1, ReplicationFactor = 4 },
            ],
        }, 7);
        var ok = created.Topics.Single(t => t.Name == "rf3");
        Assert.That(ok.ErrorCode, Is.EqualTo((short)ErrorCode.None), ok.ErrorMessage);
        Assert.That(ok.ReplicationFactor, Is.EqualTo(3));
        var bad = created.Topics.Single(t => t.Name == "rf4");
        Assert.That(bad.ErrorCode, Is.EqualTo((short)ErrorCode.InvalidReplicationFactor));
        Assert.That(bad.ErrorMessage, Does.Contain("only 3 broker(s) are registered"));

        // Every broker gives the same answer: three brokers, one topic id, leaders spread two per broker.
        MetadataResponse? first = null;
        foreach (var b in cluster.Brokers)
        {
            using var c = await RawClient.ConnectAsync(b.BootstrapServers);
            var md = await c.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [new() { Name = "rf3" }], AllowAutoTopicCreation = false }, 12);
            Assert.That(md.Brokers.Select(x => x.NodeId), Is.EqualTo(new[] { 1, 2, 3 }));
            Assert.That(md.Brokers.Select(x => x.Port), Is.EqualTo(cluster.Brokers.Select(x => x.Listeners[0].Port)));
            Assert.That(md.ClusterId, Is.EqualTo(cluster.ClusterId));
            var topic = md.Topics.Single();
            Assert.That(topic.ErrorCode, Is.EqualTo((short)ErrorCode.None));
            Assert.That(b.State.Catalog.Find(topic.TopicId)?.Name, Is.EqualTo("rf3"), "same topic id on every broker");
            first ??= md;
            Assert.That(topic.TopicId, Is.EqualTo(first.Topics[0].TopicId));
            foreach (var p in topic.Partitions)
            {
                Assert.That(p.ReplicaNodes, Is.Unique.And.Count.EqualTo(3));
                Assert.That(p.LeaderId, Is.EqualTo(p.ReplicaNodes[0]), "the first replica is the initial leader");
                Assert.That(p.LeaderEpoch, Is.EqualTo(0));
                Assert.That(p.IsrNodes.Order(), Is.EqualTo(p.ReplicaNodes.Order()), "a new partition's ISR is all its replicas, as in Kafka");
            }
            var perLeader = topic.Partitions.GroupBy(p => p.LeaderId).Select(g => g.Count()).ToList();
            Assert.That(perLeader, Has.Count.EqualTo(3));
            Assert.That(perLeader, Is.All.EqualTo(2), "leaders spread over the brokers");
        }

        var cl = await client.SendAsync<DescribeClusterResponse>(new DescribeClusterRequest(), 1);
        Assert.That(cl.Brokers.Select(x => x.BrokerId), Is.EqualTo(new[] { 1, 2, 3 }));
        Assert.That(cl.ClusterId, Is.EqualTo(cluster.ClusterId));
        var dtp = await client.SendAsync<DescribeTopicPartitionsResponse>(new DescribeTopicPartitionsRequest { Topics = [new() { Name = "rf3" }], ResponsePartitionLimit = 100 }, 0);
        Assert.That(dtp.Topics.Single().Partitions.Select(p => (p.LeaderId, p.ReplicaNodes.Count)),
            Is.EqualTo(first!.Topics[0].Partitions.Select(p => (p.LeaderId, 3))));
    }

    [Test]
    public async Task DefaultReplicationFactor_AppliesToCreateTopicsAndAutoCreation()
    {
        await using var cluster = await StartAsync(configure: o => o.Properties["default.replication.factor"] = "2");
        using var client = await RawClient.ConnectAsync(cluster.BootstrapServers.Split(',')[0]);
        var created = await client.SendAsync<CreateTopicsResponse>(new CreateTopicsRequest
        {
            Topics = [new() { Name = "dflt", NumPartitions = 3, ReplicationFactor = -1 }],
        }, 7);
        Assert.That(created.Topics[0].ErrorCode, Is.EqualTo((short)ErrorCode.None));
        Assert.That(created.Topics[0].ReplicationFactor, Is.EqualTo(2));
        var md = await client.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [new() { Name = "dflt" }, new() { Name = "auto" }], AllowAutoTopicCreation = true }, 12);
        Assert.That(md.Topics.SelectMany(t => t.Partitions).Select(p => p.ReplicaNodes.Count), Is.All.EqualTo(2));
        Assert.That(md.Topics.Single(t => t.Name == "auto").Partitions, Has.Count.EqualTo(1));
    }

    [Test]
    public async Task NonLeader_AnswersNotLeaderOrFollower_WithKip951Hints()
    {
        await using var cluster = await StartAsync();
        await cluster.CreateTopicAsync("t", 1, 3);
        var (leader, epoch, replicas, _) = cluster.Partition("t", 0);
        int follower = replicas.First(r => r != leader);
        var leaderBroker = cluster.Broker(leader)!;
        using var toFollower = await RawClient.ConnectAsync(cluster.Broker(follower)!.BootstrapServers);
        using var toLeader = await RawClient.ConnectAsync(leaderBroker.BootstrapServers);

        var produce = new ProduceRequest { Acks = -1, TimeoutMs = 5000, TopicData = [new() { Name = "t", PartitionData = [new() { Index = 0, Records = Batch() }] }] };
        var v11 = await toFollower.SendAsync<ProduceResponse>(produce, 11);
        var rp = v11.Responses[0].PartitionResponses[0];
        Assert.That(rp.ErrorCode, Is.EqualTo((short)ErrorCode.NotLeaderOrFollower));
        Assert.That((rp.CurrentLeader.LeaderId, rp.CurrentLeader.LeaderEpoch), Is.EqualTo((leader, epoch)));
        Assert.That(v11.NodeEndpoints.Select(n => (n.NodeId, n.Port)), Is.EqualTo(new[] { (leader, leaderBroker.Listeners[0].Port) }));
        var v9 = await toFollower.SendAsync<ProduceResponse>(produce, 9);
        Assert.That(v9.Responses[0].PartitionResponses[0].ErrorCode, Is.EqualTo((short)ErrorCode.NotLeaderOrFollower));
        Assert.That(v9.NodeEndpoints, Is.Empty, "no KIP-951 fields before v10");
        Assert.That(cluster.Broker(follower)!.State.Catalog.Lookup("t").Topic!.GetPartition(0)!.LogEndOffset, Is.EqualTo(0), "nothing appended on the follower");

        var ok = await toLeader.SendAsync<ProduceResponse>(produce, 11);
        Assert.That(ok.Responses[0].PartitionResponses[0].ErrorCode, Is.EqualTo((short)ErrorCode.None));
        Assert.That(ok.Responses[0].PartitionResponses[0].BaseOffset, Is.EqualTo(0));

        var topicId = leaderBroker.State.Catalog.Lookup("t").Topic!.TopicId;
        var fetch = new FetchRequest { MaxWaitMs = 0, MinBytes = 1, Topics = [new() { Topic = "t", TopicId = topicId, Partitions = [new() { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 1 << 20 }] }] };
        var f = await toFollower.SendAsync<FetchResponse>(fetch, 17);
        var fp = f.Responses[0].Partitions[0];
        Assert.That(fp.ErrorCode, Is.EqualTo((short)ErrorCode.NotLeaderOrFollower));
        Assert.That(fp.CurrentLeader.LeaderId, Is.EqualTo(leader));
        Assert.That(f.NodeEndpoints.Select(n => n.NodeId), Is.EqualTo(new[] { leader }));
        var fl = await toLeader.SendAsync<FetchResponse>(fetch, 17);
        Assert.That(fl.Responses[0].Partitions[0].ErrorCode, Is.EqualTo((short)ErrorCode.None));
        Assert.That(fl.Responses[0].Partitions[0].HighWatermark, Is.EqualTo(1));

        var lo = await toFollower.SendAsync<ListOffsetsResponse>(new ListOffsetsRequest { ReplicaId = -1, Topics = [new() { Name = "t", Partitions = [new() { PartitionIndex = 0, Timestamp = -1 }] }] }, 9);
        Assert.That(lo.Topics[0].Partitions[0].ErrorCode, Is.EqualTo((short)ErrorCode.NotLeaderOrFollower));
        var loLeader = await toLeader.SendAsync<ListOffsetsResponse>(new ListOffsetsRequest { ReplicaId = -1, Topics = [new() { Name = "t", Partitions = [new() { PartitionIndex = 0, Timestamp = -1 }] }] }, 9);
        Assert.That(loLeader.Topics[0].Partitions[0].Offset, Is.EqualTo(1));
        var ofle = await toFollower.SendAsync<OffsetForLeaderEpochResponse>(new OffsetForLeaderEpochRequest { ReplicaId = -1, Topics = [new() { Topic = "t", Partitions = [new() { Partition = 0, CurrentLeaderEpoch = 0, LeaderEpoch = 0 }] }] }, 4);
        Assert.That(ofle.Topics[0].Partitions[0].ErrorCode, Is.EqualTo((short)ErrorCode.NotLeaderOrFollower));
    }

    [Test]
    public async Task AcksAll_BelowMinInSyncReplicas_IsNotEnoughReplicas_AndAppendsNothing()
    {
        await using var cluster = await StartAsync();
        await cluster.CreateTopicAsync("min2", 1, 2, new Dictionary<string, string> { ["min.insync.replicas"] = "2" });
        var (leaderId, _, replicas, _) = cluster.Partition("min2", 0);
        var leader = cluster.Broker(leaderId)!;
        using var client = await RawClient.ConnectAsync(leader.BootstrapServers);
        ProduceRequest Request(short acks) => new() { Acks = acks, TimeoutMs = 30000, TopicData = [new() { Name = "min2", PartitionData = [new() { Index = 0, Records = Batch() }] }] };
        var ok = await client.SendAsync<ProduceResponse>(Request(-1), 11);
        Assert.That(ok.Responses[0].PartitionResponses[0].ErrorCode, Is.EqualTo((short)ErrorCode.None), "both replicas in sync");
        var log = leader.State.Catalog.Lookup("min2").Topic!.GetPartition(0)!;
        Assert.That(log.HighWatermark, Is.EqualTo(1), "acknowledged once the ISR has it");
        // The follower stops: it leaves the ISR, which is now below min.insync.replicas.
        await cluster.StopBrokerAsync(replicas.Single(r => r != leaderId));
        Assert.That(cluster.Partition("min2", 0).Isr, Is.EqualTo(new[] { leaderId }));
        var all = await client.SendAsync<ProduceResponse>(Request(-1), 11);
        Assert.That(all.Responses[0].PartitionResponses[0].ErrorCode, Is.EqualTo((short)ErrorCode.NotEnoughReplicas), "the ISR is the leader alone");
        Assert.That(log.LogEndOffset, Is.EqualTo(1), "nothing appended");
        var one = await client.SendAsync<ProduceResponse>(Request(1), 11);
        Assert.That(one.Responses[0].PartitionResponses[0].ErrorCode, Is.EqualTo((short)ErrorCode.None), "acks=1 does not ask for the ISR");
        Assert.That(log.HighWatermark, Is.EqualTo(2), "the leader alone is the ISR: its appends are committed");
    }

    [Test]
    public async Task FindCoordinator_IsTheLeaderOfTheKeysInternalPartition()
    {
        await using var cluster = await StartAsync();
        using var client = await RawClient.ConnectAsync(cluster.Broker(1)!.BootstrapServers);
        var r = await client.SendAsync<FindCoordinatorResponse>(new FindCoordinatorRequest { KeyType = 0, CoordinatorKeys = ["g1", "g2", "g3", "g4"] }, 4);
        Assert.That(r.Coordinators.Select(c => c.ErrorCode), Is.All.EqualTo((short)ErrorCode.None));
        foreach (var c in r.Coordinators)
        {
            int partition = Kayak.Coordinator.Transactions.TransactionCoordinator.PartitionFor(c.Key, 50);
            Assert.That(c.NodeId, Is.EqualTo(cluster.Partition("__consumer_offsets", partition).Leader));
            Assert.That(c.Port, Is.EqualTo(cluster.Broker(c.NodeId)!.Listeners[0].Port));
        }
        // offsets.topic.replication.factor: Kafka's 3 (capped at the cluster size) in a cluster.
        Assert.That(cluster.Partition("__consumer_offsets", 0).Replicas, Has.Count.EqualTo(3));
        // Only the coordinator serves the group; the others answer NOT_COORDINATOR (the client looks it up again).
        int coordinator = r.Coordinators[0].NodeId;
        await cluster.CreateTopicAsync("offsets", 1, 3);
        var commit = new OffsetCommitRequest { GroupId = "g1", GenerationIdOrMemberEpoch = -1, Topics = [new() { Name = "offsets", Partitions = [new() { PartitionIndex = 0, CommittedOffset = 7 }] }] };
        foreach (var b in cluster.Brokers)
        {
            using var c = await RawClient.ConnectAsync(b.BootstrapServers);
            var answer = await c.SendAsync<OffsetCommitResponse>(commit, 8);
            Assert.That(answer.Topics[0].Partitions[0].ErrorCode,
                Is.EqualTo((short)(b.Config.NodeId == coordinator ? ErrorCode.None : ErrorCode.NotCoordinator)), $"broker {b.Config.NodeId}");
            var hb = await c.SendAsync<HeartbeatResponse>(new HeartbeatRequest { GroupId = "g1", GenerationId = 1, MemberId = "m" }, 4);
            Assert.That(hb.ErrorCode, b.Config.NodeId == coordinator ? Is.Not.EqualTo((short)ErrorCode.NotCoordinator) : Is.EqualTo((short)ErrorCode.NotCoordinator));
        }
        var t = await client.SendAsync<FindCoordinatorResponse>(new FindCoordinatorRequest { KeyType = 1, KeyValue = "tx" }, 3);
        Assert.That(t.ErrorCode, Is.EqualTo((short)ErrorCode.None));
        Assert.That(t.NodeId, Is.EqualTo(cluster.Partition("__transaction_state", Kayak.Coordinator.Transactions.TransactionCoordinator.PartitionFor("tx", 50)).Leader));
    }

    [Test]
    public async Task StoppedBroker_LeavesMetadata_AndCatchesUpOnRestart_AndTheClusterComesBackAsItWas()
    {
        string clusterId;
        Uuid topicId;
        int[] leaders;
        await using (var cluster = await StartAsync())
        {
            clusterId = cluster.ClusterId;
            await cluster.CreateTopicAsync("keep", 3, 3);
            await cluster.CreateTopicAsync("doomed", 1, 3);
            topicId = cluster.Broker(1)!.State.Catalog.Lookup("keep").Topic!.TopicId;
            leaders = Enumerable.Range(0, 3).Select(p => cluster.Partition("keep", p).Leader).ToArray();

            await cluster.StopBrokerAsync(2);
            using var client = await RawClient.ConnectAsync(cluster.Broker(1)!.BootstrapServers);
            var md = await client.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [new() { Name = "keep" }] }, 12);
            Assert.That(md.Brokers.Select(b => b.NodeId), Is.EqualTo(new[] { 1, 3 }));
            var led = md.Topics[0].Partitions.Single(p => leaders[p.PartitionIndex] == 2);
            Assert.That(led.ErrorCode, Is.EqualTo((short)ErrorCode.None), "an in-sync replica took over");
            Assert.That(led.LeaderId, Is.AnyOf(1, 3));
            Assert.That(led.LeaderEpoch, Is.EqualTo(1), "a new leader, a new epoch");
            Assert.That(led.IsrNodes, Does.Not.Contain(2), "a stopped broker leaves the ISR");
            Assert.That(md.Topics[0].Partitions.SelectMany(p => p.OfflineReplicas), Is.All.EqualTo(2));
            var rf2 = await client.SendAsync<CreateTopicsResponse>(new CreateTopicsRequest { Topics = [new() { Name = "while-down", NumPartitions = 2, ReplicationFactor = 3 }] }, 7);
            Assert.That(rf2.Topics[0].ErrorCode, Is.EqualTo((short)ErrorCode.InvalidReplicationFactor), "two registered brokers");
            await cluster.CreateTopicAsync("while-down", 2, 2);
            var deleted = await client.SendAsync<DeleteTopicsResponse>(new DeleteTopicsRequest { TopicNames = ["doomed"] }, 5);
            Assert.That(deleted.Responses[0].ErrorCode, Is.EqualTo((short)ErrorCode.None));

            await cluster.StartBrokerAsync(2);
            Assert.That(cluster.Broker(2)!.State.Catalog.TryGet("while-down", out var caught), Is.True, "created while it was down");
            Assert.That(cluster.Broker(2)!.State.Catalog.TryGet("doomed", out _), Is.False, "deleted while it was down");
            Assert.That(caught!.TopicId, Is.EqualTo(cluster.Broker(1)!.State.Catalog.Lookup("while-down").Topic!.TopicId));
        }

        await using (var again = await StartAsync())
        {
            Assert.That(again.ClusterId, Is.EqualTo(clusterId));
            foreach (var b in again.Brokers) Assert.That(b.State.ClusterId, Is.EqualTo(clusterId));
            Assert.That(again.Broker(3)!.State.Catalog.Lookup("keep").Topic!.TopicId, Is.EqualTo(topicId));
            // Stopping the whole cluster moved the leaders to the broker stopped last (the last ISR member); it leads them again.
            Assert.That(Enumerable.Range(0, 3).Select(p => again.Partition("keep", p).Leader), Is.All.EqualTo(3));
            Assert.That(again.Partition("while-down", 0).Replicas, Has.Count.EqualTo(2));
        }
    }

    [Test]
    public async Task DeleteTopics_RemovesTheTopicFromEveryBroker()
    {
        await using var cluster = await StartAsync();
        await cluster.CreateTopicAsync("gone", 2, 3);
        using var client = await RawClient.ConnectAsync(cluster.Broker(3)!.BootstrapServers);
        var r = await client.SendAsync<DeleteTopicsResponse>(new DeleteTopicsRequest { TopicNames = ["gone"] }, 5);
        Assert.That(r.Responses[0].ErrorCode, Is.EqualTo((short)ErrorCode.None));
        foreach (var b in cluster.Brokers) Assert.That(b.State.Catalog.TryGet("gone", out _), Is.False);
        var cp = await client.SendAsync<CreateTopicsResponse>(new CreateTopicsRequest { Topics = [new() { Name = "grow", NumPartitions = 1, ReplicationFactor = 2 }] }, 7);
        Assert.That(cp.Topics[0].ErrorCode, Is.EqualTo((short)ErrorCode.None));
        var grown = await client.SendAsync<CreatePartitionsResponse>(new CreatePartitionsRequest { Topics = [new() { Name = "grow", Count = 4, Assignments = null }] }, 3);
        Assert.That(grown.Results[0].ErrorCode, Is.EqualTo((short)ErrorCode.None));
        foreach (var b in cluster.Brokers) Assert.That(b.State.Catalog.Lookup("grow").Topic!.Partitions, Has.Count.EqualTo(4));
        Assert.That(Enumerable.Range(0, 4).Select(p => cluster.Partition("grow", p).Replicas.Count), Is.All.EqualTo(2));
    }

    private static byte[] Batch()
    {
        using var builder = new Kayak.Protocol.Records.RecordBatchBuilder(new Kayak.Protocol.Records.RecordBatchOptions { PartitionLeaderEpoch = 0 });
        builder.Append(1_700_000_000_000, null, new byte[] { 1, 2, 3 });
        return builder.ToArray();
    }
}

/// <summary>Issue 14: the executable with kayak.cluster.size=3 serves three brokers on consecutive ports.</summary>
[CancelAfter(90_000)]
public class HostClusterTests
{
    [Test]
    public async Task ClusterSize3_StartsThreeBrokersOnConsecutivePorts_WithTheirOwnLogDirs()
    {
        var dir = Path.Combine(Path.GetTempPath(), "kayak-exe-cluster-" + Guid.NewGuid().ToString("N"));
        int port = ConsecutiveFreePorts(3);
        var psi = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "kayak.dll"), "--override", "kayak.cluster.size=3",
                     "--override", $"listeners=PLAINTEXT://127.0.0.1:{port}", "--override", "log.dirs=" + dir })
            psi.ArgumentList.Add(a);
        using var p = System.Diagnostics.Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        try
        {
            string? line;
            while ((line = await p.StandardOutput.ReadLineAsync()) is not null && !line.Contains("Cluster ", StringComparison.Ordinal)) { }
            Assert.That(line, Does.Contain("started: 3 brokers"), await Task.WhenAny(stderr, Task.Delay(100)) == stderr ? stderr.Result : "");
            for (int id = 1; id <= 3; id++)
            {
                using var client = await RawClient.ConnectAsync($"127.0.0.1:{port + id - 1}");
                var md = await client.SendAsync<MetadataResponse>(new MetadataRequest { Topics = null }, 12);
                Assert.That(md.Brokers.Select(b => (b.NodeId, b.Port)), Is.EqualTo(new[] { (1, port), (2, port + 1), (3, port + 2) }));
                Assert.That(File.Exists(Path.Combine(dir, $"broker-{id}", "meta.properties")), Is.True);
            }
            Assert.That(File.Exists(Path.Combine(dir, ClusterMetadata.FileName)), Is.True);
        }
        finally
        {
            p.Kill(entireProcessTree: true);
            await p.WaitForExitAsync();
            try { Directory.Delete(dir, recursive: true); }
            catch (IOException) { }
        }
    }

    /// <summary>A port p with p, p+1, ... free right now (bound and released, so another process could still take one).</summary>
    private static int ConsecutiveFreePorts(int count)
    {
        for (int attempt = 0; attempt < 50; attempt++)
        {
            int start = Random.Shared.Next(20_000, 60_000);
            var held = new List<System.Net.Sockets.TcpListener>();
            try
            {
                for (int i = 0; i < count; i++)
                {
                    var l = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, start + i);
                    l.Start();
                    held.Add(l);
                }
                return start;
            }
            catch (System.Net.Sockets.SocketException) { }
            finally { foreach (var l in held) l.Stop(); }
        }
        throw new InvalidOperationException("no free consecutive ports");
    }
}
