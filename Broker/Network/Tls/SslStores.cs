using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Kayak.Broker.Config;
using System.Net.Security;

namespace Kayak.Broker.Network.Tls;

/// <summary>
/// Loads one listener's keystore and truststore as Kafka's DefaultSslEngineFactory reads them: a file
/// (ssl.*.location, .password, .type = PKCS12 or PEM) or inline PEM (ssl.keystore.certificate.chain + ssl.keystore.key,
/// ssl.truststore.certificates). JKS is Kafka's default type name; as Java 9+'s JKS KeyStore does, a JKS-typed store
/// that is really PKCS12 (or PEM) is read as such, and a real JKS file is refused naming PKCS12 and PEM (.NET has no
/// JKS reader). Errors name the key and never the password (Kafka's "[hidden]").
/// </summary>
internal sealed class SslStores(BrokerConfig config, string listener)
{
    private const string Hidden = "[hidden]";

    private string? Get(string key) => config.GetListenerString(listener, key);
    private string Key(string key) => config.ListenerKey(listener, key);

    public SslStreamCertificateContext LoadKeystore()
    {
        string? location = Get("ssl.keystore.location");
        string? chainPem = Get("ssl.keystore.certificate.chain");
        string? keyPem = Get("ssl.keystore.key");
        string? keyPassword = Get("ssl.key.password");
        X509Certificate2Collection certificates;
        if (chainPem is not null || keyPem is not null)
        {
            if (location is not null)
                throw new ConfigException(Key("ssl.keystore.location"), location, "cannot be set together with ssl.keystore.certificate.chain and ssl.keystore.key");
            if (chainPem is null) throw new ConfigException(Key("ssl.keystore.certificate.chain"), null, "ssl.keystore.key is set, so the certificate chain is required");
            if (keyPem is null) throw new ConfigException(Key("ssl.keystore.key"), null, "ssl.keystore.certificate.chain is set, so the private key is required");
            RequirePemType("ssl.keystore.type");
            certificates = LoadPem(chainPem, keyPem, keyPassword, Key("ssl.keystore.certificate.chain"), Key("ssl.keystore.key"));
        }
        else
        {
            if (location is null)
                throw new ConfigException(Key("ssl.keystore.location"), null,
                    $"the SSL listener {listener} needs a keystore: set ssl.keystore.location, or ssl.keystore.certificate.chain and ssl.keystore.key");
            string type = FileType("ssl.keystore.type", Key("ssl.keystore.location"), location);
            if (type == "PEM")
            {
                string text = File.ReadAllText(location);
                certificates = LoadPem(text, text, keyPassword, Key("ssl.keystore.location"), Key("ssl.keystore.location"));
            }
            else
            {
                try
                {
                    certificates = X509CertificateLoader.LoadPkcs12CollectionFromFile(location, Get("ssl.keystore.password"));
                }
                catch (CryptographicException e)
                {
                    throw new ConfigException(Key("ssl.keystore.password"), Hidden, $"Failed to load SSL keystore {location} of type PKCS12: {e.Message}");
                }
            }
        }
        X509Certificate2? leaf = null;
        var chain = new X509Certificate2Collection();
        foreach (var c in certificates)
        {
            if (leaf is null && c.HasPrivateKey) leaf = c;
            else chain.Add(c);
        }
        if (leaf is null)
            throw new ConfigException(Key(location is null ? "ssl.keystore.key" : "ssl.keystore.location"), location, "the keystore holds no private key");
        // Windows' SChannel cannot use an ephemeral (PEM-imported) key; a PKCS12 round trip gives it a stored one.
        if (OperatingSystem.IsWindows()) leaf = X509CertificateLoader.LoadPkcs12(leaf.Export(X509ContentType.Pkcs12), null);
        // offline: the chain comes from the keystore; the broker never downloads intermediates at start-up.
        return SslStreamCertificateContext.Create(leaf, chain, offline: true);
    }

    /// <summary>The trust anchors for client certificates, or null for the system's roots (Kafka: the JVM's cacerts).</summary>
    public X509Certificate2Collection? LoadTruststore()
    {
        string? inline = Get("ssl.truststore.certificates");
        string? location = Get("ssl.truststore.location");
        var trust = new X509Certificate2Collection();
        if (inline is not null)
        {
            if (location is not null)
                throw new ConfigException(Key("ssl.truststore.location"), location, "cannot be set together with ssl.truststore.certificates");
            RequirePemType("ssl.truststore.type");
            ImportPem(trust, inline, Key("ssl.truststore.certificates"));
            return trust;
        }
        if (location is null) return null;
        if (FileType("ssl.truststore.type", Key("ssl.truststore.location"), location) == "PEM")
        {
            ImportPem(trust, File.ReadAllText(location), Key("ssl.truststore.location"));
            return trust;
        }
        try
        {
            return X509CertificateLoader.LoadPkcs12CollectionFromFile(location, Get("ssl.truststore.password"));
        }
        catch (CryptographicException e)
        {
            throw new ConfigException(Key("ssl.truststore.password"), Hidden, $"Failed to load SSL truststore {location} of type PKCS12: {e.Message}");
        }
    }

    private static void ImportPem(X509Certificate2Collection into, string pem, string key)
    {
        try { into.ImportFromPem(pem); }
        catch (CryptographicException e) { throw new ConfigException(key, Hidden, "Invalid PEM certificates: " + e.Message); }
        if (into.Count == 0) throw new ConfigException(key, Hidden, "no PEM certificate (-----BEGIN CERTIFICATE-----) found");
    }

    /// <summary>The store type, case-insensitive as Java's KeyStore.getInstance: JKS, PKCS12 or PEM.</summary>
    private string StoreType(string typeKey)
    {
        string type = Get(typeKey)!.Trim().ToUpperInvariant();
        if (type is not ("JKS" or "PKCS12" or "PEM"))
            throw new ConfigException(Key(typeKey), type, "Kayak reads PKCS12 and PEM stores (and JKS-typed ones that are PKCS12 files)");
        return type;
    }

    /// <summary>Inline PEM needs ssl.*.type=PEM in Kafka; left at its default (JKS) it is taken as PEM too.</summary>
    private void RequirePemType(string typeKey)
    {
        string type = StoreType(typeKey);
        if (type != "PEM" && (config.Has(typeKey) || config.Has(ListenerSecurity.Prefix(listener) + typeKey)))
            throw new ConfigException(Key(typeKey), type, "inline certificates and keys need the type PEM");
    }

    /// <summary>The format a store file is read as: its configured type, with JKS (Kafka's default) sniffed from the file.</summary>
    private string FileType(string typeKey, string locationKey, string location)
    {
        string type = StoreType(typeKey);
        byte[] head = new byte[4];
        int n;
        try
        {
            using var file = File.OpenRead(location);
            n = file.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException(locationKey, location, $"cannot read the store: {e.Message}");
        }
        bool jksMagic = n == 4 && head[0] == 0xFE && head[1] == 0xED && head[2] == 0xFE && head[3] == 0xED;
        if (jksMagic)
            throw new ConfigException(Key(typeKey), type,
                $"{location} is a JKS keystore, which Kayak cannot read: use PKCS12 or PEM (keytool -importkeystore -srckeystore {location} -deststoretype PKCS12 -destkeystore store.p12) and set {Key(typeKey)}=PKCS12");
        if (type != "JKS") return type;
        return n > 0 && head[0] == (byte)'-' ? "PEM" : "PKCS12";
    }

    /// <summary>A PEM certificate chain (leaf first) and a PKCS#8 private key, encrypted with ssl.key.password or not.</summary>
    private X509Certificate2Collection LoadPem(string certificatesPem, string keyPem, string? keyPassword, string certificatesKey, string keyKey)
    {
        var all = new X509Certificate2Collection();
        ImportPem(all, certificatesPem, certificatesKey);
        bool encrypted = keyPem.Contains("-----BEGIN ENCRYPTED PRIVATE KEY-----", StringComparison.Ordinal);
        if (encrypted && keyPassword is null)
            throw new ConfigException(Key("ssl.key.password"), null, "the PEM private key is encrypted, so ssl.key.password is required");
        X509Certificate2 leaf;
        try
        {
            leaf = encrypted
                ? X509Certificate2.CreateFromEncryptedPem(certificatesPem, keyPem, keyPassword)
                : X509Certificate2.CreateFromPem(certificatesPem, keyPem);
        }
        catch (CryptographicException e)
        {
            throw encrypted
                ? new ConfigException(Key("ssl.key.password"), Hidden, "Failed to decrypt the PEM private key: " + e.Message)
                : new ConfigException(keyKey, Hidden, "Invalid PEM private key (PKCS#8 expected): " + e.Message);
        }
        var result = new X509Certificate2Collection { leaf };
        for (int i = 1; i < all.Count; i++) result.Add(all[i]);
        return result;
    }
}
