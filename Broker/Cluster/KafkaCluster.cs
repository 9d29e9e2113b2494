using System.Globalization;
using Kayak.Broker.Config;
using Microsoft.Extensions.Logging;

namespace Kayak.Broker.Cluster;

/// <summary>
/// N brokers in one process (issue 14) as a test and development fixture, not for scale-out: node ids 1..N, each a
/// normal <see cref="KafkaBroker"/> (the same code path) with its own listeners and its own log dirs
/// <c>&lt;log.dirs&gt;/broker-&lt;id&gt;</c>, and an in-process controller (<see cref="ClusterController"/>) that owns
/// the topics, replica assignments, leaders, leader epochs and ISR and persists them under the cluster root, so a
/// cluster started again on the same directory comes back as it was.
/// Followers replicate from their leaders with the Fetch protocol (<see cref="ReplicaFetcher"/>); a stopped or crashed
/// broker leaves the ISRs and its partitions get a new leader from the ISR, or stay offline (LEADER_NOT_AVAILABLE)
/// without one, as Kafka does with unclean.leader.election.enable=false.
/// </summary>
public sealed partial class KafkaCluster : IAsyncDisposable
{
    private readonly KafkaBroker?[] _brokers;
    private readonly Dictionary<string, string>[] _properties;
    private ClusterController? _controller;
    private LeaderRebalancer? _rebalancer;
    private int _disposed;

    public KafkaCluster(KafkaClusterOptions options)
    {
        if (options.Brokers is < 1 or > 64) throw new ArgumentOutOfRangeException(nameof(options), options.Brokers, "Brokers must be 1..64");
        Options = options;
        _brokers = new KafkaBroker?[options.Brokers];
        _properties = new Dictionary<string, string>[options.Brokers];
    }

    public KafkaClusterOptions Options { get; }

    /// <summary>The cluster root: the first of log.dirs; the controller's metadata lives here.</summary>
    public string Root { get; private set; } = "";

    public string ClusterId => Controller.ClusterId;

    /// <summary>"host:port,host:port,..." of the running brokers' first listeners, valid after <see cref="StartAsync"/>.</summary>
    public string BootstrapServers
    {
        get
        {
            var list = new List<string>();
            foreach (var b in _brokers)
                if (b is not null) list.Add(b.BootstrapServers);
            return string.Join(",", list);
        }
    }

    /// <summary>The running brokers, by node id.</summary>
    public IReadOnlyList<KafkaBroker> Brokers => _brokers.Where(b => b is not null).ToArray()!;

    /// <summary>Broker <paramref name="nodeId"/> (1..N), or null while it is stopped.</summary>
    public KafkaBroker? Broker(int nodeId) => _brokers[Index(nodeId)];

    internal ClusterController Controller => _controller ?? throw new InvalidOperationException("Cluster not started");

    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        var baseConfig = new BrokerConfig(Options.BuildProperties());
        Root = baseConfig.LogDirs[0];
        _controller = new ClusterController(Root, Options.PlacementSeed is { } seed ? new Random(seed) : null, Options.ScramCredentials);
        var log = (Options.LoggerFactory ?? Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance).CreateLogger("Kayak.Cluster");
        Kayak.Broker.Network.Sasl.ScramCredentialStore.LogIgnoredSeeds(log, _controller.IgnoredScramSeeds, Root);
        for (int id = 1; id <= _brokers.Length; id++) _properties[id - 1] = BrokerProperties(baseConfig, id);
        try
        {
            // The members start concurrently (issue 14: a 3-broker cluster must start in < 3x one broker's time):
            // each opens its own log dirs and binds its own listeners, and the controller serialises their Attach and
            // SetLive under its lock, as KRaft's controller handles brokers registering at the same time. Task.Run
            // because a broker's start is mostly synchronous (log recovery, coordinator loads) and would otherwise
            // run one after the other on this thread. WhenAll waits for every member, so a failure disposes them all.
            var starts = new Task[_brokers.Length];
            for (int id = 1; id <= _brokers.Length; id++)
            {
                int nodeId = id;
                starts[id - 1] = Task.Run(() => StartBrokerAsync(nodeId, cancellationToken), cancellationToken);
            }
            await Task.WhenAll(starts).ConfigureAwait(false);
        }
        catch
        {
            await DisposeAsync().ConfigureAwait(false);
            throw;
        }
        // auto.leader.rebalance.enable (Kafka's default true): the controller's periodic preferred elections.
        if (baseConfig.AutoLeaderRebalanceEnable)
            _rebalancer = new LeaderRebalancer(Controller, Options.Time ?? TimeProvider.System,
                baseConfig.LeaderImbalanceCheckIntervalSeconds, baseConfig.LeaderImbalancePerBrokerPercentage);
        log.LogInformation("Cluster {ClusterId} started: {Brokers} brokers, bootstrap {Bootstrap}, root {Root}", ClusterId, _brokers.Length, BootstrapServers, Root);
    }

    /// <summary>Starts a stopped broker again on its log dirs and ports; it catches up on topic changes it missed.</summary>
    public async Task StartBrokerAsync(int nodeId, CancellationToken cancellationToken = default)
    {
        int i = Index(nodeId);
        if (_brokers[i] is not null) throw new InvalidOperationException($"Broker {nodeId} is running");
        var options = new KafkaBrokerOptions { LoggerFactory = Options.LoggerFactory, Time = Options.Time, Controller = Controller, Faults = Faults(nodeId) };
        foreach (var (k, v) in _properties[i]) options.Properties[k] = v;
        var broker = new KafkaBroker(options);
        await broker.StartAsync(cancellationToken).ConfigureAwait(false);
        _brokers[i] = broker;
        // A restarted Kafka broker comes back on its configured port, so clients' bootstrap lists stay valid. With
        // port 0 the first start picked free ports: keep them for the next start of this node.
        if (_properties[i].TryGetValue("listeners", out var configured) && HasPortZero(configured))
            _properties[i]["listeners"] = Shift(broker.Listeners, 0);
    }

    /// <summary>Clean shutdown of one broker: it leaves the cluster's live brokers; its partitions lose their leader.</summary>
    public async Task StopBrokerAsync(int nodeId)
    {
        int i = Index(nodeId);
        var broker = _brokers[i] ?? throw new InvalidOperationException($"Broker {nodeId} is not running");
        _brokers[i] = null;
        await broker.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>Kills one broker the way kill -9 would (<see cref="KafkaBroker.CrashAsync"/>).</summary>
    public async Task CrashBrokerAsync(int nodeId)
    {
        int i = Index(nodeId);
        var broker = _brokers[i] ?? throw new InvalidOperationException($"Broker {nodeId} is not running");
        _brokers[i] = null;
        await broker.CrashAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// Creates a topic as CreateTopics does, through the controller (Kafka's replica placement). Throws
    /// <see cref="Kayak.Protocol.KafkaException"/> with Kafka's error code (INVALID_REPLICATION_FACTOR, TOPIC_ALREADY_EXISTS, ...).
    /// </summary>
    public Task CreateTopicAsync(string name, int partitions = 1, short replicationFactor = -1, IReadOnlyDictionary<string, string>? configs = null)
    {
        var broker = Brokers.FirstOrDefault() ?? throw new InvalidOperationException("No broker is running");
        var result = broker.State.Topics.Create(name, partitions, replicationFactor, configs ?? new Dictionary<string, string>(), validateOnly: false);
        if (result.Topic is null) throw new Kayak.Protocol.KafkaException(result.Error, result.Message ?? result.Error.ToString());
        return Task.CompletedTask;
    }

    /// <summary>The controller's view of a partition: leader, leader epoch, replicas, ISR.</summary>
    public (int Leader, int LeaderEpoch, IReadOnlyList<int> Replicas, IReadOnlyList<int> Isr) Partition(string topic, int partition)
    {
        var t = Controller.Topic(topic) ?? throw new Kayak.Protocol.KafkaException(Kayak.Protocol.ErrorCode.UnknownTopicOrPartition, $"Unknown topic {topic}");
        var p = t.Partitions[partition];
        return (p.Leader, p.LeaderEpoch, p.Replicas, p.Isr);
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _rebalancer?.Dispose();
        for (int i = 0; i < _brokers.Length; i++)
        {
            var b = _brokers[i];
            _brokers[i] = null;
            if (b is not null) await b.DisposeAsync().ConfigureAwait(false);
        }
    }

    private int Index(int nodeId) =>
        nodeId >= 1 && nodeId <= _brokers.Length ? nodeId - 1 : throw new ArgumentOutOfRangeException(nameof(nodeId), nodeId, $"Node ids are 1..{_brokers.Length}");

    /// <summary>
    /// One member's server.properties: the cluster's, with node.id = id, each log dir's broker-&lt;id&gt;
    /// subdirectory, and each listener (and advertised listener) port moved up by (id - 1) × the number of listeners,
    /// so a single listener on 9092 gives 9092, 9093, 9094 (port 0 stays 0: any free port). The internal topics'
    /// replication factors default to Kafka's 3, capped at the cluster size.
    /// </summary>
    private Dictionary<string, string> BrokerProperties(BrokerConfig config, int id)
    {
        var p = Options.BuildProperties();
        p["node.id"] = id.ToString(CultureInfo.InvariantCulture);
        p.Remove("broker.id");
        p.Remove("log.dir");
        p["log.dirs"] = string.Join(",", config.LogDirs.Select(d => Path.Combine(d, $"broker-{id}")));
        int stride = config.Listeners.Count;
        p["listeners"] = Shift(config.Listeners, (id - 1) * stride);
        if (config.Has("advertised.listeners")) p["advertised.listeners"] = Shift(config.AdvertisedListeners, (id - 1) * stride);
        string rf = Math.Min(3, _brokers.Length).ToString(CultureInfo.InvariantCulture);
        p.TryAdd("offsets.topic.replication.factor", rf);
        p.TryAdd("transaction.state.log.replication.factor", rf);
        p["kayak.cluster.size"] = _brokers.Length.ToString(CultureInfo.InvariantCulture);
        return p;
    }

    private static bool HasPortZero(string listeners)
    {
        foreach (var l in listeners.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            if (l.EndsWith(":0", StringComparison.Ordinal)) return true;
        return false;
    }

    private static string Shift(IReadOnlyList<ListenerEndpoint> listeners, int by) =>
        string.Join(",", listeners.Select(l =>
        {
            string host = l.Host.Contains(':') ? "[" + l.Host + "]" : l.Host;
            int port = l.Port == 0 ? 0 : l.Port + by;
            return $"{l.Name}://{host}:{port.ToString(CultureInfo.InvariantCulture)}";
        }));
}

/// <summary>How to run an in-process cluster. Explicit properties here win over <see cref="Properties"/>.</summary>
public sealed class KafkaClusterOptions
{
    /// <summary>Number of brokers, node ids 1..N.</summary>
    public int Brokers { get; set; } = 3;
    /// <summary>The cluster root (Kafka's log.dirs; each broker uses &lt;dir&gt;/broker-&lt;id&gt;); null keeps the properties' value.</summary>
    public string? DataDir { get; set; }
    /// <summary>Listener host; null keeps the properties' listeners (default 127.0.0.1).</summary>
    public string? Host { get; set; }
    /// <summary>The first broker's port, the others consecutive; 0 for any free ports; null keeps the properties' listeners.</summary>
    public int? Port { get; set; }
    /// <summary>Any server.properties key=value, applied to every broker.</summary>
    public Dictionary<string, string> Properties { get; } = new(StringComparer.Ordinal);
    public ILoggerFactory? LoggerFactory { get; set; }
    /// <summary>Clock of every broker; tests pass a fake.</summary>
    public TimeProvider? Time { get; set; }
    /// <summary>Fault injection per node id (<see cref="BrokerFaults"/>), e.g. to hold back one follower's fetches.</summary>
    public Dictionary<int, BrokerFaults> Faults { get; } = new();
    /// <summary>
    /// SCRAM credentials to seed, in kafka-storage format's --add-scram syntax
    /// (<c>SCRAM-SHA-256=[name=alice,password=alice-secret]</c>): stored under the cluster root when it has no
    /// credentials yet, then shared by every broker; ignored (with a warning) once the root has them.
    /// </summary>
    public List<string> ScramCredentials { get; } = new();
    /// <summary>Seed of the replica placement's random start (Kafka picks it at random); null for a random one.</summary>
    public int? PlacementSeed { get; set; }

    internal Dictionary<string, string> BuildProperties()
    {
        var b = new KafkaBrokerOptions { DataDir = DataDir, Host = Host, Port = Port };
        foreach (var (k, v) in Properties) b.Properties[k] = v;
        return b.BuildProperties();
    }
}
