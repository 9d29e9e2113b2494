using Kayak.Broker.Cluster;
using Kayak.Broker.Tests.Handlers;
using Kayak.Coordinator.Transactions;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using Kayak.Protocol.Records;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>
/// Issue 14, transactions across brokers, over the wire on a 3-broker in-process cluster: partition leaders that are
/// not the transaction coordinator verify transactional batches with it (AddPartitionsToTxn v4 VerifyOnly, KIP-890) and
/// answer Kafka's errors; the coordinator's markers reach each partition's leader with WriteTxnMarkers, retried through
/// dropped connections, carrying the __transaction_state leader epoch as coordinator epoch; WriteTxnMarkers to a
/// follower is NOT_LEADER_OR_FOLLOWER.
/// </summary>
[CancelAfter(120_000)]
public class ClusterTransactionsTests
{
    private const string Topic = "data";
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = Path.Combine(Path.GetTempPath(), "kayak-clustertxn-tests-" + Guid.NewGuid().ToString("N"));

    [TearDown]
    public void TearDown()
    {
        try { Directory.Delete(_dir, recursive: true); }
        catch (IOException) { }
    }

    private static byte[] TxnBatch(long producerId, short epoch, int sequence, int count) =>
        ServiceHarness.Batch(count, new RecordBatchOptions { ProducerId = producerId, ProducerEpoch = epoch, BaseSequence = sequence, IsTransactional = true });

    private static ProduceRequest Produce(string transactionalId, int partition, byte[] records) => new()
    {
        TransactionalId = transactionalId,
        Acks = -1,
        TimeoutMs = 10_000,
        TopicData = [new ProduceRequest.TopicProduceData { Name = Topic, PartitionData = [new() { Index = partition, Records = records }] }],
    };

    private static async Task<short> ProduceAsync(KafkaCluster cluster, string transactionalId, int partition, byte[] records)
    {
        using var c = await RawClient.ConnectAsync(cluster.Broker(cluster.Partition(Topic, partition).Leader)!.BootstrapServers);
        var r = await c.SendAsync<ProduceResponse>(Produce(transactionalId, partition, records), 9);
        return r.Responses[0].PartitionResponses[0].ErrorCode;
    }

    /// <summary>The coordinator's broker and a producer id/epoch for <paramref name="transactionalId"/> (retrying while it loads).</summary>
    private static async Task<(int Coordinator, long ProducerId, short Epoch)> InitAsync(KafkaCluster cluster, string transactionalId)
    {
        int partition = TransactionCoordinator.PartitionFor(transactionalId, cluster.Broker(1)!.Config.TransactionStateLogNumPartitions);
        while (true)
        {
            using var any = await RawClient.ConnectAsync(cluster.Brokers[0].BootstrapServers);
            await any.SendAsync<FindCoordinatorResponse>(new FindCoordinatorRequest { KeyType = 1, CoordinatorKeys = [transactionalId] }, 4);
            int coordinator = cluster.Partition("__transaction_state", partition).Leader;
            using var c = await RawClient.ConnectAsync(cluster.Broker(coordinator)!.BootstrapServers);
            var r = await c.SendAsync<InitProducerIdResponse>(new InitProducerIdRequest { TransactionalId = transactionalId, TransactionTimeoutMs = 60_000 }, 4);
            if (r.ErrorCode == (short)ErrorCode.None) return (coordinator, r.ProducerId, r.ProducerEpoch);
            Assert.That(r.ErrorCode, Is.AnyOf((short)ErrorCode.CoordinatorLoadInProgress, (short)ErrorCode.NotCoordinator, (short)ErrorCode.CoordinatorNotAvailable));
            await Task.Delay(20);
        }
    }

    private static async Task<short> AddPartitionAsync(KafkaCluster cluster, int coordinator, string transactionalId, long producerId, short epoch, int partition)
    {
        using var c = await RawClient.ConnectAsync(cluster.Broker(coordinator)!.BootstrapServers);
        var r = await c.SendAsync<AddPartitionsToTxnResponse>(new AddPartitionsToTxnRequest
        {
            V3AndBelowTransactionalId = transactionalId, V3AndBelowProducerId = producerId, V3AndBelowProducerEpoch = epoch,
            V3AndBelowTopics = [new() { Name = Topic, Partitions = [partition] }],
        }, 3);
        return r.ResultsByTopicV3AndBelow[0].ResultsByPartition[0].PartitionErrorCode;
    }

    private static async Task<int> StartAsync(KafkaCluster cluster)
    {
        await cluster.StartAsync();
        await cluster.CreateTopicAsync(Topic, 3, 3);
        return 0;
    }

    /// <summary>A data partition whose leader is not <paramref name="node"/>.</summary>
    private static int PartitionNotLedBy(KafkaCluster cluster, int node)
    {
        for (int p = 0; p < 3; p++)
            if (cluster.Partition(Topic, p).Leader != node) return p;
        throw new AssertionException("every partition is led by the coordinator");
    }

    [Test]
    public async Task LeaderThatIsNotTheCoordinator_VerifiesWithIt_AndAnswersKafkasErrors()
    {
        await using var cluster = new KafkaCluster(new KafkaClusterOptions { Brokers = 3, DataDir = _dir, Port = 0 });
        await StartAsync(cluster);
        var (coordinator, pid, epoch) = await InitAsync(cluster, "tx-verify");
        int added = PartitionNotLedBy(cluster, coordinator);
        int notAdded = (added + 1) % 3 is var n && cluster.Partition(Topic, n).Leader != coordinator ? n : (added + 2) % 3;
        if (cluster.Partition(Topic, notAdded).Leader == coordinator) Assert.Fail("two partitions led by the coordinator");

        // Not added to the transaction: the remote coordinator says INVALID_TXN_STATE and nothing is appended.
        Assert.That(await ProduceAsync(cluster, "tx-verify", notAdded, TxnBatch(pid, epoch, 0, 2)), Is.EqualTo((short)ErrorCode.InvalidTxnState));
        var notAddedLog = cluster.Broker(cluster.Partition(Topic, notAdded).Leader)!.State.Catalog.Lookup(Topic).Topic!.GetPartition(notAdded)!;
        Assert.That(notAddedLog.LogEndOffset, Is.EqualTo(0));

        Assert.That(await AddPartitionAsync(cluster, coordinator, "tx-verify", pid, epoch, added), Is.EqualTo((short)ErrorCode.None));
        Assert.That(await ProduceAsync(cluster, "tx-verify", added, TxnBatch(pid, epoch, 0, 2)), Is.EqualTo((short)ErrorCode.None));
        var leaderLog = cluster.Broker(cluster.Partition(Topic, added).Leader)!.State.Catalog.Lookup(Topic).Topic!.GetPartition(added)!;
        Assert.That(leaderLog.LastStableOffset, Is.EqualTo(0), "the open transaction holds the last stable offset");

        // A new instance bumps the epoch (aborting the open transaction through a marker on the remote leader)...
        var (_, pid2, epoch2) = await InitAsync(cluster, "tx-verify");
        Assert.That(pid2, Is.EqualTo(pid));
        Assert.That(epoch2, Is.GreaterThan(epoch));
        Assert.That(leaderLog.LastStableOffset, Is.EqualTo(leaderLog.LogEndOffset), "the abort marker ended the transaction on the remote leader");
        // ...and the old epoch's first batch of a new transaction in another partition is fenced by the remote coordinator.
        Assert.That(await ProduceAsync(cluster, "tx-verify", notAdded, TxnBatch(pid, epoch, 0, 1)), Is.EqualTo((short)ErrorCode.InvalidProducerEpoch));
    }

    [Test]
    public async Task Markers_ReachTheRemoteLeaderThroughDroppedConnections_WithTheStatePartitionsLeaderEpoch()
    {
        await using var cluster = new KafkaCluster(new KafkaClusterOptions { Brokers = 3, DataDir = _dir, Port = 0 });
        await StartAsync(cluster);
        var (coordinator, pid, epoch) = await InitAsync(cluster, "tx-markers");
        int partition = PartitionNotLedBy(cluster, coordinator);
        int leader = cluster.Partition(Topic, partition).Leader;
        Assert.That(await AddPartitionAsync(cluster, coordinator, "tx-markers", pid, epoch, partition), Is.EqualTo((short)ErrorCode.None));
        Assert.That(await ProduceAsync(cluster, "tx-markers", partition, TxnBatch(pid, epoch, 0, 3)), Is.EqualTo((short)ErrorCode.None));

        // The leader drops the coordinator's first two WriteTxnMarkers connections before handling them: it retries.
        cluster.Faults(leader).DropConnections(ApiKey.WriteTxnMarkers, count: 2);
        using (var c = await RawClient.ConnectAsync(cluster.Broker(coordinator)!.BootstrapServers))
        {
            var end = await c.SendAsync<EndTxnResponse>(new EndTxnRequest { TransactionalId = "tx-markers", ProducerId = pid, ProducerEpoch = epoch, Committed = true }, 3);
            Assert.That(end.ErrorCode, Is.EqualTo((short)ErrorCode.None));
        }
        var log = cluster.Broker(leader)!.State.Catalog.Lookup(Topic).Topic!.GetPartition(partition)!;
        Assert.That(log.LogEndOffset, Is.EqualTo(4), "three records and one commit marker (none written twice)");
        Assert.That(log.LastStableOffset, Is.EqualTo(4));
        Assert.That(log.HighWatermark, Is.EqualTo(4), "the marker was in the ISR before EndTxn was answered");
        int stateEpoch = cluster.Partition("__transaction_state",
            TransactionCoordinator.PartitionFor("tx-markers", cluster.Broker(1)!.Config.TransactionStateLogNumPartitions)).LeaderEpoch;
        var producer = log.ActiveProducers().Single(p => p.ProducerId == pid);
        Assert.That(producer.CoordinatorEpoch, Is.EqualTo(stateEpoch), "the marker's coordinator epoch");
        // The follower copies have it too and no follower was written directly.
        foreach (var b in cluster.Brokers)
            Assert.That(b.State.Catalog.Lookup(Topic).Topic!.GetPartition(partition)!.LogEndOffset, Is.EqualTo(4), $"broker {b.Config.NodeId}");
    }

    [Test]
    public async Task WriteTxnMarkers_ToAFollower_IsNotLeaderOrFollower_ToAMissingPartition_UnknownTopicOrPartition()
    {
        await using var cluster = new KafkaCluster(new KafkaClusterOptions { Brokers = 3, DataDir = _dir, Port = 0 });
        await StartAsync(cluster);
        int leader = cluster.Partition(Topic, 0).Leader;
        int follower = leader % 3 + 1;
        using var c = await RawClient.ConnectAsync(cluster.Broker(follower)!.BootstrapServers);
        var r = await c.SendAsync<WriteTxnMarkersResponse>(new WriteTxnMarkersRequest
        {
            Markers = [new() { ProducerId = 42, ProducerEpoch = 0, TransactionResult = true, CoordinatorEpoch = 1,
                Topics = [new() { Name = Topic, PartitionIndexes = [0, 7] }] }],
        }, 1);
        var parts = r.Markers[0].Topics[0].Partitions;
        Assert.That(parts.Select(p => (p.PartitionIndex, (ErrorCode)p.ErrorCode)),
            Is.EqualTo(new[] { (0, ErrorCode.NotLeaderOrFollower), (7, ErrorCode.UnknownTopicOrPartition) }));
        Assert.That(cluster.Broker(follower)!.State.Catalog.Lookup(Topic).Topic!.GetPartition(0)!.LogEndOffset, Is.EqualTo(0));
    }

    [Test]
    public async Task WriteTxnMarkers_FromAnOlderCoordinatorEpoch_IsTransactionCoordinatorFenced()
    {
        await using var cluster = new KafkaCluster(new KafkaClusterOptions { Brokers = 3, DataDir = _dir, Port = 0 });
        await StartAsync(cluster);
        var (coordinator, pid, epoch) = await InitAsync(cluster, "tx-fence");
        int partition = PartitionNotLedBy(cluster, coordinator);
        int leader = cluster.Partition(Topic, partition).Leader;
        Assert.That(await AddPartitionAsync(cluster, coordinator, "tx-fence", pid, epoch, partition), Is.EqualTo((short)ErrorCode.None));
        Assert.That(await ProduceAsync(cluster, "tx-fence", partition, TxnBatch(pid, epoch, 0, 3)), Is.EqualTo((short)ErrorCode.None));
        using var c = await RawClient.ConnectAsync(cluster.Broker(leader)!.BootstrapServers);
        async Task<ErrorCode> MarkerAsync(int coordinatorEpoch, bool commit)
        {
            var r = await c.SendAsync<WriteTxnMarkersResponse>(new WriteTxnMarkersRequest
            {
                Markers = [new() { ProducerId = pid, ProducerEpoch = epoch, TransactionResult = commit, CoordinatorEpoch = coordinatorEpoch,
                    Topics = [new() { Name = Topic, PartitionIndexes = [partition] }] }],
            }, 1);
            return (ErrorCode)r.Markers[0].Topics[0].Partitions[0].ErrorCode;
        }
        // A coordinator under __transaction_state leader epoch 5 commits; the producer writes on in the partition.
        Assert.That(await MarkerAsync(5, commit: true), Is.EqualTo(ErrorCode.None));
        Assert.That(await ProduceAsync(cluster, "tx-fence", partition, TxnBatch(pid, epoch, 3, 1)), Is.EqualTo((short)ErrorCode.None));
        var log = cluster.Broker(leader)!.State.Catalog.Lookup(Topic).Topic!.GetPartition(partition)!;
        long end = log.LogEndOffset;
        // A deposed coordinator (epoch 4) cannot end that transaction; the current one can.
        Assert.That(await MarkerAsync(4, commit: false), Is.EqualTo(ErrorCode.TransactionCoordinatorFenced));
        Assert.That((log.LogEndOffset, log.LastStableOffset), Is.EqualTo((end, end - 1)), "nothing appended; the transaction is still open");
        Assert.That(await MarkerAsync(5, commit: false), Is.EqualTo(ErrorCode.None));
        Assert.That(log.LastStableOffset, Is.EqualTo(end + 1));
        // Both markers carry the partition's leader epoch, as every leader append does.
        int leaderEpoch = cluster.Partition(Topic, partition).LeaderEpoch;
        Assert.That(BatchEpochs.Of(log, controlOnly: true), Is.EqualTo(new[] { leaderEpoch, leaderEpoch }));
    }
}
