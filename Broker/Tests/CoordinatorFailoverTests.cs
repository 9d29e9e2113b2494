using Kayak.Broker.Cluster;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>
/// Issue 14, coordinator failover: when the broker leading a group's __consumer_offsets partition crashes, the ISR
/// member elected in its place reloads the partition and answers OffsetFetch with the offsets committed before.
/// </summary>
[CancelAfter(60_000)]
public class CoordinatorFailoverTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = Path.Combine(Path.GetTempPath(), "kayak-coordfail-tests-" + Guid.NewGuid().ToString("N"));

    [TearDown]
    public void TearDown()
    {
        try { Directory.Delete(_dir, recursive: true); }
        catch (IOException) { }
    }

    [Test]
    public async Task CrashedGroupCoordinator_NewLeaderServesTheCommittedOffsets()
    {
        await using var cluster = new KafkaCluster(new KafkaClusterOptions { Brokers = 3, DataDir = _dir, Port = 0 });
        await cluster.StartAsync();
        await cluster.CreateTopicAsync("data", 1, 3);
        using var any = await RawClient.ConnectAsync(cluster.Broker(1)!.BootstrapServers);
        var find = await any.SendAsync<FindCoordinatorResponse>(new FindCoordinatorRequest { KeyType = 0, CoordinatorKeys = ["g1"] }, 4);
        int coordinator = find.Coordinators[0].NodeId;
        int partition = Kayak.Coordinator.Transactions.TransactionCoordinator.PartitionFor("g1", 50);

        using (var c = await RawClient.ConnectAsync(cluster.Broker(coordinator)!.BootstrapServers))
        {
            var commit = new OffsetCommitRequest { GroupId = "g1", GenerationIdOrMemberEpoch = -1, Topics = [new() { Name = "data", Partitions = [new() { PartitionIndex = 0, CommittedOffset = 7 }] }] };
            var answer = await c.SendAsync<OffsetCommitResponse>(commit, 8);
            Assert.That(answer.Topics[0].Partitions[0].ErrorCode, Is.EqualTo((short)ErrorCode.None));
        }
        // No wait for the followers: the commit was answered only once the ISR had it (acks=-1), so the high watermark passed it.
        var offsetsLog = cluster.Broker(coordinator)!.State.Catalog.Lookup("__consumer_offsets").Topic!.GetPartition(partition)!;
        Assert.That(offsetsLog.HighWatermark, Is.EqualTo(offsetsLog.LogEndOffset));
        // The coordinator stamps its partition's leader epoch on what it appends, as every leader does, so a deposed
        // coordinator's unreplicated records are truncated by OffsetForLeaderEpoch like any topic's.
        int epochBefore = cluster.Partition("__consumer_offsets", partition).LeaderEpoch;
        Assert.That(BatchEpochs.Of(offsetsLog), Is.Not.Empty.And.All.EqualTo(epochBefore));
        await cluster.CrashBrokerAsync(coordinator);
        while (cluster.Partition("__consumer_offsets", partition).Leader is var l && (l == coordinator || l < 0)) await Task.Delay(10);
        int next = cluster.Partition("__consumer_offsets", partition).Leader;

        using var n = await RawClient.ConnectAsync(cluster.Broker(next)!.BootstrapServers);
        var fetch = new OffsetFetchRequest { GroupId = "g1", Topics = [new() { Name = "data", PartitionIndexes = [0] }] };
        var r = await n.SendAsync<OffsetFetchResponse>(fetch, 7);
        // The first request after the election starts the load (Kafka's onElection) and is told to retry.
        Assert.That(r.ErrorCode, Is.EqualTo((short)ErrorCode.CoordinatorLoadInProgress));
        while (r.ErrorCode == (short)ErrorCode.CoordinatorLoadInProgress)
        {
            await Task.Delay(10);
            r = await n.SendAsync<OffsetFetchResponse>(fetch, 7);
        }
        Assert.That(r.ErrorCode, Is.EqualTo((short)ErrorCode.None));
        Assert.That(r.Topics[0].Partitions[0].CommittedOffset, Is.EqualTo(7));

        // The new coordinator's commits carry the new leader epoch after the replicated ones of the old.
        var again = new OffsetCommitRequest { GroupId = "g1", GenerationIdOrMemberEpoch = -1, Topics = [new() { Name = "data", Partitions = [new() { PartitionIndex = 0, CommittedOffset = 9 }] }] };
        Assert.That((await n.SendAsync<OffsetCommitResponse>(again, 8)).Topics[0].Partitions[0].ErrorCode, Is.EqualTo((short)ErrorCode.None));
        int epochAfter = cluster.Partition("__consumer_offsets", partition).LeaderEpoch;
        Assert.That(epochAfter, Is.GreaterThan(epochBefore));
        var epochs = BatchEpochs.Of(cluster.Broker(next)!.State.Catalog.Lookup("__consumer_offsets").Topic!.GetPartition(partition)!);
        Assert.That(epochs[^1], Is.EqualTo(epochAfter));
        Assert.That(epochs[..^1], Is.All.EqualTo(epochBefore));
    }

    /// <summary>
    /// Transaction coordinator failover: the new leader of the transactional id's __transaction_state partition loads
    /// it (COORDINATOR_LOAD_IN_PROGRESS meanwhile), so a new producer instance keeps the producer id and gets the next
    /// epoch instead of a fresh id; the records were in the ISR before InitProducerId was answered.
    /// </summary>
    [Test]
    public async Task CrashedTransactionCoordinator_NewLeaderKeepsTheProducerIdAndBumpsTheEpoch()
    {
        await using var cluster = new KafkaCluster(new KafkaClusterOptions { Brokers = 3, DataDir = _dir, Port = 0 });
        await cluster.StartAsync();
        using var any = await RawClient.ConnectAsync(cluster.Broker(1)!.BootstrapServers);
        var find = await any.SendAsync<FindCoordinatorResponse>(new FindCoordinatorRequest { KeyType = 1, CoordinatorKeys = ["tx1"] }, 4);
        Assert.That(find.Coordinators[0].ErrorCode, Is.EqualTo((short)ErrorCode.None));
        int coordinator = find.Coordinators[0].NodeId;
        int partition = Kayak.Coordinator.Transactions.TransactionCoordinator.PartitionFor("tx1", 50);
        var init = new InitProducerIdRequest { TransactionalId = "tx1", TransactionTimeoutMs = 60_000 };
        InitProducerIdResponse first;
        using (var c = await RawClient.ConnectAsync(cluster.Broker(coordinator)!.BootstrapServers))
        {
            first = await c.SendAsync<InitProducerIdResponse>(init, 4);
            Assert.That(first.ErrorCode, Is.EqualTo((short)ErrorCode.None));
        }
        var stateLog = cluster.Broker(coordinator)!.State.Catalog.Lookup("__transaction_state").Topic!.GetPartition(partition)!;
        Assert.That(stateLog.HighWatermark, Is.EqualTo(stateLog.LogEndOffset), "answered once the ISR had the record");
        int stateEpoch = cluster.Partition("__transaction_state", partition).LeaderEpoch;
        Assert.That(BatchEpochs.Of(stateLog), Is.Not.Empty.And.All.EqualTo(stateEpoch), "stamped with the leader epoch");
        await cluster.CrashBrokerAsync(coordinator);
        while (cluster.Partition("__transaction_state", partition).Leader is var l && (l == coordinator || l < 0)) await Task.Delay(10);
        int next = cluster.Partition("__transaction_state", partition).Leader;

        using var n = await RawClient.ConnectAsync(cluster.Broker(next)!.BootstrapServers);
        var r = await n.SendAsync<InitProducerIdResponse>(init, 4);
        while (r.ErrorCode is (short)ErrorCode.CoordinatorLoadInProgress or (short)ErrorCode.ConcurrentTransactions)
        {
            await Task.Delay(10);
            r = await n.SendAsync<InitProducerIdResponse>(init, 4);
        }
        Assert.That(r.ErrorCode, Is.EqualTo((short)ErrorCode.None));
        Assert.That(r.ProducerId, Is.EqualTo(first.ProducerId), "the transactional id's state survived the failover");
        Assert.That(r.ProducerEpoch, Is.EqualTo(first.ProducerEpoch + 1));

        // The other brokers are not its coordinator.
        foreach (var b in cluster.Brokers)
        {
            if (b.Config.NodeId == next) continue;
            using var o = await RawClient.ConnectAsync(b.BootstrapServers);
            Assert.That((await o.SendAsync<InitProducerIdResponse>(init, 4)).ErrorCode, Is.EqualTo((short)ErrorCode.NotCoordinator));
        }
    }
}
