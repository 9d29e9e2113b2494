using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Kayak.Broker.Cluster;
using Kayak.IntegrationTests.Drivers;
using Kayak.IntegrationTests.Infrastructure;
using Kayak.Tests.Tls;
using NUnit.Framework;

namespace Kayak.IntegrationTests;

/// <summary>
/// Issue 14 with issue 12: a 3-broker cluster configured as a secured Kafka cluster is — one SASL_PLAINTEXT listener,
/// inter.broker.listener.name naming it, sasl.mechanism.inter.broker.protocol=PLAIN with the brokers' own
/// username/password in the JAAS entry, StandardAuthorizer with the broker principal in super.users (it needs
/// CLUSTER_ACTION for follower fetches, WriteTxnMarkers and AddPartitionsToTxn verification). Confluent.Kafka 2.16 as
/// alice writes acks=all to an RF-3 topic with min.insync.replicas=3, which succeeds only when both followers fetch as
/// the broker principal; a transaction over three leaders commits (markers and verification between brokers).
/// The same over TLS between brokers: an SSL inter-broker listener with ssl.client.auth=required, where the principal
/// the leaders authorize is the brokers' certificate (User:CN=kayak-broker,OU=tests,O=Kayak, Kafka's default
/// ssl.principal.mapping.rules), refused without it in super.users; and SASL_SSL, PLAIN inside TLS.
/// </summary>
[TestFixture]
[CancelAfter(180_000)]
public sealed class SecuredClusterTests : ScratchDirectoryTest
{
    public SecuredClusterTests() : base("secured-cluster") { }

    private const string BrokerPrincipal = "User:" + TestCertificates.BrokerSubject;
    private const string ClientPrincipal = "User:" + TestCertificates.ClientSubject;
    private TestCertificates _certs = null!;

    [OneTimeSetUp]
    public void Load()
    {
        NativeKafka.EnsureLoaded();
        _certs = TestCertificates.Create();
    }

    [OneTimeTearDown]
    public void DeleteCertificates() => _certs.Dispose();

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

    /// <summary>
    /// One SSL listener for clients and brokers (listener.name.ssl.* as Kafka reads the inter-broker listener's
    /// settings for both sides), client certificates required, StandardAuthorizer with <paramref name="superUsers"/>
    /// and no allow.everyone.if.no.acl.found: the brokers' fetches are authorized only as their certificate's principal.
    /// </summary>
    private KafkaCluster StartSsl(string superUsers)
    {
        var options = new KafkaClusterOptions { Brokers = 3, DataDir = Dir };
        var p = options.Properties;
        p["listeners"] = "SSL://127.0.0.1:0";
        p["inter.broker.listener.name"] = "SSL";
        foreach (var (k, v) in _certs.Pkcs12Keystore("listener.name.ssl.", broker: true)) p[k] = v;
        p["listener.name.ssl.ssl.truststore.location"] = _certs.CaPem;
        p["listener.name.ssl.ssl.truststore.type"] = "PEM";
        p["listener.name.ssl.ssl.client.auth"] = "required";
        p["authorizer.class.name"] = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";
        p["super.users"] = superUsers;
        return new KafkaCluster(options);
    }

    /// <summary>Confluent.Kafka over TLS with the client certificate (User:CN=kayak-client,OU=tests,O=Kayak).</summary>
    private void WithClientCertificate(ClientConfig c)
    {
        c.SecurityProtocol = SecurityProtocol.Ssl;
        c.SslCaLocation = _certs.CaPem;
        c.SslCertificateLocation = _certs.ClientCertPem;
        c.SslKeyLocation = _certs.ClientKeyPem;
    }

    /// <summary>3 partitions, 3 replicas, min.insync.replicas=3: an acks=all write is acknowledged only once both followers have it.</summary>
    internal static async Task CreateReplicatedTopicAsync(string bootstrap, Action<ClientConfig> security, string topic)
    {
        var admin = ConfluentClients.AdminConfig(bootstrap);
        security(admin);
        using var a = new AdminClientBuilder(admin).Build();
        await a.CreateTopicsAsync([
            new TopicSpecification { Name = topic, NumPartitions = 3, ReplicationFactor = 3, Configs = new() { ["min.insync.replicas"] = "3" } },
        ]);
    }

    /// <summary>
    /// acks=all to an RF-3 topic with min.insync.replicas=3 (acknowledged only once both followers fetched the record
    /// over the inter-broker listener), every replica holding every record, and a consumer reading them all back.
    /// </summary>
    private async Task ReplicatesAndReadsBackAsync(KafkaCluster cluster, Action<ClientConfig> security, string topic)
    {
        const int Records = 60;
        string bootstrap = cluster.BootstrapServers;
        await CreateReplicatedTopicAsync(bootstrap, security, topic);
        using (var producer = ConfluentClients.Producer(bootstrap, c => { security(c); c.Acks = Acks.All; c.MessageTimeoutMs = 60_000; }))
        {
            int failed = 0;
            for (int i = 0; i < Records; i++)
                producer.Produce(new TopicPartition(topic, i % 3), new Message<byte[], byte[]> { Value = ConfluentClients.Utf8("v" + i)! },
                    d => { if (d.Error.IsError) Interlocked.Increment(ref failed); });
            Assert.That(producer.Flush(TimeSpan.FromSeconds(60)), Is.EqualTo(0), "every acks=all record delivered");
            Assert.That(failed, Is.EqualTo(0), "no delivery failed");
        }
        foreach (var b in cluster.Brokers)
            for (int p = 0; p < 3; p++)
                Assert.That(b.State.Catalog.Lookup(topic).Topic!.GetPartition(p)!.LogEndOffset, Is.EqualTo(Records / 3), $"broker {b.Config.NodeId} partition {p}");
        var consumed = await Task.Run(() => ConfluentClients.ConsumeAll(bootstrap, topic, TimeSpan.FromSeconds(60), c => security(c), Token, partitionCount: 3), Token);
        var values = new HashSet<string>();
        foreach (var r in consumed) values.Add(r.Value!);
        Assert.That(values, Has.Count.EqualTo(Records), "every record read back once");
    }

    [Test]
    public async Task SslBetweenBrokers_FollowersFetchAsTheBrokerCertificatesPrincipal()
    {
        await using var cluster = StartSsl($"{BrokerPrincipal};{ClientPrincipal}");
        await cluster.StartAsync(Token);
        await ReplicatesAndReadsBackAsync(cluster, WithClientCertificate, "tls-replicated");
    }

    [Test]
    public async Task SslBetweenBrokers_WithoutTheBrokerPrincipalInSuperUsers_NothingReplicates()
    {
        // The control for the test above: the same cluster, only the client a super user. The followers' TLS
        // handshakes succeed, but their fetches are CLUSTER_AUTHORIZATION_FAILED, so acks=all never completes.
        await using var cluster = StartSsl(ClientPrincipal);
        await cluster.StartAsync(Token);
        string bootstrap = cluster.BootstrapServers;
        await CreateReplicatedTopicAsync(bootstrap, WithClientCertificate, "tls-unreplicated");
        using (var producer = ConfluentClients.Producer(bootstrap, c => { WithClientCertificate(c); c.Acks = Acks.All; c.MessageTimeoutMs = 8_000; c.RequestTimeoutMs = 5_000; }))
        {
            var e = Assert.ThrowsAsync<ProduceException<byte[], byte[]>>(() => producer.ProduceAsync(new TopicPartition("tls-unreplicated", 0),
                new Message<byte[], byte[]> { Value = ConfluentClients.Utf8("never acknowledged")! }, Token))!;
            TestContext.Out.WriteLine($"acks=all without replication: {e.Error.Code} {e.Error.Reason}");
        }
        int leader = cluster.Partition("tls-unreplicated", 0).Leader;
        foreach (var b in cluster.Brokers)
            if (b.Config.NodeId != leader)
                Assert.That(b.State.Catalog.Lookup("tls-unreplicated").Topic!.GetPartition(0)!.LogEndOffset, Is.Zero, $"follower {b.Config.NodeId} fetched nothing");
    }

    [Test]
    public async Task SaslSslBetweenBrokers_PlainInsideTls()
    {
        var options = new KafkaClusterOptions { Brokers = 3, DataDir = Dir };
        var p = options.Properties;
        p["listeners"] = "SASL_SSL://127.0.0.1:0";
        p["security.inter.broker.protocol"] = "SASL_SSL";
        foreach (var (k, v) in _certs.Pkcs12Keystore(broker: true)) p[k] = v; // plain ssl.* keys: every listener's
        p["ssl.truststore.location"] = _certs.CaPem;
        p["ssl.truststore.type"] = "PEM";
        p["sasl.enabled.mechanisms"] = "PLAIN";
        p["sasl.mechanism.inter.broker.protocol"] = "PLAIN";
        p["listener.name.sasl_ssl.plain.sasl.jaas.config"] = "org.apache.kafka.common.security.plain.PlainLoginModule required " +
            "username=\"broker\" password=\"broker-secret\" user_broker=\"broker-secret\" user_alice=\"alice-secret\";";
        p["authorizer.class.name"] = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";
        p["super.users"] = "User:broker;User:alice";
        await using var cluster = new KafkaCluster(options);
        await cluster.StartAsync(Token);
        await ReplicatesAndReadsBackAsync(cluster, c =>
        {
            AsAlice(c);
            c.SecurityProtocol = SecurityProtocol.SaslSsl;
            c.SslCaLocation = _certs.CaPem;
        }, "sasl-ssl-replicated");
    }

    [Test]
    public async Task BrokersAuthenticateToEachOther_AcksAllOverThreeReplicasAndATransactionAcrossLeaders()
    {
        await using var cluster = Start("PLAIN");
        await cluster.StartAsync(Token);
        string bootstrap = cluster.BootstrapServers;
        await CreateReplicatedTopicAsync(bootstrap, AsAlice, "secured");

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
