using System.Globalization;
using Kayak.Broker.Config;

namespace Kayak.Broker.Network.Sasl;

/// <summary>
/// The SASL side of one SASL_PLAINTEXT or SASL_SSL listener, read once at start-up as Kafka's ChannelBuilders and
/// JaasContext.loadServerContext do: sasl.enabled.mechanisms (per listener too), and for each mechanism the JAAS entry
/// from listener.name.&lt;listener&gt;.&lt;mechanism&gt;.sasl.jaas.config, else listener.name.&lt;listener&gt;.sasl.jaas.config,
/// else sasl.jaas.config. Every problem is a
/// <see cref="ConfigException"/> naming the key, so the broker does not start.
/// </summary>
internal sealed class SaslListenerConfig
{
    public const string EnabledMechanismsKey = "sasl.enabled.mechanisms";
    public const string JaasConfigKey = "sasl.jaas.config";
    public const string MaxReauthKey = "connections.max.reauth.ms";
    public const string MaxReceiveKey = "sasl.server.max.receive.size";
    public const string CallbackHandlerKey = "sasl.server.callback.handler.class";

    private readonly Dictionary<string, JaasEntry> _jaas;
    private readonly Dictionary<string, long> _maxReauthMs;

    private SaslListenerConfig(string listenerName, List<string> mechanisms, Dictionary<string, JaasEntry> jaas,
        Dictionary<string, long> maxReauthMs, int maxReceiveSize, ScramCredentialStore scram)
    {
        ListenerName = listenerName;
        EnabledMechanisms = mechanisms;
        _jaas = jaas;
        _maxReauthMs = maxReauthMs;
        MaxReceiveSize = maxReceiveSize;
        Scram = scram;
    }

    public string ListenerName { get; }
    public IReadOnlyList<string> EnabledMechanisms { get; }
    /// <summary>sasl.server.max.receive.size: the largest frame accepted before authentication completes.</summary>
    public int MaxReceiveSize { get; }
    public ScramCredentialStore Scram { get; }

    /// <summary>The JAAS entry of an enabled mechanism (its username/password options are a broker's own client credentials).</summary>
    public JaasEntry? Jaas(string mechanism) => _jaas.GetValueOrDefault(mechanism);

    /// <summary>connections.max.reauth.ms for a mechanism (KIP-368; 0: sessions never expire).</summary>
    public long MaxReauthMs(string mechanism) => _maxReauthMs.GetValueOrDefault(mechanism);

    public ISaslServer CreateServer(string mechanism, TimeProvider time) => mechanism switch
    {
        "PLAIN" => new PlainSaslServer(_jaas[mechanism].Options),
        "OAUTHBEARER" => new OAuthBearerSaslServer(_oauthBearer!, time),
        _ => new ScramSaslServer(ScramMechanism.Find(mechanism)!, Scram),
    };

    private OAuthBearerOptions? _oauthBearer;

    /// <summary>The listener.name.&lt;listener&gt;.&lt;mechanism lower case&gt;. prefix of Kafka's ListenerName.saslMechanismConfigPrefix.</summary>
    public static string MechanismPrefix(string listenerName, string mechanism) =>
        ListenerSecurity.Prefix(listenerName) + mechanism.ToLowerInvariant() + ".";

    public static SaslListenerConfig Create(BrokerConfig config, string listenerName, ScramCredentialStore scram)
    {
        string mechanismsKey = config.ListenerKey(listenerName, EnabledMechanismsKey);
        string mechanismsValue = config.GetListenerString(listenerName, EnabledMechanismsKey) ?? "";
        var mechanisms = BrokerConfig.SplitList(mechanismsValue).Select(m => m.Trim()).Where(m => m.Length > 0).Distinct().ToList();
        if (mechanisms.Count == 0)
            throw new ConfigException(mechanismsKey, mechanismsValue, $"listener {listenerName} is a SASL listener, but no SASL mechanism is enabled");
        var jaas = new Dictionary<string, JaasEntry>(StringComparer.Ordinal);
        var reauth = new Dictionary<string, long>(StringComparer.Ordinal);
        OAuthBearerOptions? oauthBearer = null;
        foreach (var mechanism in mechanisms)
        {
            if (mechanism == "GSSAPI")
                throw new ConfigException(mechanismsKey, mechanismsValue,
                    "GSSAPI (Kerberos) is Kafka's default but Kayak does not support it; set sasl.enabled.mechanisms to PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 and/or OAUTHBEARER");
            if (mechanism is not ("PLAIN" or "SCRAM-SHA-256" or "SCRAM-SHA-512" or "OAUTHBEARER"))
                throw new ConfigException(mechanismsKey, mechanismsValue, $"SASL mechanism {mechanism} is not supported by Kayak (supported: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER)");
            string prefix = MechanismPrefix(listenerName, mechanism);
            // listener.name.<l>.<mechanism>.sasl.jaas.config, then listener.name.<l>.sasl.jaas.config, then sasl.jaas.config.
            string jaasKey = config.Values.ContainsKey(prefix + JaasConfigKey) ? prefix + JaasConfigKey : config.ListenerKey(listenerName, JaasConfigKey);
            string jaasValue = config.Values.GetValueOrDefault(jaasKey)
                ?? throw new ConfigException(prefix + JaasConfigKey, null,
                    $"Could not find a JAAS configuration for mechanism {mechanism} on listener {listenerName}: set {prefix + JaasConfigKey} (or {JaasConfigKey})");
            var entry = JaasEntry.Parse(jaasKey, jaasValue);
            string expected = mechanism switch
            {
                "PLAIN" => JaasEntry.PlainLoginModule,
                "OAUTHBEARER" => OAuthBearerOptions.LoginModule,
                _ => JaasEntry.ScramLoginModule,
            };
            if (entry.LoginModule != expected)
                throw new ConfigException(jaasKey, "[hidden]", $"mechanism {mechanism} needs login module {expected}, got {entry.LoginModule}");
            jaas[mechanism] = entry;
            if (mechanism == "OAUTHBEARER")
            {
                // Kafka's default server callback handler for OAUTHBEARER is the unsecured validator; the JWKS one
                // (OAuthBearerValidatorCallbackHandler, KIP-768) or a custom class cannot run here.
                string handlerKey = prefix + CallbackHandlerKey;
                if (config.Values.GetValueOrDefault(handlerKey) is { Length: > 0 } handler && handler.Trim() != OAuthBearerOptions.UnsecuredValidator)
                    throw new ConfigException(handlerKey, handler, $"Kayak validates OAUTHBEARER tokens only as {OAuthBearerOptions.UnsecuredValidator} (unsecured JWS, for development)");
                oauthBearer = OAuthBearerOptions.From(jaasKey, entry.Options);
            }
            string reauthKey = config.Values.ContainsKey(prefix + MaxReauthKey) ? prefix + MaxReauthKey : config.ListenerKey(listenerName, MaxReauthKey);
            string reauthValue = config.Values.GetValueOrDefault(reauthKey) ?? config.GetString(MaxReauthKey) ?? "0";
            if (!long.TryParse(reauthValue.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long ms))
                throw new ConfigException(reauthKey, reauthValue, "Not a number of type LONG");
            reauth[mechanism] = Math.Max(0, ms);
        }
        int maxReceive = int.Parse(config.GetString(MaxReceiveKey) ?? "524288", CultureInfo.InvariantCulture);
        return new SaslListenerConfig(listenerName, mechanisms, jaas, reauth, maxReceive, scram) { _oauthBearer = oauthBearer };
    }
}
