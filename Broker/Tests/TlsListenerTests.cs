using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Kayak.Broker.Config;
using Kayak.Broker.Network.Tls;
using Kayak.Protocol.Messages;
using Kayak.Tests.Tls;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>
/// Issue 12: what an SSL listener makes of a client certificate (Kafka's principal), advertised.listeners per
/// listener, and DescribeConfigs never returning a keystore password.
/// </summary>
[CancelAfter(60_000)]
public class TlsListenerTests
{
    private TestCertificates _certs = null!;

    [OneTimeSetUp]
    public void CreateCertificates() => _certs = TestCertificates.Create();

    [OneTimeTearDown]
    public void DeleteCertificates() => _certs.Dispose();

    private BrokerConfig SslConfig(Dictionary<string, string>? extra = null)
    {
        var props = _certs.Pkcs12Keystore();
        props["listeners"] = "SSL://127.0.0.1:0";
        props["log.dirs"] = "/nonexistent";
        props["ssl.client.auth"] = "requested";
        props["ssl.truststore.location"] = _certs.CaPem;
        props["ssl.truststore.type"] = "PEM";
        foreach (var (k, v) in extra ?? []) props[k] = v;
        return new BrokerConfig(props);
    }

    /// <summary>A server handshake through SslFactory over a loopback socket pair; returns the principal it built.</summary>
    private async Task<string> HandshakeAsync(SslFactory factory, X509Certificate2? clientCertificate)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
        using var serverSocket = await listener.AcceptSocketAsync();
        var server = factory.AuthenticateAsync(new NetworkStream(serverSocket, ownsSocket: false), CancellationToken.None);
        await using var ssl = new SslStream(client.GetStream(), false);
        await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            ClientCertificates = clientCertificate is null ? null : [clientCertificate],
            CertificateChainPolicy = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust, CustomTrustStore = { _certs.Ca }, RevocationMode = X509RevocationMode.NoCheck },
        });
        var (stream, principal) = await server;
        await stream.DisposeAsync();
        return principal;
    }

    [Test]
    public async Task ClientCertificate_GivesKafkasDefaultX500Principal_OrTheMappedOne()
    {
        Assert.That(await HandshakeAsync(SslFactory.Create(SslConfig(), "SSL"), _certs.Client),
            Is.EqualTo("User:" + TestCertificates.ClientSubject));
        Assert.That(await HandshakeAsync(SslFactory.Create(SslConfig(), "SSL"), null), Is.EqualTo("User:ANONYMOUS"));
        var mapped = SslConfig(new() { ["listener.name.ssl.ssl.principal.mapping.rules"] = "RULE:^CN=([^,]*),.*$/$1/U" });
        Assert.That(await HandshakeAsync(SslFactory.Create(mapped, "SSL"), _certs.Client), Is.EqualTo("User:KAYAK-CLIENT"));
    }

    [Test]
    public void ListenerOverrides_AreKnownKeys_AndValidatedAsTheirSslKey()
    {
        var config = SslConfig(new() { ["listener.name.ssl.ssl.client.auth"] = "required" });
        Assert.That(config.UnknownKeys, Is.Empty);
        Assert.That(config.GetListenerString("SSL", "ssl.client.auth"), Is.EqualTo("required"));
        Assert.That(config.GetListenerString("OTHER", "ssl.client.auth"), Is.EqualTo("requested"));
        var e = Assert.Throws<ConfigException>(() => SslConfig(new() { ["listener.name.ssl.ssl.client.auth"] = "always" }))!;
        Assert.That(e.Key, Is.EqualTo("listener.name.ssl.ssl.client.auth"));
    }

    [Test]
    public async Task AdvertisedListeners_ArePerListener_AndEachClientGetsItsOwn()
    {
        var dir = Path.Combine(Path.GetTempPath(), "kayak-adv-" + Guid.NewGuid().ToString("N"));
        var options = new KafkaBrokerOptions { DataDir = dir };
        options.Properties["listeners"] = "INTERNAL://127.0.0.1:0,EXTERNAL://127.0.0.1:0";
        options.Properties["listener.security.protocol.map"] = "INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT";
        // Only EXTERNAL is advertised under another name; port 0 there stands for the bound port.
        options.Properties["advertised.listeners"] = "EXTERNAL://kayak.example:0";
        var broker = new KafkaBroker(options);
        try
        {
            await broker.StartAsync();
            var external = broker.Listeners.First(l => l.Name == "EXTERNAL");
            var internalEndpoint = broker.Listeners.First(l => l.Name == "INTERNAL");
            using (var c = await RawClient.ConnectAsync($"127.0.0.1:{external.Port}"))
            {
                var md = await c.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [] }, 9);
                Assert.That((md.Brokers[0].Host, md.Brokers[0].Port), Is.EqualTo(("kayak.example", external.Port)));
                var cluster = await c.SendAsync<DescribeClusterResponse>(new DescribeClusterRequest(), 0);
                Assert.That(cluster.Brokers[0].Host, Is.EqualTo("kayak.example"));
            }
            using (var c = await RawClient.ConnectAsync($"127.0.0.1:{internalEndpoint.Port}"))
            {
                var md = await c.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [] }, 9);
                Assert.That((md.Brokers[0].Host, md.Brokers[0].Port), Is.EqualTo(("127.0.0.1", internalEndpoint.Port)));
            }
        }
        finally
        {
            await broker.DisposeAsync();
            try { Directory.Delete(dir, true); } catch (IOException) { }
        }
    }

    [Test]
    public async Task DescribeConfigs_HidesPasswords_AsKafkaDoes()
    {
        var dir = Path.Combine(Path.GetTempPath(), "kayak-pw-" + Guid.NewGuid().ToString("N"));
        var options = new KafkaBrokerOptions { DataDir = dir };
        options.Properties["listeners"] = "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0";
        foreach (var (k, v) in _certs.Pkcs12Keystore()) options.Properties[k] = v;
        var broker = new KafkaBroker(options);
        try
        {
            await broker.StartAsync();
            using var c = await RawClient.ConnectAsync(broker.BootstrapServers);
            var response = await c.SendAsync<DescribeConfigsResponse>(new DescribeConfigsRequest
            {
                Resources = [new() { ResourceType = 4, ResourceName = broker.State.NodeId.ToString(), ConfigurationKeys = ["ssl.keystore.password", "ssl.keystore.location"] }],
                IncludeSynonyms = true,
            }, 4);
            var password = response.Results[0].Configs.Single(e => e.Name == "ssl.keystore.password");
            Assert.That((password.Value, password.IsSensitive), Is.EqualTo(((string?)null, true)));
            Assert.That(password.Synonyms.All(s => s.Value is null), Is.True);
            Assert.That(response.Results[0].Configs.Single(e => e.Name == "ssl.keystore.location").Value, Is.EqualTo(_certs.ServerP12));
        }
        finally
        {
            await broker.DisposeAsync();
            try { Directory.Delete(dir, true); } catch (IOException) { }
        }
    }
}
