using Confluent.Kafka;
using Kayak.Broker.Cluster;
using Kayak.IntegrationTests.Drivers;
using Kayak.IntegrationTests.Infrastructure;
using NUnit.Framework;

namespace Kayak.IntegrationTests;

/// <summary>
/// Issue 14, coordinator failover with Confluent.Kafka 2.16 on a 3-broker in-process <see cref="KafkaCluster"/>: a
/// consumer group's committed offsets survive the group coordinator's broker being killed (the new leader of the
/// group's __consumer_offsets partition reloads it, and the commit was in the ISR before it was acknowledged).
/// </summary>
[TestFixture]
public sealed class ClusterCoordinatorFailoverTests : ScratchDirectoryTest
{
    public ClusterCoordinatorFailoverTests() : base("coordfailover") { }

    [Test]
    [CancelAfter(120_000)]
    public async Task ConsumerGroupResumesFromItsCommittedOffsetAfterTheCoordinatorIsKilled()
    {
        await using var cluster = new KafkaCluster(new KafkaClusterOptions { Brokers = 3, DataDir = Dir, Port = 0 });
        await cluster.StartAsync(Token);
        const string topic = "failover-offsets";
        string group = "failover-group-" + Guid.NewGuid().ToString("N");
        await cluster.CreateTopicAsync(topic, 1, 3);
        using (var producer = ConfluentClients.Producer(cluster.BootstrapServers, c => c.Acks = Acks.All))
            for (int i = 0; i < 10; i++)
                await producer.ProduceAsync(topic, new Message<byte[], byte[]> { Key = ConfluentClients.Utf8($"k{i}")!, Value = ConfluentClients.Utf8($"v{i}")! }, Token);

        using (var consumer = ConfluentClients.Consumer(cluster.BootstrapServers, c => c.GroupId = group))
        {
            consumer.Subscribe(topic);
            for (int i = 0; i < 4; i++)
                Assert.That(ConfluentClients.FromUtf8(consumer.Consume(Token).Message.Value), Is.EqualTo($"v{i}"));
            consumer.Commit(); // offset 4, acknowledged once the ISR has it
            consumer.Close();
        }

        int partition = Kayak.Coordinator.Transactions.TransactionCoordinator.PartitionFor(group, 50);
        int coordinator = cluster.Partition("__consumer_offsets", partition).Leader;
        await cluster.CrashBrokerAsync(coordinator);
        string bootstrap = string.Join(",", cluster.Brokers.Where(b => b.Config.NodeId != coordinator).Select(b => b.BootstrapServers));

        using var resumed = ConfluentClients.Consumer(bootstrap, c => c.GroupId = group);
        resumed.Subscribe(topic);
        var first = resumed.Consume(Token);
        Assert.That(first.Offset.Value, Is.EqualTo(4), "resumed from the committed offset");
        Assert.That(ConfluentClients.FromUtf8(first.Message.Value), Is.EqualTo("v4"));
        Assert.That(cluster.Partition("__consumer_offsets", partition).Leader, Is.Not.EqualTo(coordinator));
        resumed.Close();
    }
}
