using System.Buffers.Binary;
using System.Text;
using Kayak.Broker.Config;
using Kayak.Broker.Network.Sasl;
using Kayak.Coordinator.Tests;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>
/// Issue 12, part 3: SASL on SASL_PLAINTEXT listeners at the protocol level, as Kafka's SaslServerAuthenticator
/// behaves: the handshake, PLAIN and SCRAM exchanges (RFC 7677's test vector), requests before authentication, bad
/// tokens, KIP-368 session lifetime, and start-up checks of the configuration.
/// </summary>
[CancelAfter(60_000)]
public class SaslTests
{
    private const string PlainJaas = "org.apache.kafka.common.security.plain.PlainLoginModule required user_alice=\"alice-secret\" user_bob='bob secret';";
    private const string ScramJaas = "org.apache.kafka.common.security.scram.ScramLoginModule required;";

    private static Task<BrokerFixture> StartAsync(Action<KafkaBrokerOptions>? configure = null) => BrokerFixture.StartAsync(o =>
    {
        o.Port = null;
        o.Properties["listeners"] = "SASL_PLAINTEXT://127.0.0.1:0";
        o.Properties["sasl.enabled.mechanisms"] = "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512";
        o.Properties["listener.name.sasl_plaintext.plain.sasl.jaas.config"] = PlainJaas;
        o.Properties["sasl.jaas.config"] = ScramJaas;
        o.ScramCredentials.Add("SCRAM-SHA-256=[name=alice,password=alice-secret]");
        o.ScramCredentials.Add("SCRAM-SHA-512=[name=alice,password=alice-secret,iterations=8192]");
        configure?.Invoke(o);
    });

    private static Task<SaslHandshakeResponse> HandshakeAsync(RawClient c, string mechanism, short version = 1) =>
        c.SendAsync<SaslHandshakeResponse>(new SaslHandshakeRequest { Mechanism = mechanism }, version);

    private static Task<SaslAuthenticateResponse> AuthenticateAsync(RawClient c, byte[] token, short version = 2) =>
        c.SendAsync<SaslAuthenticateResponse>(new SaslAuthenticateRequest { AuthBytes = token }, version);

    private static Task<MetadataResponse> MetadataAsync(RawClient c) =>
        c.SendAsync<MetadataResponse>(new MetadataRequest { Topics = null }, 9);

    private static byte[] Plain(string user, string password) => Encoding.UTF8.GetBytes("\0" + user + "\0" + password);

    [Test]
    public async Task Plain_AuthenticatesThenServesRequests_AndReportsTheSessionLifetime()
    {
        await using var f = await StartAsync(o => o.Properties["connections.max.reauth.ms"] = "600000");
        var versions = await f.Client.SendAsync<ApiVersionsResponse>(new ApiVersionsRequest(), 3);
        Assert.That(versions.ApiKeys.Select(k => k.ApiKey), Does.Contain((short)ApiKey.SaslHandshake).And.Contain((short)ApiKey.SaslAuthenticate));
        var handshake = await HandshakeAsync(f.Client, "PLAIN");
        Assert.That(handshake.ErrorCode, Is.EqualTo((short)ErrorCode.None));
        Assert.That(handshake.Mechanisms, Is.EqualTo(new[] { "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512" }));
        var auth = await AuthenticateAsync(f.Client, Plain("bob", "bob secret"));
        Assert.That(auth.ErrorCode, Is.EqualTo((short)ErrorCode.None), auth.ErrorMessage);
        Assert.That(auth.SessionLifetimeMs, Is.EqualTo(600_000));
        var metadata = await MetadataAsync(f.Client);
        Assert.That(metadata.Brokers, Has.Count.EqualTo(1));
        // After authentication, SaslAuthenticate reaches KafkaApis' answer (re-authentication starts with a handshake).
        var again = await AuthenticateAsync(f.Client, Plain("bob", "bob secret"));
        Assert.That(again.ErrorCode, Is.EqualTo((short)ErrorCode.IllegalSaslState));
    }

    [Test]
    public async Task WrongPassword_IsSaslAuthenticationFailed_WithKafkasMessage_AndTheConnectionCloses()
    {
        await using var f = await StartAsync();
        await HandshakeAsync(f.Client, "PLAIN");
        var auth = await AuthenticateAsync(f.Client, Plain("alice", "wrong"), 1);
        Assert.That(auth.ErrorCode, Is.EqualTo((short)ErrorCode.SaslAuthenticationFailed));
        Assert.That(auth.ErrorMessage, Is.EqualTo("Authentication failed: Invalid username or password"));
        Assert.That(await f.Client.IsClosedByPeerAsync(TimeSpan.FromSeconds(10)), Is.True);
    }

    [Test]
    public async Task UnknownMechanism_IsUnsupportedSaslMechanism_WithTheEnabledList()
    {
        await using var f = await StartAsync();
        var handshake = await HandshakeAsync(f.Client, "GSSAPI", 0);
        Assert.That(handshake.ErrorCode, Is.EqualTo((short)ErrorCode.UnsupportedSaslMechanism));
        Assert.That(handshake.Mechanisms, Is.EqualTo(new[] { "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512" }));
        Assert.That(await f.Client.IsClosedByPeerAsync(TimeSpan.FromSeconds(10)), Is.True);
    }

    [Test]
    public async Task RequestsBeforeAuthentication_CloseTheConnection()
    {
        await using var f = await StartAsync();
        await f.Client.SendOnlyAsync(new MetadataRequest { Topics = null }, 9);
        Assert.That(await f.Client.IsClosedByPeerAsync(TimeSpan.FromSeconds(10)), Is.True, "no Metadata before SaslHandshake");

        using var afterHandshake = await RawClient.ConnectAsync(f.Broker.BootstrapServers);
        await HandshakeAsync(afterHandshake, "PLAIN");
        // During the exchange Kafka answers with the request's error response (ILLEGAL_SASL_STATE), which for an
        // all-topics Metadata holds nothing, then closes.
        var during = await afterHandshake.SendAsync<MetadataResponse>(new MetadataRequest { Topics = null }, 9);
        Assert.That((during.Topics.Count, during.Brokers.Count), Is.EqualTo((0, 0)), "no Metadata during the exchange");
        Assert.That(await afterHandshake.IsClosedByPeerAsync(TimeSpan.FromSeconds(10)), Is.True);
    }

    [TestCase(new byte[] { 0, 0, 0, 3, 1, 2, 3 })]
    [TestCase(new byte[] { 0, 0, 0, 12, 0x60, 0x82, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 })] // a GSSAPI token of a 0.9 client
    [TestCase(new byte[] { 0x7F, 0xFF, 0xFF, 0xFF, 0 })] // 2 GB announced: above sasl.server.max.receive.size
    [TestCase(new byte[] { 0, 0x10, 0, 0, 0 })] // 1 MiB announced
    public async Task GarbageOrOversizedFirstFrames_CloseWithoutHarm(byte[] bytes)
    {
        await using var f = await StartAsync();
        await f.Client.WriteRawAsync(bytes);
        Assert.That(await f.Client.IsClosedByPeerAsync(TimeSpan.FromSeconds(10)), Is.True);
        using var next = await RawClient.ConnectAsync(f.Broker.BootstrapServers);
        Assert.That((await HandshakeAsync(next, "PLAIN")).ErrorCode, Is.EqualTo((short)ErrorCode.None), "the broker still serves");
    }

    [Test]
    public async Task GarbageTokens_AreAuthenticationFailures()
    {
        await using var f = await StartAsync();
        foreach (var (mechanism, token) in new[] { ("PLAIN", new byte[] { 0xFF, 0, 0xFE }), ("SCRAM-SHA-256", "junk"u8.ToArray()), ("SCRAM-SHA-512", new byte[100_000]) })
        {
            using var c = await RawClient.ConnectAsync(f.Broker.BootstrapServers);
            await HandshakeAsync(c, mechanism);
            var auth = await AuthenticateAsync(c, token);
            Assert.That(auth.ErrorCode, Is.EqualTo((short)ErrorCode.SaslAuthenticationFailed), mechanism);
            Assert.That(await c.IsClosedByPeerAsync(TimeSpan.FromSeconds(10)), Is.True);
        }
    }

    [Test]
    public async Task PlainOverTheV0UnframedHandshake_OfOldClients()
    {
        await using var f = await StartAsync();
        await HandshakeAsync(f.Client, "PLAIN", 0);
        var token = Plain("alice", "alice-secret");
        var frame = new byte[4 + token.Length];
        BinaryPrimitives.WriteInt32BigEndian(frame, token.Length);
        token.CopyTo(frame, 4);
        await f.Client.WriteRawAsync(frame);
        var reply = await f.Client.ReadSizePrefixedAsync();
        Assert.That(reply, Is.Empty, "PLAIN answers an empty token");
        Assert.That((await MetadataAsync(f.Client)).Brokers, Has.Count.EqualTo(1));
    }

    /// <summary>A SCRAM client (RFC 5802 §3) over SaslAuthenticate, against credentials seeded as --add-scram does.</summary>
    [TestCase("SCRAM-SHA-256", "alice-secret", true, false)]
    [TestCase("SCRAM-SHA-512", "alice-secret", true, false)]
    [TestCase("SCRAM-SHA-256", "wrong", false, false)]
    // librdkafka 2.0.2 (Debian's kcat) sends its nonce again before the combined one; Kafka accepts it (endsWith).
    [TestCase("SCRAM-SHA-256", "alice-secret", true, true)]
    public async Task Scram_FullExchange(string mechanismName, string password, bool succeeds, bool doubledNonce)
    {
        await using var f = await StartAsync();
        var mechanism = ScramMechanism.Find(mechanismName)!;
        await HandshakeAsync(f.Client, mechanismName);
        string clientFirstBare = "n=alice,r=fyko+d2lbbFgONRv9qkxdawL";
        var first = await AuthenticateAsync(f.Client, Encoding.UTF8.GetBytes("n,," + clientFirstBare));
        Assert.That(first.ErrorCode, Is.EqualTo((short)ErrorCode.None));
        string serverFirst = Encoding.UTF8.GetString(first.AuthBytes);
        var fields = serverFirst.Split(',').ToDictionary(p => p[..1], p => p[2..]);
        Assert.That(fields["r"], Does.StartWith("fyko+d2lbbFgONRv9qkxdawL").And.Length.GreaterThan(24));
        Assert.That(int.Parse(fields["i"]), Is.EqualTo(mechanismName == "SCRAM-SHA-512" ? 8192 : 4096));
        var salted = mechanism.SaltedPassword(password, Convert.FromBase64String(fields["s"]), int.Parse(fields["i"]));
        string withoutProof = "c=biws,r=" + (doubledNonce ? "fyko+d2lbbFgONRv9qkxdawL" : "") + fields["r"];
        var authMessage = Encoding.UTF8.GetBytes(clientFirstBare + "," + serverFirst + "," + withoutProof);
        var clientKey = mechanism.ClientKey(salted);
        var signature = mechanism.Hmac(mechanism.H(clientKey), authMessage);
        var proof = clientKey.Select((b, i) => (byte)(b ^ signature[i])).ToArray();
        var final = await AuthenticateAsync(f.Client, Encoding.UTF8.GetBytes(withoutProof + ",p=" + Convert.ToBase64String(proof)));
        if (!succeeds)
        {
            Assert.That(final.ErrorCode, Is.EqualTo((short)ErrorCode.SaslAuthenticationFailed));
            Assert.That(final.ErrorMessage, Is.EqualTo($"Authentication failed during authentication due to invalid credentials with SASL mechanism {mechanismName}"));
            return;
        }
        Assert.That(final.ErrorCode, Is.EqualTo((short)ErrorCode.None), final.ErrorMessage);
        var serverSignature = mechanism.Hmac(mechanism.ServerKey(salted), authMessage);
        Assert.That(Encoding.UTF8.GetString(final.AuthBytes), Is.EqualTo("v=" + Convert.ToBase64String(serverSignature)));
        Assert.That((await MetadataAsync(f.Client)).Brokers, Has.Count.EqualTo(1));
    }

    /// <summary>RFC 7677 §3: the SCRAM-SHA-256 exchange of user "user", password "pencil", byte for byte.</summary>
    [Test]
    public void ScramSha256_Rfc7677TestVector()
    {
        var store = new ScramCredentialStore();
        store.Add("SCRAM-SHA-256", "user", ScramMechanism.Sha256.Credential("pencil", Convert.FromBase64String("W22ZaJ0SNY7soEsUEjb6gQ=="), 4096));
        var server = new ScramSaslServer(ScramMechanism.Sha256, store, () => "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
        var serverFirst = server.EvaluateResponse("n,,n=user,r=rOprNGfwEbeRWgbNEkqO"u8.ToArray());
        Assert.That(Encoding.UTF8.GetString(serverFirst!), Is.EqualTo("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"));
        var serverFinal = server.EvaluateResponse(
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="u8.ToArray());
        Assert.That(Encoding.UTF8.GetString(serverFinal!), Is.EqualTo("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="));
        Assert.That(server.IsComplete && server.AuthorizationId == "user");
    }

    [Test]
    public async Task ExpiredSession_IsClosedAtItsNextRequest()
    {
        var time = new ManualTimeProvider();
        await using var f = await StartAsync(o => { o.Time = time; o.Properties["connections.max.reauth.ms"] = "60000"; });
        await HandshakeAsync(f.Client, "PLAIN");
        Assert.That((await AuthenticateAsync(f.Client, Plain("alice", "alice-secret"))).SessionLifetimeMs, Is.EqualTo(60_000));
        await MetadataAsync(f.Client);
        time.AdvanceMs(60_001);
        await f.Client.SendOnlyAsync(new MetadataRequest { Topics = null }, 9);
        Assert.That(await f.Client.IsClosedByPeerAsync(TimeSpan.FromSeconds(10)), Is.True);
    }

    [Test]
    public async Task Reauthentication_RenewsTheSession_AndKeepsThePrincipal()
    {
        var time = new ManualTimeProvider();
        await using var f = await StartAsync(o => { o.Time = time; o.Properties["connections.max.reauth.ms"] = "60000"; });
        await HandshakeAsync(f.Client, "PLAIN");
        await AuthenticateAsync(f.Client, Plain("alice", "alice-secret"));
        time.AdvanceMs(59_000);
        Assert.That((await HandshakeAsync(f.Client, "PLAIN")).ErrorCode, Is.EqualTo((short)ErrorCode.None));
        Assert.That((await AuthenticateAsync(f.Client, Plain("alice", "alice-secret"))).SessionLifetimeMs, Is.EqualTo(60_000));
        time.AdvanceMs(30_000);
        await MetadataAsync(f.Client); // within the renewed session
        await HandshakeAsync(f.Client, "PLAIN");
        var other = await AuthenticateAsync(f.Client, Plain("bob", "bob secret"));
        Assert.That(other.ErrorCode, Is.EqualTo((short)ErrorCode.SaslAuthenticationFailed));
        Assert.That(other.ErrorMessage, Does.StartWith("Cannot change principals during re-authentication"));
    }

    [Test]
    public async Task FailedAuthentications_AreLoggedWithTheClientAddress_NeverThePassword()
    {
        var logs = new CapturingLoggerFactory();
        await using var f = await StartAsync(o => o.LoggerFactory = logs);
        int mark = logs.Count;
        await HandshakeAsync(f.Client, "PLAIN");
        await AuthenticateAsync(f.Client, Plain("alice", "not-the-password-1"));
        using var scram = await RawClient.ConnectAsync(f.Broker.BootstrapServers);
        await HandshakeAsync(scram, "SCRAM-SHA-256");
        await AuthenticateAsync(scram, "n,,n=mallory,r=abc"u8.ToArray());
        Assert.That(await f.Client.IsClosedByPeerAsync(TimeSpan.FromSeconds(10)) && await scram.IsClosedByPeerAsync(TimeSpan.FromSeconds(10)));
        var entries = logs.EntriesSince(mark).Where(e => e.Message.Contains("Failed authentication")).ToList();
        int localPort = ((System.Net.IPEndPoint)f.Client.LocalEndPoint!).Port;
        var messages = entries.Select(e => e.Message).ToList();
        Assert.That(messages, Has.Some.Contains($"with 127.0.0.1:{localPort} ").And.Some.Contains("Invalid username or password"));
        Assert.That(messages, Has.Some.Contains("invalid credentials with SASL mechanism SCRAM-SHA-256"));
        Assert.That(logs.EntriesSince(mark).Select(e => e.Message), Has.None.Contains("not-the-password-1").And.None.Contains("alice-secret"));
        Assert.That(logs.ErrorsSince(mark), Is.Empty);
        Assert.That(logs.EntriesSince(0).Select(e => e.Message), Has.None.Contains("isn't a known config"), "SASL keys are known, per listener too");
    }

    [Test]
    public async Task DescribeConfigs_NeverReturnsJaasConfigs()
    {
        await using var f = await StartAsync(o => o.Properties["listeners"] = "SASL_PLAINTEXT://127.0.0.1:0,PLAINTEXT://127.0.0.1:0");
        var endpoint = f.Broker.Listeners.First(l => l.Name == "PLAINTEXT");
        using var c = await RawClient.ConnectAsync($"{endpoint.Host}:{endpoint.Port}");
        var response = await c.SendAsync<DescribeConfigsResponse>(new DescribeConfigsRequest
        {
            Resources = [new() { ResourceType = 4, ResourceName = f.State.NodeId.ToString(), ConfigurationKeys = null }],
            IncludeSynonyms = true,
        }, 4);
        var configs = response.Results[0].Configs;
        Assert.That(configs.Select(e => e.Value ?? ""), Has.None.Contains("alice-secret").And.None.Contains("LoginModule"));
        var jaas = configs.Single(e => e.Name == "sasl.jaas.config");
        Assert.That((jaas.Value, jaas.IsSensitive), Is.EqualTo(((string?)null, true)));
        Assert.That(configs.Single(e => e.Name == "sasl.enabled.mechanisms").Value, Is.EqualTo("PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"));
    }

    /// <summary>Random frames at each stage of the exchange: every connection ends closed or answered, nothing is logged as an error.</summary>
    [Test]
    public async Task RandomFrames_AtEachStage_NeverCrashOrHang()
    {
        var logs = new CapturingLoggerFactory();
        await using var f = await StartAsync(o => o.LoggerFactory = logs);
        var random = new Random(12);
        for (int i = 0; i < 300; i++)
        {
            using var c = await RawClient.ConnectAsync(f.Broker.BootstrapServers);
            int stage = i % 3;
            if (stage >= 1) await HandshakeAsync(c, (i % 2 == 0) ? "PLAIN" : "SCRAM-SHA-512", (short)(i % 4 < 2 ? 1 : 0));
            if (stage == 2 && i % 4 < 2) await AuthenticateAsync(c, "n,,n=alice,r=abcdefgh"u8.ToArray());
            var body = new byte[random.Next(0, 200)];
            random.NextBytes(body);
            if (body.Length >= 2 && i % 5 == 0) { body[0] = 0; body[1] = (byte)ApiKey.SaslAuthenticate; }
            if (body.Length >= 4 && i % 7 == 0) { body[0] = 0; body[1] = (byte)ApiKey.SaslHandshake; body[2] = 0; body[3] = (byte)(i % 3); }
            // A well-formed ApiVersions before the handshake is answered and the connection waits for the handshake.
            bool mayStayOpen = body.Length >= 8 && i % 11 == 0 && stage == 0;
            if (mayStayOpen) { body[0] = 0; body[1] = (byte)ApiKey.ApiVersions; body[2] = 0; body[3] = (byte)(i % 6); }
            var frame = new byte[4 + body.Length];
            BinaryPrimitives.WriteInt32BigEndian(frame, body.Length);
            body.CopyTo(frame, 4);
            await c.WriteRawAsync(frame);
            // The broker closes the connection (after its error response, if any), or answers an ApiVersions and waits.
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(mayStayOpen ? 2 : 10));
            var buffer = new byte[4096];
            int received = 0;
            try
            {
                int n;
                while ((n = await c.ReadSomeAsync(buffer, cts.Token)) > 0) received += n;
            }
            catch (OperationCanceledException)
            {
                if (!mayStayOpen || received == 0) Assert.Fail($"frame {i} (stage {stage}): the broker neither closed nor answered");
            }
        }
        using var next = await RawClient.ConnectAsync(f.Broker.BootstrapServers);
        await HandshakeAsync(next, "PLAIN");
        Assert.That((await AuthenticateAsync(next, Plain("alice", "alice-secret"))).ErrorCode, Is.EqualTo((short)ErrorCode.None));
        Assert.That(logs.ErrorsSince(0), Is.Empty);
    }

    [Test]
    public void Authenticator_GivesTheSaslPrincipal()
    {
        var config = SaslListenerConfig.Create(new BrokerConfig(new Dictionary<string, string>
        {
            ["listeners"] = "SASL_PLAINTEXT://127.0.0.1:0",
            ["log.dirs"] = "/nonexistent",
            ["sasl.enabled.mechanisms"] = "PLAIN",
            ["sasl.jaas.config"] = PlainJaas,
        }), "SASL_PLAINTEXT", new ScramCredentialStore());
        var sasl = new SaslAuthenticator(config, TimeProvider.System);
        Assert.That(sasl.Principal, Is.EqualTo("User:ANONYMOUS"));
        Assert.That(sasl.Process(RawClient.Encode(new SaslHandshakeRequest { Mechanism = "PLAIN" }, 1, 1).AsMemory(4)).Failure, Is.Null);
        var reply = sasl.Process(RawClient.Encode(new SaslAuthenticateRequest { AuthBytes = Plain("alice", "alice-secret") }, 2, 2).AsMemory(4));
        Assert.That((reply.Failure, sasl.Authenticated, sasl.Principal), Is.EqualTo(((string?)null, true, "User:alice")));
    }

    [Test]
    public async Task SaslHandshake_OnAPlaintextListener_IsIllegalSaslState()
    {
        await using var f = await BrokerFixture.StartAsync();
        Assert.That((await HandshakeAsync(f.Client, "PLAIN")).ErrorCode, Is.EqualTo((short)ErrorCode.IllegalSaslState));
    }

    private static Task StartWith(Dictionary<string, string> props, params string[] scram)
    {
        var options = new KafkaBrokerOptions { DataDir = "/nonexistent/kayak-sasl" };
        options.Properties["listeners"] = "SASL_PLAINTEXT://127.0.0.1:0";
        foreach (var (k, v) in props) options.Properties[k] = v;
        options.ScramCredentials.AddRange(scram);
        return new KafkaBroker(options).StartAsync();
    }

    [Test]
    public void StartUp_RefusesGssapiUnknownMechanismsAndMissingOrBadJaas_NamingTheKey()
    {
        var gssapi = Assert.ThrowsAsync<ConfigException>(() => StartWith([]))!;
        Assert.That(gssapi.Key, Is.EqualTo("sasl.enabled.mechanisms"));
        Assert.That(gssapi.Message, Does.Contain("GSSAPI"));
        var oauth = Assert.ThrowsAsync<ConfigException>(() => StartWith(new() { ["sasl.enabled.mechanisms"] = "OAUTHBEARER" }))!;
        Assert.That(oauth.Key, Is.EqualTo("listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config"), "OAUTHBEARER needs its JAAS entry");
        var unknown = Assert.ThrowsAsync<ConfigException>(() => StartWith(new() { ["sasl.enabled.mechanisms"] = "DIGEST-MD5" }))!;
        Assert.That(unknown.Message, Does.Contain("DIGEST-MD5 is not supported"));
        var noJaas = Assert.ThrowsAsync<ConfigException>(() => StartWith(new() { ["sasl.enabled.mechanisms"] = "PLAIN" }))!;
        Assert.That(noJaas.Key, Is.EqualTo("listener.name.sasl_plaintext.plain.sasl.jaas.config"));
        var badJaas = Assert.ThrowsAsync<ConfigException>(() => StartWith(new()
        {
            ["sasl.enabled.mechanisms"] = "PLAIN",
            ["sasl.jaas.config"] = "org.apache.kafka.common.security.plain.PlainLoginModule required user_alice=\"alice-secret\"",
        }))!;
        Assert.That(badJaas.Message, Does.Contain("semi-colon").And.Not.Contain("alice-secret"));
        var wrongModule = Assert.ThrowsAsync<ConfigException>(() => StartWith(new() { ["sasl.enabled.mechanisms"] = "PLAIN", ["sasl.jaas.config"] = ScramJaas }))!;
        Assert.That(wrongModule.Message, Does.Contain("PlainLoginModule"));
        var badScram = Assert.ThrowsAsync<ArgumentException>(() => StartWith(new() { ["sasl.enabled.mechanisms"] = "SCRAM-SHA-256", ["sasl.jaas.config"] = ScramJaas },
            "SCRAM-SHA-256=[name=alice,password=alice-secret,iterations=10]"))!;
        Assert.That(badScram.Message, Does.Contain("iterations").And.Not.Contain("alice-secret"));
    }

    [Test]
    public async Task ListenerLevelJaasConfig_IsUsedBeforeTheGlobalOne()
    {
        var options = new KafkaBrokerOptions { DataDir = Path.Combine(Path.GetTempPath(), "kayak-sasl-" + Guid.NewGuid().ToString("N")) };
        options.Properties["listeners"] = "SASL_PLAINTEXT://127.0.0.1:0";
        options.Properties["sasl.enabled.mechanisms"] = "PLAIN";
        options.Properties["listener.name.sasl_plaintext.sasl.jaas.config"] = PlainJaas;
        options.Properties["sasl.jaas.config"] = ScramJaas; // would be refused for PLAIN if it were used
        var broker = new KafkaBroker(options);
        try
        {
            await broker.StartAsync();
            using var c = await RawClient.ConnectAsync(broker.BootstrapServers);
            await HandshakeAsync(c, "PLAIN");
            Assert.That((await AuthenticateAsync(c, Plain("alice", "alice-secret"))).ErrorCode, Is.EqualTo((short)ErrorCode.None));
        }
        finally
        {
            await broker.DisposeAsync();
            try { Directory.Delete(options.DataDir, true); } catch (IOException) { }
        }
    }

    [Test]
    public void Jaas_ParsesKafkasSyntax()
    {
        var e = JaasEntry.Parse("k", " org.apache.kafka.common.security.plain.PlainLoginModule  Required\n username=admin password=\"a b;c\" user_admin='x\\'y' ; ");
        Assert.That(e.LoginModule, Is.EqualTo(JaasEntry.PlainLoginModule));
        Assert.That(e.ControlFlag, Is.EqualTo("required"));
        Assert.That(e.Options, Is.EqualTo(new Dictionary<string, string> { ["username"] = "admin", ["password"] = "a b;c", ["user_admin"] = "x'y" }));
        Assert.Throws<ConfigException>(() => JaasEntry.Parse("k", "A required; B required;"));
        Assert.Throws<ConfigException>(() => JaasEntry.Parse("k", "A sometimes;"));
        Assert.Throws<ConfigException>(() => JaasEntry.Parse("k", "A required x=\"unterminated;"));
    }
}
