using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Kayak.Broker.Config;
using Kayak.Broker.Network.Tls;
using Kayak.Protocol.Messages;
using Kayak.Tests.Tls;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>
/// Issue 12, part 2: SSL listeners. A .NET SslStream client speaks Kafka over TLS to a two-listener broker; bad input on
/// the TLS port (plaintext Kafka bytes, garbage, silence, no client certificate where one is required) only closes
/// that connection and the broker keeps serving; store problems stop the start-up naming the key.
/// </summary>
[CancelAfter(60_000)]
public class TlsTests
{
    private TestCertificates _certs = null!;

    [OneTimeSetUp]
    public void CreateCertificates() => _certs = TestCertificates.Create();

    [OneTimeTearDown]
    public void DeleteCertificates() => _certs.Dispose();

    private sealed class Running(KafkaBroker broker, string dir) : IAsyncDisposable
    {
        public KafkaBroker Broker { get; } = broker;
        public string Endpoint(string name) => Broker.Listeners.First(l => l.Name == name) is var l ? $"{l.Host}:{l.Port}" : "";

        public async ValueTask DisposeAsync()
        {
            await Broker.DisposeAsync();
            try { Directory.Delete(dir, true); } catch (IOException) { }
        }
    }

    private static async Task<Running> StartAsync(Dictionary<string, string> properties, TimeSpan? handshakeTimeout = null)
    {
        var dir = Path.Combine(Path.GetTempPath(), "kayak-tls-broker-" + Guid.NewGuid().ToString("N"));
        var options = new KafkaBrokerOptions { DataDir = dir, TlsHandshakeTimeout = handshakeTimeout };
        options.Properties["listeners"] = "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0";
        foreach (var (k, v) in properties) options.Properties[k] = v;
        var broker = new KafkaBroker(options);
        try { await broker.StartAsync(); }
        catch { await broker.DisposeAsync(); try { Directory.Delete(dir, true); } catch (IOException) { } throw; }
        return new Running(broker, dir);
    }

    private async Task<(TcpClient Tcp, SslStream Ssl)> ConnectTlsAsync(string endpoint, X509Certificate2? clientCertificate = null)
    {
        int colon = endpoint.LastIndexOf(':');
        var tcp = new TcpClient();
        await tcp.ConnectAsync(endpoint[..colon], int.Parse(endpoint[(colon + 1)..]));
        var ssl = new SslStream(tcp.GetStream(), false);
        var trust = new X509Certificate2Collection { _certs.Ca };
        await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            ClientCertificates = clientCertificate is null ? null : [clientCertificate],
            CertificateChainPolicy = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust, CustomTrustStore = { _certs.Ca }, RevocationMode = X509RevocationMode.NoCheck },
        });
        return (tcp, ssl);
    }

    private static Task<MetadataResponse> MetadataAsync(RawClient client) =>
        client.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [] }, 9);

    [Test]
    public async Task TlsClientGetsTheSslEndpoint_PlaintextClientThePlaintextOne()
    {
        await using var b = await StartAsync(_certs.Pkcs12Keystore());
        var (tcp, ssl) = await ConnectTlsAsync(b.Endpoint("SSL"));
        using (tcp)
        using (var client = RawClient.Over(ssl))
        {
            var md = await MetadataAsync(client);
            Assert.That($"{md.Brokers[0].Host}:{md.Brokers[0].Port}", Is.EqualTo(b.Endpoint("SSL")));
            var coordinator = await client.SendAsync<FindCoordinatorResponse>(new FindCoordinatorRequest { KeyValue = "g" }, 3);
            Assert.That(coordinator.Port, Is.EqualTo(b.Broker.Listeners[1].Port));
        }
        using var plain = await RawClient.ConnectAsync(b.Endpoint("PLAINTEXT"));
        var plainMd = await MetadataAsync(plain);
        Assert.That($"{plainMd.Brokers[0].Host}:{plainMd.Brokers[0].Port}", Is.EqualTo(b.Endpoint("PLAINTEXT")));
    }

    [Test]
    public async Task LargeProduceAndFetch_OverTls_AreByteExact()
    {
        await using var b = await StartAsync(_certs.Pkcs12Keystore());
        var created = b.Broker.State.Topics.Create("big", 1, 1, new Dictionary<string, string>(), validateOnly: false);
        Assert.That(created.Topic, Is.Not.Null);
        // 600 KB: the request is received straight into its frame, the fetched records (owned segments, sent by
        // reference on a socket) are copied once into the TLS stream.
        var value = new byte[600_000];
        new Random(7).NextBytes(value);
        var (tcp, ssl) = await ConnectTlsAsync(b.Endpoint("SSL"));
        using (tcp)
        using (var client = RawClient.Over(ssl))
        {
            using var builder = new Kayak.Protocol.Records.RecordBatchBuilder(new Kayak.Protocol.Records.RecordBatchOptions());
            builder.Append(1_700_000_000_000, null, value);
            var produced = await client.SendAsync<ProduceResponse>(new ProduceRequest
            {
                Acks = 1,
                TimeoutMs = 5000,
                TopicData = [new() { Name = "big", PartitionData = [new() { Index = 0, Records = builder.ToArray() }] }],
            }, 9);
            Assert.That(produced.Responses[0].PartitionResponses[0].ErrorCode, Is.EqualTo(0));
            var fetched = await client.SendAsync<FetchResponse>(new FetchRequest
            {
                MaxWaitMs = 0,
                MinBytes = 1,
                MaxBytes = 4 << 20,
                Topics = [new() { Topic = "big", Partitions = [new() { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 4 << 20 }] }],
            }, 11);
            var records = fetched.Responses[0].Partitions[0].Records!.Value.ToArray();
            int n = 0;
            foreach (var record in Kayak.Protocol.Records.RecordBatch.EnumerateUncompressed(records))
            {
                Assert.That(record.Value.SequenceEqual(value), Is.True);
                n++;
            }
            Assert.That(n, Is.EqualTo(1));
        }
    }

    [TestCase("plaintext-kafka")]
    [TestCase("garbage")]
    [TestCase("half-client-hello")]
    public async Task BadBytesOnTheTlsPort_CloseThatConnection_AndTheBrokerKeepsServing(string kind)
    {
        await using var b = await StartAsync(_certs.Pkcs12Keystore(), handshakeTimeout: TimeSpan.FromMilliseconds(500));
        string endpoint = b.Endpoint("SSL");
        int colon = endpoint.LastIndexOf(':');
        using (var tcp = new TcpClient())
        {
            await tcp.ConnectAsync("127.0.0.1", int.Parse(endpoint[(colon + 1)..]));
            var stream = tcp.GetStream();
            byte[] bytes = kind switch
            {
                // An ApiVersions v3 request as a plaintext client sends it first.
                "plaintext-kafka" => [0, 0, 0, 0x14, 0, 0x12, 0, 3, 0, 0, 0, 1, 0, 4, (byte)'t', (byte)'e', (byte)'s', (byte)'t', 0, 1, 0, 1, 0, 0],
                // A TLS record header announcing a handshake, then nothing: only the handshake timeout ends it.
                "half-client-hello" => [0x16, 0x03, 0x01, 0x02, 0x00, 0x01],
                _ => [.. Enumerable.Range(0, 300).Select(i => (byte)(i * 37 + 11))],
            };
            await stream.WriteAsync(bytes);
            var buffer = new byte[1024];
            // The broker closes: EOF, or a reset after it sent a TLS alert; never a Kafka response.
            try
            {
                int n;
                while ((n = await stream.ReadAsync(buffer)) > 0)
                    Assert.That(buffer[0], Is.EqualTo(0x15), "only a TLS alert record may come back");
            }
            catch (IOException) { }
        }
        var (tls, ssl) = await ConnectTlsAsync(endpoint);
        using (tls)
        using (var client = RawClient.Over(ssl))
            Assert.That((await MetadataAsync(client)).Brokers, Has.Count.EqualTo(1));
        using var plain = await RawClient.ConnectAsync(b.Endpoint("PLAINTEXT"));
        Assert.That((await MetadataAsync(plain)).Brokers, Has.Count.EqualTo(1));
    }

    [Test]
    public async Task SilentClient_IsClosedByTheHandshakeTimeout()
    {
        await using var b = await StartAsync(_certs.Pkcs12Keystore(), handshakeTimeout: TimeSpan.FromMilliseconds(300));
        var endpoint = b.Endpoint("SSL");
        using var tcp = new TcpClient();
        await tcp.ConnectAsync("127.0.0.1", int.Parse(endpoint[(endpoint.LastIndexOf(':') + 1)..]));
        int n;
        try { n = await tcp.GetStream().ReadAsync(new byte[16]); }
        catch (IOException) { n = 0; }
        Assert.That(n, Is.EqualTo(0), "the broker closed the connection without a byte");
    }

    [TestCase("required")]
    [TestCase("requested")]
    public async Task ClientCertificate_IsVerified_AndBecomesThePrincipal(string clientAuth)
    {
        var props = _certs.Pkcs12Keystore("listener.name.ssl.");
        props["listener.name.ssl.ssl.client.auth"] = clientAuth;
        props["ssl.truststore.location"] = _certs.CaPem;
        props["ssl.truststore.type"] = "PEM";
        await using var b = await StartAsync(props);
        var (tcp, ssl) = await ConnectTlsAsync(b.Endpoint("SSL"), _certs.Client);
        using (tcp)
        using (var client = RawClient.Over(ssl))
            Assert.That((await MetadataAsync(client)).Brokers, Has.Count.EqualTo(1));
        Assert.That(X500Names.Rfc2253(_certs.Client.SubjectName), Is.EqualTo(TestCertificates.ClientSubject));

        // Without a certificate: refused when required (with TLS 1.3 the client learns it on its first read), served when requested.
        if (clientAuth == "required")
        {
            Assert.That(async () =>
            {
                var (t2, s2) = await ConnectTlsAsync(b.Endpoint("SSL"));
                using (t2)
                using (var c2 = RawClient.Over(s2))
                    await MetadataAsync(c2);
            }, Throws.InstanceOf<AuthenticationException>().Or.InstanceOf<IOException>().Or.InstanceOf<EndOfStreamException>());
        }
        else
        {
            var (t3, s3) = await ConnectTlsAsync(b.Endpoint("SSL"));
            using (t3)
            using (var c3 = RawClient.Over(s3))
                Assert.That((await MetadataAsync(c3)).Brokers, Has.Count.EqualTo(1));
        }
    }

    [Test]
    public async Task EnabledProtocolsAndCipherSuites_AreWhatTheHandshakeNegotiates()
    {
        var tls12 = _certs.Pkcs12Keystore();
        tls12["ssl.enabled.protocols"] = "TLSv1.2";
        await using (var b = await StartAsync(tls12))
        {
            var (tcp, ssl) = await ConnectTlsAsync(b.Endpoint("SSL"));
            using (tcp)
            using (ssl)
                Assert.That(ssl.SslProtocol, Is.EqualTo(SslProtocols.Tls12));
        }
        var suite = _certs.Pkcs12Keystore();
        // Not OpenSSL's first choice (TLS_AES_256_GCM_SHA384), so only the policy makes the handshake pick it.
        suite["ssl.cipher.suites"] = "TLS_AES_128_GCM_SHA256";
        suite["ssl.enabled.protocols"] = "TLSv1.3";
        await using (var b = await StartAsync(suite))
        {
            var (tcp, ssl) = await ConnectTlsAsync(b.Endpoint("SSL"));
            using (tcp)
            using (ssl)
                Assert.That(ssl.NegotiatedCipherSuite, Is.EqualTo(TlsCipherSuite.TLS_AES_128_GCM_SHA256));
        }
    }

    [Test]
    public async Task PemKeystores_FileEncryptedAndInline_Serve()
    {
        var variants = new[]
        {
            new Dictionary<string, string> { ["ssl.keystore.location"] = _certs.ServerPem, ["ssl.keystore.type"] = "PEM" },
            new Dictionary<string, string> { ["ssl.keystore.location"] = _certs.ServerEncryptedPem, ["ssl.keystore.type"] = "PEM", ["ssl.key.password"] = TestCertificates.Password },
            new Dictionary<string, string> { ["ssl.keystore.certificate.chain"] = _certs.ServerCertificatePem, ["ssl.keystore.key"] = _certs.ServerKeyPem, ["ssl.keystore.type"] = "PEM" },
            // Store types are case-insensitive, as Java's KeyStore.getInstance.
            new Dictionary<string, string> { ["ssl.keystore.location"] = _certs.ServerP12, ["ssl.keystore.password"] = TestCertificates.Password, ["ssl.keystore.type"] = "pkcs12" },
            // Kafka's default type name (JKS) with a PKCS12 file: read as Java 9+'s JKS keystore reads it.
            new Dictionary<string, string> { ["ssl.keystore.location"] = _certs.ServerP12, ["ssl.keystore.password"] = TestCertificates.Password },
        };
        foreach (var props in variants)
        {
            await using var b = await StartAsync(props);
            var (tcp, ssl) = await ConnectTlsAsync(b.Endpoint("SSL"));
            using (tcp)
            using (var client = RawClient.Over(ssl))
                Assert.That((await MetadataAsync(client)).Brokers, Has.Count.EqualTo(1), string.Join(",", props.Keys));
        }
    }

    [Test]
    public void BadStores_StopTheStartUp_NamingTheKey()
    {
        var wrongPassword = _certs.Pkcs12Keystore();
        wrongPassword["ssl.keystore.password"] = "wrong";
        var e = Assert.ThrowsAsync<ConfigException>(() => StartAsync(wrongPassword))!;
        Assert.That(e.Key, Is.EqualTo("ssl.keystore.password"));
        Assert.That(e.Message, Does.Not.Contain("wrong").And.Contain("[hidden]"));

        var perListener = _certs.Pkcs12Keystore("listener.name.ssl.");
        perListener["listener.name.ssl.ssl.keystore.password"] = "wrong";
        Assert.That(Assert.ThrowsAsync<ConfigException>(() => StartAsync(perListener))!.Key, Is.EqualTo("listener.name.ssl.ssl.keystore.password"));

        var jks = Path.Combine(_certs.Directory, "server.jks");
        File.WriteAllBytes(jks, [0xFE, 0xED, 0xFE, 0xED, 0, 0, 0, 2, 0, 0, 0, 0]); // JKS's magic and version 2
        var jksProps = new Dictionary<string, string> { ["ssl.keystore.location"] = jks, ["ssl.keystore.password"] = "x", ["ssl.keystore.type"] = "JKS" };
        var j = Assert.ThrowsAsync<ConfigException>(() => StartAsync(jksProps))!;
        Assert.That(j.Key, Is.EqualTo("ssl.keystore.type"));
        Assert.That(j.Message, Does.Contain("PKCS12").And.Contain("PEM"));

        var encryptedNoPassword = new Dictionary<string, string> { ["ssl.keystore.location"] = _certs.ServerEncryptedPem, ["ssl.keystore.type"] = "PEM" };
        Assert.That(Assert.ThrowsAsync<ConfigException>(() => StartAsync(encryptedNoPassword))!.Key, Is.EqualTo("ssl.key.password"));

        var badProtocol = _certs.Pkcs12Keystore();
        badProtocol["ssl.enabled.protocols"] = "TLSv1.1";
        Assert.That(Assert.ThrowsAsync<ConfigException>(() => StartAsync(badProtocol))!.Key, Is.EqualTo("ssl.enabled.protocols"));

        var badSuite = _certs.Pkcs12Keystore();
        badSuite["ssl.cipher.suites"] = "TLS_NOT_A_SUITE";
        Assert.That(Assert.ThrowsAsync<ConfigException>(() => StartAsync(badSuite))!.Key, Is.EqualTo("ssl.cipher.suites"));
    }

    [Test]
    public async Task TheHost_ExitsOne_NamingTheKey_OnABadKeystorePasswordOrAJksFile()
    {
        var dir = Path.Combine(Path.GetTempPath(), "kayak-tls-exe-" + Guid.NewGuid().ToString("N"));
        var (code, stderr, _) = await ExecutableTests.RunBrokerAsync("--override", "log.dirs=" + dir,
            "--override", "listeners=SSL://127.0.0.1:0", "--override", "ssl.keystore.location=" + _certs.ServerP12,
            "--override", "ssl.keystore.type=PKCS12", "--override", "ssl.keystore.password=wrong");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(stderr, Does.Contain("configuration ssl.keystore.password: Failed to load SSL keystore"));
        Assert.That(File.Exists(Path.Combine(dir, "meta.properties")), Is.False, "nothing was written to the log dir");

        var jks = Path.Combine(_certs.Directory, "host.jks");
        File.WriteAllBytes(jks, [0xFE, 0xED, 0xFE, 0xED, 0, 0, 0, 2]);
        (code, stderr, _) = await ExecutableTests.RunBrokerAsync("--override", "log.dirs=" + dir,
            "--override", "listeners=SSL://127.0.0.1:0", "--override", "ssl.keystore.location=" + jks);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(stderr, Does.Contain("configuration ssl.keystore.type").And.Contain("PKCS12 or PEM"));
    }

    [Test]
    public void PrincipalMappingRules_FollowKafkasSslPrincipalMapper()
    {
        var mapper = SslPrincipalMapper.Parse("ssl.principal.mapping.rules",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L, RULE:^CN=(.*?),OU=(.*?),O=(.*?)$/$1@$2/U, DEFAULT");
        Assert.That(mapper.Map("CN=Kafka-Broker,OU=ServiceUsers,O=Org"), Is.EqualTo("kafka-broker"));
        Assert.That(mapper.Map("CN=admin,OU=tests,O=Kayak"), Is.EqualTo("ADMIN@TESTS"));
        Assert.That(mapper.Map("CN=x"), Is.EqualTo("CN=x"));
        Assert.That(SslPrincipalMapper.Parse("k", "RULE:^CN=(.*)$/$1/").Map("O=none"), Is.Null);
        Assert.Throws<ConfigException>(() => SslPrincipalMapper.Parse("k", "NONSENSE"));
    }
}
