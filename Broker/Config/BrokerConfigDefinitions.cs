using ConfigType = Kayak.Storage.ConfigType;

namespace Kayak.Broker.Config;

/// <summary>
/// The one table of broker configs (issue 10, step 6), with Kafka's names, defaults and bounds (KafkaConfig /
/// ServerLogConfigs). Defaults differ from Kafka's only where a laptop broker must: listeners on 127.0.0.1 and data
/// under ./data. Everything else derives from it: parsing and validation with a message naming the key
/// (<see cref="BrokerConfig"/>), DescribeConfigs' type, read-only, sensitive, synonyms and documentation, and which keys
/// AlterConfigs / IncrementalAlterConfigs may change (<see cref="DynamicBrokerConfigs"/>).
///
/// To add a key:
///   1. Add one line here: new("name", ConfigType.X, "default" or null, Min:/Max:/ValidValues: as Kafka validates it).
///      A broker default of a topic config with the same unit is OfTopic: the value is written once, in Storage.
///      Add Update: ClusterWide (or PerBroker / PerListener) when Kafka lets it change at run time;
///      a key that is the broker default of a topic config (TopicConfig.Definitions' BrokerSynonym, in Storage) is
///      cluster-wide without saying so. Add Synonyms: [...] for lower-precedence keys setting the same value, Used: false
///      for a key accepted and ignored, Doc: "..." for DescribeConfigs' documentation.
///   2. If the broker uses it, add a typed property to BrokerConfig read with GetInt/GetLong/GetBool/GetString("name"),
///      and, if a component below the broker needs it, one line in OptionsBinding.
///   Nothing else: DescribeConfigs lists it and dynamic updates validate it from this line.
/// </summary>
public static class BrokerConfigDefinitions
{
    private const long Max = long.MaxValue;
    // Short names for the table's Update: column.
    private const ConfigUpdateMode ClusterWide = ConfigUpdateMode.ClusterWide, PerBroker = ConfigUpdateMode.PerBroker,
        PerListener = ConfigUpdateMode.PerListener;

    /// <summary>
    /// Default marker: the key's default is its topic config's default (TopicConfig.Definitions in Storage, the one
    /// place such a value is written; Kafka's ServerLogConfigs take them from LogConfig the same way).
    /// </summary>
    private const string OfTopic = "\u0000of-topic";

    public static readonly ConfigDefinition[] All = WithTopicDefaults(
    [
        new("node.id", ConfigType.Int, "1", Min: 0),
        new("broker.id", ConfigType.Int, null, Min: -1),
        new("listeners", ConfigType.List, "PLAINTEXT://127.0.0.1:9092", Update: PerBroker),
        new("advertised.listeners", ConfigType.List, null),
        // Kafka's default map.
        new("listener.security.protocol.map", ConfigType.List, "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL", Update: PerBroker),
        // TLS on SSL listeners (Kafka's SslConfigs / BrokerSecurityConfigs); each may be given per listener as
        // listener.name.<name>.<key>. The store types default to JKS as in Kafka; a JKS type reads PKCS12 files as
        // Java 9+'s JKS keystore does, and a real JKS file is refused at start-up (SslFactory).
        new("ssl.keystore.location", ConfigType.String, null, Update: PerListener),
        new("ssl.keystore.password", ConfigType.Password, null, Update: PerListener),
        new("ssl.keystore.type", ConfigType.String, "JKS", Update: PerListener),
        new("ssl.keystore.certificate.chain", ConfigType.Password, null, Update: PerListener),
        new("ssl.keystore.key", ConfigType.Password, null, Update: PerListener),
        new("ssl.key.password", ConfigType.Password, null, Update: PerListener),
        new("ssl.truststore.location", ConfigType.String, null, Update: PerListener),
        new("ssl.truststore.password", ConfigType.Password, null, Update: PerListener),
        new("ssl.truststore.type", ConfigType.String, "JKS", Update: PerListener),
        new("ssl.truststore.certificates", ConfigType.Password, null, Update: PerListener),
        // SASL on SASL_PLAINTEXT and SASL_SSL listeners (Kafka's BrokerSecurityConfigs / SaslConfigs); per listener as
        // listener.name.<name>.sasl.enabled.mechanisms, per mechanism as listener.name.<name>.<mechanism>.sasl.jaas.config.
        // Kafka's default mechanism is GSSAPI, which Kayak refuses at start-up (SaslListenerConfig).
        new("sasl.enabled.mechanisms", ConfigType.List, "GSSAPI", Update: PerBroker),
        new("sasl.jaas.config", ConfigType.Password, null, Update: PerBroker),
        new("sasl.server.max.receive.size", ConfigType.Int, "524288", Min: 1),
        new("connections.max.reauth.ms", ConfigType.Long, "0"),
        // Per listener and mechanism only (listener.name.<l>.oauthbearer.sasl.server.callback.handler.class).
        new("sasl.server.callback.handler.class", ConfigType.String, null),
        // How cluster members authenticate to each other (issue 14, Cluster/InterBrokerSecurity.cs).
        new("sasl.mechanism.inter.broker.protocol", ConfigType.String, "GSSAPI", Update: PerBroker),
        new("security.inter.broker.protocol", ConfigType.String, "PLAINTEXT"),
        new("sasl.mechanism.controller.protocol", ConfigType.String, "GSSAPI", Used: false),
        // ACLs (Kafka's ServerConfigs / StandardAuthorizer): "" = no authorizer (everything allowed, the ACL APIs answer
        // SECURITY_DISABLED); org.apache.kafka.metadata.authorizer.StandardAuthorizer is the only class Kayak has.
        new("authorizer.class.name", ConfigType.String, ""),
        new("super.users", ConfigType.String, null),
        new("allow.everyone.if.no.acl.found", ConfigType.Boolean, "false"),
        new("ssl.client.auth", ConfigType.String, "none", ValidValues: ["required", "requested", "none"], Update: PerBroker),
        new("ssl.enabled.protocols", ConfigType.List, "TLSv1.2,TLSv1.3", Update: PerBroker),
        new("ssl.cipher.suites", ConfigType.List, null, Update: PerBroker),
        new("ssl.principal.mapping.rules", ConfigType.String, "DEFAULT"),
        // The inter-broker listener's client side (Network/Tls/SslFactory.AuthenticateAsClientAsync): https or empty.
        new("ssl.endpoint.identification.algorithm", ConfigType.String, "https", Update: PerBroker),
        // Client-side or JVM-specific (ssl.protocol picks a JSSE SSLContext; ssl.enabled.protocols decides): accepted, ignored.
        new("ssl.protocol", ConfigType.String, "TLSv1.3", Used: false, Update: PerBroker),
        new("ssl.keymanager.algorithm", ConfigType.String, "SunX509", Used: false, Update: PerBroker),
        new("ssl.trustmanager.algorithm", ConfigType.String, "PKIX", Used: false, Update: PerBroker),
        new("ssl.secure.random.implementation", ConfigType.String, null, Used: false, Update: PerBroker),
        new("ssl.provider", ConfigType.String, null, Used: false, Update: PerBroker),
        new("log.dirs", ConfigType.List, null),
        new("log.dir", ConfigType.String, "./data"),
        new("num.partitions", ConfigType.Int, "1", Min: 1),
        new("default.replication.factor", ConfigType.Int, "1", Min: 1),
        new("auto.create.topics.enable", ConfigType.Boolean, "true"),
        new("delete.topic.enable", ConfigType.Boolean, "true"),
        new("log.segment.bytes", ConfigType.Int, OfTopic, Min: 14),
        new("log.roll.ms", ConfigType.Long, null, Min: 1, Synonyms: ["log.roll.hours"]),
        new("log.roll.hours", ConfigType.Int, "168", Min: 1),
        // Segment roll jitter (segment.jitter.ms's broker default): accepted, not applied (Kayak rolls without jitter).
        new("log.roll.jitter.ms", ConfigType.Long, null, Used: false, Min: 0, Synonyms: ["log.roll.jitter.hours"]),
        new("log.roll.jitter.hours", ConfigType.Int, "0", Used: false, Min: 0),
        new("log.retention.ms", ConfigType.Long, null, Min: -1, Synonyms: ["log.retention.minutes", "log.retention.hours"]),
        new("log.retention.minutes", ConfigType.Int, null, Min: -1),
        new("log.retention.hours", ConfigType.Int, "168", Min: -1),
        new("log.retention.bytes", ConfigType.Long, OfTopic),
        new("log.retention.check.interval.ms", ConfigType.Long, "300000", Min: 1),
        new("log.flush.interval.messages", ConfigType.Long, OfTopic, Min: 1),
        new("log.flush.interval.ms", ConfigType.Long, null, Min: 0, Synonyms: ["log.flush.scheduler.interval.ms"]),
        new("log.flush.scheduler.interval.ms", ConfigType.Long, Max.ToString()),
        // How often recovery points are checkpointed: a crash recovers the segments written since (issue 15, K7).
        new("log.flush.offset.checkpoint.interval.ms", ConfigType.Int, "60000", Min: 0),
        new("message.max.bytes", ConfigType.Int, OfTopic, Min: 0),
        new("socket.request.max.bytes", ConfigType.Int, "104857600", Min: 1),
        // Kafka's Selector closes a connection idle this long; Kayak applies it to SASL connections that have not
        // authenticated (Connection), so a client that connects and never authenticates does not hold a connection.
        new("connections.max.idle.ms", ConfigType.Long, "600000", Min: 1),
        // Kafka's cap on request bytes held by the broker at once (-1: none); connections stop being read while it is reached.
        new("queued.max.request.bytes", ConfigType.Long, "-1"),
        new("log.index.interval.bytes", ConfigType.Int, OfTopic, Min: 0),
        // Kafka's LogManager.loadLogs: partitions of one log dir loaded (and recovered) by this many threads.
        new("num.recovery.threads.per.data.dir", ConfigType.Int, "2", Min: 1, Update: ClusterWide),
        new("log.index.size.max.bytes", ConfigType.Int, OfTopic, Min: 4),
        new("log.cleanup.policy", ConfigType.List, OfTopic, ValidValues: ["delete", "compact", "compact,delete", "delete,compact"]),
        new("log.message.timestamp.type", ConfigType.String, OfTopic, ValidValues: ["CreateTime", "LogAppendTime"]),
        new("compression.type", ConfigType.String, OfTopic, ValidValues: ["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]),
        new("offsets.topic.num.partitions", ConfigType.Int, "50", Min: 1),
        new("offsets.topic.replication.factor", ConfigType.Int, "1", Used: false, Min: 1),
        new("offsets.topic.segment.bytes", ConfigType.Int, "104857600", Min: 1),
        new("offsets.retention.minutes", ConfigType.Int, "10080", Min: 1),
        new("offsets.retention.check.interval.ms", ConfigType.Long, "600000", Min: 1),
        new("group.initial.rebalance.delay.ms", ConfigType.Int, "3000", Min: 0),
        new("group.min.session.timeout.ms", ConfigType.Int, "6000"),
        new("group.max.session.timeout.ms", ConfigType.Int, "1800000"),
        new("group.max.size", ConfigType.Int, int.MaxValue.ToString(), Min: 1),
        // KIP-848 consumer groups (Kafka's GroupCoordinatorConfig); the timeouts must nest within their min/max.
        new("group.consumer.session.timeout.ms", ConfigType.Int, "45000", Min: 1),
        new("group.consumer.min.session.timeout.ms", ConfigType.Int, "45000", Min: 1),
        new("group.consumer.max.session.timeout.ms", ConfigType.Int, "60000", Min: 1),
        new("group.consumer.heartbeat.interval.ms", ConfigType.Int, "5000", Min: 1),
        new("group.consumer.min.heartbeat.interval.ms", ConfigType.Int, "5000", Min: 1),
        new("group.consumer.max.heartbeat.interval.ms", ConfigType.Int, "15000", Min: 1),
        new("group.consumer.max.size", ConfigType.Int, int.MaxValue.ToString(), Min: 1),
        // Server-side assignors by name (or Kafka's class names); the first is the default for a group.
        new("group.consumer.assignors", ConfigType.List, "uniform,range"),
        new("group.consumer.migration.policy", ConfigType.String, "bidirectional", ValidValues: ["disabled", "upgrade", "downgrade", "bidirectional"]),
        new("transaction.state.log.num.partitions", ConfigType.Int, "50", Min: 1),
        new("transaction.state.log.replication.factor", ConfigType.Int, "1", Used: false, Min: 1),
        new("transaction.state.log.min.isr", ConfigType.Int, "1", Used: false, Min: 1),
        new("transaction.max.timeout.ms", ConfigType.Int, "900000", Min: 1),
        new("transactional.id.expiration.ms", ConfigType.Int, "604800000", Min: 1),
        new("producer.id.expiration.ms", ConfigType.Int, "86400000", Min: 1, Update: ClusterWide),
        new("transaction.abort.timed.out.transaction.cleanup.interval.ms", ConfigType.Int, "10000", Min: 1),
        new("producer.id.expiration.check.interval.ms", ConfigType.Int, "600000", Min: 1),
        new("min.insync.replicas", ConfigType.Int, OfTopic, Used: false, Min: 1),
        // Kayak's own (issue 14): the Host's HTTP control endpoint (GET /v1/cluster, stop/kill/start/pause/resume a
        // broker, inject faults), e.g. http://127.0.0.1:9644. Off when unset; it has no authentication, so bind it to
        // loopback unless the network is trusted.
        new("kayak.control.listener", ConfigType.String, null),
        // Kayak's own (issue 14): the Host starts an in-process cluster of this many brokers (node ids 1..N, listener
        // ports consecutive from the configured ones, log dirs <log.dirs>/broker-<id>); 1 is a plain single broker.
        new("kayak.cluster.size", ConfigType.Int, "1", Min: 1, Max: 64),
        // Client quotas (KIP-13, KIP-124, KIP-599; Kafka's QuotaConfig): rates are sampled over quota.window.num windows
        // of quota.window.size.seconds; controller_mutation_rate's token bucket holds controller.quota.window.num x
        // controller.quota.window.size.seconds x the rate.
        new("quota.window.num", ConfigType.Int, "11", Min: 1),
        new("quota.window.size.seconds", ConfigType.Int, "1", Min: 1),
        new("controller.quota.window.num", ConfigType.Int, "11", Min: 1),
        new("controller.quota.window.size.seconds", ConfigType.Int, "1", Min: 1),
        // Connection limits and KIP-612 connection-rate quotas (Kafka's SocketServerConfigs, ConnectionQuotas): a listener
        // waits before accepting while the broker or listener count (listener.name.<l>.max.connections) or creation rate
        // (listener.name.<l>.max.connection.creation.rate) is reached; a connection over its IP's count is closed at once.
        // Cluster-wide dynamic as in Kafka's DynamicConnectionQuota; the listener-prefixed keys are dynamic per listener.
        new("max.connections", ConfigType.Int, int.MaxValue.ToString(), Min: 0, Update: ClusterWide),
        new("max.connections.per.ip", ConfigType.Int, int.MaxValue.ToString(), Min: 0, Update: ClusterWide),
        new("max.connections.per.ip.overrides", ConfigType.String, "", Update: ClusterWide),
        new("max.connection.creation.rate", ConfigType.Int, int.MaxValue.ToString(), Min: 0, Update: ClusterWide),
        // Replication between the members of an in-process cluster (issue 14), Kafka's names and defaults.
        new("replica.lag.time.max.ms", ConfigType.Long, "30000", Min: 1),
        // Automatic preferred leader election in a cluster (Cluster/LeaderRebalancer.cs), Kafka's names and defaults.
        new("auto.leader.rebalance.enable", ConfigType.Boolean, "true"),
        new("leader.imbalance.check.interval.seconds", ConfigType.Long, "300", Min: 1),
        new("leader.imbalance.per.broker.percentage", ConfigType.Int, "10", Min: 0, Max: 100),
        new("replica.fetch.wait.max.ms", ConfigType.Int, "500", Min: 0),
        new("replica.fetch.min.bytes", ConfigType.Int, "1", Min: 0),
        new("replica.fetch.max.bytes", ConfigType.Int, "1048576", Min: 0),
        new("replica.fetch.response.max.bytes", ConfigType.Int, "10485760", Min: 0),
        new("replica.fetch.backoff.ms", ConfigType.Int, "1000", Min: 0),
        // Accepted so stock server.properties files start cleanly; a single node has nothing to do with them.
        new("process.roles", ConfigType.List, null, Used: false),
        new("controller.quorum.voters", ConfigType.List, null, Used: false),
        new("controller.quorum.bootstrap.servers", ConfigType.List, null, Used: false),
        new("controller.listener.names", ConfigType.List, null, Used: false),
        new("inter.broker.listener.name", ConfigType.String, null),
        new("num.network.threads", ConfigType.Int, "3", Used: false, Update: ClusterWide),
        new("num.io.threads", ConfigType.Int, "8", Used: false, Update: ClusterWide),
        new("socket.send.buffer.bytes", ConfigType.Int, "102400", Used: false),
        new("socket.receive.buffer.bytes", ConfigType.Int, "102400", Used: false),
        new("share.coordinator.state.topic.replication.factor", ConfigType.Int, "1", Used: false),
        new("share.coordinator.state.topic.min.isr", ConfigType.Int, "1", Used: false),
        new("zookeeper.connect", ConfigType.String, null, Used: false),
        new("zookeeper.connection.timeout.ms", ConfigType.Int, null, Used: false),
        // Used for a cluster member's replica logs deleted by a reassignment (LogManager.asyncDelete's delay, issue 14).
        new("log.segment.delete.delay.ms", ConfigType.Long, OfTopic, Min: 0),
        new("log.cleaner.enable", ConfigType.Boolean, "true", Used: false),
        new("log.preallocate", ConfigType.Boolean, OfTopic, Used: false),
        new("unclean.leader.election.enable", ConfigType.Boolean, OfTopic, Used: false),
        new("group.coordinator.rebalance.protocols", ConfigType.List, "classic,consumer", Used: false),
    ]);

    private static ConfigDefinition[] WithTopicDefaults(ConfigDefinition[] defs)
    {
        for (int i = 0; i < defs.Length; i++)
        {
            if (defs[i].Default != OfTopic) continue;
            Kayak.Storage.TopicConfigDefinition? topic = null;
            foreach (var t in Kayak.Storage.TopicConfig.Definitions)
                if (t.BrokerSynonym == defs[i].Name) topic = t;
            if (topic is null) throw new InvalidOperationException($"{defs[i].Name} takes its topic config's default but is no topic config's BrokerSynonym");
            defs[i] = defs[i] with { Default = topic.DefaultValue };
        }
        return defs;
    }

    private static readonly Dictionary<string, ConfigDefinition> ByName = BuildIndex();
    private static readonly Dictionary<string, string[]> Chains = BuildChains();
    private static readonly Dictionary<string, string> TopicSynonyms = BuildTopicSynonyms();

    private static Dictionary<string, ConfigDefinition> BuildIndex()
    {
        var d = new Dictionary<string, ConfigDefinition>(StringComparer.Ordinal);
        foreach (var def in All)
            if (!d.TryAdd(def.Name, def)) throw new InvalidOperationException($"Broker config {def.Name} is defined twice");
        return d;
    }

    // Each key of a definition's Synonyms gets the same chain: [the definition's name, ..its Synonyms].
    private static Dictionary<string, string[]> BuildChains()
    {
        var d = new Dictionary<string, string[]>(StringComparer.Ordinal);
        foreach (var def in All)
        {
            if (def.Synonyms is not { Length: > 0 } lower) continue;
            string[] chain = [def.Name, .. lower];
            foreach (var name in chain)
                if (!d.TryAdd(name, chain)) throw new InvalidOperationException($"Broker config {name} is in two synonym chains");
        }
        return d;
    }

    // Broker key -> topic config, from Storage's topic table (TopicConfigDefinition.BrokerSynonym), the one place the
    // pairs are written; ServerTopicConfigSynonyms in Kafka.
    private static Dictionary<string, string> BuildTopicSynonyms()
    {
        var d = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var def in Kayak.Storage.TopicConfig.Definitions)
            if (def.BrokerSynonym is { } b) d[b] = def.Name;
        return d;
    }

    public static ConfigDefinition? Find(string name) => ByName.GetValueOrDefault(name);

    /// <summary>The topic config whose default <paramref name="brokerKey"/> supplies, or null (defined or not).</summary>
    public static string? TopicSynonymOf(string brokerKey) => TopicSynonyms.GetValueOrDefault(brokerKey);

    /// <summary>
    /// The keys that set the same value as <paramref name="key"/>, highest precedence first (Kafka's
    /// DynamicBrokerConfig.brokerConfigSynonyms), from the definitions' <see cref="ConfigDefinition.Synonyms"/>:
    /// DescribeConfigs lists its synonyms in this order.
    /// </summary>
    public static string[] SynonymChain(string key) => Chains.TryGetValue(key, out var chain) ? chain : [key];
}
