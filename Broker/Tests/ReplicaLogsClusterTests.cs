using Kayak.Broker.Cluster;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>
/// Issue 14: in a cluster a broker holds logs only for the partitions it is a replica of (Kafka's LogManager), at topic
/// creation, CreatePartitions, restart and reassignment; a replica reassigned away loses its log; requests for a
/// partition the broker does not host answer NOT_LEADER_OR_FOLLOWER (with the KIP-951 leader for Produce).
/// </summary>
[CancelAfter(90_000)]
public class ReplicaLogsClusterTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = Path.Combine(Path.GetTempPath(), "kayak-replica-logs-" + Guid.NewGuid().ToString("N"));

    [TearDown]
    public void TearDown()
    {
        try { Directory.Delete(_dir, recursive: true); }
        catch (IOException) { }
    }

    private async Task<KafkaCluster> StartAsync()
    {
        var options = new KafkaClusterOptions { Brokers = 3, DataDir = _dir, Port = 0, PlacementSeed = 7 };
        options.Properties["log.segment.delete.delay.ms"] = "0";
        var cluster = new KafkaCluster(options);
        await cluster.StartAsync();
        return cluster;
    }

    private bool HasDir(int node, string topic, int partition) => Directory.Exists(Path.Combine(_dir, $"broker-{node}", $"{topic}-{partition}"));

    /// <summary>Every broker holds exactly the partitions the controller assigns it, on disk and in its catalog.</summary>
    private void AssertLayout(KafkaCluster cluster, string topic)
    {
        int count = cluster.PartitionCount(topic);
        for (int p = 0; p < count; p++)
        {
            var replicas = cluster.Partition(topic, p).Replicas;
            for (int node = 1; node <= 3; node++)
            {
                bool replica = replicas.Contains(node);
                Assert.That(HasDir(node, topic, p), Is.EqualTo(replica), $"{topic}-{p} directory on broker {node} (replicas {string.Join(",", replicas)})");
                var local = cluster.Broker(node)!.State.Catalog.Lookup(topic).Topic;
                Assert.That(local, Is.Not.Null, $"broker {node} knows {topic}");
                Assert.That(local!.PartitionCount, Is.EqualTo(count));
                Assert.That(local.GetPartition(p) is not null, Is.EqualTo(replica), $"{topic}-{p} log on broker {node}");
            }
        }
    }

    [Test]
    public async Task LogsExistOnlyOnReplicas_AtCreation_CreatePartitions_AndRestart()
    {
        await using (var cluster = await StartAsync())
        {
            await cluster.CreateTopicAsync("rf1", 3, 1);
            await cluster.CreateTopicAsync("rf2", 3, 2);
            await cluster.CreateTopicAsync("lonely", 1, 1);
            AssertLayout(cluster, "rf1");
            AssertLayout(cluster, "rf2");
            AssertLayout(cluster, "lonely");

            using var client = await RawClient.ConnectAsync(cluster.Broker(1)!.BootstrapServers);
            var grown = await client.SendAsync<CreatePartitionsResponse>(new CreatePartitionsRequest { Topics = [new() { Name = "rf2", Count = 5, Assignments = null }] }, 3);
            Assert.That(grown.Results[0].ErrorCode, Is.EqualTo((short)ErrorCode.None));
            AssertLayout(cluster, "rf2");

            // A broker that holds none of "lonely" still answers Metadata with its leader.
            int owner = cluster.Partition("lonely", 0).Leader;
            int other = owner == 1 ? 2 : 1;
            using var toOther = await RawClient.ConnectAsync(cluster.Broker(other)!.BootstrapServers);
            var md = await toOther.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [new() { Name = "lonely" }] }, 12);
            Assert.That(md.Topics[0].ErrorCode, Is.EqualTo((short)ErrorCode.None));
            Assert.That(md.Topics[0].Partitions[0].LeaderId, Is.EqualTo(owner));
        }

        await using (var again = await StartAsync())
        {
            AssertLayout(again, "rf1");
            AssertLayout(again, "rf2");
            AssertLayout(again, "lonely");
        }
    }

    [Test]
    public async Task NonReplica_AnswersNotLeaderOrFollower_ForProduceFetchAndListOffsets()
    {
        await using var cluster = await StartAsync();
        await cluster.CreateTopicAsync("t", 1, 1);
        int leader = cluster.Partition("t", 0).Leader;
        int stranger = leader % 3 + 1;
        var leaderBroker = cluster.Broker(leader)!;
        using var client = await RawClient.ConnectAsync(cluster.Broker(stranger)!.BootstrapServers);

        var produce = new ProduceRequest { Acks = -1, TimeoutMs = 5000, TopicData = [new() { Name = "t", PartitionData = [new() { Index = 0, Records = Batch() }] }] };
        var pr = await client.SendAsync<ProduceResponse>(produce, 11);
        var rp = pr.Responses[0].PartitionResponses[0];
        Assert.That(rp.ErrorCode, Is.EqualTo((short)ErrorCode.NotLeaderOrFollower));
        Assert.That(rp.CurrentLeader.LeaderId, Is.EqualTo(leader), "KIP-951: the leader");
        Assert.That(pr.NodeEndpoints.Select(n => (n.NodeId, n.Port)), Is.EqualTo(new[] { (leader, leaderBroker.Listeners[0].Port) }));

        var topicId = leaderBroker.State.Catalog.Lookup("t").Topic!.TopicId;
        var fetch = new FetchRequest { MaxWaitMs = 0, MinBytes = 1, Topics = [new() { Topic = "t", TopicId = topicId, Partitions = [new() { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 1 << 20 }] }] };
        var f = await client.SendAsync<FetchResponse>(fetch, 17);
        Assert.That(f.Responses[0].Partitions[0].ErrorCode, Is.EqualTo((short)ErrorCode.NotLeaderOrFollower));
        Assert.That(f.Responses[0].Partitions[0].CurrentLeader.LeaderId, Is.EqualTo(leader));

        var lo = await client.SendAsync<ListOffsetsResponse>(new ListOffsetsRequest { ReplicaId = -1, Topics = [new() { Name = "t", Partitions = [new() { PartitionIndex = 0, Timestamp = -1 }] }] }, 9);
        Assert.That(lo.Topics[0].Partitions[0].ErrorCode, Is.EqualTo((short)ErrorCode.NotLeaderOrFollower));
        var beyond = await client.SendAsync<ListOffsetsResponse>(new ListOffsetsRequest { ReplicaId = -1, Topics = [new() { Name = "t", Partitions = [new() { PartitionIndex = 1, Timestamp = -1 }] }] }, 9);
        Assert.That(beyond.Topics[0].Partitions[0].ErrorCode, Is.EqualTo((short)ErrorCode.UnknownTopicOrPartition), "a partition the topic does not have");
    }

    [Test]
    public async Task Reassignment_CreatesTheNewReplicasLog_AndDeletesTheRemovedOnes()
    {
        await using var cluster = await StartAsync();
        await cluster.CreateTopicAsync("move", 1, 2);
        var before = cluster.Partition("move", 0).Replicas.ToArray();
        int target = Enumerable.Range(1, 3).Single(n => !before.Contains(n));
        using (var client = await RawClient.ConnectAsync(cluster.Broker(before[0])!.BootstrapServers))
        {
            var pr = await client.SendAsync<ProduceResponse>(new ProduceRequest { Acks = -1, TimeoutMs = 5000, TopicData = [new() { Name = "move", PartitionData = [new() { Index = 0, Records = Batch() }] }] }, 11);
            Assert.That(pr.Responses[0].PartitionResponses[0].ErrorCode, Is.EqualTo((short)ErrorCode.None));
        }

        Assert.That(cluster.Controller.Reassign("move", 0, [target]).Code, Is.EqualTo(ErrorCode.None));
        Assert.That(HasDir(target, "move", 0), Is.True, "an adding replica gets its log at once");
        for (int i = 0; i < 400 && cluster.Partition("move", 0).Replicas.Count != 1; i++) await Task.Delay(25);
        Assert.That(cluster.Partition("move", 0).Replicas, Is.EqualTo(new[] { target }), "the reassignment completed");
        Assert.That(cluster.Broker(target)!.State.Catalog.Lookup("move").Topic!.GetPartition(0)!.LogEndOffset, Is.EqualTo(1), "the record moved");
        foreach (int gone in before)
        {
            for (int i = 0; i < 400 && Directory.GetDirectories(Path.Combine(_dir, $"broker-{gone}"), "move-0*").Length > 0; i++) await Task.Delay(25);
            Assert.That(Directory.GetDirectories(Path.Combine(_dir, $"broker-{gone}"), "move-0*"), Is.Empty, $"broker {gone} deleted its log (renamed, then removed)");
            Assert.That(cluster.Broker(gone)!.State.Catalog.Lookup("move").Topic!.GetPartition(0), Is.Null);
        }
        AssertLayout(cluster, "move");
    }

    private static byte[] Batch()
    {
        using var builder = new Kayak.Protocol.Records.RecordBatchBuilder(new Kayak.Protocol.Records.RecordBatchOptions { PartitionLeaderEpoch = 0 });
        builder.Append(1_700_000_000_000, null, new byte[] { 1, 2, 3 });
        return builder.ToArray();
    }
}
