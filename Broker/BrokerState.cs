using System.Net;
using Kayak.Broker.Config;
using Kayak.Broker.Handlers;
using Kayak.Broker.Services;
using Kayak.Coordinator;
using Kayak.Protocol;
using Kayak.Storage;
using Microsoft.Extensions.Logging;

namespace Kayak.Broker;

/// <summary>
/// The composition root: builds Storage's <see cref="LogManager"/>, the coordinators and the broker's services, and
/// hands each handler only the services it declares in its constructor (issue 10, step 1). No handler sees this
/// class. The transport (<see cref="Network.Connection"/>) and the background schedules of <see cref="KafkaBroker"/>
/// still reach it for the handler registry, request memory, test hooks and the periodic Storage tasks.
/// </summary>
internal sealed class BrokerState : IDisposable
{
    /// <param name="controller">The in-process cluster's controller (issue 14); null for a single broker. A member's ACLs,
    /// SCRAM credentials and client quotas are the cluster's, held by the controller, as Kafka's are the metadata log's.</param>
    internal BrokerState(BrokerConfig config, TimeProvider time, ILoggerFactory loggerFactory, Cluster.ClusterController? controller = null)
    {
        Config = config;
        Controller = controller;
        Time = time;
        LoggerFactory = loggerFactory;
        // Dynamic configs stored by an earlier run apply from the start, as Kafka applies its metadata log's (KIP-226).
        Dynamic = new DynamicBrokerConfig(config, shared: controller?.BrokerDefaults);
        var storageLogger = loggerFactory.CreateLogger("Kayak.Storage");
        Logs = new LogManager(OptionsBinding.Log(Dynamic.Current, time, storageLogger));
        Dynamic.Changed += current => Logs.UpdateDefaults(OptionsBinding.Log(current, time, storageLogger));
        Cluster = new ClusterInfo(config.NodeId);
        Catalog = new TopicCatalog(Logs);
        Topics = new TopicService(Logs, config);
        ConfigDescriber = new TopicConfigDescriber(Dynamic, () => Logs.Options);
        // Issue 14: in a cluster every coordinator append waits for the ISR (Leadership is known once Open ran).
        Replication = new CoordinatorReplication(Catalog, () => Leadership, time);
        Groups = new GroupCoordinator(OptionsBinding.Groups(config, time),
            new ReplicatedGroupLog(new StorageGroupLog(Logs, config.OffsetsTopicNumPartitions, CreateOffsetsTopic,
                partition => Replication.LeaderEpoch(InternalTopics.ConsumerOffsets, partition)), Replication));
        RequestMemory = new Network.RequestMemory(config.QueuedMaxRequestBytes);
        Authorizer = config.AuthorizerEnabled
            ? new Security.StandardAuthorizer(config.SuperUsers, config.AllowEveryoneIfNoAclFound,
                controller?.Acls ?? new Security.AclStore(new Security.AclFile(Path.Combine(config.LogDirs[0], Security.AclFile.FileName))),
                loggerFactory.CreateLogger(Security.StandardAuthorizer.AuditLoggerName))
            : Security.AllowAllAuthorizer.Instance;
        // Client quotas stored by an earlier run are enforced from the first request (KIP-13, KIP-546).
        Quotas = new Quotas.ClientQuotas(config, time, controller?.Quotas ?? new Quotas.ClientQuotaStore(config.LogDirs[0]));
        // Connection limits and KIP-612 rates: from the config in force (dynamic max.connections* apply at once) and
        // from the ip entities' connection_creation_rate quotas, stored with the other client quotas.
        ConnectionQuotas = new Network.ConnectionQuotas(Dynamic.Current, time);
        Dynamic.Changed += ConnectionQuotas.Reconfigure;
        ConnectionQuotas.UpdateIpRates(Quotas.Store.Snapshot());
        Quotas.Store.Changed += ConnectionQuotas.UpdateIpRates;
    }

    /// <summary>
    /// Every handler with the services it needs, listed explicitly: reflection over the assembly's types would load
    /// hundreds of types and cost milliseconds of the first start in a process (issue 6, in-process start).
    /// <see cref="HandlerRegistry"/> still checks that every API in ApiVersionTable has exactly one handler, and a test
    /// checks this list against the handler types of the assembly. Called once the transaction coordinator exists.
    /// </summary>
    internal IApiHandler[] CreateHandlers()
    {
        var txns = Transactions;
        return
        [
            new ProduceHandler(Catalog, Verifier(txns), Leadership, Cluster, Authorizer, Time),
            new FetchHandler(Catalog, FetchSessions, Time, LoggerFactory.CreateLogger("Kayak.Fetch"), Leadership, Cluster, Authorizer),
            new ListOffsetsHandler(Catalog, Leadership, Authorizer), new MetadataHandler(Catalog, Topics, Cluster, Leadership, Authorizer),
            new OffsetCommitHandler(Groups, Catalog, Authorizer), new OffsetFetchHandler(Groups, Authorizer),
            new FindCoordinatorHandler(Cluster, Coordinators, Topics, Config, Authorizer),
            new JoinGroupHandler(Groups, Catalog, Authorizer), new HeartbeatHandler(Groups, Authorizer), new LeaveGroupHandler(Groups, Authorizer), new SyncGroupHandler(Groups, Authorizer),
            new DescribeGroupsHandler(Groups, Authorizer), new ListGroupsHandler(Groups, Authorizer), new SaslHandshakeHandler(), new ApiVersionsHandler(),
            new CreateTopicsHandler(Topics, Config, Cluster, ConfigDescriber, Quotas, Authorizer), new DeleteTopicsHandler(Catalog, Topics, Quotas, Authorizer),
            new DeleteRecordsHandler(Catalog, Authorizer), new InitProducerIdHandler(txns, Authorizer), new OffsetForLeaderEpochHandler(Catalog, Leadership, Authorizer),
            new AddPartitionsToTxnHandler(txns, Catalog, Authorizer), new AddOffsetsToTxnHandler(txns, Authorizer), new EndTxnHandler(txns, Authorizer),
            new WriteTxnMarkersHandler(Catalog, Leadership, LocalMarkers, Authorizer, Time), new TxnOffsetCommitHandler(txns, Verifier(txns), Groups, Catalog, Time, Authorizer),
            new DescribeConfigsHandler(Catalog, Dynamic, Cluster, ConfigDescriber, Authorizer), new AlterConfigsHandler(Topics, Cluster, Dynamic, Authorizer),
            new DescribeLogDirsHandler(Catalog, Config.LogDirs, Authorizer), new SaslAuthenticateHandler(), new CreatePartitionsHandler(Topics, Quotas, Authorizer),
            new DeleteGroupsHandler(Groups, Authorizer), new ElectLeadersHandler(Catalog, Controller, Authorizer),
            new AlterPartitionReassignmentsHandler(Catalog, Controller, NodeId, Authorizer), new ListPartitionReassignmentsHandler(Controller, Authorizer),
            new IncrementalAlterConfigsHandler(Topics, Catalog, Cluster, Dynamic, Authorizer), new OffsetDeleteHandler(Groups, Authorizer),
            new DescribeClientQuotasHandler(Quotas.Store, Authorizer), new AlterClientQuotasHandler(Quotas.Store, Authorizer),
            new DescribeUserScramCredentialsHandler(Scram, Authorizer), new AlterUserScramCredentialsHandler(Scram, Authorizer),
            new CreateDelegationTokenHandler(Config, Authorizer), new RenewDelegationTokenHandler(Config),
            new ExpireDelegationTokenHandler(Config), new DescribeDelegationTokenHandler(Config),
            new DescribeClusterHandler(Cluster, Authorizer), new DescribeProducersHandler(Catalog, Authorizer), new DescribeTransactionsHandler(txns, Authorizer),
            new ListTransactionsHandler(txns, Authorizer), new DescribeTopicPartitionsHandler(Catalog, Cluster, Leadership, Authorizer),
            new ConsumerGroupHeartbeatHandler(Groups, Catalog, Authorizer), new ConsumerGroupDescribeHandler(Groups, Authorizer),
            new DescribeAclsHandler(Authorizer), new CreateAclsHandler(Authorizer), new DeleteAclsHandler(Authorizer),
        ];
    }

    /// <summary>
    /// KIP-890 produce-time verification: in a cluster through the transactional id's coordinator, which may be another
    /// broker (AddPartitionsToTxn VerifyOnly, issue 14); on a single broker in process.
    /// </summary>
    private Services.ITransactionVerifier Verifier(Kayak.Coordinator.Transactions.TransactionCoordinator txns) => InterBroker is { } client
        ? new Transactions.ClusterTransactionVerifier(txns, Leadership, NodeId, Config.TransactionStateLogNumPartitions, client)
        : new Services.CoordinatorTransactionVerifier(txns);

    /// <summary>Markers into this broker's partitions: its transaction coordinator's and those WriteTxnMarkers brings.</summary>
    private Transactions.LocalMarkerWriter LocalMarkers { get; set; } = null!;

    /// <summary>In a cluster: requests to the other brokers (markers, transaction verification); null on a single broker.</summary>
    internal Cluster.InterBrokerClient? InterBroker { get; private set; }

    /// <summary>The static config (server.properties); <see cref="Dynamic"/> has the one in force.</summary>
    public BrokerConfig Config { get; }
    /// <summary>Dynamic broker configs (KIP-226) over <see cref="Config"/>.</summary>
    public DynamicBrokerConfig Dynamic { get; }
    public TimeProvider Time { get; }
    public ILoggerFactory LoggerFactory { get; }
    /// <summary>Storage; only services (<see cref="TopicCatalog"/>, <see cref="TopicService"/>) and the background tasks use it.</summary>
    public LogManager Logs { get; }
    public ClusterInfo Cluster { get; }
    public ITopicCatalog Catalog { get; }
    public TopicService Topics { get; }
    internal TopicConfigDescriber ConfigDescriber { get; }
    internal Fetching.FetchSessionCache FetchSessions { get; } = new();
    /// <summary>Client quotas (KIP-13, KIP-124, KIP-599): stored values and their enforcement, used by the connections.</summary>
    internal Quotas.ClientQuotas Quotas { get; }
    /// <summary>Connection counts and creation rates per IP, listener and broker (Kafka's ConnectionQuotas, KIP-612).</summary>
    internal Network.ConnectionQuotas ConnectionQuotas { get; }
    /// <summary>Request frames of all connections, capped by queued.max.request.bytes (issue 15, K8).</summary>
    internal Network.RequestMemory RequestMemory { get; }
    public GroupCoordinator Groups { get; }
    /// <summary>ACL checks (authorizer.class.name); allow-all when none is configured.</summary>
    internal Security.IAuthorizer Authorizer { get; }
    /// <summary>Built by <see cref="Open"/>, once every service the handlers take exists.</summary>
    public HandlerRegistry Handlers { get; private set; } = null!;
    /// <summary>Fault injection (<see cref="KafkaBroker.Faults"/>); with no rule set it costs one field read per request.</summary>
    internal BrokerFaults? Faults { get; init; }

    /// <summary>SCRAM credentials (KIP-554), shared with the SASL listeners; loaded from the first log dir in <see cref="Open"/>.</summary>
    internal Network.Sasl.ScramCredentialStore Scram { get; init; } = new();
    /// <summary>The transaction coordinator (KIP-98); created by <see cref="Open"/>.</summary>
    public Kayak.Coordinator.Transactions.TransactionCoordinator Transactions { get; private set; } = null!;
    /// <summary>
    /// The controller of the in-process cluster this broker belongs to (issue 14); null for a single broker, which
    /// leads every partition itself.
    /// </summary>
    internal Cluster.ClusterController? Controller { get; }
    /// <summary>Who leads each partition; set by <see cref="Open"/>.</summary>
    internal IPartitionLeadership Leadership { get; private set; } = null!;

    /// <summary>The coordinators' wait for the ISR of their internal partitions (issue 14).</summary>
    internal CoordinatorReplication Replication { get; }
    /// <summary>In a cluster: the leader's view of its followers (ISR, high watermark); null on a single broker.</summary>
    internal Cluster.ReplicaTracker? ReplicaTracker { get; private set; }

    /// <summary>How this cluster member connects to the others (inter.broker.listener.name and its SASL credentials).</summary>
    internal Kayak.Broker.Cluster.InterBrokerSecurity InterBrokerSecurity { get; init; } = Kayak.Broker.Cluster.InterBrokerSecurity.Plaintext;
    /// <summary>In a cluster: this broker's fetchers of the partitions it follows; null on a single broker.</summary>
    internal Cluster.ReplicaFetcherManager? ReplicaFetchers { get; private set; }

    /// <summary>The local log of a partition, or null (ISR expiration walks the partitions led here).</summary>
    internal Storage.PartitionLog? LocalLog(string topic, int partition) =>
        Catalog.Lookup(topic).TryGetPartition(partition, out var log, out _) ? log : null;
    /// <summary>Which node coordinates a group or transactional id; set by <see cref="Open"/>.</summary>
    internal ICoordinatorLocator Coordinators { get; private set; } = null!;
    public int NodeId => Cluster.NodeId;
    public string ClusterId => Cluster.ClusterId;
    public IReadOnlyList<ListenerEndpoint> AdvertisedListeners => Cluster.AdvertisedListeners;
    public ListenerEndpoint AdvertisedEndpoint => Cluster.AdvertisedEndpoint;

    internal void Open()
    {
        // The log dirs' .lock first: a second broker on the same dirs must not touch anything there (issue 15, K2).
        Logs.AcquireLocks();
        // Stored ACLs before anything is served: a torn kayak-acls.json stops the start rather than open what it closes.
        Authorizer.Acls?.Load();
        Cluster.ClusterId = MetaProperties.LoadOrCreate(Config.LogDirs, Config.NodeId, Controller?.ClusterId);
        // A cluster member's credentials are the controller's, opened (and seeded) under the cluster root once.
        if (Controller is null)
            Network.Sasl.ScramCredentialStore.LogIgnoredSeeds(LoggerFactory.CreateLogger("Kayak.Broker"), Scram.Open(Config.LogDirs[0]), Config.LogDirs[0]);
        Logs.Open();
        if (Controller is { } controller)
        {
            // Before the coordinators load: they read __consumer_offsets / __transaction_state as the cluster has them.
            Topics.Controller = controller;
            Cluster.View = controller;
            var leadership = new Cluster.ClusterLeadership(controller, NodeId,
                new Cluster.ReplicaTracker(controller, NodeId, Time, Config.ReplicaLagTimeMaxMs));
            Leadership = leadership;
            Coordinators = leadership;
            ReplicaTracker = leadership.Replicas;
            InterBroker = new Cluster.InterBrokerClient(controller, NodeId, InterBrokerSecurity, Time);
            ReplicaFetchers = new Cluster.ReplicaFetcherManager(controller, NodeId, Config.ClusterSize, Catalog, Config, InterBrokerSecurity, Time,
                LoggerFactory.CreateLogger("Kayak.ReplicaFetcher"));
            // Groups follow the leaders of their __consumer_offsets partitions (NOT_COORDINATOR elsewhere); a new leader
            // epoch of a partition led here reloads its groups from the log (coordinator failover).
            Groups.LeaderEpochOf = LeaderEpochOf(controller, TopicService.ConsumerOffsetsTopic);
            controller.Attach(NodeId, Topics);
        }
        else
        {
            Leadership = new SingleNodeLeadership(NodeId);
            Coordinators = new SingleNodeCoordinatorLocator(NodeId);
        }
        Groups.Load();
        OpenTransactions();
        Handlers = new HandlerRegistry(CreateHandlers());
    }

    /// <summary>
    /// Transaction coordinator over __transaction_state, markers written through Storage, producer ids
    /// persisted next to meta.properties. Loading finishes transactions a stop left between Prepare and Complete.
    /// </summary>
    private void OpenTransactions()
    {
        var txnLog = LoggerFactory.CreateLogger("Kayak.Transactions");
        LocalMarkers = new Transactions.LocalMarkerWriter(Catalog, txnLog, Groups, Leadership);
        Kayak.Coordinator.Transactions.ITransactionMarkerWriter markers = LocalMarkers;
        // In a cluster a marker goes to the partition's current leader (WriteTxnMarkers, issue 14); one broker keeps the local path.
        if (Controller is { } c && InterBroker is { } client)
            markers = new Transactions.ClusterMarkerWriter(c, NodeId, Leadership, markers, Replication, client, Time, txnLog);
        Transactions = new Kayak.Coordinator.Transactions.TransactionCoordinator(
            OptionsBinding.Transactions(Config, Time, Faults?.BeforeTransactionMarkers, txnLog),
            new Transactions.TransactionStateLog(Catalog, Topics, Replication),
            markers,
            (Kayak.Coordinator.Transactions.IProducerIdAllocator?)Controller?.ProducerIds
                ?? new Kayak.Coordinator.Transactions.ProducerIdManager(Path.Combine(Config.LogDirs[0], "kayak-producer-id-block")))
        {
            // Committed transactions hand their TxnOffsetCommit offsets to the group coordinator; in a cluster, to the one
            // leading the group's __consumer_offsets partition.
            OffsetSink = Controller is null ? Groups : new Transactions.ClusterOffsetSink(Groups, markers),
        };
        // Transaction coordinator failover (issue 14): the ids of a __transaction_state partition are served by its leader.
        if (Controller is { } controller) Transactions.LeaderEpochOf = LeaderEpochOf(controller, TopicService.TransactionStateTopic);
        Transactions.Load();
    }

    /// <summary>The leader epoch under which this broker leads a partition of an internal topic, -1 when another broker does.</summary>
    private Func<int, int> LeaderEpochOf(Cluster.ClusterController controller, string topic) => p =>
    {
        var t = controller.Topic(topic);
        if (t is null || (uint)p >= (uint)t.Partitions.Length) return 0; // not created yet: nothing to load
        return t.Partitions[p].Leader == NodeId ? t.Partitions[p].LeaderEpoch : -1;
    };

    /// <summary>producer.id.expiration.check.interval.ms timer: Kafka's removeExpiredProducers on every partition.</summary>
    internal void ExpireProducers()
    {
        foreach (var topic in Logs.Topics)
            foreach (var p in topic.Partitions) p?.RemoveExpiredProducers(Dynamic.Current.ProducerIdExpirationMs); // dynamic in Kafka too
    }

    private Storage.TopicLog CreateOffsetsTopic()
    {
        var created = Topics.CreateInternal(TopicService.ConsumerOffsetsTopic);
        return created.Topic ?? throw new InvalidOperationException($"Cannot create {TopicService.ConsumerOffsetsTopic}: {created.Message}");
    }

    /// <summary>
    /// A cluster member that stops (cleanly or crashed) stops following the controller's shared quota store and broker
    /// defaults, which outlive it; a restarted member subscribes anew. Idempotent.
    /// </summary>
    internal void LeaveSharedStores()
    {
        Quotas.Detach();
        Dynamic.Detach();
        Quotas.Store.Changed -= ConnectionQuotas.UpdateIpRates;
    }

    /// <summary>
    /// Each bound listener's advertised endpoint, in listeners order: its advertised.listeners entry when there is one
    /// (a port of 0 there means the bound port), else the bound endpoint with the host's name for a wildcard. Kafka's
    /// effectiveAdvertisedBrokerListeners leaves a listener that advertised.listeners omits out of the registration, so a
    /// client on it gets no broker in Metadata; a single node has nowhere else to send it, so Kayak advertises it as bound.
    /// </summary>
    internal void SetAdvertisedListeners(BrokerConfig config, IReadOnlyList<ListenerEndpoint> bound)
    {
        var list = new List<ListenerEndpoint>();
        foreach (var b in bound)
        {
            var advertised = config.Has("advertised.listeners")
                ? config.AdvertisedListeners.FirstOrDefault(a => a.Name.Equals(b.Name, StringComparison.OrdinalIgnoreCase))
                : null;
            if (advertised is not null)
            {
                list.Add(advertised.Port == 0 ? advertised with { Port = b.Port } : advertised);
                continue;
            }
            // Kafka advertises the host's name for a wildcard listener.
            string host = b.Host is "" or "0.0.0.0" or "::" ? Dns.GetHostName() : b.Host;
            list.Add(b with { Host = host });
        }
        Cluster.AdvertisedListeners = list;
    }

    public void Dispose()
    {
        LeaveSharedStores();
        InterBroker?.Dispose();
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
    /// <param name="expectedClusterId">A cluster member's id from the controller: a log dir of another cluster is refused.</param>
    public static string LoadOrCreate(IReadOnlyList<string> logDirs, int nodeId, string? expectedClusterId = null)
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
            if (props.TryGetValue("cluster.id", out var c))
            {
                if (expectedClusterId is not null && c != expectedClusterId)
                    throw new Config.ConfigException("log.dirs", dir, $"Invalid cluster.id in: {path}. Expected {expectedClusterId}, but read {c}");
                clusterId ??= c;
            }
        }
        clusterId ??= expectedClusterId ?? Uuid.NewRandom().ToString();
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
