using Confluent.Kafka;
using Kayak.Broker.Cluster;
using Kayak.Coordinator.Transactions;
using Kayak.IntegrationTests.Drivers;
using Kayak.IntegrationTests.Infrastructure;
using NUnit.Framework;

namespace Kayak.IntegrationTests;

/// <summary>
/// Issue 14, transactions across brokers, with Confluent.Kafka 2.16 on a 3-broker in-process <see cref="KafkaCluster"/>:
/// a transaction spans partitions led by three different brokers, so the coordinator's markers go to other leaders
/// (WriteTxnMarkers) and those leaders verify the transactional batches with the coordinator (AddPartitionsToTxn
/// VerifyOnly, KIP-890). read_committed sees exactly the committed records; after the transaction coordinator's broker
/// is killed, a new producer with the same transactional.id fences the old one on the new coordinator (which aborts
/// the old producer's open transaction), commits, and every partition's last stable offset reaches its high watermark.
/// </summary>
[TestFixture]
public sealed class ClusterTransactionTests : ScratchDirectoryTest
{
    private static readonly TimeSpan TxnTimeout = TimeSpan.FromSeconds(60);
    private const string Topic = "txn-spread";
    private const int Partitions = 3;

    public ClusterTransactionTests() : base("cluster-txn") { }

    private static IProducer<byte[], byte[]> TransactionalProducer(string bootstrap, string transactionalId) =>
        ConfluentClients.Producer(bootstrap, c =>
        {
            c.TransactionalId = transactionalId;
            c.EnableIdempotence = true;
            c.Acks = Acks.All;
            c.MaxInFlight = 5;
            c.TransactionTimeoutMs = 60_000;
            c.MessageTimeoutMs = 60_000;
            c.RetryBackoffMs = 50;
        });

    /// <summary>Writes <c>{prefix}{partition}-{i}</c> to every partition and waits until each is delivered.</summary>
    private static void SendToEveryPartition(IProducer<byte[], byte[]> producer, string prefix, int perPartition)
    {
        int failed = 0;
        for (int p = 0; p < Partitions; p++)
            for (int i = 0; i < perPartition; i++)
            {
                string v = $"{prefix}{p}-{i}";
                producer.Produce(new TopicPartition(Topic, p), new Message<byte[], byte[]> { Key = ConfluentClients.Utf8("k")!, Value = ConfluentClients.Utf8(v)! },
                    r =>
                    {
                        if (!r.Error.IsError) return;
                        Interlocked.Increment(ref failed);
                        TestContext.Out.WriteLine($"delivery of {v} failed: {r.Error}");
                    });
            }
        Assert.That(producer.Flush(TimeSpan.FromSeconds(60)), Is.EqualTo(0), "every record of " + prefix + " delivered");
        Assert.That(failed, Is.EqualTo(0), "deliveries of " + prefix + " that failed");
    }

    private static IEnumerable<string> Values(string prefix, int partition, int n) => Enumerable.Range(0, n).Select(i => $"{prefix}{partition}-{i}");

    /// <summary>A partition from the beginning until <paramref name="expected"/> records came, then a short settle for strays.</summary>
    private static List<string> ReadCommitted(string bootstrap, int partition, int expected)
    {
        using var consumer = ConfluentClients.Consumer(bootstrap, c => c.IsolationLevel = IsolationLevel.ReadCommitted);
        consumer.Assign(new TopicPartitionOffset(Topic, partition, Offset.Beginning));
        var result = new List<string>();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        DateTime? settleUntil = null;
        while (DateTime.UtcNow < (settleUntil ?? deadline))
        {
            Token.ThrowIfCancellationRequested();
            var r = consumer.Consume(TimeSpan.FromMilliseconds(200));
            if (r is not null && !r.IsPartitionEOF) result.Add(ConfluentClients.FromUtf8(r.Message.Value)!);
            if (result.Count >= expected && settleUntil is null) settleUntil = DateTime.UtcNow + TimeSpan.FromMilliseconds(1000);
        }
        consumer.Close();
        return result;
    }

    /// <summary>A 3-broker cluster with <see cref="Topic"/> at replication factor 3.</summary>
    private async Task<KafkaCluster> StartClusterAsync()
    {
        var cluster = new KafkaCluster(new KafkaClusterOptions { Brokers = 3, DataDir = Dir, Port = 0 });
        await cluster.StartAsync(Token);
        await cluster.CreateTopicAsync(Topic, Partitions, 3);
        return cluster;
    }

    [Test]
    [CancelAfter(240_000)]
    public async Task TransactionOverThreeLeaders_CommitAndAbortReadCommitted_SurvivesTheCoordinatorsDeath()
    {
        await using var cluster = await StartClusterAsync();
        var leaders = Enumerable.Range(0, Partitions).Select(p => cluster.Partition(Topic, p).Leader).ToArray();
        Assert.That(leaders.Distinct().Count(), Is.EqualTo(3), "the three partitions are led by three brokers");

        string transactionalId = "cluster-txn-" + Guid.NewGuid().ToString("N");
        int stateParts = cluster.Broker(1)!.Config.TransactionStateLogNumPartitions;
        const int n = 4;

        var first = TransactionalProducer(cluster.BootstrapServers, transactionalId);
        int coordinator;
        try
        {
            first.InitTransactions(TxnTimeout);
            coordinator = cluster.Partition("__transaction_state", TransactionCoordinator.PartitionFor(transactionalId, stateParts)).Leader;
            TestContext.Out.WriteLine($"leaders {string.Join(",", leaders)}, transaction coordinator {coordinator}");

            first.BeginTransaction();
            SendToEveryPartition(first, "a", n); // two of the three leaders verify with the coordinator over the wire
            first.CommitTransaction(TxnTimeout);

            first.BeginTransaction();
            SendToEveryPartition(first, "b", n);
            first.AbortTransaction(TxnTimeout);

            string survivor = cluster.Broker(coordinator % 3 + 1)!.BootstrapServers;
            for (int p = 0; p < Partitions; p++)
                Assert.That(ReadCommitted(survivor, p, n), Is.EqualTo(Values("a", p, n)), $"read_committed of partition {p} after commit + abort");

            // A third transaction left open when the coordinator's broker dies: the new coordinator must abort it.
            first.BeginTransaction();
            SendToEveryPartition(first, "c", n);

            await cluster.CrashBrokerAsync(coordinator);

            var survivors = string.Join(",", cluster.Brokers.Where(b => b.Config.NodeId != coordinator).Select(b => b.BootstrapServers));
            using (var second = TransactionalProducer(survivors, transactionalId))
            {
                second.InitTransactions(TxnTimeout);
                int newCoordinator = cluster.Partition("__transaction_state", TransactionCoordinator.PartitionFor(transactionalId, stateParts)).Leader;
                Assert.That(newCoordinator, Is.Not.EqualTo(coordinator).And.GreaterThan(0), "the coordinator moved with its __transaction_state partition");

                // The old instance is fenced: its open transaction cannot be committed any more.
                var fenced = Assert.Catch<KafkaException>(() => first.CommitTransaction(TxnTimeout))!;
                TestContext.Out.WriteLine($"old producer: {fenced.Error.Code} {fenced.Error.Reason} (fatal {fenced.Error.IsFatal})");
                Assert.That(fenced.Error.IsFatal || fenced.Error.Code is ErrorCode.ProducerFenced or ErrorCode.InvalidProducerEpoch,
                    $"the old producer is fenced, got {fenced.Error.Code}: {fenced.Error.Reason}");

                second.BeginTransaction();
                SendToEveryPartition(second, "d", n);
                second.CommitTransaction(TxnTimeout);
            }

            for (int p = 0; p < Partitions; p++)
                Assert.That(ReadCommitted(survivors, p, 2 * n), Is.EqualTo(Values("a", p, n).Concat(Values("d", p, n))),
                    $"read_committed of partition {p}: the committed transactions of both producers, nothing aborted");

            // Every transaction ended in every partition (the open one by the new coordinator's abort markers): the
            // last stable offset (read_committed's end) is the high watermark (read_uncommitted's end).
            using var committedView = ConfluentClients.Consumer(survivors, c => c.IsolationLevel = IsolationLevel.ReadCommitted);
            using var uncommittedView = ConfluentClients.Consumer(survivors, c => c.IsolationLevel = IsolationLevel.ReadUncommitted);
            for (int p = 0; p < Partitions; p++)
            {
                var tp = new TopicPartition(Topic, p);
                long lso = committedView.QueryWatermarkOffsets(tp, TimeSpan.FromSeconds(30)).High.Value;
                long hw = uncommittedView.QueryWatermarkOffsets(tp, TimeSpan.FromSeconds(30)).High.Value;
                // 4 transactions of n records each plus one marker each.
                Assert.That(hw, Is.EqualTo(4 * (n + 1)), $"partition {p}: every record and marker");
                Assert.That(lso, Is.EqualTo(hw), $"partition {p}: last stable offset at the high watermark");
                var leader = cluster.Broker(cluster.Partition(Topic, p).Leader)!;
                var log = leader.State.Catalog.Lookup(Topic).Topic!.GetPartition(p)!;
                Assert.That(log.LastStableOffset, Is.EqualTo(log.HighWatermark), $"partition {p} on its leader");
            }
        }
        finally { first.Dispose(); }
    }

    /// <summary>
    /// sendOffsetsToTransaction when the transaction coordinator and the group coordinator are different brokers:
    /// TxnOffsetCommit reaches the group coordinator, which must accept it for a transaction it does not coordinate
    /// (Kafka's group coordinator stores the offsets pending without asking), and the commit/abort marker of the group's
    /// __consumer_offsets partition must be written by that partition's leader, which then materializes (commit) or
    /// drops (abort) the pending offsets. Checked with the group's committed offsets seen through a consumer.
    /// </summary>
    [Test]
    [CancelAfter(180_000)]
    public async Task SendOffsetsToTransaction_GroupCoordinatorOnAnotherBroker_CommitsAndAbortsTheOffsets()
    {
        await using var cluster = await StartClusterAsync();
        int offsetParts = cluster.Broker(1)!.Config.OffsetsTopicNumPartitions;
        var (producer, txnCoordinator) = InitTransactional(cluster, "cluster-txn-offsets-");
        using var _ = producer;
        string group = GroupNotCoordinatedBy(cluster, txnCoordinator, new TopicPartition(Topic, 0));
        int groupCoordinator = cluster.Partition("__consumer_offsets", TransactionCoordinator.PartitionFor(group, offsetParts)).Leader;
        TestContext.Out.WriteLine($"transaction coordinator {txnCoordinator}, group coordinator {groupCoordinator}");

        using var consumer = ConfluentClients.Consumer(cluster.BootstrapServers, c =>
        {
            c.GroupId = group;
            c.EnableAutoCommit = false;
            c.IsolationLevel = IsolationLevel.ReadCommitted;
        });
        var tp = new TopicPartition(Topic, 0);
        consumer.Assign(new TopicPartitionOffset(tp, Offset.Beginning));

        producer.BeginTransaction();
        SendToEveryPartition(producer, "x", 2);
        producer.SendOffsetsToTransaction([new TopicPartitionOffset(tp, 7)], consumer.ConsumerGroupMetadata, TxnTimeout);
        producer.CommitTransaction(TxnTimeout);
        Assert.That(Committed(consumer, tp), Is.EqualTo(7), "the committed transaction's offset is the group's committed offset");

        producer.BeginTransaction();
        SendToEveryPartition(producer, "y", 2);
        producer.SendOffsetsToTransaction([new TopicPartitionOffset(tp, 11)], consumer.ConsumerGroupMetadata, TxnTimeout);
        producer.AbortTransaction(TxnTimeout);
        Assert.That(Committed(consumer, tp), Is.EqualTo(7), "the aborted transaction's offset is dropped");

        // Nothing is left pending on the group's partition: the leader's log has the markers, and a plain commit works.
        var offsetsLog = cluster.Broker(groupCoordinator)!.State.Catalog.Lookup("__consumer_offsets").Topic!
            .GetPartition(TransactionCoordinator.PartitionFor(group, offsetParts))!;
        Assert.That(offsetsLog.LastStableOffset, Is.EqualTo(offsetsLog.HighWatermark), "both transactions ended in the group's offsets partition");
    }

    /// <summary>
    /// A transaction over a replication-factor-1 topic whose only replica is on another broker than the transaction's
    /// coordinator, with sendOffsetsToTransaction for that partition to a group coordinator that hosts no replica of it:
    /// AddPartitionsToTxn and TxnOffsetCommit check partitions against the cluster's metadata, not the local replicas.
    /// </summary>
    [Test]
    [CancelAfter(180_000)]
    public async Task Transaction_OnPartitionsWithoutALocalReplica_IsAcceptedByTheCoordinators()
    {
        await using var cluster = new KafkaCluster(new KafkaClusterOptions { Brokers = 3, DataDir = Dir, Port = 0 });
        await cluster.StartAsync(Token);
        const string single = "txn-rf1";
        await cluster.CreateTopicAsync(single, 3, 1);
        int offsetParts = cluster.Broker(1)!.Config.OffsetsTopicNumPartitions;
        var (producer, txnCoordinator) = InitTransactional(cluster, "cluster-txn-rf1-");
        using var _ = producer;
        int partition = Enumerable.Range(0, 3).First(p => cluster.Partition(single, p).Leader != txnCoordinator);
        int dataLeader = cluster.Partition(single, partition).Leader;
        string group = GroupNotCoordinatedBy(cluster, dataLeader, new TopicPartition(single, partition));
        TestContext.Out.WriteLine($"transaction coordinator {txnCoordinator}, partition {partition} on {dataLeader}, group coordinator " +
            cluster.Partition("__consumer_offsets", TransactionCoordinator.PartitionFor(group, offsetParts)).Leader);

        using var consumer = ConfluentClients.Consumer(cluster.BootstrapServers, c => { c.GroupId = group; c.EnableAutoCommit = false; });
        var tp = new TopicPartition(single, partition);
        producer.BeginTransaction();
        producer.Produce(tp, new Message<byte[], byte[]> { Value = ConfluentClients.Utf8("committed")! });
        Assert.That(producer.Flush(TimeSpan.FromSeconds(60)), Is.EqualTo(0));
        producer.SendOffsetsToTransaction([new TopicPartitionOffset(tp, 3)], consumer.ConsumerGroupMetadata, TxnTimeout);
        producer.CommitTransaction(TxnTimeout);

        Assert.That(Committed(consumer, tp), Is.EqualTo(3), "the transaction's offset for a partition its group coordinator does not host");
        using var reader = ConfluentClients.Consumer(cluster.BootstrapServers, c => c.IsolationLevel = IsolationLevel.ReadCommitted);
        reader.Assign(new TopicPartitionOffset(tp, Offset.Beginning));
        var r = reader.Consume(TimeSpan.FromSeconds(30));
        Assert.That(r is null ? null : ConfluentClients.FromUtf8(r.Message.Value), Is.EqualTo("committed"), "read_committed sees the committed record");
    }

    /// <summary>A transactional producer, initialised, and the broker coordinating its transactional id.</summary>
    private static (IProducer<byte[], byte[]> Producer, int Coordinator) InitTransactional(KafkaCluster cluster, string prefix)
    {
        string transactionalId = prefix + Guid.NewGuid().ToString("N");
        var producer = TransactionalProducer(cluster.BootstrapServers, transactionalId);
        producer.InitTransactions(TxnTimeout);
        int stateParts = cluster.Broker(1)!.Config.TransactionStateLogNumPartitions;
        return (producer, cluster.Partition("__transaction_state", TransactionCoordinator.PartitionFor(transactionalId, stateParts)).Leader);
    }

    /// <summary>
    /// A group id whose coordinator is not <paramref name="broker"/>. A commit of <paramref name="probe"/> by a throwaway
    /// group first creates __consumer_offsets (and checks plain OffsetCommit on it).
    /// </summary>
    private static string GroupNotCoordinatedBy(KafkaCluster cluster, int broker, TopicPartition probe)
    {
        using (var consumer = ConfluentClients.Consumer(cluster.BootstrapServers, c => c.GroupId = "probe-" + Guid.NewGuid().ToString("N")))
            consumer.Commit([new TopicPartitionOffset(probe, 0)]);
        int offsetParts = cluster.Broker(1)!.Config.OffsetsTopicNumPartitions;
        return Enumerable.Range(0, 1000).Select(i => $"txn-group-{Guid.NewGuid().ToString("N")[..6]}-{i}")
            .First(g => cluster.Partition("__consumer_offsets", TransactionCoordinator.PartitionFor(g, offsetParts)).Leader is var l && l > 0 && l != broker);
    }

    private static long Committed(IConsumer<byte[], byte[]> consumer, TopicPartition tp)
    {
        // Committed offsets become visible once the marker is replicated and replayed; poll briefly.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        long last = -1;
        while (DateTime.UtcNow < deadline)
        {
            last = consumer.Committed([tp], TimeSpan.FromSeconds(10))[0].Offset.Value;
            if (last >= 0) return last;
            Thread.Sleep(100);
        }
        return last;
    }
}
