using System.Security.Cryptography;
using System.Text;
using Kayak.Broker.Config;
using Kayak.Broker.Network.Sasl;
using Kayak.Broker.Network.Tls;
using Kayak.Protocol;

namespace Kayak.Broker.Cluster;

/// <summary>
/// How a cluster member connects to the others (issue 14), configured as Kafka configures it: the listener named by
/// inter.broker.listener.name, else the one named by security.inter.broker.protocol (default PLAINTEXT; only one of
/// the two may be set), else — neither set and no listener of that name — the first listener. On a SASL_PLAINTEXT
/// listener the broker authenticates with sasl.mechanism.inter.broker.protocol (PLAIN, SCRAM-SHA-256 or
/// SCRAM-SHA-512) as the username/password of that mechanism's JAAS entry on the listener, as Kafka's brokers do;
/// with an authorizer that principal needs CLUSTER_ACTION (Kafka: list it in super.users). On an SSL or SASL_SSL
/// listener the broker is a TLS client of the other broker with that listener's own ssl.* settings (Kafka's
/// ChannelBuilders.clientChannelBuilder gets the inter-broker listener name, so listener.name.&lt;l&gt;.ssl.* apply to
/// both sides): the keystore is the client certificate — with ssl.client.auth=required the principal the other broker
/// authorizes is its User:CN=... — and the truststore and ssl.endpoint.identification.algorithm check the server's;
/// SASL_SSL then runs the SASL exchange over the TLS stream.
/// </summary>
internal sealed class InterBrokerSecurity
{
    public const string ListenerKey = "inter.broker.listener.name";
    public const string ProtocolKey = "security.inter.broker.protocol";
    public const string MechanismKey = "sasl.mechanism.inter.broker.protocol";

    /// <summary>PLAINTEXT over the first listener: what a broker without a config uses, and tests of the channel.</summary>
    public static InterBrokerSecurity Plaintext { get; } = new(null, null, "", "", null);

    private InterBrokerSecurity(string? listenerName, string? mechanism, string username, string password, SslFactory? tls)
    {
        ListenerName = listenerName;
        Mechanism = mechanism;
        Username = username;
        Password = password;
        Tls = tls;
    }

    /// <summary>The listener of the other brokers to connect to; null for their first one.</summary>
    public string? ListenerName { get; }
    /// <summary>The SASL mechanism to authenticate with, null on a PLAINTEXT listener.</summary>
    public string? Mechanism { get; }
    public string Username { get; }
    private string Password { get; }
    /// <summary>The inter-broker listener's TLS settings, used as a client (SSL, SASL_SSL); null without TLS.</summary>
    public SslFactory? Tls { get; }

    /// <summary>
    /// Reads the inter-broker settings; <paramref name="ssl"/> holds the factories the broker built for its TLS
    /// listeners (one missing is built here, so its ssl.* problems are ConfigExceptions naming the key as well).
    /// </summary>
    public static InterBrokerSecurity Create(BrokerConfig config, IReadOnlyDictionary<string, SaslListenerConfig> sasl,
        IReadOnlyDictionary<string, SslFactory>? ssl = null)
    {
        string? named = config.Values.GetValueOrDefault(ListenerKey)?.Trim();
        string? protocol = config.Values.GetValueOrDefault(ProtocolKey)?.Trim();
        if (named is not null && protocol is not null)
            throw new ConfigException(ListenerKey, named, $"Only one of {ListenerKey} and {ProtocolKey} should be set.");
        string wanted = named ?? protocol ?? ListenerSecurity.Plaintext;
        string? listener = null;
        foreach (var l in config.AdvertisedListeners)
            if (l.Name.Equals(wanted, StringComparison.OrdinalIgnoreCase)) listener = l.Name;
        if (listener is null)
        {
            if (named is not null || protocol is not null)
                throw new ConfigException(named is not null ? ListenerKey : ProtocolKey, wanted,
                    $"{ListenerKey} must be a listener name defined in advertised.listeners. The valid options based on currently configured listeners are {string.Join(",", config.AdvertisedListeners.Select(a => a.Name))}");
            listener = config.AdvertisedListeners[0].Name; // Kayak's default before inter.broker.listener.name existed
        }
        string protocolOfListener = config.ListenerSecurityProtocols[listener];
        SslFactory? tls = null;
        if (protocolOfListener is ListenerSecurity.Ssl or ListenerSecurity.SaslSsl)
            tls = ssl is not null && ssl.TryGetValue(listener, out var built) ? built : SslFactory.Create(config, listener);
        switch (protocolOfListener)
        {
            case ListenerSecurity.Plaintext:
            case ListenerSecurity.Ssl:
                return new InterBrokerSecurity(listener, null, "", "", tls);
            default: // SASL_PLAINTEXT, SASL_SSL
                string mechanism = config.GetListenerString(listener, MechanismKey)?.Trim() ?? "GSSAPI";
                var listenerSasl = sasl[listener];
                if (mechanism is not ("PLAIN" or "SCRAM-SHA-256" or "SCRAM-SHA-512"))
                    throw new ConfigException(MechanismKey, mechanism,
                        $"brokers authenticate to each other with PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 in Kayak (listener {listener})");
                if (listenerSasl.Jaas(mechanism) is not { } jaas)
                    throw new ConfigException(MechanismKey, mechanism,
                        $"{MechanismKey} must be included in {SaslListenerConfig.EnabledMechanismsKey} when SASL is used for inter-broker communication");
                string jaasKey = SaslListenerConfig.MechanismPrefix(listener, mechanism) + SaslListenerConfig.JaasConfigKey;
                if (!jaas.Options.TryGetValue("username", out var user) || !jaas.Options.TryGetValue("password", out var password))
                    throw new ConfigException(jaasKey, "[hidden]",
                        $"the inter-broker listener {listener} needs the broker's own credentials in its {mechanism} JAAS entry: username=\"...\" password=\"...\"");
                return new InterBrokerSecurity(listener, mechanism, user, password, tls);
        }
    }

    /// <summary>The SASL exchange after SaslHandshake: each server challenge in, the next client message out.</summary>
    public ISaslClient CreateClient() => Mechanism == "PLAIN"
        ? new PlainSaslClient(Username, Password)
        : new ScramSaslClient(ScramMechanism.Find(Mechanism!)!, Username, Password);
}

internal interface ISaslClient
{
    /// <summary>The first message (no challenge yet) or the answer to <paramref name="challenge"/>; null once done.</summary>
    byte[]? Next(byte[]? challenge);
}

/// <summary>RFC 4616 PLAIN: one message, authzid empty.</summary>
internal sealed class PlainSaslClient(string user, string password) : ISaslClient
{
    public byte[]? Next(byte[]? challenge) => challenge is null ? Encoding.UTF8.GetBytes($"\0{user}\0{password}") : null;
}

/// <summary>RFC 5802 SCRAM client (Kafka's ScramSaslClient): client-first, client-final, then the server signature checked.</summary>
internal sealed class ScramSaslClient(ScramMechanism mechanism, string user, string password) : ISaslClient
{
    private int _step;
    private string _clientFirstBare = "";
    private byte[] _serverSignature = [];

    public byte[]? Next(byte[]? challenge)
    {
        switch (_step++)
        {
            case 0:
                string nonce = Convert.ToBase64String(RandomNumberGenerator.GetBytes(24));
                _clientFirstBare = $"n={user.Replace("=", "=3D").Replace(",", "=2C")},r={nonce}";
                return Encoding.UTF8.GetBytes("n,," + _clientFirstBare);
            case 1:
                string serverFirst = Encoding.UTF8.GetString(challenge ?? []);
                string? r = null, s = null, i = null;
                foreach (var field in serverFirst.Split(','))
                {
                    if (field.StartsWith("r=", StringComparison.Ordinal)) r = field[2..];
                    else if (field.StartsWith("s=", StringComparison.Ordinal)) s = field[2..];
                    else if (field.StartsWith("i=", StringComparison.Ordinal)) i = field[2..];
                }
                string ourNonce = _clientFirstBare[(_clientFirstBare.IndexOf(",r=", StringComparison.Ordinal) + 3)..];
                if (r is null || s is null || !int.TryParse(i, out int iterations) || !r.StartsWith(ourNonce, StringComparison.Ordinal))
                    throw new IOException($"Invalid SCRAM server first message: {serverFirst}");
                byte[] salted = mechanism.SaltedPassword(password, Convert.FromBase64String(s), iterations);
                string withoutProof = $"c=biws,r={r}";
                byte[] authMessage = Encoding.UTF8.GetBytes($"{_clientFirstBare},{serverFirst},{withoutProof}");
                byte[] clientKey = mechanism.ClientKey(salted);
                byte[] signature = mechanism.Hmac(mechanism.H(clientKey), authMessage);
                for (int k = 0; k < signature.Length; k++) signature[k] ^= clientKey[k];
                _serverSignature = mechanism.Hmac(mechanism.ServerKey(salted), authMessage);
                return Encoding.UTF8.GetBytes($"{withoutProof},p={Convert.ToBase64String(signature)}");
            default:
                string serverFinal = Encoding.UTF8.GetString(challenge ?? []);
                if (serverFinal != "v=" + Convert.ToBase64String(_serverSignature))
                    throw new IOException($"SCRAM server signature does not match: {serverFinal}");
                return null;
        }
    }
}
