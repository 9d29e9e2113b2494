using System.Text.RegularExpressions;
using Kayak.Storage;

namespace Kayak.Broker.Config;

/// <summary>
/// Which broker configs may change at run time, and the checks Kafka makes before accepting a change: Kafka's
/// DynamicBrokerConfig.AllDynamicConfigs / PerBrokerConfigs / validateConfigs (KIP-226). The names and messages are
/// Kafka's, so kafka-configs.sh and AdminClients see the same answers.
/// </summary>
public static partial class DynamicBrokerConfigs
{
    /// <summary>SslConfigs.RECONFIGURABLE_CONFIGS: per listener only (listener.name.NAME.ssl.keystore.location ...).</summary>
    private static readonly HashSet<string> SecurityConfigs =
    [
        "ssl.keystore.type", "ssl.keystore.location", "ssl.keystore.password", "ssl.key.password", "ssl.truststore.type",
        "ssl.truststore.location", "ssl.truststore.password", "ssl.keystore.certificate.chain", "ssl.keystore.key",
        "ssl.truststore.certificates",
    ];

    /// <summary>DynamicListenerConfig.ReconfigurableConfigs.</summary>
    private static readonly HashSet<string> ListenerConfigs =
    [
        "listeners", "listener.security.protocol.map", "principal.builder.class", "ssl.protocol", "ssl.provider",
        "ssl.cipher.suites", "ssl.enabled.protocols", "ssl.keystore.type", "ssl.keystore.location", "ssl.keystore.password",
        "ssl.key.password", "ssl.truststore.type", "ssl.truststore.location", "ssl.truststore.password",
        "ssl.keymanager.algorithm", "ssl.trustmanager.algorithm", "ssl.endpoint.identification.algorithm",
        "ssl.secure.random.implementation", "ssl.client.auth", "ssl.engine.factory.class",
        "sasl.mechanism.inter.broker.protocol", "sasl.jaas.config", "sasl.enabled.mechanisms", "sasl.kerberos.service.name",
        "sasl.kerberos.kinit.cmd", "sasl.kerberos.ticket.renew.window.factor", "sasl.kerberos.ticket.renew.jitter",
        "sasl.kerberos.min.time.before.relogin", "sasl.kerberos.principal.to.local.rules", "sasl.login.refresh.window.factor",
        "sasl.login.refresh.window.jitter", "sasl.login.refresh.min.period.seconds", "sasl.login.refresh.buffer.seconds",
        "max.connections", "max.connection.creation.rate", "num.network.threads",
    ];

    /// <summary>DynamicBrokerConfig.ClusterLevelListenerConfigs: listener keys that may also be cluster defaults.</summary>
    private static readonly HashSet<string> ClusterLevelListenerConfigs = ["max.connections", "max.connection.creation.rate", "num.network.threads"];

    /// <summary>
    /// Kafka's thread pools (DynamicThreadPool), log cleaner (LogCleaner.RECONFIGURABLE_CONFIGS), socket server limits
    /// (SocketServer.RECONFIGURABLE_CONFIGS), producer state (DynamicProducerStateManagerConfig), metric reporters and
    /// config providers. Kayak accepts, stores and reports these; only producer.id.expiration.ms changes behaviour (the
    /// others name machinery Kayak does not have: its I/O runs on the .NET thread pool, there is no cleaner pool, no
    /// connection quotas).
    /// </summary>
    private static readonly HashSet<string> OtherDynamicConfigs =
    [
        "num.io.threads", "num.replica.fetchers", "num.recovery.threads.per.data.dir", "background.threads",
        "log.cleaner.threads", "log.cleaner.dedupe.buffer.size", "log.cleaner.io.buffer.load.factor", "log.cleaner.io.buffer.size",
        "message.max.bytes", "log.cleaner.io.max.bytes.per.second", "log.cleaner.backoff.ms",
        "max.connections.per.ip", "max.connections.per.ip.overrides",
        "producer.id.expiration.ms", "transaction.partition.verification.enable",
        "metric.reporters", "config.providers",
    ];

    private static readonly HashSet<string> All = BuildAll();

    private static HashSet<string> BuildAll()
    {
        var all = new HashSet<string>(StringComparer.Ordinal);
        all.UnionWith(SecurityConfigs);
        all.UnionWith(ListenerConfigs);
        all.UnionWith(OtherDynamicConfigs);
        // DynamicLogConfig.ReconfigurableConfigs: every broker config that is the default of a topic config.
        foreach (var def in TopicConfig.Definitions)
            if (def.BrokerSynonym is { } b) all.Add(b);
        return all;
    }

    [GeneratedRegex(@"^listener\.name\.[^.]*\.(.*)$")]
    private static partial Regex ListenerPrefixed();

    /// <summary>True when Kafka lets <paramref name="name"/> change at run time (DescribeConfigs' readOnly is its negation).</summary>
    public static bool IsDynamic(string name) => All.Contains(name) || ListenerPrefixed().IsMatch(name);

    /// <summary>The key without its listener.name.NAME. prefix (Kafka validates the base name's type).</summary>
    public static string BaseName(string name) => ListenerPrefixed().Match(name) is { Success: true } m ? m.Groups[1].Value : name;

    /// <summary>
    /// Kafka's DynamicBrokerConfig.validateConfigs over one resource's new dynamic set: non-dynamic keys Kafka knows
    /// (here: those in <see cref="BrokerConfigDefinitions"/>), bare security keys, bad values, and per-broker keys at
    /// the cluster default. Keys Kafka does not define are accepted as custom configs, as Kafka accepts them.
    /// Returns the message for INVALID_REQUEST (Kafka's ConfigAdminManager turns the ConfigException into one), or null.
    /// </summary>
    public static string? Validate(IReadOnlyDictionary<string, string> props, bool perBroker)
    {
        var nonDynamic = props.Keys.Where(k => !IsDynamic(k) && BrokerConfigDefinitions.Find(k) is not null).ToList();
        if (nonDynamic.Count > 0) return Message("Cannot update these configs dynamically", nonDynamic);
        var bareSecurity = props.Keys.Where(SecurityConfigs.Contains).ToList();
        if (bareSecurity.Count > 0) return Message("These security configs can be dynamically updated only per-listener using the listener prefix", bareSecurity);
        foreach (var (key, value) in props)
        {
            string name = BaseName(key);
            try
            {
                if (BrokerConfigDefinitions.Find(name) is { } def) def.Validate(value);
                else if (TopicForSynonym(name) is { } topicKey) TopicConfig.Validate(topicKey, value);
            }
            catch (ConfigException e) { return e.Message; }
            catch (Storage.ConfigException e) { return e.Message.Replace("configuration " + (TopicForSynonym(name) ?? name), "configuration " + key, StringComparison.Ordinal); }
        }
        if (!perBroker)
        {
            var perBrokerOnly = props.Keys.Where(k =>
                (SecurityConfigs.Contains(k) || ListenerConfigs.Contains(k)) && !ClusterLevelListenerConfigs.Contains(k)
                || ListenerPrefixed().Match(k) is { Success: true } m && !ClusterLevelListenerConfigs.Contains(m.Groups[1].Value)).ToList();
            if (perBrokerOnly.Count > 0) return Message("Cannot update these configs at default cluster level, broker id must be specified", perBrokerOnly);
        }
        return null;
    }

    private static string? TopicForSynonym(string brokerKey)
    {
        foreach (var def in TopicConfig.Definitions)
            if (def.BrokerSynonym == brokerKey) return def.Name;
        return null;
    }

    // Kafka 4.x formats the key set as a Java set ("[a, b]"); 3.x and older printed Scala's "Set(a, b)".
    private static string Message(string what, List<string> keys) => $"{what}: [{string.Join(", ", keys)}]";
}
