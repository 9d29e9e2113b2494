using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text;
using Kayak.Broker.Cluster;
using Kayak.Broker.Config;
using Kayak.Broker.Network.Sasl;
using Kayak.Broker.Network.Tls;
using Kayak.Tests.Tls;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>
/// Issue 14: how cluster members connect to each other. The config is read as Kafka reads it (inter.broker.listener.name
/// or security.inter.broker.protocol, sasl.mechanism.inter.broker.protocol, the broker's username/password in the
/// listener's JAAS entry) and every problem names its key; the SCRAM client completes an exchange with Kayak's server.
/// On an SSL inter-broker listener the broker is a TLS client with that listener's ssl.* settings: its keystore is the
/// principal the other broker sees, and the other broker's certificate is checked against the truststore and the host.
/// </summary>
[CancelAfter(60_000)]
public class InterBrokerSecurityTests
{
    private TestCertificates _certs = null!;

    [OneTimeSetUp]
    public void CreateCertificates() => _certs = TestCertificates.Create();

    [OneTimeTearDown]
    public void DeleteCertificates() => _certs.Dispose();

    private const string PlainJaas = "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"broker\" password=\"s\" user_broker=\"s\";";

    private static InterBrokerSecurity Create(params (string Key, string Value)[] settings)
    {
        var p = new Dictionary<string, string>(StringComparer.Ordinal) { ["log.dirs"] = "/tmp/unused" };
        foreach (var (k, v) in settings) p[k] = v;
        var config = new BrokerConfig(p);
        var sasl = new Dictionary<string, SaslListenerConfig>(StringComparer.OrdinalIgnoreCase);
        foreach (var l in config.Listeners)
            if (config.ListenerSecurityProtocols[l.Name] is "SASL_PLAINTEXT" or "SASL_SSL")
                sasl[l.Name] = SaslListenerConfig.Create(config, l.Name, new ScramCredentialStore());
        return InterBrokerSecurity.Create(config, sasl);
    }

    private static string KeyOfError(params (string, string)[] settings) =>
        Assert.Throws<ConfigException>(() => Create(settings))!.Key;

    [Test]
    public void DefaultsToThePlaintextListener()
    {
        var s = Create(("listeners", "EXTERNAL://127.0.0.1:0,PLAINTEXT://127.0.0.1:0"),
            ("listener.security.protocol.map", "EXTERNAL:PLAINTEXT,PLAINTEXT:PLAINTEXT"));
        Assert.That((s.ListenerName, s.Mechanism), Is.EqualTo(("PLAINTEXT", (string?)null)));
    }

    [Test]
    public void SaslListenerAuthenticatesWithTheJaasEntrysOwnCredentials()
    {
        var s = Create(("listeners", "SASL_PLAINTEXT://127.0.0.1:0"), ("sasl.enabled.mechanisms", "PLAIN"),
            ("security.inter.broker.protocol", "SASL_PLAINTEXT"), ("sasl.mechanism.inter.broker.protocol", "PLAIN"), ("sasl.jaas.config", PlainJaas));
        Assert.That((s.ListenerName, s.Mechanism, s.Username), Is.EqualTo(("SASL_PLAINTEXT", "PLAIN", "broker")));
        Assert.That(s.CreateClient().Next(null), Is.EqualTo(Encoding.UTF8.GetBytes("\0broker\0s")));
    }

    [Test]
    public void EveryProblemNamesItsKey()
    {
        Assert.That(KeyOfError(("inter.broker.listener.name", "PLAINTEXT"), ("security.inter.broker.protocol", "PLAINTEXT")),
            Is.EqualTo("inter.broker.listener.name"), "only one of the two");
        Assert.That(KeyOfError(("inter.broker.listener.name", "INTERNAL")), Is.EqualTo("inter.broker.listener.name"), "not a listener");
        Assert.That(KeyOfError(("listeners", "SSL://127.0.0.1:0"), ("security.inter.broker.protocol", "SSL")),
            Is.EqualTo("ssl.keystore.location"), "TLS between brokers needs the listener's keystore as the client certificate");
        Assert.That(KeyOfError(("listeners", "SASL_PLAINTEXT://127.0.0.1:0"), ("sasl.enabled.mechanisms", "PLAIN"),
            ("inter.broker.listener.name", "SASL_PLAINTEXT"), ("sasl.jaas.config", PlainJaas)),
            Is.EqualTo("sasl.mechanism.inter.broker.protocol"), "Kafka's default GSSAPI");
        Assert.That(KeyOfError(("listeners", "SASL_PLAINTEXT://127.0.0.1:0"), ("sasl.enabled.mechanisms", "PLAIN"),
            ("inter.broker.listener.name", "SASL_PLAINTEXT"), ("sasl.mechanism.inter.broker.protocol", "SCRAM-SHA-256"), ("sasl.jaas.config", PlainJaas)),
            Is.EqualTo("sasl.mechanism.inter.broker.protocol"), "not enabled on the listener");
        Assert.That(KeyOfError(("listeners", "SASL_PLAINTEXT://127.0.0.1:0"), ("sasl.enabled.mechanisms", "PLAIN"),
            ("inter.broker.listener.name", "SASL_PLAINTEXT"), ("sasl.mechanism.inter.broker.protocol", "PLAIN"),
            ("sasl.jaas.config", "org.apache.kafka.common.security.plain.PlainLoginModule required user_broker=\"s\";")),
            Is.EqualTo("listener.name.sasl_plaintext.plain.sasl.jaas.config"), "no username/password of its own");
    }

    [TestCase("SCRAM-SHA-256")]
    [TestCase("SCRAM-SHA-512")]
    public void ScramClientCompletesAnExchangeWithTheServer(string name)
    {
        var mechanism = ScramMechanism.Find(name)!;
        var store = new ScramCredentialStore();
        store.Add(name, "broker", mechanism.Credential("broker-secret", Encoding.UTF8.GetBytes("salt-of-16-bytes"), 4096));
        var server = new ScramSaslServer(mechanism, store);
        var client = new ScramSaslClient(mechanism, "broker", "broker-secret");
        byte[]? message = client.Next(null);
        while (message is not null)
        {
            byte[]? challenge = server.EvaluateResponse(message);
            message = client.Next(challenge);
        }
        Assert.That((server.IsComplete, server.AuthorizationId), Is.EqualTo((true, "broker")));

        var wrong = new ScramSaslClient(mechanism, "broker", "not-the-secret");
        var refusing = new ScramSaslServer(mechanism, store);
        byte[] serverFirst = refusing.EvaluateResponse(wrong.Next(null)!)!;
        Assert.That(() => refusing.EvaluateResponse(wrong.Next(serverFirst)!), Throws.TypeOf<SaslMechanismException>().With.Message.Contains("Invalid client credentials"));
    }

    /// <summary>An SSL inter-broker listener with the broker certificate, ssl.client.auth=required and the CA as truststore.</summary>
    private (string, string)[] SslListener(params (string, string)[] extra)
    {
        var settings = new List<(string, string)>
        {
            ("listeners", "INTERNAL://127.0.0.1:0"), ("listener.security.protocol.map", "INTERNAL:SSL"),
            ("inter.broker.listener.name", "INTERNAL"), ("listener.name.internal.ssl.client.auth", "required"),
            ("listener.name.internal.ssl.truststore.location", _certs.CaPem), ("listener.name.internal.ssl.truststore.type", "PEM"),
        };
        foreach (var (k, v) in _certs.Pkcs12Keystore("listener.name.internal.", broker: true)) settings.Add((k, v));
        settings.AddRange(extra);
        return settings.ToArray();
    }

    /// <summary>
    /// The inter-broker client's handshake (<see cref="SslFactory.AuthenticateAsClientAsync"/>) to a listener served by
    /// <paramref name="server"/> over loopback, as <paramref name="targetHost"/>; returns the principal the server built.
    /// </summary>
    private static async Task<string> HandshakeAsync(SslFactory client, SslFactory server, string targetHost)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
        using var accepted = await listener.AcceptSocketAsync();
        var serving = server.AuthenticateAsync(new NetworkStream(accepted, ownsSocket: true), CancellationToken.None);
        try
        {
            await using var ssl = await client.AuthenticateAsClientAsync(tcp.GetStream(), targetHost, CancellationToken.None);
            var (stream, principal) = await serving;
            await stream.DisposeAsync();
            return principal;
        }
        finally
        {
            tcp.Close(); // a refused handshake: the server's side ends too
            try { await serving; } catch (Exception e) when (e is AuthenticationException or IOException) { }
        }
    }

    [Test]
    public async Task SslListener_TheBrokerIsATlsClient_WithItsKeystoreAsThePrincipal()
    {
        var s = Create(SslListener());
        Assert.That((s.ListenerName, s.Mechanism, s.Tls?.ListenerName, s.Tls?.VerifyHostname), Is.EqualTo(("INTERNAL", (string?)null, "INTERNAL", (bool?)true)));
        // The other broker's listener (the same config) requires a client certificate and maps it as Kafka does.
        var other = Create(SslListener()).Tls!;
        Assert.That(await HandshakeAsync(s.Tls!, other, "127.0.0.1"), Is.EqualTo("User:" + TestCertificates.BrokerSubject));
        Assert.That(await HandshakeAsync(s.Tls!, other, "localhost"), Is.EqualTo("User:" + TestCertificates.BrokerSubject));
    }

    [Test]
    public async Task SslListener_ChecksTheServersHostName_UnlessEndpointIdentificationIsEmpty()
    {
        var other = Create(SslListener()).Tls!;
        var verifying = Create(SslListener()).Tls!;
        var e = Assert.ThrowsAsync<AuthenticationException>(() => HandshakeAsync(verifying, other, "kayak.invalid"))!;
        Assert.That(e.Message, Does.Contain("does not name kayak.invalid").And.Contain("ssl.endpoint.identification.algorithm"));

        var lenient = Create(SslListener(("listener.name.internal.ssl.endpoint.identification.algorithm", ""))).Tls!;
        Assert.That(lenient.VerifyHostname, Is.False);
        Assert.That(await HandshakeAsync(lenient, other, "kayak.invalid"), Is.EqualTo("User:" + TestCertificates.BrokerSubject));
    }

    [Test]
    public void SslListener_RefusesAServerCertificateOutsideItsTruststore()
    {
        using var strangers = TestCertificates.Create(); // another CA: the other broker's certificate chains to it
        var theirs = new List<(string, string)>();
        foreach (var (k, v) in strangers.Pkcs12Keystore("listener.name.internal.", broker: true)) theirs.Add((k, v));
        var other = Create(SslListener(theirs.ToArray())).Tls!;
        var client = Create(SslListener()).Tls!;
        var e = Assert.ThrowsAsync<AuthenticationException>(() => HandshakeAsync(client, other, "127.0.0.1"))!;
        Assert.That(e.Message, Does.Contain("does not chain to the truststore of listener INTERNAL"));
    }

    [Test]
    public void SslListener_BadClientSettings_NameTheirKey()
    {
        Assert.That(KeyOfError(SslListener(("listener.name.internal.ssl.endpoint.identification.algorithm", "ldaps"))),
            Is.EqualTo("listener.name.internal.ssl.endpoint.identification.algorithm"));
        Assert.That(KeyOfError(SslListener(("listener.name.internal.ssl.truststore.location", "/nonexistent/ca.pem"))),
            Is.EqualTo("listener.name.internal.ssl.truststore.location"));
        // SASL_SSL: the TLS settings and the SASL ones are both checked.
        Assert.That(KeyOfError(SslListener(("listener.security.protocol.map", "INTERNAL:SASL_SSL"), ("sasl.enabled.mechanisms", "PLAIN"),
            ("sasl.mechanism.inter.broker.protocol", "SCRAM-SHA-512"), ("sasl.jaas.config", PlainJaas))),
            Is.EqualTo("sasl.mechanism.inter.broker.protocol"));
        var saslSsl = Create(SslListener(("listener.security.protocol.map", "INTERNAL:SASL_SSL"), ("sasl.enabled.mechanisms", "PLAIN"),
            ("sasl.mechanism.inter.broker.protocol", "PLAIN"), ("sasl.jaas.config", PlainJaas)));
        Assert.That((saslSsl.Mechanism, saslSsl.Username, saslSsl.Tls?.ListenerName), Is.EqualTo(("PLAIN", "broker", "INTERNAL")));
    }
}
