using System.Globalization;
using System.Text;
using ConfigType = Kayak.Storage.ConfigType;

namespace Kayak.Broker.Config;

/// <summary>One listener: NAME://host:port; listener.security.protocol.map gives the name's protocol (PLAINTEXT or SSL).</summary>
public sealed record ListenerEndpoint(string Name, string Host, int Port)
{
    public static ListenerEndpoint Parse(string key, string value)
    {
        int sep = value.IndexOf("://", StringComparison.Ordinal);
        if (sep <= 0) throw new ConfigException(key, value, "Listener must be of the form NAME://host:port");
        string name = value[..sep].Trim();
        string rest = value[(sep + 3)..];
        int colon = rest.LastIndexOf(':');
        if (colon < 0 || !int.TryParse(rest[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port > 65535)
            throw new ConfigException(key, value, "Listener must be of the form NAME://host:port with a port from 0 to 65535");
        string host = rest[..colon].Trim('[', ']');
        return new ListenerEndpoint(name, host, port);
    }

    public override string ToString() => $"{Name}://{(Host.Contains(':') ? "[" + Host + "]" : Host)}:{Port}";
}

/// <summary>
/// The broker's configuration, resolved from server.properties keys with Kafka's names, defaults
/// and precedence (log.retention.ms over .minutes over .hours; log.dirs over log.dir). Any invalid
/// value throws <see cref="ConfigException"/> naming the key.
/// </summary>
public sealed class BrokerConfig
{
    private readonly Dictionary<string, string> _values;

    public IReadOnlyDictionary<string, string> Values => _values;
    public IReadOnlyList<string> UnknownKeys { get; }

    public int NodeId { get; }
    public IReadOnlyList<ListenerEndpoint> Listeners { get; }
    public IReadOnlyList<ListenerEndpoint> AdvertisedListeners { get; }
    /// <summary>Each listener's name (upper case) → its security protocol, PLAINTEXT or SSL (listener.security.protocol.map).</summary>
    public IReadOnlyDictionary<string, string> ListenerSecurityProtocols { get; }
    public IReadOnlyList<string> LogDirs { get; }
    public int NumPartitions { get; }
    public int DefaultReplicationFactor { get; }
    /// <summary>kayak.cluster.size: brokers the Host starts in one process (issue 14).</summary>
    public int ClusterSize { get; }
    /// <summary>Replication in an in-process cluster (issue 14): Kafka's replica.* broker configs.</summary>
    public int ReplicaLagTimeMaxMs { get; }
    public bool AutoLeaderRebalanceEnable { get; }
    public long LeaderImbalanceCheckIntervalSeconds { get; }
    public int LeaderImbalancePerBrokerPercentage { get; }
    public int ReplicaFetchWaitMaxMs { get; }
    public int ReplicaFetchMinBytes { get; }
    public int ReplicaFetchMaxBytes { get; }
    public int ReplicaFetchResponseMaxBytes { get; }
    public int ReplicaFetchBackoffMs { get; }
    public bool AutoCreateTopicsEnable { get; }
    public bool DeleteTopicEnable { get; }
    public int LogSegmentBytes { get; }
    public long LogRollMs { get; }
    public long LogRetentionMs { get; }
    public long LogRetentionBytes { get; }
    public long LogRetentionCheckIntervalMs { get; }
    public long LogSegmentDeleteDelayMs { get; }
    public long LogFlushIntervalMessages { get; }
    public long LogFlushIntervalMs { get; }
    /// <summary>log.flush.offset.checkpoint.interval.ms: period of the recovery-point checkpoint (Kafka's default 60 s).</summary>
    public int LogFlushOffsetCheckpointIntervalMs { get; }
    public int MessageMaxBytes { get; }
    public int SocketRequestMaxBytes { get; }
    /// <summary>connections.max.idle.ms (Kafka's default 10 minutes).</summary>
    public long ConnectionsMaxIdleMs { get; }
    /// <summary>queued.max.request.bytes: request bytes held at once across connections; ≤ 0 means no cap (Kafka's -1).</summary>
    public long QueuedMaxRequestBytes { get; }
    public int LogIndexIntervalBytes { get; }
    public int NumRecoveryThreadsPerDataDir { get; }
    public int LogIndexSizeMaxBytes { get; }
    public string LogCleanupPolicy { get; }
    public string LogMessageTimestampType { get; }
    public string CompressionType { get; }
    public int OffsetsTopicNumPartitions { get; }
    public int OffsetsTopicSegmentBytes { get; }
    public long OffsetsRetentionMs { get; }
    public long OffsetsRetentionCheckIntervalMs { get; }
    public int GroupInitialRebalanceDelayMs { get; }
    public int GroupMinSessionTimeoutMs { get; }
    public int GroupMaxSessionTimeoutMs { get; }
    public int GroupMaxSize { get; }
    public int ConsumerGroupSessionTimeoutMs { get; }
    public int ConsumerGroupMinSessionTimeoutMs { get; }
    public int ConsumerGroupMaxSessionTimeoutMs { get; }
    public int ConsumerGroupHeartbeatIntervalMs { get; }
    public int ConsumerGroupMinHeartbeatIntervalMs { get; }
    public int ConsumerGroupMaxHeartbeatIntervalMs { get; }
    public int ConsumerGroupMaxSize { get; }
    public IReadOnlyList<string> ConsumerGroupAssignors { get; }
    public string ConsumerGroupMigrationPolicy { get; }
    public int TransactionStateLogNumPartitions { get; }
    public int TransactionMaxTimeoutMs { get; }
    public long TransactionalIdExpirationMs { get; }
    public long ProducerIdExpirationMs { get; }
    public int TransactionAbortTimedOutCleanupIntervalMs { get; }
    public int ProducerIdExpirationCheckIntervalMs { get; }
    /// <summary>authorizer.class.name is StandardAuthorizer: ACLs are enforced.</summary>
    public bool AuthorizerEnabled { get; }
    /// <summary>super.users: principals ("User:alice") allowed everything, semicolon-separated as in Kafka.</summary>
    public IReadOnlyList<string> SuperUsers { get; }
    public bool AllowEveryoneIfNoAclFound { get; }

    public BrokerConfig(IReadOnlyDictionary<string, string> properties)
    {
        _values = new Dictionary<string, string>(StringComparer.Ordinal);
        var unknown = new List<string>();
        foreach (var (k, v) in properties)
        {
            var def = BrokerConfigDefinitions.Find(k) ?? ListenerSecurity.FindListenerOverride(k);
            if (def is null) unknown.Add(k);
            else def.Validate(v);
            _values[k] = v.Trim();
        }
        UnknownKeys = unknown;

        NodeId = Has("node.id") ? GetInt("node.id") : Has("broker.id") && GetInt("broker.id") >= 0 ? GetInt("broker.id") : GetInt("node.id");
        Listeners = ParseListeners("listeners", GetString("listeners")!);
        var advertised = GetString("advertised.listeners");
        AdvertisedListeners = advertised is null ? Listeners : ParseListeners("advertised.listeners", advertised);
        ListenerSecurityProtocols = ListenerSecurity.Resolve(this);
        LogDirs = SplitList(GetString("log.dirs") ?? GetString("log.dir")!);
        if (LogDirs.Count == 0) throw new ConfigException("log.dirs", GetString("log.dirs"), "at least one log directory is required");
        NumPartitions = GetInt("num.partitions");
        DefaultReplicationFactor = GetInt("default.replication.factor");
        ClusterSize = GetInt("kayak.cluster.size");
        ReplicaLagTimeMaxMs = (int)Math.Min(int.MaxValue, GetLong("replica.lag.time.max.ms"));
        AutoLeaderRebalanceEnable = GetBool("auto.leader.rebalance.enable");
        LeaderImbalanceCheckIntervalSeconds = GetLong("leader.imbalance.check.interval.seconds");
        LeaderImbalancePerBrokerPercentage = GetInt("leader.imbalance.per.broker.percentage");
        ReplicaFetchWaitMaxMs = GetInt("replica.fetch.wait.max.ms");
        ReplicaFetchMinBytes = GetInt("replica.fetch.min.bytes");
        ReplicaFetchMaxBytes = GetInt("replica.fetch.max.bytes");
        ReplicaFetchResponseMaxBytes = GetInt("replica.fetch.response.max.bytes");
        ReplicaFetchBackoffMs = GetInt("replica.fetch.backoff.ms");
        AutoCreateTopicsEnable = GetBool("auto.create.topics.enable");
        DeleteTopicEnable = GetBool("delete.topic.enable");
        LogSegmentBytes = GetInt("log.segment.bytes");
        LogRollMs = Has("log.roll.ms") ? GetLong("log.roll.ms") : GetInt("log.roll.hours") * 3_600_000L;
        LogRetentionMs = Has("log.retention.ms") ? GetLong("log.retention.ms")
            : Has("log.retention.minutes") ? MinutesToMs(GetInt("log.retention.minutes"))
            : HoursToMs(GetInt("log.retention.hours"));
        LogRetentionBytes = GetLong("log.retention.bytes");
        LogRetentionCheckIntervalMs = GetLong("log.retention.check.interval.ms");
        LogSegmentDeleteDelayMs = GetLong("log.segment.delete.delay.ms");
        LogFlushIntervalMessages = GetLong("log.flush.interval.messages");
        LogFlushIntervalMs = Has("log.flush.interval.ms") ? GetLong("log.flush.interval.ms") : GetLong("log.flush.scheduler.interval.ms");
        LogFlushOffsetCheckpointIntervalMs = GetInt("log.flush.offset.checkpoint.interval.ms");
        MessageMaxBytes = GetInt("message.max.bytes");
        SocketRequestMaxBytes = GetInt("socket.request.max.bytes");
        ConnectionsMaxIdleMs = GetLong("connections.max.idle.ms");
        QueuedMaxRequestBytes = GetLong("queued.max.request.bytes");
        LogIndexIntervalBytes = GetInt("log.index.interval.bytes");
        NumRecoveryThreadsPerDataDir = GetInt("num.recovery.threads.per.data.dir");
        LogIndexSizeMaxBytes = GetInt("log.index.size.max.bytes");
        LogCleanupPolicy = GetString("log.cleanup.policy")!;
        LogMessageTimestampType = GetString("log.message.timestamp.type")!;
        CompressionType = GetString("compression.type")!;
        OffsetsTopicNumPartitions = GetInt("offsets.topic.num.partitions");
        OffsetsTopicSegmentBytes = GetInt("offsets.topic.segment.bytes");
        OffsetsRetentionMs = GetInt("offsets.retention.minutes") * 60_000L;
        OffsetsRetentionCheckIntervalMs = GetLong("offsets.retention.check.interval.ms");
        GroupInitialRebalanceDelayMs = GetInt("group.initial.rebalance.delay.ms");
        GroupMinSessionTimeoutMs = GetInt("group.min.session.timeout.ms");
        GroupMaxSessionTimeoutMs = GetInt("group.max.session.timeout.ms");
        GroupMaxSize = GetInt("group.max.size");
        ConsumerGroupSessionTimeoutMs = GetInt("group.consumer.session.timeout.ms");
        ConsumerGroupMinSessionTimeoutMs = GetInt("group.consumer.min.session.timeout.ms");
        ConsumerGroupMaxSessionTimeoutMs = GetInt("group.consumer.max.session.timeout.ms");
        ConsumerGroupHeartbeatIntervalMs = GetInt("group.consumer.heartbeat.interval.ms");
        ConsumerGroupMinHeartbeatIntervalMs = GetInt("group.consumer.min.heartbeat.interval.ms");
        ConsumerGroupMaxHeartbeatIntervalMs = GetInt("group.consumer.max.heartbeat.interval.ms");
        ConsumerGroupMaxSize = GetInt("group.consumer.max.size");
        ConsumerGroupAssignors = SplitList(GetString("group.consumer.assignors")!);
        if (ConsumerGroupAssignors.Count == 0)
            throw new ConfigException("group.consumer.assignors", GetString("group.consumer.assignors"), "at least one assignor is required");
        ConsumerGroupMigrationPolicy = GetString("group.consumer.migration.policy")!;
        TransactionStateLogNumPartitions = GetInt("transaction.state.log.num.partitions");
        TransactionMaxTimeoutMs = GetInt("transaction.max.timeout.ms");
        TransactionalIdExpirationMs = GetInt("transactional.id.expiration.ms");
        ProducerIdExpirationMs = GetInt("producer.id.expiration.ms");
        TransactionAbortTimedOutCleanupIntervalMs = GetInt("transaction.abort.timed.out.transaction.cleanup.interval.ms");
        ProducerIdExpirationCheckIntervalMs = GetInt("producer.id.expiration.check.interval.ms");
        string authorizer = GetString("authorizer.class.name")!;
        if (authorizer.Length > 0 && authorizer != Security.StandardAuthorizer.ClassName)
            throw new ConfigException("authorizer.class.name", authorizer,
                $"Kayak has only {Security.StandardAuthorizer.ClassName} (empty for no authorizer)");
        AuthorizerEnabled = authorizer.Length > 0;
        var superUsers = new List<string>();
        foreach (var u in (GetString("super.users") ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            superUsers.Add(u);
        SuperUsers = superUsers;
        AllowEveryoneIfNoAclFound = GetBool("allow.everyone.if.no.acl.found");
        QuotaWindowNum = GetInt("quota.window.num");
        QuotaWindowSizeSeconds = GetInt("quota.window.size.seconds");
        ControllerQuotaWindowNum = GetInt("controller.quota.window.num");
        ControllerQuotaWindowSizeSeconds = GetInt("controller.quota.window.size.seconds");
        MaxConnections = GetInt("max.connections");
        MaxConnectionsPerIp = GetInt("max.connections.per.ip");
        MaxConnectionsPerIpOverrides = ParseConnectionOverrides(GetString("max.connections.per.ip.overrides") ?? "");
        MaxConnectionCreationRate = GetInt("max.connection.creation.rate");
        // KafkaConfig.validateValues: a per-IP limit of 0 only makes sense with overrides letting some addresses in.
        if (MaxConnectionsPerIp == 0 && MaxConnectionsPerIpOverrides.Count == 0)
            throw new ConfigException("max.connections.per.ip", "0", "max.connections.per.ip can be set to zero only if max.connections.per.ip.overrides property is set.");
    }

    /// <summary>max.connections: connections the broker holds at once; a listener waits to accept while it is reached.</summary>
    public int MaxConnections { get; }
    /// <summary>max.connections.per.ip: a new connection from an address already holding this many is closed.</summary>
    public int MaxConnectionsPerIp { get; }
    /// <summary>max.connections.per.ip.overrides ("host:count,..."), host names resolved once, as Kafka's InetAddress.getByName.</summary>
    public IReadOnlyDictionary<System.Net.IPAddress, int> MaxConnectionsPerIpOverrides { get; }
    /// <summary>max.connection.creation.rate (KIP-612): accepts per second across the broker; over it the accept waits.</summary>
    public int MaxConnectionCreationRate { get; }

    /// <summary>A listener's max.connections or max.connection.creation.rate: listener.name.&lt;l&gt;. first, then the broker-wide key
    /// (Kafka's ListenerConnectionQuota reads valuesWithPrefixOverride).</summary>
    public int ListenerInt(string listenerName, string key) =>
        int.Parse(GetListenerString(listenerName, key) ?? int.MaxValue.ToString(CultureInfo.InvariantCulture), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);

    /// <summary>Kafka's Csv.parseCsvMap (each entry split at its last ':') with integer counts.</summary>
    private static Dictionary<System.Net.IPAddress, int> ParseConnectionOverrides(string value)
    {
        const string key = "max.connections.per.ip.overrides";
        var result = new Dictionary<System.Net.IPAddress, int>();
        foreach (var entry in SplitList(value))
        {
            int colon = entry.LastIndexOf(':');
            if (colon <= 0 || !int.TryParse(entry[(colon + 1)..].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int count))
                throw new ConfigException(key, value, $"Error parsing configuration property '{key}': entry '{entry}' is not host:count");
            string host = entry[..colon].Trim().Trim('[', ']');
            foreach (var ip in ResolveOverrideHost(key, value, host)) result[ip] = count;
        }
        return result;
    }

    private static System.Net.IPAddress[] ResolveOverrideHost(string key, string value, string host)
    {
        if (System.Net.IPAddress.TryParse(host, out var ip)) return [ip.IsIPv4MappedToIPv6 ? ip.MapToIPv4() : ip];
        if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase)) return [System.Net.IPAddress.Loopback, System.Net.IPAddress.IPv6Loopback];
        try { return System.Net.Dns.GetHostAddresses(host); }
        catch (System.Net.Sockets.SocketException e) { throw new ConfigException(key, value, $"{host}: {e.Message}"); }
    }

    /// <summary>Client quota sampling (Kafka's QuotaConfig): quota.window.num windows of quota.window.size.seconds.</summary>
    public int QuotaWindowNum { get; }
    public int QuotaWindowSizeSeconds { get; }
    /// <summary>controller_mutation_rate's token bucket (KIP-599): controller.quota.window.num x controller.quota.window.size.seconds.</summary>
    public int ControllerQuotaWindowNum { get; }
    public int ControllerQuotaWindowSizeSeconds { get; }

    private static long MinutesToMs(int m) => m < 0 ? -1 : m * 60_000L;
    private static long HoursToMs(int h) => h < 0 ? -1 : h * 3_600_000L;

    public bool Has(string key) => _values.ContainsKey(key);

    /// <summary>The value in force for a key: explicit, else Kafka's default (null when none).</summary>
    public string? GetString(string key) =>
        _values.TryGetValue(key, out var v) ? v : BrokerConfigDefinitions.Find(key)?.Default;

    public bool IsDefault(string key) => !_values.ContainsKey(key);

    /// <summary>
    /// A listener's value for a key: listener.name.&lt;name lower-cased&gt;.&lt;key&gt; wins over &lt;key&gt;, key by key, as Kafka's
    /// ListenerName.configPrefix and valuesWithPrefixOverride read ssl.* for each listener.
    /// </summary>
    public string? GetListenerString(string listenerName, string key) =>
        _values.TryGetValue(ListenerSecurity.Prefix(listenerName) + key, out var v) ? v : GetString(key);

    /// <summary>The key a listener's value came from (for error messages naming it).</summary>
    public string ListenerKey(string listenerName, string key) =>
        _values.ContainsKey(ListenerSecurity.Prefix(listenerName) + key) ? ListenerSecurity.Prefix(listenerName) + key : key;

    // The typed properties read the table's keys through these, which check the key's definition has the type read:
    // a property can only read a value the table defines, validated by that definition (issue 10).
    private int GetInt(string key) => int.Parse(Defined(key, ConfigType.Int, ConfigType.Int), CultureInfo.InvariantCulture);
    private long GetLong(string key) => long.Parse(Defined(key, ConfigType.Long, ConfigType.Int), CultureInfo.InvariantCulture);
    private bool GetBool(string key) => bool.Parse(Defined(key, ConfigType.Boolean, ConfigType.Boolean));

    private string Defined(string key, ConfigType type, ConfigType alsoAccepted)
    {
        var def = BrokerConfigDefinitions.Find(key) ?? throw new InvalidOperationException($"{key} is not in BrokerConfigDefinitions.All");
        if (def.Type != type && def.Type != alsoAccepted)
            throw new InvalidOperationException($"{key} is defined as {def.Type}, read as {type}");
        return GetString(key) ?? throw new InvalidOperationException($"{key} has no value and no default");
    }

    /// <summary>A comma-separated list's items, trimmed, empty ones dropped.</summary>
    internal static List<string> SplitList(string value)
    {
        var list = new List<string>();
        foreach (var part in value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)) list.Add(part);
        return list;
    }

    private static List<ListenerEndpoint> ParseListeners(string key, string value)
    {
        var list = new List<ListenerEndpoint>();
        foreach (var part in SplitList(value)) list.Add(ListenerEndpoint.Parse(key, part));
        if (list.Count == 0) throw new ConfigException(key, value, "at least one listener is required");
        return list;
    }

    /// <summary>Reads a Java-style .properties file: '#'/'!' comments, '=' or ':' separators, '\' line continuations.</summary>
    public static Dictionary<string, string> ReadPropertiesFile(string path)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        var lines = File.ReadAllLines(path);
        var sb = new StringBuilder();
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i].TrimStart();
            if (sb.Length == 0 && (line.Length == 0 || line[0] == '#' || line[0] == '!')) continue;
            if (line.EndsWith('\\') && !line.EndsWith("\\\\", StringComparison.Ordinal))
            {
                sb.Append(line, 0, line.Length - 1);
                continue;
            }
            sb.Append(line);
            string logical = sb.ToString();
            sb.Clear();
            int sep = logical.IndexOfAny(['=', ':']);
            int ws = logical.IndexOfAny([' ', '\t']);
            if (sep < 0 || (ws >= 0 && ws < sep && logical[..ws].Trim().Length == ws && logical[ws..].TrimStart()[0] is not '=' and not ':')) sep = ws;
            if (sep < 0) { result[logical.Trim()] = ""; continue; }
            result[logical[..sep].Trim()] = logical[(sep + 1)..].Trim();
        }
        return result;
    }
}
