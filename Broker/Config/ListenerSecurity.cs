namespace Kayak.Broker.Config;

/// <summary>
/// listeners, advertised.listeners and listener.security.protocol.map checked together the way Kafka's KafkaConfig does
/// (listenerSecurityProtocolMap, validateAdvertisedListeners): every listener name needs a protocol, names are unique,
/// advertised names are a subset of the listeners. All four of Kafka's protocols are served (SASL: issue 12, part 3).
/// </summary>
internal static class ListenerSecurity
{
    public const string Plaintext = "PLAINTEXT";
    public const string Ssl = "SSL";
    public const string SaslPlaintext = "SASL_PLAINTEXT";
    public const string SaslSsl = "SASL_SSL";

    private static readonly string[] KafkaProtocols = ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"];

    /// <summary>Kafka's per-listener config prefix: "listener.name." + the name in lower case + ".".</summary>
    public static string Prefix(string listenerName) => "listener.name." + listenerName.ToLowerInvariant() + ".";

    /// <summary>
    /// listener.name.&lt;name&gt;.&lt;key&gt; is a known key when &lt;key&gt; is one Kafka lets a listener override (ssl.*,
    /// sasl.*, per mechanism &lt;mechanism&gt;.sasl.jaas.config and &lt;mechanism&gt;.connections.max.reauth.ms, and
    /// Kafka's SocketServer.ListenerReconfigurableConfigs max.connections and max.connection.creation.rate, KIP-612):
    /// it is validated as that key and not warned about as unknown.
    /// </summary>
    public static ConfigDefinition? FindListenerOverride(string key)
    {
        const string prefix = "listener.name.";
        if (!key.StartsWith(prefix, StringComparison.Ordinal)) return null;
        int dot = key.IndexOf('.', prefix.Length);
        if (dot < 0) return null;
        string inner = key[(dot + 1)..];
        // Kafka's ListenerName.saslMechanismConfigPrefix: listener.name.<listener>.<mechanism lower case>.<key>.
        foreach (var perMechanism in (string[])["sasl.jaas.config", "connections.max.reauth.ms", "sasl.server.callback.handler.class"])
        {
            int at = inner.IndexOf("." + perMechanism, StringComparison.Ordinal);
            if (at > 0 && at + 1 + perMechanism.Length == inner.Length) { inner = perMechanism; break; }
        }
        if (!inner.StartsWith("ssl.", StringComparison.Ordinal) && !inner.StartsWith("sasl.", StringComparison.Ordinal)
            && inner is not ("connections.max.reauth.ms" or "max.connections" or "max.connection.creation.rate")) return null;
        var def = BrokerConfigDefinitions.Find(inner);
        return def is null ? null : def with { Name = key };
    }

    /// <summary>Listener name (upper case) → security protocol, for every configured listener.</summary>
    public static IReadOnlyDictionary<string, string> Resolve(BrokerConfig config)
    {
        const string mapKey = "listener.security.protocol.map";
        string mapValue = config.GetString(mapKey)!;
        var map = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var entry in BrokerConfig.SplitList(mapValue))
        {
            int colon = entry.IndexOf(':');
            if (colon <= 0 || colon == entry.Length - 1)
                throw new ConfigException(mapKey, mapValue, $"Map entry '{entry}' is not of the form LISTENER_NAME:SECURITY_PROTOCOL");
            string protocol = entry[(colon + 1)..].Trim().ToUpperInvariant();
            if (Array.IndexOf(KafkaProtocols, protocol) < 0)
                throw new ConfigException(mapKey, mapValue, $"No enum constant org.apache.kafka.common.security.auth.SecurityProtocol.{protocol}");
            map[entry[..colon].Trim()] = protocol;
        }

        var result = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var l in config.Listeners)
        {
            string listeners = config.GetString("listeners")!;
            if (result.ContainsKey(l.Name))
                throw new ConfigException("listeners", listeners, $"Each listener must have a different name, {l.Name} appears more than once");
            if (!map.TryGetValue(l.Name, out var protocol))
                throw new ConfigException(mapKey, mapValue, $"No security protocol defined for listener {l.Name.ToUpperInvariant()}");
            result[l.Name.ToUpperInvariant()] = protocol;
        }
        foreach (var a in config.AdvertisedListeners)
        {
            if (!result.ContainsKey(a.Name))
                throw new ConfigException("advertised.listeners", config.GetString("advertised.listeners"),
                    $"advertised.listeners listener names must be equal to or a subset of the ones defined in listeners; {a.Name} is not");
        }
        return result;
    }
}
