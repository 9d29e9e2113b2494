using System.Text;
using Kayak.Broker.Config;
using Kayak.Broker.Network.Sasl;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using NUnit.Framework;
using Deletion = Kayak.Protocol.Messages.AlterUserScramCredentialsRequest.ScramCredentialDeletion;
using Upsertion = Kayak.Protocol.Messages.AlterUserScramCredentialsRequest.ScramCredentialUpsertion;

namespace Kayak.Broker.Tests;

/// <summary>
/// Issue 12, part 3: DescribeUserScramCredentials (50) and AlterUserScramCredentials (51) at the protocol level, with
/// Kafka 4.0's per-user errors (ScramControlManager, ScramImage), credentials usable by the next SCRAM authentication,
/// and kept across restarts in the first log dir.
/// </summary>
[CancelAfter(60_000)]
public class ScramCredentialsApiTests
{
    private const sbyte Sha256 = 1, Sha512 = 2;

    private static KafkaBrokerOptions Options(string dir)
    {
        var o = new KafkaBrokerOptions { DataDir = dir };
        o.Properties["listeners"] = "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0";
        o.Properties["listener.security.protocol.map"] = "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT";
        o.Properties["sasl.enabled.mechanisms"] = "SCRAM-SHA-256,SCRAM-SHA-512";
        o.Properties["sasl.jaas.config"] = "org.apache.kafka.common.security.scram.ScramLoginModule required;";
        o.ScramCredentials.Add("SCRAM-SHA-256=[name=alice,password=alice-secret]");
        return o;
    }

    private static string NewDir()
    {
        var dir = Path.Combine(Path.GetTempPath(), "kayak-scram-api-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    private static async Task<KafkaBroker> StartAsync(string dir, Action<KafkaBrokerOptions>? configure = null)
    {
        var o = Options(dir);
        configure?.Invoke(o);
        var broker = new KafkaBroker(o);
        await broker.StartAsync();
        return broker;
    }

    private static string Endpoint(KafkaBroker b, string listener) => b.Listeners.First(l => l.Name == listener) is var l ? $"{l.Host}:{l.Port}" : "";

    internal static Upsertion Upsert(string user, sbyte mechanism, string password, int iterations = 4096)
    {
        var salt = Encoding.UTF8.GetBytes("salt-of-" + user);
        var m = ScramMechanism.FromType(mechanism) ?? ScramMechanism.Sha256;
        return new Upsertion { Name = user, Mechanism = mechanism, Iterations = iterations, Salt = salt, SaltedPassword = m.SaltedPassword(password, salt, Math.Max(1, iterations)) };
    }

    private static Task<AlterUserScramCredentialsResponse> AlterAsync(RawClient c, Deletion[] deletions, Upsertion[] upsertions) =>
        c.SendAsync<AlterUserScramCredentialsResponse>(new AlterUserScramCredentialsRequest { Deletions = deletions.ToList(), Upsertions = upsertions.ToList() }, 0);

    private static Task<DescribeUserScramCredentialsResponse> DescribeAsync(RawClient c, params string[]? users) =>
        c.SendAsync<DescribeUserScramCredentialsResponse>(new DescribeUserScramCredentialsRequest
        {
            Users = users?.Select(u => new DescribeUserScramCredentialsRequest.UserName { Name = u }).ToList(),
        }, 0);

    /// <summary>A full SCRAM exchange (RFC 5802) on a new connection to the SASL listener; the SaslAuthenticate error code.</summary>
    internal static async Task<ErrorCode> ScramLoginAsync(string bootstrap, string mechanismName, string user, string password)
    {
        using var c = await RawClient.ConnectAsync(bootstrap);
        var mechanism = ScramMechanism.Find(mechanismName)!;
        await c.SendAsync<SaslHandshakeResponse>(new SaslHandshakeRequest { Mechanism = mechanismName }, 1);
        string clientFirstBare = $"n={user},r=clientnonce0123456789";
        var first = await c.SendAsync<SaslAuthenticateResponse>(new SaslAuthenticateRequest { AuthBytes = Encoding.UTF8.GetBytes("n,," + clientFirstBare) }, 2);
        if (first.ErrorCode != 0) return (ErrorCode)first.ErrorCode;
        string serverFirst = Encoding.UTF8.GetString(first.AuthBytes);
        var fields = serverFirst.Split(',').ToDictionary(p => p[..1], p => p[2..]);
        var salted = mechanism.SaltedPassword(password, Convert.FromBase64String(fields["s"]), int.Parse(fields["i"]));
        string withoutProof = "c=biws,r=" + fields["r"];
        var authMessage = Encoding.UTF8.GetBytes(clientFirstBare + "," + serverFirst + "," + withoutProof);
        var clientKey = mechanism.ClientKey(salted);
        var signature = mechanism.Hmac(mechanism.H(clientKey), authMessage);
        var proof = clientKey.Select((b, i) => (byte)(b ^ signature[i])).ToArray();
        var final = await c.SendAsync<SaslAuthenticateResponse>(new SaslAuthenticateRequest
        {
            AuthBytes = Encoding.UTF8.GetBytes(withoutProof + ",p=" + Convert.ToBase64String(proof)),
        }, 2);
        return (ErrorCode)final.ErrorCode;
    }

    [Test]
    public async Task Alter_ValidatesPerUser_WithKafkasErrorCodesAndMessages()
    {
        var dir = NewDir();
        await using var broker = await StartAsync(dir);
        using var c = await RawClient.ConnectAsync(Endpoint(broker, "PLAINTEXT"));
        var response = await AlterAsync(c,
            [
                new Deletion { Name = "alice", Mechanism = Sha256 }, new Deletion { Name = "alice", Mechanism = Sha256 },
                new Deletion { Name = "ghost", Mechanism = Sha256 },
                new Deletion { Name = "mixed", Mechanism = Sha256 },
                new Deletion { Name = "", Mechanism = Sha256 },
            ],
            [
                Upsert("mixed", Sha512, "x"),
                Upsert("few", Sha256, "x", 4095), Upsert("many", Sha512, "x", 16385),
                Upsert("unknown-mechanism", 3, "x"), Upsert("zero-mechanism", 0, "x"),
                Upsert("bob", Sha512, "bob-secret", 16384),
            ]);
        var byUser = response.Results.ToDictionary(r => r.User, r => ((ErrorCode)r.ErrorCode, r.ErrorMessage));
        const string twice = "A user credential cannot be altered twice in the same request";
        Assert.Multiple(() =>
        {
            Assert.That(byUser["alice"], Is.EqualTo((ErrorCode.DuplicateResource, twice)));
            Assert.That(byUser["ghost"], Is.EqualTo((ErrorCode.ResourceNotFound, "Attempt to delete a user credential that does not exist")));
            Assert.That(byUser[""], Is.EqualTo((ErrorCode.UnacceptableCredential, "Username must not be empty")));
            Assert.That(byUser["few"], Is.EqualTo((ErrorCode.UnacceptableCredential, "Too few iterations")));
            Assert.That(byUser["many"], Is.EqualTo((ErrorCode.UnacceptableCredential, "Too many iterations")));
            Assert.That(byUser["unknown-mechanism"], Is.EqualTo((ErrorCode.UnsupportedSaslMechanism, "Unknown SCRAM mechanism")));
            Assert.That(byUser["zero-mechanism"], Is.EqualTo((ErrorCode.UnsupportedSaslMechanism, "Unknown SCRAM mechanism")));
            Assert.That(byUser["bob"], Is.EqualTo((ErrorCode.None, (string?)null)));
            Assert.That(response.Results, Has.Count.EqualTo(byUser.Count), "one result per user");
        });
        // "mixed" is a deletion of a credential that does not exist and an upsertion: the first validation error wins
        // (Kafka checks the deletion first), and nothing of it applies.
        Assert.That(byUser["mixed"].Item1, Is.EqualTo(ErrorCode.ResourceNotFound));
        var described = await DescribeAsync(c, null);
        Assert.That(described.Results.Select(r => r.User), Is.EqualTo(new[] { "alice", "bob" }));
    }

    [Test]
    public async Task Alter_DeletionAndUpsertionOfTheSameUser_IsDuplicate_AndNeitherApplies()
    {
        var dir = NewDir();
        await using var broker = await StartAsync(dir);
        using var c = await RawClient.ConnectAsync(Endpoint(broker, "PLAINTEXT"));
        var response = await AlterAsync(c, [new Deletion { Name = "alice", Mechanism = Sha256 }], [Upsert("alice", Sha512, "new")]);
        Assert.That(response.Results.Single().ErrorCode, Is.EqualTo((short)ErrorCode.DuplicateResource));
        var described = await DescribeAsync(c, "alice");
        Assert.That(described.Results.Single().CredentialInfos.Select(i => i.Mechanism), Is.EqualTo(new[] { Sha256 }));
    }

    [Test]
    public async Task Describe_ListsMechanismsAndIterations_NotFoundAndDuplicateUsers()
    {
        var dir = NewDir();
        await using var broker = await StartAsync(dir);
        using var c = await RawClient.ConnectAsync(Endpoint(broker, "PLAINTEXT"));
        await AlterAsync(c, [], [Upsert("alice", Sha512, "alice-512", 8192), Upsert("bob", Sha256, "b", 5000)]);
        var all = await DescribeAsync(c, []);
        Assert.That(all.ErrorCode, Is.EqualTo((short)ErrorCode.None));
        Assert.That(all.Results.Select(r => r.User), Is.EqualTo(new[] { "alice", "bob" }));
        var alice = all.Results[0].CredentialInfos.Select(i => (i.Mechanism, i.Iterations));
        Assert.That(alice, Is.EqualTo(new[] { (Sha256, 4096), (Sha512, 8192) }));

        var listed = await DescribeAsync(c, "bob", "nobody", "alice", "alice");
        var byUser = listed.Results.ToDictionary(r => r.User);
        Assert.That(listed.Results, Has.Count.EqualTo(3));
        Assert.That(byUser["bob"].ErrorCode, Is.EqualTo((short)ErrorCode.None));
        Assert.That(byUser["bob"].CredentialInfos.Single().Iterations, Is.EqualTo(5000));
        Assert.That(byUser["nobody"].ErrorCode, Is.EqualTo((short)ErrorCode.ResourceNotFound));
        Assert.That(byUser["nobody"].ErrorMessage, Is.EqualTo("Attempt to describe a user credential that does not exist: nobody"));
        Assert.That(byUser["alice"].ErrorCode, Is.EqualTo((short)ErrorCode.DuplicateResource));
        Assert.That(byUser["alice"].ErrorMessage, Is.EqualTo("Cannot describe SCRAM credentials for the same user twice in a single request: alice"));
        Assert.That(byUser["alice"].CredentialInfos, Is.Empty);
    }

    [Test]
    public async Task NewCredential_AuthenticatesAtOnce_DeletedOneIsRefused_AndBothSurviveARestart()
    {
        var dir = NewDir();
        try
        {
            await using (var broker = await StartAsync(dir))
            {
                string sasl = Endpoint(broker, "SASL_PLAINTEXT");
                using var c = await RawClient.ConnectAsync(Endpoint(broker, "PLAINTEXT"));
                Assert.That(await ScramLoginAsync(sasl, "SCRAM-SHA-512", "carol", "carol-secret"), Is.EqualTo(ErrorCode.SaslAuthenticationFailed));
                var altered = await AlterAsync(c, [new Deletion { Name = "alice", Mechanism = Sha256 }], [Upsert("carol", Sha512, "carol-secret", 4096)]);
                Assert.That(altered.Results.Select(r => r.ErrorCode), Is.All.EqualTo((short)ErrorCode.None));
                Assert.That(await ScramLoginAsync(sasl, "SCRAM-SHA-512", "carol", "carol-secret"), Is.EqualTo(ErrorCode.None));
                Assert.That(await ScramLoginAsync(sasl, "SCRAM-SHA-512", "carol", "wrong"), Is.EqualTo(ErrorCode.SaslAuthenticationFailed));
                Assert.That(await ScramLoginAsync(sasl, "SCRAM-SHA-256", "alice", "alice-secret"), Is.EqualTo(ErrorCode.SaslAuthenticationFailed));
            }
            string file = File.ReadAllText(Path.Combine(dir, ScramCredentialStore.FileName));
            Assert.That(file, Does.Contain("carol").And.Not.Contain("carol-secret").And.Not.Contain("alice"), "keys only, never the password");

            // The same --add-scram alice seed again: the file is authoritative (format-time seeding), alice stays deleted.
            await using (var broker = await StartAsync(dir))
            {
                string sasl = Endpoint(broker, "SASL_PLAINTEXT");
                Assert.That(await ScramLoginAsync(sasl, "SCRAM-SHA-512", "carol", "carol-secret"), Is.EqualTo(ErrorCode.None));
                Assert.That(await ScramLoginAsync(sasl, "SCRAM-SHA-256", "alice", "alice-secret"), Is.EqualTo(ErrorCode.SaslAuthenticationFailed));
            }
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public async Task UnreadableCredentialsFile_RefusesTheStart_NamingIt()
    {
        var dir = NewDir();
        try
        {
            File.WriteAllText(Path.Combine(dir, ScramCredentialStore.FileName), "{\"version\":1,\"credentials\":[{\"mechanism\":\"SCRAM-SHA-256\"");
            var broker = new KafkaBroker(Options(dir));
            var e = Assert.ThrowsAsync<ConfigException>(() => broker.StartAsync());
            Assert.That(e!.Message, Does.Contain(ScramCredentialStore.FileName));
            await broker.DisposeAsync();
        }
        finally { Directory.Delete(dir, true); }
    }
}
