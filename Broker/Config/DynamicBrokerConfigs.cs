using System.Text.RegularExpressions;
using Kayak.Storage;

namespace Kayak.Broker.Config;

/// <summary>
/// Which broker configs may change at run time, and the checks Kafka makes before accepting a change: Kafka's
/// DynamicBrokerConfig.AllDynamicConfigs / PerBrokerConfigs / validateConfigs (KIP-226). The names and messages are
/// Kafka's, so kafka-configs.sh and AdminClients see the same answers. For a key in
/// <see cref="BrokerConfigDefinitions"/> its definition's <see cref="ConfigDefinition.UpdateMode"/> decides; only keys
/// Kafka makes dynamic that Kayak does not define are listed here (issue 10: one source of truth per key).
/// </summary>
public static partial class DynamicBrokerConfigs
{
    /// <summary>
    /// Kafka's dynamic keys that have no definition in Kayak's table (listener configs such as sasl.kerberos.*, and
    /// the thread pools, log cleaner, socket server limits, metric reporters and config providers). Kayak accepts,
    /// stores and reports these; they name machinery Kayak does not have. Undefined broker keys that are the default
    /// of a topic config (log.cleaner.delete.retention.ms ...) are cluster-wide too, from Storage's topic table.
    /// </summary>
    private static readonly Dictionary<string, ConfigUpdateMode> Undefined = BuildUndefined();

    private static Dictionary<string, ConfigUpdateMode> BuildUndefined()
    {
        var d = new Dictionary<string, ConfigUpdateMode>(StringComparer.Ordinal);
        // DynamicListenerConfig.ReconfigurableConfigs without a definition: per broker.
        foreach (var name in (string[])[
                     "principal.builder.class", "ssl.engine.factory.class", "sasl.kerberos.service.name", "sasl.kerberos.kinit.cmd",
                     "sasl.kerberos.ticket.renew.window.factor", "sasl.kerberos.ticket.renew.jitter",
                     "sasl.kerberos.min.time.before.relogin", "sasl.kerberos.principal.to.local.rules",
                     "sasl.login.refresh.window.factor", "sasl.login.refresh.window.jitter",
                     "sasl.login.refresh.min.period.seconds", "sasl.login.refresh.buffer.seconds"])
            d.Add(name, ConfigUpdateMode.PerBroker);
        foreach (var name in (string[])[
                     "num.replica.fetchers", "background.threads",
                     "log.cleaner.threads", "log.cleaner.dedupe.buffer.size", "log.cleaner.io.buffer.load.factor",
                     "log.cleaner.io.buffer.size", "log.cleaner.io.max.bytes.per.second", "log.cleaner.backoff.ms",
                     "transaction.partition.verification.enable",
                     "metric.reporters", "config.providers"])
            d.Add(name, ConfigUpdateMode.ClusterWide);
        foreach (var name in d.Keys)
            if (BrokerConfigDefinitions.Find(name) is not null)
                throw new InvalidOperationException($"{name} is defined in BrokerConfigDefinitions: give it Update: there, not here");
        return d;
    }

    /// <summary>DynamicBrokerConfig.ClusterLevelListenerConfigs: listener keys that may also be cluster defaults when listener-prefixed.</summary>
    private static readonly HashSet<string> ClusterLevelListenerConfigs = ["max.connections", "max.connection.creation.rate", "num.network.threads"];

    [GeneratedRegex(@"^listener\.name\.[^.]*\.(.*)$")]
    private static partial Regex ListenerPrefixed();

    /// <summary>How <paramref name="name"/> (without a listener prefix) may change at run time.</summary>
    public static ConfigUpdateMode UpdateMode(string name) =>
        BrokerConfigDefinitions.Find(name) is { } def ? def.UpdateMode
        : Undefined.TryGetValue(name, out var mode) ? mode
        : BrokerConfigDefinitions.TopicSynonymOf(name) is not null ? ConfigUpdateMode.ClusterWide
        : ConfigUpdateMode.ReadOnly;

    /// <summary>True when Kafka lets <paramref name="name"/> change at run time (DescribeConfigs' readOnly is its negation).</summary>
    public static bool IsDynamic(string name) => UpdateMode(name) != ConfigUpdateMode.ReadOnly || ListenerPrefixed().IsMatch(name);

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
        var bareSecurity = props.Keys.Where(k => UpdateMode(k) == ConfigUpdateMode.PerListener).ToList();
        if (bareSecurity.Count > 0) return Message("These security configs can be dynamically updated only per-listener using the listener prefix", bareSecurity);
        foreach (var (key, value) in props)
        {
            string name = BaseName(key);
            try
            {
                if (BrokerConfigDefinitions.Find(name) is { } def) def.Validate(value);
                else if (BrokerConfigDefinitions.TopicSynonymOf(name) is { } topicKey) TopicConfig.Validate(topicKey, value);
            }
            catch (ConfigException e) { return e.Message; }
            catch (Storage.ConfigException e)
            {
                return e.Message.Replace("configuration " + (BrokerConfigDefinitions.TopicSynonymOf(name) ?? name), "configuration " + key, StringComparison.Ordinal);
            }
            // ListenerConnectionQuota.validateReconfiguration sees each listener's values with the broker-wide keys
            // beneath: after the type and range checks, a limit of 0 (allowed statically) is refused at run time, prefixed or not (KIP-612).
            if (name is "max.connections" or "max.connection.creation.rate"
                && long.TryParse(value.Trim(), System.Globalization.CultureInfo.InvariantCulture, out long limit) && limit <= 0)
                return $"Invalid {name} {limit}";
        }
        if (!perBroker)
        {
            var perBrokerOnly = props.Keys.Where(k => ListenerPrefixed().Match(k) is { Success: true } m
                ? !ClusterLevelListenerConfigs.Contains(m.Groups[1].Value)
                : UpdateMode(k) is ConfigUpdateMode.PerBroker or ConfigUpdateMode.PerListener).ToList();
            if (perBrokerOnly.Count > 0) return Message("Cannot update these configs at default cluster level, broker id must be specified", perBrokerOnly);
        }
        return null;
    }

    // Kafka 4.x formats the key set as a Java set ("[a, b]"); 3.x and older printed Scala's "Set(a, b)".
    private static string Message(string what, List<string> keys) => $"{what}: [{string.Join(", ", keys)}]";
}
