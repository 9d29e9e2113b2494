using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Kayak.Broker.Config;

namespace Kayak.Broker.Network.Tls;

/// <summary>
/// TLS for one SSL or SASL_SSL listener, built once at start-up from its ssl.* configs (each read as
/// listener.name.&lt;name&gt;.ssl.* first, as Kafka's ChannelBuilders does): the role of Kafka's SslFactory and
/// DefaultSslEngineFactory, on .NET's SslStream. The server side serves the listener; the client side is what this
/// broker uses to connect to the same listener of the other cluster members when it is the inter-broker listener
/// (Kafka builds the replica fetcher's and the inter-broker channels with ChannelBuilders.clientChannelBuilder from the
/// inter-broker listener's own ssl.* values, so the keystore is the client certificate and the truststore checks the
/// other broker's). Every problem with a store (missing file, wrong password, a JKS file, an unknown protocol, cipher
/// suite or endpoint identification algorithm) is a <see cref="ConfigException"/> naming the key, so the broker does
/// not start.
/// </summary>
internal sealed class SslFactory
{
    /// <summary>
    /// How long a client has to finish the TLS handshake. Kafka bounds it only by connections.max.idle.ms (10 minutes);
    /// Kayak closes the connection after 10 s so a stuck client, or a plaintext one that sent a few bytes and waits for
    /// an answer, cannot hold a connection (and its socket) for that long.
    /// </summary>
    public static readonly TimeSpan DefaultHandshakeTimeout = TimeSpan.FromSeconds(10);

    private readonly SslServerAuthenticationOptions _options;
    private readonly X509Certificate2Collection? _trust;
    private readonly SslPrincipalMapper _principalMapper;

    private SslFactory(string listenerName, SslServerAuthenticationOptions options, X509Certificate2Collection? trust,
        string clientAuth, SslPrincipalMapper mapper, TimeSpan handshakeTimeout, bool verifyHostname)
    {
        ListenerName = listenerName;
        _options = options;
        _trust = trust;
        ClientAuth = clientAuth;
        _principalMapper = mapper;
        HandshakeTimeout = handshakeTimeout;
        VerifyHostname = verifyHostname;
        _options.RemoteCertificateValidationCallback = ValidateClientCertificate;
    }

    public string ListenerName { get; }

    /// <summary>ssl.client.auth: none, requested or required.</summary>
    public string ClientAuth { get; }

    public TimeSpan HandshakeTimeout { get; }

    /// <summary>
    /// ssl.endpoint.identification.algorithm=https (Kafka's default since KIP-294): as a client, the server
    /// certificate must name the host connected to (a SAN DNS name or IP address); empty turns the check off.
    /// </summary>
    public bool VerifyHostname { get; }

    /// <summary>Reads and checks the listener's ssl.* configs and loads its stores; throws ConfigException naming the key.</summary>
    public static SslFactory Create(BrokerConfig config, string listenerName, TimeSpan? handshakeTimeout = null)
    {
        var stores = new SslStores(config, listenerName);
        var certificate = stores.LoadKeystore();
        var trust = stores.LoadTruststore();
        string clientAuth = config.GetListenerString(listenerName, "ssl.client.auth")!.ToLowerInvariant();
        var options = new SslServerAuthenticationOptions
        {
            ServerCertificateContext = certificate,
            ClientCertificateRequired = clientAuth != "none",
            EnabledSslProtocols = Protocols(config, listenerName),
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            CipherSuitesPolicy = CipherSuites(config, listenerName),
        };
        string rulesKey = config.ListenerKey(listenerName, "ssl.principal.mapping.rules");
        var mapper = SslPrincipalMapper.Parse(rulesKey, config.GetListenerString(listenerName, "ssl.principal.mapping.rules")!);
        return new SslFactory(listenerName, options, trust, clientAuth, mapper, handshakeTimeout ?? DefaultHandshakeTimeout,
            EndpointIdentification(config, listenerName));
    }

    /// <summary>
    /// ssl.endpoint.identification.algorithm: Kafka documents https and the empty string; the JVM would only fail on
    /// another name at the first handshake (X509TrustManagerImpl's "Unknown identification algorithm"), Kayak at start-up.
    /// </summary>
    private static bool EndpointIdentification(BrokerConfig config, string listener)
    {
        const string name = "ssl.endpoint.identification.algorithm";
        string value = config.GetListenerString(listener, name)?.Trim() ?? "";
        if (value.Length == 0) return false;
        if (value.Equals("https", StringComparison.OrdinalIgnoreCase)) return true;
        throw new ConfigException(config.ListenerKey(listener, name), value,
            "Unknown endpoint identification algorithm: use https (verify the other broker's host name) or an empty value (no verification)");
    }

    /// <summary>
    /// Runs the server handshake over a freshly accepted socket's stream within <see cref="HandshakeTimeout"/> and
    /// returns the TLS stream with the client's principal (Kafka's DefaultKafkaPrincipalBuilder: User:ANONYMOUS without a
    /// client certificate, else User: + the mapped RFC 2253 subject). Any failure disposes the stream and throws.
    /// </summary>
    public async Task<(SslStream Stream, string Principal)> AuthenticateAsync(Stream inner, CancellationToken cancellationToken)
    {
        var ssl = new SslStream(inner, leaveInnerStreamOpen: false);
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(HandshakeTimeout);
            await ssl.AuthenticateAsServerAsync(_options, timeout.Token).ConfigureAwait(false);
            string principal = "User:ANONYMOUS";
            if (ssl.RemoteCertificate is { } remote)
            {
                using var cert = new X509Certificate2(remote);
                string name = X500Names.Rfc2253(cert.SubjectName);
                principal = "User:" + (_principalMapper.Map(name)
                    ?? throw new AuthenticationException($"No rule of ssl.principal.mapping.rules applies to {name}"));
            }
            return (ssl, principal);
        }
        catch
        {
            await ssl.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// The client side, for this broker's connections to another broker's listener of the same name (Kafka's
    /// SslChannelBuilder in Mode.CLIENT): the handshake within <see cref="HandshakeTimeout"/>, the keystore's
    /// certificate sent when the server asks (its principal there is User:CN=... after that broker's
    /// ssl.principal.mapping.rules), the server's certificate checked against the truststore (the system's roots
    /// without one) and, with <see cref="VerifyHostname"/>, against <paramref name="targetHost"/>; the same
    /// ssl.enabled.protocols and ssl.cipher.suites as the server side. A refused handshake is an
    /// <see cref="AuthenticationException"/> saying why, a timeout an <see cref="IOException"/>; either disposes the stream.
    /// </summary>
    public async Task<SslStream> AuthenticateAsClientAsync(Stream inner, string targetHost, CancellationToken cancellationToken)
    {
        string? rejected = null;
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = targetHost,
            ClientCertificateContext = _options.ServerCertificateContext,
            EnabledSslProtocols = _options.EnabledSslProtocols,
            CipherSuitesPolicy = _options.CipherSuitesPolicy,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            // Per connection: SslStream builds its chain with this policy, and X509ChainPolicy is mutable.
            CertificateChainPolicy = TrustPolicy(),
            RemoteCertificateValidationCallback = (_, certificate, chain, errors) =>
            {
                if (!VerifyHostname) errors &= ~SslPolicyErrors.RemoteCertificateNameMismatch;
                if (errors == SslPolicyErrors.None) return true;
                rejected = Describe(certificate, chain, errors, targetHost);
                return false;
            },
        };
        var ssl = new SslStream(inner, leaveInnerStreamOpen: false);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(HandshakeTimeout);
        try
        {
            await ssl.AuthenticateAsClientAsync(options, timeout.Token).ConfigureAwait(false);
            return ssl;
        }
        catch (Exception e)
        {
            await ssl.DisposeAsync().ConfigureAwait(false);
            if (e is OperationCanceledException && !cancellationToken.IsCancellationRequested)
                throw new IOException($"TLS handshake with {targetHost} did not finish within {HandshakeTimeout.TotalSeconds:0.#} s");
            if (rejected is not null) throw new AuthenticationException(rejected, e);
            throw;
        }
    }

    /// <summary>The truststore (the system's roots without one) as a chain policy: both sides check the peer with it.</summary>
    private X509ChainPolicy TrustPolicy()
    {
        var policy = new X509ChainPolicy { RevocationMode = X509RevocationMode.NoCheck };
        if (_trust is not null)
        {
            policy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            policy.CustomTrustStore.AddRange(_trust);
        }
        return policy;
    }

    /// <summary>Why the server certificate was refused, for the replica fetcher's log: .NET's own message only says "rejected".</summary>
    private string Describe(X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors, string targetHost)
    {
        string subject = certificate?.Subject ?? "(none)";
        var reasons = new List<string>();
        if ((errors & SslPolicyErrors.RemoteCertificateNotAvailable) != 0) reasons.Add("the server sent no certificate");
        if ((errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
            reasons.Add($"it does not name {targetHost} (ssl.endpoint.identification.algorithm=https; add {targetHost} to its subject alternative names or set the key empty)");
        if ((errors & SslPolicyErrors.RemoteCertificateChainErrors) != 0)
        {
            string status = "";
            if (chain is not null)
                foreach (var s in chain.ChainStatus) status += (status.Length == 0 ? "" : "; ") + s.StatusInformation.Trim();
            reasons.Add($"it does not chain to the {(_trust is null ? "system's roots" : "truststore")} of listener {ListenerName}" +
                (status.Length == 0 ? "" : $" ({status})"));
        }
        return $"The server certificate {subject} of {targetHost} was refused: {string.Join(", and ", reasons)}";
    }

    /// <summary>
    /// Java's SSLEngine with needClientAuth/wantClientAuth: a certificate, when sent, must chain to the truststore (or
    /// the system's roots when no truststore is set, as the JVM's cacerts are Kafka's default); none is an error only
    /// for ssl.client.auth=required.
    /// </summary>
    private bool ValidateClientCertificate(object sender, X509Certificate? certificate, X509Chain? presented, SslPolicyErrors errors)
    {
        if (certificate is null) return ClientAuth != "required";
        using var chain = new X509Chain { ChainPolicy = TrustPolicy() };
        if (presented is not null)
            foreach (var element in presented.ChainElements) chain.ChainPolicy.ExtraStore.Add(element.Certificate);
        using var leaf = new X509Certificate2(certificate);
        return chain.Build(leaf);
    }

    /// <summary>ssl.enabled.protocols: Kafka's names TLSv1.2 and TLSv1.3 (older ones are not offered by .NET's defaults).</summary>
    private static SslProtocols Protocols(BrokerConfig config, string listener)
    {
        string key = config.ListenerKey(listener, "ssl.enabled.protocols");
        string value = config.GetListenerString(listener, "ssl.enabled.protocols") ?? "";
        var protocols = SslProtocols.None;
        foreach (var name in BrokerConfig.SplitList(value))
        {
            protocols |= name switch
            {
                "TLSv1.2" => SslProtocols.Tls12,
                "TLSv1.3" => SslProtocols.Tls13,
                _ => throw new ConfigException(key, value, $"Unsupported protocol {name}: Kayak serves TLSv1.2 and TLSv1.3"),
            };
        }
        if (protocols == SslProtocols.None) throw new ConfigException(key, value, "at least one of TLSv1.2, TLSv1.3 is required");
        return protocols;
    }

    /// <summary>
    /// ssl.cipher.suites by their IANA names (what Kafka's JSSE names are, e.g. TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384);
    /// .NET's CipherSuitesPolicy works on Linux and macOS, not on Windows, where a non-empty list is refused.
    /// </summary>
    private static CipherSuitesPolicy? CipherSuites(BrokerConfig config, string listener)
    {
        string key = config.ListenerKey(listener, "ssl.cipher.suites");
        string? value = config.GetListenerString(listener, "ssl.cipher.suites");
        if (value is null) return null;
        var names = BrokerConfig.SplitList(value);
        if (names.Count == 0) return null;
        var suites = new List<TlsCipherSuite>();
        foreach (var name in names)
        {
            if (!Enum.TryParse<TlsCipherSuite>(name, ignoreCase: false, out var suite) || int.TryParse(name, out _))
                throw new ConfigException(key, value, $"Unknown cipher suite {name}");
            suites.Add(suite);
        }
        if (OperatingSystem.IsWindows())
            throw new ConfigException(key, value, ".NET cannot restrict cipher suites on Windows (SChannel); leave it empty there");
        return new CipherSuitesPolicy(suites);
    }
}
