using System.Net;
using Kayak.Broker.Config;
using Kayak.Broker.Handlers;
using Kayak.Coordinator;
using Kayak.Protocol;
using Kayak.Storage;
using Microsoft.Extensions.Logging;

namespace Kayak.Broker;

/// <summary>
/// Everything a handler may touch: config, logs, topic metadata, the clock. One per broker;
/// handlers are stateless and reach their state through <see cref="RequestContext.Broker"/>.
/// </summary>
public sealed class BrokerState : IDisposable
{
    private readonly ILogger _log;

    internal BrokerState(BrokerConfig config, TimeProvider time, ILoggerFactory loggerFactory)
    {
        Config = config;
        Time = time;
        LoggerFactory = loggerFactory;
        _log = loggerFactory.CreateLogger("Kayak.Broker");
        Logs = new LogManager(new LogOptions
        {
            LogDirs = config.LogDirs,
            SegmentBytes = config.LogSegmentBytes,
            RollMs = config.LogRollMs,
            RetentionMs = config.LogRetentionMs,
            RetentionBytes = config.LogRetentionBytes,
            RetentionCheckIntervalMs = config.LogRetentionCheckIntervalMs,
            FlushIntervalMessages = config.LogFlushIntervalMessages,
            FlushIntervalMs = config.LogFlushIntervalMs,
            IndexIntervalBytes = config.LogIndexIntervalBytes,
            SegmentIndexBytes = config.LogIndexSizeMaxBytes,
            MaxMessageBytes = config.MessageMaxBytes,
            MessageTimestampType = config.LogMessageTimestampType,
            CleanupPolicy = config.LogCleanupPolicy,
            CompressionType = config.CompressionType,
            Time = time,
            Logger = loggerFactory.CreateLogger("Kayak.Storage"),
        });
        Topics = new TopicService(this);
        Groups = new GroupCoordinator(new GroupCoordinatorOptions
        {
            OffsetsTopicNumPartitions = config.OffsetsTopicNumPartitions,
            InitialRebalanceDelayMs = config.GroupInitialRebalanceDelayMs,
            MinSessionTimeoutMs = config.GroupMinSessionTimeoutMs,
            MaxSessionTimeoutMs = config.GroupMaxSessionTimeoutMs,
            MaxGroupSize = config.GroupMaxSize,
            OffsetsRetentionMinutes = (int)(config.OffsetsRetentionMs / 60_000),
            OffsetsRetentionCheckIntervalMs = config.OffsetsRetentionCheckIntervalMs,
            Time = time,
        }, new StorageGroupLog(Logs, config.OffsetsTopicNumPartitions, CreateOffsetsTopic));
        Handlers = new HandlerRegistry(CreateHandlers());
        RequestMemory = new Network.RequestMemory(config.QueuedMaxRequestBytes);
    }

    /// <summary>
    /// Every handler, listed explicitly: <see cref="HandlerRegistry.CreateDefault"/> finds the same set by
    /// reflection over all types of the assembly, which loads hundreds of types and costs milliseconds of the
    /// first start in a process (issue 6, in-process start). <see cref="HandlerRegistry"/> still checks that every
    /// API in ApiVersionTable has exactly one handler, and a test checks this list against the reflection scan.
    /// </summary>
    internal static IApiHandler[] CreateHandlers() =>
    [
        new ProduceHandler(), new FetchHandler(), new ListOffsetsHandler(), new MetadataHandler(),
        new OffsetCommitHandler(), new OffsetFetchHandler(), new FindCoordinatorHandler(), new JoinGroupHandler(),
        new HeartbeatHandler(), new LeaveGroupHandler(), new SyncGroupHandler(), new DescribeGroupsHandler(),
        new ListGroupsHandler(), new ApiVersionsHandler(), new CreateTopicsHandler(), new DeleteTopicsHandler(),
        new DeleteRecordsHandler(), new InitProducerIdHandler(), new OffsetForLeaderEpochHandler(),
        new AddPartitionsToTxnHandler(), new AddOffsetsToTxnHandler(), new EndTxnHandler(), new TxnOffsetCommitHandler(),
        new DescribeConfigsHandler(), new AlterConfigsHandler(), new DescribeLogDirsHandler(), new CreatePartitionsHandler(),
        new DeleteGroupsHandler(), new ElectLeadersHandler(), new IncrementalAlterConfigsHandler(), new OffsetDeleteHandler(),
        new DescribeClusterHandler(), new DescribeProducersHandler(), new DescribeTransactionsHandler(),
        new ListTransactionsHandler(), new DescribeTopicPartitionsHandler(),
    ];

    public BrokerConfig Config { get; }
    public TimeProvider Time { get; }
    public ILoggerFactory LoggerFactory { get; }
    public LogManager Logs { get; }
    internal Fetching.FetchSessionCache FetchSessions { get; } = new();
    /// <summary>Request frames of all connections, capped by queued.max.request.bytes (issue 15, K8).</summary>
    internal Network.RequestMemory RequestMemory { get; private set; } = null!;
    public TopicService Topics { get; }
    public GroupCoordinator Groups { get; }
    public HandlerRegistry Handlers { get; }
    /// <summary>Test fault hook, see <see cref="KafkaBrokerOptions.DropConnectionBeforeResponse"/>.</summary>
    internal Func<ApiKey, bool>? DropConnectionBeforeResponse { get; set; }
    /// <summary>Test fault hook, see <see cref="KafkaBrokerOptions.TransactionMarkerHook"/>.</summary>
    internal Kayak.Coordinator.Transactions.ITransactionMarkerHook? TransactionMarkerHook { get; init; }
    /// <summary>The transaction coordinator (KIP-98); created by <see cref="Open"/>.</summary>
    public Kayak.Coordinator.Transactions.TransactionCoordinator Transactions { get; private set; } = null!;
    public int NodeId => Config.NodeId;
    public string ClusterId { get; private set; } = "";
    public IReadOnlyList<ListenerEndpoint> AdvertisedListeners { get; private set; } = [];
    public ListenerEndpoint AdvertisedEndpoint => AdvertisedListeners[0];

    internal void Open()
    {
        // The log dirs' .lock first: a second broker on the same dirs must not touch anything there (issue 15, K2).
        Logs.AcquireLocks();
        ClusterId = MetaProperties.LoadOrCreate(Config.LogDirs, Config.NodeId);
        Logs.Open();
        Groups.Load();
        OpenTransactions();
    }

    /// <summary>
    /// Transaction coordinator over __transaction_state, markers written through Storage, producer ids
    /// persisted next to meta.properties. Loading finishes transactions a stop left between Prepare and Complete.
    /// </summary>
    private void OpenTransactions()
    {
        var txnLog = LoggerFactory.CreateLogger("Kayak.Transactions");
        Transactions = new Kayak.Coordinator.Transactions.TransactionCoordinator(
            new Kayak.Coordinator.Transactions.TransactionCoordinatorOptions
            {
                NumPartitions = Config.TransactionStateLogNumPartitions,
                OffsetsTopicNumPartitions = Config.OffsetsTopicNumPartitions,
                MaxTimeoutMs = Config.TransactionMaxTimeoutMs,
                TransactionalIdExpirationMs = Config.TransactionalIdExpirationMs,
                Time = Time,
                MarkerHook = TransactionMarkerHook,
            },
            new Transactions.TransactionStateLog(this),
            new Transactions.LocalMarkerWriter(this, txnLog),
            new Kayak.Coordinator.Transactions.ProducerIdManager(Path.Combine(Config.LogDirs[0], "kayak-producer-id-block")))
        {
            // Committed transactions hand their TxnOffsetCommit offsets to the group coordinator.
            OffsetSink = Groups,
        };
        Transactions.Load();
    }

    /// <summary>producer.id.expiration.check.interval.ms timer: Kafka's removeExpiredProducers on every partition.</summary>
    internal void ExpireProducers()
    {
        foreach (var topic in Logs.Topics)
            foreach (var p in topic.Partitions) p.RemoveExpiredProducers(Config.ProducerIdExpirationMs);
    }

    private Storage.TopicLog CreateOffsetsTopic()
    {
        var created = Topics.CreateInternal(TopicService.ConsumerOffsetsTopic);
        return created.Topic ?? throw new InvalidOperationException($"Cannot create {TopicService.ConsumerOffsetsTopic}: {created.Message}");
    }

    internal void SetAdvertisedListeners(BrokerConfig config, IReadOnlyList<ListenerEndpoint> bound)
    {
        if (config.Has("advertised.listeners"))
        {
            AdvertisedListeners = config.AdvertisedListeners;
            return;
        }
        var list = new List<ListenerEndpoint>();
        foreach (var b in bound)
        {
            // Kafka advertises the host's name for a wildcard listener.
            string host = b.Host is "" or "0.0.0.0" or "::" ? Dns.GetHostName() : b.Host;
            list.Add(b with { Host = host });
        }
        AdvertisedListeners = list;
    }

    public void Dispose()
    {
        Groups.Dispose();
        Logs.Dispose();
    }
}

/// <summary>
/// Kafka's meta.properties in each log dir: cluster.id and node.id. The cluster id is made once and
/// kept, so clients see the same cluster across restarts; a log dir of another node is refused.
/// </summary>
internal static class MetaProperties
{
    public static string LoadOrCreate(IReadOnlyList<string> logDirs, int nodeId)
    {
        string? clusterId = null;
        foreach (var dir in logDirs)
        {
            var path = Path.Combine(dir, "meta.properties");
            if (!File.Exists(path)) continue;
            var props = BrokerConfig.ReadPropertiesFile(path);
            if (props.TryGetValue("node.id", out var n) && n != nodeId.ToString(System.Globalization.CultureInfo.InvariantCulture))
                throw new Config.ConfigException("node.id", nodeId.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    $"the log dir {dir} belongs to node.id {n}");
            if (props.TryGetValue("cluster.id", out var c)) clusterId ??= c;
        }
        clusterId ??= Uuid.NewRandom().ToString();
        foreach (var dir in logDirs)
        {
            Directory.CreateDirectory(dir);
            var path = Path.Combine(dir, "meta.properties");
            if (File.Exists(path)) continue;
            var tmp = path + ".tmp";
            File.WriteAllText(tmp, $"#Written by Kayak\nversion=1\ncluster.id={clusterId}\nnode.id={nodeId}\n");
            File.Move(tmp, path, overwrite: true);
        }
        return clusterId;
    }
}
