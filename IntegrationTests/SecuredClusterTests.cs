using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Kayak.Broker.Cluster;
using Kayak.IntegrationTests.Drivers;
using Kayak.IntegrationTests.Infrastructure;
using NUnit.Framework;

namespace Kayak.IntegrationTests;

/// <summary>
/// Issue 14 with issue 12: a 3-broker cluster configured as a secured Kafka cluster is — one SASL_PLAINTEXT listener,
/// inter.broker.listener.name naming it, sasl.mechanism.inter.broker.protocol=PLAIN with the brokers' own
/// username/password in the JAAS entry, StandardAuthorizer with the broker principal in super.users (it needs
/// CLUSTER_ACTION for follower fetches, WriteTxnMarkers and AddPartitionsToTxn verification). Confluent.Kafka 2.16 as
/// alice writes acks=all to an RF-3 topic with min.insync.replicas=3, which succeeds only when both followers fetch as
/// the broker principal; a transaction over three leaders commits (markers and verification between brokers).
/// </summary>
[TestFixture]
[CancelAfter(180_000)]
public sealed class SecuredClusterTests : ScratchDirectoryTest
{
    public SecuredClusterTests() : base("secured-cluster") { }

    [OneTimeSetUp]
    public void Load() => NativeKafka.EnsureLoaded();

    private KafkaCluster Start(string mechanism)
    {
        var options = new KafkaClusterOptions { Brokers = 3, DataDir = Dir };
        var p = options.Properties;
        p["listeners"] = "SASL_PLAINTEXT://127.0.0.1:0";
        p["inter.broker.listener.name"] = "SASL_PLAINTEXT";
        p["sasl.enabled.mechanisms"] = "PLAIN";
        p["sasl.mechanism.inter.broker.protocol"] = mechanism;
        p["listener.name.sasl_plaintext.plain.sasl.jaas.config"] = "org.apache.kafka.common.security.plain.PlainLoginModule required " +
            "username=\"broker\" password=\"broker-secret\" user_broker=\"broker-secret\" user_alice=\"alice-secret\";";
        p["authorizer.class.name"] = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";
        p["super.users"] = "User:broker;User:alice";
        p["group.initial.rebalance.delay.ms"] = "0";
        p["transaction.state.log.min.isr"] = "1";
        return new KafkaCluster(options);
    }

    private static void AsAlice(ClientConfig c) => AclTests.As(c, "alice");

    [Test]
    public async Task BrokersAuthenticateToEachOther_AcksAllOverThreeReplicasAndATransactionAcrossLeaders()
    {
        await using var cluster = Start("PLAIN");
        await cluster.StartAsync(Token);
        string bootstrap = cluster.BootstrapServers;
        var admin = ConfluentClients.AdminConfig(bootstrap);
        AsAlice(admin);
        using (var a = new AdminClientBuilder(admin).Build())
            await a.CreateTopicsAsync([
                new TopicSpecification { Name = "secured", NumPartitions = 3, ReplicationFactor = 3, Configs = new() { ["min.insync.replicas"] = "3" } },
            ]);

        using (var producer = ConfluentClients.Producer(bootstrap, c => { AsAlice(c); c.Acks = Acks.All; c.MessageTimeoutMs = 60_000; }))
        {
            for (int i = 0; i < 90; i++)
                producer.Produce(new TopicPartition("secured", i % 3), new Message<byte[], byte[]> { Value = ConfluentClients.Utf8("v" + i)! });
            Assert.That(producer.Flush(TimeSpan.FromSeconds(60)), Is.EqualTo(0), "every acks=all record delivered");
        }
        // Every replica holds every record: the followers fetched as User:broker.
        foreach (var b in cluster.Brokers)
            for (int p = 0; p < 3; p++)
                Assert.That(b.State.Catalog.Lookup("secured").Topic!.GetPartition(p)!.LogEndOffset, Is.EqualTo(30), $"broker {b.Config.NodeId} partition {p}");

        using (var txn = ConfluentClients.Producer(bootstrap, c =>
               {
                   AsAlice(c);
                   c.TransactionalId = "secured-txn";
                   c.EnableIdempotence = true;
                   c.Acks = Acks.All;
                   c.MessageTimeoutMs = 60_000;
               }))
        {
            txn.InitTransactions(TimeSpan.FromSeconds(60));
            txn.BeginTransaction();
            for (int p = 0; p < 3; p++)
                txn.Produce(new TopicPartition("secured", p), new Message<byte[], byte[]> { Value = ConfluentClients.Utf8("t" + p)! });
            txn.CommitTransaction(TimeSpan.FromSeconds(60));
        }
        // read_committed sees the transaction's records: each partition's leader got its marker from the coordinator.
        using var consumer = ConfluentClients.Consumer(bootstrap, c => { AsAlice(c); c.IsolationLevel = IsolationLevel.ReadCommitted; });
        consumer.Assign(Enumerable.Range(0, 3).Select(p => new TopicPartitionOffset("secured", p, Offset.Beginning)));
        var read = new List<string>();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (read.Count < 93 && DateTime.UtcNow < deadline)
        {
            Token.ThrowIfCancellationRequested();
            var r = consumer.Consume(TimeSpan.FromMilliseconds(200));
            if (r is not null && !r.IsPartitionEOF) read.Add(ConfluentClients.FromUtf8(r.Message.Value)!);
        }
        consumer.Close();
        Assert.That(read, Has.Count.EqualTo(93), "90 records and the committed transaction's 3");
        Assert.That(read, Is.SupersetOf(new[] { "t0", "t1", "t2" }));
        foreach (var b in cluster.Brokers)
            for (int p = 0; p < 3; p++)
            {
                var log = b.State.Catalog.Lookup("secured").Topic!.GetPartition(p)!;
                if (cluster.Partition("secured", p).Leader == b.Config.NodeId)
                    Assert.That(log.LastStableOffset, Is.EqualTo(log.HighWatermark), $"partition {p}: the marker reached its leader");
            }
    }
}
