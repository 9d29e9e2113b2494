using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Kayak.Tests.Tls;

/// <summary>
/// A throwaway PKI for TLS tests, generated with .NET's CertificateRequest into a temporary directory (nothing is
/// committed): a CA, a server certificate for 127.0.0.1/localhost signed by it, and a client certificate
/// (CN=kayak-client,OU=tests,O=Kayak) for mTLS, as the files Kafka's and the clients' ssl.* settings point to; and a
/// broker certificate (CN=kayak-broker,OU=tests,O=Kayak, 127.0.0.1/localhost) valid for both TLS server and client
/// authentication, as a cluster member presents it to clients and, on an SSL inter-broker listener, to the other brokers.
/// Shared by Broker/Tests and IntegrationTests (linked, not copied).
/// </summary>
internal sealed class TestCertificates : IDisposable
{
    public const string Password = "kayak-secret";
    public const string ClientSubject = "CN=kayak-client,OU=tests,O=Kayak";
    public const string BrokerSubject = "CN=kayak-broker,OU=tests,O=Kayak";
    private const string ServerAuth = "1.3.6.1.5.5.7.3.1", ClientAuth = "1.3.6.1.5.5.7.3.2";

    private TestCertificates(string dir) { Directory = dir; }

    public string Directory { get; }
    /// <summary>The CA certificate, PEM: the clients' ssl.ca.location and the broker's PEM truststore.</summary>
    public string CaPem => Path.Combine(Directory, "ca.pem");
    /// <summary>The CA as a PKCS12 truststore (certificate only), password <see cref="Password"/>.</summary>
    public string CaP12 => Path.Combine(Directory, "ca.p12");
    /// <summary>Server certificate and key, PKCS12, password <see cref="Password"/>.</summary>
    public string ServerP12 => Path.Combine(Directory, "server.p12");
    /// <summary>Server certificate chain and unencrypted PKCS#8 key in one PEM file.</summary>
    public string ServerPem => Path.Combine(Directory, "server.pem");
    /// <summary>Server certificate chain and a PKCS#8 key encrypted with <see cref="Password"/>.</summary>
    public string ServerEncryptedPem => Path.Combine(Directory, "server-encrypted.pem");
    public string ServerCertificatePem { get; private set; } = "";
    public string ServerKeyPem { get; private set; } = "";
    /// <summary>The broker certificate (serverAuth and clientAuth) and key, PKCS12, password <see cref="Password"/>.</summary>
    public string BrokerP12 => Path.Combine(Directory, "broker.p12");
    public string ClientCertPem => Path.Combine(Directory, "client.pem");
    public string ClientKeyPem => Path.Combine(Directory, "client.key");
    public X509Certificate2 Ca { get; private set; } = null!;
    public X509Certificate2 Client { get; private set; } = null!;

    public static TestCertificates Create()
    {
        var dir = Path.Combine(Path.GetTempPath(), "kayak-tls-" + Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(dir);
        var t = new TestCertificates(dir);
        t.Generate();
        return t;
    }

    private void Generate()
    {
        var now = DateTimeOffset.UtcNow.AddMinutes(-5);
        using var caKey = RSA.Create(2048);
        var caRequest = new CertificateRequest("CN=Kayak Test CA,O=Kayak", caKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        caRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(caRequest.PublicKey, false));
        Ca = caRequest.CreateSelfSigned(now, now.AddDays(2));
        File.WriteAllText(CaPem, Ca.ExportCertificatePem() + "\n");
        File.WriteAllBytes(CaP12, X509CertificateLoader.LoadCertificate(Ca.RawData).Export(X509ContentType.Pkcs12, Password));

        using var serverKey = RSA.Create(2048);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        san.AddDnsName("localhost");
        var server = Issue("CN=localhost,O=Kayak", serverKey, san.Build(), [ServerAuth], now);
        ServerCertificatePem = server.ExportCertificatePem() + "\n" + Ca.ExportCertificatePem() + "\n";
        ServerKeyPem = serverKey.ExportPkcs8PrivateKeyPem() + "\n";
        File.WriteAllText(ServerPem, ServerCertificatePem + ServerKeyPem);
        File.WriteAllText(ServerEncryptedPem, ServerCertificatePem + serverKey.ExportEncryptedPkcs8PrivateKeyPem(Password,
            new PbeParameters(PbeEncryptionAlgorithm.Aes256Cbc, HashAlgorithmName.SHA256, 10_000)) + "\n");
        using (var withKey = server.CopyWithPrivateKey(serverKey))
            File.WriteAllBytes(ServerP12, withKey.Export(X509ContentType.Pkcs12, Password));

        using var brokerKey = RSA.Create(2048);
        using (var broker = Issue(BrokerSubject, brokerKey, san.Build(), [ServerAuth, ClientAuth], now))
        using (var withKey = broker.CopyWithPrivateKey(brokerKey))
            File.WriteAllBytes(BrokerP12, withKey.Export(X509ContentType.Pkcs12, Password));

        using var clientKey = RSA.Create(2048);
        Client = Issue(ClientSubject, clientKey, null, [ClientAuth], now);
        File.WriteAllText(ClientCertPem, Client.ExportCertificatePem() + "\n");
        File.WriteAllText(ClientKeyPem, clientKey.ExportPkcs8PrivateKeyPem() + "\n");
        Client = Client.CopyWithPrivateKey(clientKey);
    }

    private X509Certificate2 Issue(string subject, RSA key, X509Extension? san, string[] usages, DateTimeOffset now)
    {
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
        var oids = new OidCollection();
        foreach (var usage in usages) oids.Add(new Oid(usage));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(oids, false));
        if (san is not null) request.CertificateExtensions.Add(san);
        var serial = new byte[12];
        RandomNumberGenerator.Fill(serial);
        serial[0] &= 0x7F;
        return request.Create(Ca, now, now.AddDays(1), serial);
    }

    /// <summary>The broker properties of an SSL listener with the PKCS12 keystore (plus any extra ones).</summary>
    public Dictionary<string, string> Pkcs12Keystore(string prefix = "", bool broker = false) => new()
    {
        [prefix + "ssl.keystore.location"] = broker ? BrokerP12 : ServerP12,
        [prefix + "ssl.keystore.password"] = Password,
        [prefix + "ssl.keystore.type"] = "PKCS12",
    };

    public void Dispose()
    {
        Ca.Dispose();
        Client.Dispose();
        try { System.IO.Directory.Delete(Directory, recursive: true); } catch (IOException) { }
    }
}
