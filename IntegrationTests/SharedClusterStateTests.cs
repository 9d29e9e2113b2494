using System.Text;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Kayak.Broker.Cluster;
using Kayak.IntegrationTests.Drivers;
using Kayak.IntegrationTests.Infrastructure;
using NUnit.Framework;

namespace Kayak.IntegrationTests;

/// <summary>
/// Issue 14 with issue 12: what Kafka keeps in its metadata log is the cluster's, not one broker's. Through
/// Confluent.Kafka 2.16's AdminClient (which sends each admin request to a broker of its choosing) alice creates an
/// ACL for bob and a SCRAM credential for carol (and the ACLs she and the --add-scram seeded erin need); bob (PLAIN),
/// carol and erin (SCRAM-SHA-256) then write to a topic whose three partitions are led by three different brokers —
/// before and after a restart of the whole cluster. With per-broker copies two of the three leaders refused them.
/// The topic has three replicas and min.insync.replicas=3 and the producers acks=all, so each write also proves the
/// followers authenticated to their leaders with SCRAM as the cluster's seeded User:broker.
/// Client quotas and cluster-wide broker defaults (which Confluent.Kafka cannot address: it refuses the BROKER
/// resource "") are checked over the wire in Broker/Tests/ClusterSharedStateTests.
/// </summary>
[TestFixture]
[CancelAfter(180_000)]
public sealed class SharedClusterStateTests : ScratchDirectoryTest
{
    public SharedClusterStateTests() : base("shared-cluster-state") { }

    [OneTimeSetUp]
    public void Load() => NativeKafka.EnsureLoaded();

    private const string Topic = "shared";

    private KafkaCluster Cluster()
    {
        var options = new KafkaClusterOptions { Brokers = 3, DataDir = Dir, PlacementSeed = 1 };
        var p = options.Properties;
        p["listeners"] = "SASL_PLAINTEXT://127.0.0.1:0";
        p["inter.broker.listener.name"] = "SASL_PLAINTEXT";
        p["sasl.enabled.mechanisms"] = "PLAIN,SCRAM-SHA-256";
        // The brokers authenticate to each other with SCRAM as a credential seeded for the cluster.
        p["sasl.mechanism.inter.broker.protocol"] = "SCRAM-SHA-256";
        p["listener.name.sasl_plaintext.plain.sasl.jaas.config"] = "org.apache.kafka.common.security.plain.PlainLoginModule required " +
            "username=\"broker\" password=\"broker-secret\" user_broker=\"broker-secret\" user_alice=\"alice-secret\" user_bob=\"bob-secret\";";
        p["listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config"] =
            "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"broker\" password=\"broker-secret\";";
        p["authorizer.class.name"] = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";
        p["super.users"] = "User:broker;User:alice";
        // The seed is applied once, when the root has no credentials: the restarted cluster must keep erin anyway.
        options.ScramCredentials.Add("SCRAM-SHA-256=[name=erin,password=erin-secret]");
        options.ScramCredentials.Add("SCRAM-SHA-256=[name=broker,password=broker-secret]");
        return new KafkaCluster(options);
    }

    [Test]
    public async Task AclsAndScramCredentials_MadeThroughAnyBroker_HoldOnEveryBroker_AndAfterARestart()
    {
        await using (var cluster = Cluster())
        {
            await cluster.StartAsync(Token);
            using var admin = Admin(cluster);
            await SecuredClusterTests.CreateReplicatedTopicAsync(cluster.BootstrapServers, Plain("alice"), Topic);
            Assert.That(Enumerable.Range(0, 3).Select(p => cluster.Partition(Topic, p).Leader), Is.Unique,
                "each partition led by another broker");

            Assert.That(await ProduceToEachPartitionAsync(cluster, Plain("bob")), Is.All.EqualTo(ErrorCode.TopicAuthorizationFailed), "no ACL yet");
            await admin.CreateAclsAsync([
                AclTests.Allow(ResourceType.Topic, Topic, AclOperation.Write),
                AclTests.Allow(ResourceType.Topic, Topic, AclOperation.Write, principal: "User:carol"),
                AclTests.Allow(ResourceType.Topic, Topic, AclOperation.Write, principal: "User:erin"),
            ]);
            await admin.AlterUserScramCredentialsAsync([new UserScramCredentialUpsertion
            {
                User = "carol",
                ScramCredentialInfo = new ScramCredentialInfo { Mechanism = ScramMechanism.ScramSha256, Iterations = 4096 },
                Password = Encoding.UTF8.GetBytes("carol-secret"),
            }]);
            await AssertSharedAsync(cluster);
        }

        // The whole cluster again on the same root: the ACLs and credentials are read from it, not rebuilt per broker.
        await using (var cluster = Cluster())
        {
            await cluster.StartAsync(Token);
            await AssertSharedAsync(cluster);
        }
    }

    private async Task AssertSharedAsync(KafkaCluster cluster)
    {
        Assert.That(await ProduceToEachPartitionAsync(cluster, Plain("bob")), Is.All.EqualTo(ErrorCode.NoError), "bob's ACL on every leader");
        Assert.That(await ProduceToEachPartitionAsync(cluster, Scram("carol")), Is.All.EqualTo(ErrorCode.NoError), "carol's credential on every leader");
        Assert.That(await ProduceToEachPartitionAsync(cluster, Scram("erin")), Is.All.EqualTo(ErrorCode.NoError), "the seeded credential on every leader");
    }

    private static IAdminClient Admin(KafkaCluster cluster)
    {
        var config = ConfluentClients.AdminConfig(cluster.BootstrapServers);
        AclTests.As(config, "alice");
        return new AdminClientBuilder(config).Build();
    }

    private static Action<ClientConfig> Plain(string user) => c => AclTests.As(c, user);

    private static Action<ClientConfig> Scram(string user) => c =>
    {
        c.SecurityProtocol = SecurityProtocol.SaslPlaintext;
        c.SaslMechanism = SaslMechanism.ScramSha256;
        c.SaslUsername = user;
        c.SaslPassword = user + "-secret";
    };

    /// <summary>One record to each partition with a new producer; the delivery error code per partition.</summary>
    private async Task<ErrorCode[]> ProduceToEachPartitionAsync(KafkaCluster cluster, Action<ClientConfig> credentials)
    {
        using var producer = ConfluentClients.Producer(cluster.BootstrapServers, c => { credentials(c); c.MessageTimeoutMs = 10_000; });
        var codes = new ErrorCode[3];
        for (int p = 0; p < 3; p++)
        {
            try
            {
                await producer.ProduceAsync(new TopicPartition(Topic, p), new Message<byte[], byte[]> { Value = ConfluentClients.Utf8("v" + p)! }, Token);
            }
            catch (ProduceException<byte[], byte[]> e) { codes[p] = e.Error.Code; }
        }
        return codes;
    }
}
