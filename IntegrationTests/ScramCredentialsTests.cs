using System.Text;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Kayak.Broker;
using Kayak.IntegrationTests.Drivers;
using Kayak.IntegrationTests.Infrastructure;
using NUnit.Framework;

namespace Kayak.IntegrationTests;

/// <summary>
/// Issue 12: SCRAM credentials managed with Confluent.Kafka 2.16's AdminClient (KIP-554: AlterUserScramCredentialsAsync,
/// DescribeUserScramCredentialsAsync) on a broker with PLAINTEXT and SASL_PLAINTEXT listeners: a SCRAM-SHA-512 producer
/// authenticates with the credential just created, a deleted credential is refused, and the credentials survive a
/// restart on the same log dir. Kafka's per-user errors reach the client as its error codes.
/// </summary>
[TestFixture]
[NonParallelizable]
[CancelAfter(120_000)]
public sealed class ScramCredentialsTests
{
    private static CancellationToken Token => TestContext.CurrentContext.CancellationToken;

    [OneTimeSetUp]
    public void LoadNative() => NativeKafka.EnsureLoaded();

    private static async Task<KafkaBroker> StartAsync(string dir)
    {
        var options = new KafkaBrokerOptions { DataDir = dir };
        options.Properties["listeners"] = "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0";
        options.Properties["sasl.enabled.mechanisms"] = "SCRAM-SHA-256,SCRAM-SHA-512";
        options.Properties["sasl.jaas.config"] = "org.apache.kafka.common.security.scram.ScramLoginModule required;";
        var broker = new KafkaBroker(options);
        await broker.StartAsync(Token);
        return broker;
    }

    private static string Endpoint(KafkaBroker b, string name) => b.Listeners.First(l => l.Name == name) is var l ? $"{l.Host}:{l.Port}" : "";

    private static UserScramCredentialUpsertion Upsert(string user, ScramMechanism mechanism, string password, int iterations = 8192) => new()
    {
        User = user,
        ScramCredentialInfo = new ScramCredentialInfo { Mechanism = mechanism, Iterations = iterations },
        Password = Encoding.UTF8.GetBytes(password),
    };

    /// <summary>Produces one record as <paramref name="user"/> with SCRAM-SHA-512; the delivery error code, or NoError.</summary>
    private static async Task<ErrorCode> ProduceAsAsync(KafkaBroker broker, string topic, string user, string password)
    {
        using var producer = ConfluentClients.Producer(Endpoint(broker, "SASL_PLAINTEXT"), c =>
        {
            c.SecurityProtocol = SecurityProtocol.SaslPlaintext;
            c.SaslMechanism = SaslMechanism.ScramSha512;
            c.SaslUsername = user;
            c.SaslPassword = password;
            c.MessageTimeoutMs = 8000;
        });
        try
        {
            var d = await producer.ProduceAsync(topic, new Message<byte[], byte[]> { Key = [], Value = Encoding.UTF8.GetBytes(user) }, Token);
            return d.Status == PersistenceStatus.Persisted ? ErrorCode.NoError : ErrorCode.Unknown;
        }
        catch (ProduceException<byte[], byte[]> e) { return e.Error.Code; }
    }

    [Test]
    public async Task Confluent_CreatesDescribesAndDeletesCredentials_UsedByScramProducers_AcrossARestart()
    {
        var dir = Path.Combine(Path.GetTempPath(), "kayak-itest", "scram-" + Guid.NewGuid().ToString("N"));
        string topic = "scram-admin-" + Guid.NewGuid().ToString("N");
        try
        {
            await using (var broker = await StartAsync(dir))
            {
                using var admin = ConfluentClients.Admin(Endpoint(broker, "PLAINTEXT"));
                await admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = 1, ReplicationFactor = 1 }]);
                Assert.That(await ProduceAsAsync(broker, topic, "carol", "carol-secret"), Is.Not.EqualTo(ErrorCode.NoError), "no credential yet");

                await admin.AlterUserScramCredentialsAsync(
                [
                    Upsert("carol", ScramMechanism.ScramSha512, "carol-secret"),
                    Upsert("dave", ScramMechanism.ScramSha512, "dave-secret", 4096),
                ]);
                await admin.AlterUserScramCredentialsAsync([Upsert("dave", ScramMechanism.ScramSha256, "dave-secret-256", 10000)]);

                var described = await admin.DescribeUserScramCredentialsAsync(["carol", "dave"]);
                var byUser = described.UserScramCredentialsDescriptions.ToDictionary(u => u.User);
                Assert.That(byUser["carol"].ScramCredentialInfos.Select(i => (i.Mechanism, i.Iterations)),
                    Is.EqualTo(new[] { (ScramMechanism.ScramSha512, 8192) }));
                Assert.That(byUser["dave"].ScramCredentialInfos.Select(i => (i.Mechanism, i.Iterations)),
                    Is.EquivalentTo(new[] { (ScramMechanism.ScramSha256, 10000), (ScramMechanism.ScramSha512, 4096) }));

                Assert.That(await ProduceAsAsync(broker, topic, "carol", "carol-secret"), Is.EqualTo(ErrorCode.NoError));
                Assert.That(await ProduceAsAsync(broker, topic, "carol", "wrong"), Is.Not.EqualTo(ErrorCode.NoError));

                // Kafka's per-user errors: an unknown user on describe, a credential that does not exist on delete,
                // too few iterations on upsert.
                var unknown = Assert.ThrowsAsync<DescribeUserScramCredentialsException>(() => admin.DescribeUserScramCredentialsAsync(["nobody"]));
                Assert.That(unknown!.Results.UserScramCredentialsDescriptions.Single().Error.Code, Is.EqualTo(ErrorCode.ResourceNotFound));
                var bad = Assert.ThrowsAsync<AlterUserScramCredentialsException>(() => admin.AlterUserScramCredentialsAsync(
                [
                    new UserScramCredentialDeletion { User = "nobody", Mechanism = ScramMechanism.ScramSha256 },
                    Upsert("erin", ScramMechanism.ScramSha256, "x", 4095),
                ]));
                var errors = bad!.Results.ToDictionary(r => r.User, r => r.Error.Code);
                Assert.That(errors["nobody"], Is.EqualTo(ErrorCode.ResourceNotFound));
                Assert.That(errors["erin"], Is.EqualTo(ErrorCode.UnacceptableCredential));

                await admin.AlterUserScramCredentialsAsync([new UserScramCredentialDeletion { User = "dave", Mechanism = ScramMechanism.ScramSha512 }]);
                Assert.That(await ProduceAsAsync(broker, topic, "dave", "dave-secret"), Is.Not.EqualTo(ErrorCode.NoError), "deleted credential");
            }

            await using (var broker = await StartAsync(dir))
            {
                Assert.That(await ProduceAsAsync(broker, topic, "carol", "carol-secret"), Is.EqualTo(ErrorCode.NoError), "after a restart");
                Assert.That(await ProduceAsAsync(broker, topic, "dave", "dave-secret"), Is.Not.EqualTo(ErrorCode.NoError), "still deleted");
                using var admin = ConfluentClients.Admin(Endpoint(broker, "PLAINTEXT"));
                var all = await admin.DescribeUserScramCredentialsAsync([]);
                Assert.That(all.UserScramCredentialsDescriptions.Select(u => u.User), Is.EquivalentTo(new[] { "carol", "dave" }));
                var dave = all.UserScramCredentialsDescriptions.Single(u => u.User == "dave");
                Assert.That(dave.ScramCredentialInfos.Select(i => i.Mechanism), Is.EqualTo(new[] { ScramMechanism.ScramSha256 }));
                // Exactly the records of the authenticated producers: carol before and after the restart.
                var consumed = await Task.Run(() => ConfluentClients.ConsumeAll(Endpoint(broker, "PLAINTEXT"), topic, TimeSpan.FromSeconds(30),
                    cancellationToken: Token, partitionCount: 1), Token);
                Assert.That(consumed.Select(r => r.Value), Is.EqualTo(new[] { "carol", "carol" }));
            }
        }
        finally
        {
            try { Directory.Delete(dir, true); } catch (IOException) { }
        }
    }
}
