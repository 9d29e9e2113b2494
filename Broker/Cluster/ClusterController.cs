using Kayak.Broker.Services;
using Kayak.Protocol;
using Kayak.Storage;

namespace Kayak.Broker.Cluster;

/// <summary>
/// The in-process controller of a <see cref="KafkaCluster"/> (issue 14): it owns the cluster metadata — topics, topic
/// ids, replica assignments, leaders, leader epochs, ISR — as KRaft's QuorumController does, persists it after every
/// change (<see cref="ClusterMetadata"/>) and applies each change to the log managers of the running brokers: as in
/// Kafka, a broker holds logs only for the partitions it is a replica of (under the cluster's topic id), and a replica
/// that a reassignment removes loses its log (<see cref="SyncReplicaLogs"/>). Brokers reach it through their
/// <see cref="TopicService"/> (CreateTopics, auto-creation, internal topics, DeleteTopics, CreatePartitions), never
/// through a handler; leaders change ISRs through <see cref="ChangeIsr"/> (Kafka's AlterPartition), and a broker that
/// stops is fenced: out of every ISR, its partitions led by another ISR member at the next epoch. One lock serialises
/// the changes; readers (leadership lookups on the request paths) see an immutable snapshot.
/// </summary>
internal sealed partial class ClusterController : IClusterView, IPartitionElection
{
    private readonly object _lock = new();
    private readonly string _path;
    private readonly Random _random;
    // Brokers whose logs receive topic changes: from their Open (before they listen) until they stop.
    private readonly Dictionary<int, TopicService> _hosts = new();
    private readonly SortedDictionary<int, BrokerNode> _live = new();
    private volatile ClusterMetadata _metadata;
    private volatile BrokerNode[] _liveBrokers = [];

    /// <param name="scramSeeds">--add-scram specs, stored when the root has no credentials yet (<see cref="IgnoredScramSeeds"/> otherwise).</param>
    public ClusterController(string root, Random? random = null, IEnumerable<string>? scramSeeds = null)
    {
        Directory.CreateDirectory(root);
        _path = Path.Combine(root, ClusterMetadata.FileName);
        _random = random ?? new Random();
        _metadata = ClusterMetadata.LoadOrCreate(_path);
        if (!File.Exists(_path)) _metadata.Save(_path); // the cluster id is fixed from the first start
        ProducerIds = new Kayak.Coordinator.Transactions.ProducerIdManager(Path.Combine(root, "kayak-producer-id-block"));
        OpenShared(root, scramSeeds ?? []);
    }

    public string ClusterId => _metadata.ClusterId;

    public ClusterMetadata Metadata => _metadata;

    /// <summary>
    /// One producer-id allocator for all brokers, as Kafka's controller hands out the blocks (KIP-730): two brokers
    /// must never give the same id to two idempotent producers writing to the same partition leader.
    /// </summary>
    public Kayak.Coordinator.Transactions.ProducerIdManager ProducerIds { get; }

    public IReadOnlyList<BrokerNode> LiveBrokers => _liveBrokers;

    /// <summary>The running broker <paramref name="nodeId"/> with its endpoints, or null while it is stopped.</summary>
    public BrokerNode? LiveBroker(int nodeId)
    {
        foreach (var b in _liveBrokers)
            if (b.NodeId == nodeId) return b;
        return null;
    }

    /// <summary>Number of brokers a replication factor is checked against (Kafka: the registered, unfenced brokers).</summary>
    public int RegisteredBrokers
    {
        get { lock (_lock) return _hosts.Count; }
    }

    public TopicAssignment? Topic(string name) => _metadata.Topics.GetValueOrDefault(name);

    /// <summary>
    /// A broker opens its logs: it knows every topic of the metadata from now on and holds the logs of the partitions
    /// it is a replica of. Topics and replicas it missed while stopped are created, with their topic ids; logs of
    /// topics deleted meanwhile and of replicas moved away are removed (Kafka's stray-log cleanup at startup).
    /// </summary>
    public void Attach(int nodeId, TopicService topics)
    {
        lock (_lock)
        {
            _hosts[nodeId] = topics;
            Register(nodeId);
            var md = _metadata;
            foreach (var t in md.Topics.Values)
            {
                var hosted = HostedBy(nodeId, t.Partitions);
                if (topics.TryGet(t.Name, out var local) && local.TopicId == t.TopicId)
                {
                    if (local.Partitions.Count < t.Partitions.Length) topics.AddPartitionsLocal(t.Name, t.Partitions.Length, hosted);
                    for (int i = 0; i < hosted.Length; i++)
                    {
                        bool present = local.GetPartition(i) is not null;
                        if (hosted[i] && !present) topics.CreateReplicaLocal(t.Name, i, t.Partitions.Length);
                        else if (!hosted[i] && present) topics.DeleteReplicaLocal(t.Name, i);
                    }
                }
                else
                {
                    if (local is not null) topics.DeleteLocal(t.Name);
                    topics.CreateLocal(t.Name, t.Partitions.Length, ConfigsOf(t.Name), t.TopicId, hosted);
                }
            }
            foreach (var local in topics.LocalTopicNames())
                if (!md.Topics.ContainsKey(local)) topics.DeleteLocal(local);
        }
    }

    /// <summary>The broker listens: clients are told about it from now on.</summary>
    public void SetLive(int nodeId, IReadOnlyList<Config.ListenerEndpoint> endpoints)
    {
        lock (_lock)
        {
            _live[nodeId] = new BrokerNode(nodeId, endpoints);
            Register(nodeId);
            _liveBrokers = _live.Values.ToArray();
            // Partitions left without a leader whose last ISR member is back get it as leader again (Kafka's
            // clean election: only an ISR member may lead, unclean.leader.election.enable=false).
            Reassign(p => p.Leader < 0 && Array.IndexOf(p.Isr, nodeId) >= 0 ? p with { Leader = nodeId, LeaderEpoch = p.LeaderEpoch + 1 } : p);
        }
    }

    /// <summary>
    /// Kafka's AlterPartition from a leader: the ISR of a partition it leads at <paramref name="leaderEpoch"/> becomes
    /// <paramref name="isr"/> (persisted before anyone sees it). False when the leader or its epoch changed meanwhile
    /// (FENCED_LEADER_EPOCH in Kafka: the stale leader's request is refused).
    /// </summary>
    public bool ChangeIsr(string topic, int partition, int leader, int leaderEpoch, int[] isr)
    {
        lock (_lock)
        {
            if (!_metadata.Topics.TryGetValue(topic, out var t) || (uint)partition >= (uint)t.Partitions.Length) return false;
            var p = t.Partitions[partition];
            if (p.Leader != leader || p.LeaderEpoch != leaderEpoch || !_live.ContainsKey(leader)) return false;
            // KIP-841: a fenced (stopped) broker is not added to an ISR.
            foreach (int r in isr)
                if (!_live.ContainsKey(r) && Array.IndexOf(p.Isr, r) < 0) return false;
            var parts = (PartitionAssignment[])t.Partitions.Clone();
            // An ISR that now holds every replica a reassignment adds completes it (KIP-455).
            parts[partition] = CompleteReassignment(p with { Isr = isr });
            Publish(_metadata.With(t with { Partitions = parts }));
            return true;
        }
    }

    /// <summary>
    /// A broker leaves (clean stop or crash; Kafka fences it): it drops out of every ISR it is in, unless it is the
    /// last member (Kafka keeps the last one, so the partition can come back with it), and the partitions it led get
    /// a new leader from the rest of the ISR that is running, at the next leader epoch; with none left the partition
    /// is offline (leader -1) until an ISR member returns.
    /// </summary>
    private void Fence(int nodeId)
    {
        Reassign(p =>
        {
            if (Array.IndexOf(p.Isr, nodeId) < 0 && p.Leader != nodeId) return p;
            var isr = p.Isr.Length > 1 ? Array.FindAll(p.Isr, r => r != nodeId) : p.Isr;
            if (p.Leader != nodeId) return p with { Isr = isr };
            int leader = -1;
            foreach (int r in p.Replicas)
                if (r != nodeId && Array.IndexOf(isr, r) >= 0 && _live.ContainsKey(r)) { leader = r; break; }
            return p with { Leader = leader, LeaderEpoch = p.LeaderEpoch + 1, Isr = isr };
        });
    }

    /// <summary>
    /// ElectLeaders (KIP-183, KIP-460) for one partition, as Kafka's ReplicationControlManager.electLeader decides it.
    /// PREFERRED: the first replica leads if it is running and in the ISR; UNCLEAN: only a leaderless partition gets a
    /// running replica (an ISR member first; else any, which becomes the whole ISR). The leader epoch goes up.
    /// </summary>
    public KafkaError Elect(string topic, int partition, bool unclean)
    {
        lock (_lock)
        {
            if (!_metadata.Topics.TryGetValue(topic, out var t))
                return new(ErrorCode.UnknownTopicOrPartition, $"No such topic as {topic}");
            if ((uint)partition >= (uint)t.Partitions.Length)
                return new(ErrorCode.UnknownTopicOrPartition, $"No such partition as {topic}-{partition}");
            var p = t.Partitions[partition];
            int leader = -1;
            var isr = p.Isr;
            if (!unclean)
            {
                int preferred = p.Replicas[0];
                if (p.Leader == preferred) return new(ErrorCode.ElectionNotNeeded, ElectionNotNeededMessage);
                if (!_live.ContainsKey(preferred) || Array.IndexOf(p.Isr, preferred) < 0)
                    return new(ErrorCode.PreferredLeaderNotAvailable, $"Failed to elect leader for partition {topic}-{partition} under strategy PREFERRED");
                leader = preferred;
            }
            else
            {
                if (p.Leader >= 0) return new(ErrorCode.ElectionNotNeeded, ElectionNotNeededMessage);
                foreach (int r in p.Replicas)
                    if (_live.ContainsKey(r) && Array.IndexOf(p.Isr, r) >= 0) { leader = r; break; }
                if (leader < 0)
                    foreach (int r in p.Replicas)
                        if (_live.ContainsKey(r)) { leader = r; isr = [r]; break; }
                if (leader < 0)
                    return new(ErrorCode.EligibleLeadersNotAvailable, $"Failed to elect leader for partition {topic}-{partition} under strategy UNCLEAN");
            }
            var parts = (PartitionAssignment[])t.Partitions.Clone();
            parts[partition] = p with { Leader = leader, LeaderEpoch = p.LeaderEpoch + 1, Isr = isr };
            Publish(_metadata.With(t with { Partitions = parts }));
            return KafkaError.None;
        }
    }

    internal const string ElectionNotNeededMessage = "Leader election not needed for topic partition.";

    private void Reassign(Func<PartitionAssignment, PartitionAssignment> change)
    {
        var md = _metadata;
        var next = md;
        foreach (var t in md.Topics.Values)
        {
            PartitionAssignment[]? parts = null;
            for (int i = 0; i < t.Partitions.Length; i++)
            {
                var n = change(t.Partitions[i]);
                if (ReferenceEquals(n, t.Partitions[i])) continue;
                parts ??= (PartitionAssignment[])t.Partitions.Clone();
                parts[i] = n;
            }
            if (parts is not null) next = next.With(t with { Partitions = parts });
        }
        if (!ReferenceEquals(next, md)) Publish(next);
    }

    /// <summary>The broker stops: no longer listed, no longer receives topic changes.</summary>
    public void Detach(int nodeId)
    {
        lock (_lock)
        {
            _hosts.Remove(nodeId);
            if (_live.Remove(nodeId)) _liveBrokers = _live.Values.ToArray();
            Fence(nodeId);
        }
    }

    // A topic's config overrides live in each broker's log (the topic file), not in the cluster metadata; a broker
    // that missed the creation copies them from a running one (one that holds a replica first: its copy is on disk).
    private Dictionary<string, string> ConfigsOf(string name)
    {
        Dictionary<string, string>? fallback = null;
        foreach (var host in _hosts.Values)
            if (host.TryGet(name, out var t))
            {
                var copy = new Dictionary<string, string>(t.Config.Overrides, StringComparer.Ordinal);
                for (int i = 0; i < t.Partitions.Count; i++)
                    if (t.GetPartition(i) is not null) return copy;
                fallback ??= copy;
            }
        return fallback ?? new Dictionary<string, string>(StringComparer.Ordinal);
    }

    /// <summary>
    /// CreateTopics on the cluster: Kafka's placement over the registered brokers (<see cref="ReplicaPlacement"/>),
    /// a new topic id, the first replica as leader at epoch 0 and the ISR as replicated so far (see
    /// <see cref="InitialIsr"/>); then every running broker creates the logs of its replicas (and knows the topic). The
    /// caller gets its own broker's topic.
    /// </summary>
    public TopicResult CreateTopic(int caller, string name, int partitions, int replicationFactor, IReadOnlyDictionary<string, string> configs, bool validateOnly)
    {
        lock (_lock)
        {
            if (_metadata.Topics.ContainsKey(name))
                return TopicResult.Fail(ErrorCode.TopicAlreadyExists, $"Topic '{name}' already exists.");
            int[][] replicas;
            try
            {
                foreach (var (k, v) in configs) TopicConfig.Validate(k, v);
                replicas = ReplicaPlacement.Assign(RegisteredIds(), partitions, replicationFactor, 0, -1, _random);
            }
            catch (Kayak.Storage.ConfigException e) { return new TopicResult(e.KafkaError, null); }
            catch (KafkaException e) { return new TopicResult(e.KafkaError, null); }
            if (validateOnly) return TopicResult.Ok(null);
            var id = Uuid.NewRandom();
            var parts = new PartitionAssignment[partitions];
            for (int p = 0; p < partitions; p++) parts[p] = new PartitionAssignment(replicas[p], replicas[p][0], 0, InitialIsr(replicas[p]));
            // The caller's broker first: Storage's own checks (a name colliding by '.' vs '_') fail there before any
            // other broker or the metadata is changed.
            var first = _hosts[caller].CreateLocal(name, partitions, configs, id, HostedBy(caller, parts));
            if (first.Topic is null) return first;
            foreach (var (node, host) in _hosts)
                if (node != caller) host.CreateLocal(name, partitions, configs, id, HostedBy(node, parts));
            Publish(_metadata.With(new TopicAssignment(name, id, parts)));
            return first;
        }
    }

    /// <summary>
    /// The ISR a new partition starts with: all its replicas, as Kafka's controller does (they are all empty, so all
    /// in sync); a follower that does not fetch is removed after replica.lag.time.max.ms by its leader.
    /// </summary>
    private static int[] InitialIsr(int[] replicas) => (int[])replicas.Clone();

    public TopicResult DeleteTopic(int caller, string name)
    {
        lock (_lock)
        {
            if (!_metadata.Topics.ContainsKey(name) || !_hosts[caller].TryGet(name, out var topic))
                return TopicResult.Fail(ErrorCode.UnknownTopicOrPartition, "This server does not host this topic-partition.");
            Publish(_metadata.Without(name));
            foreach (var host in _hosts.Values) host.DeleteLocal(name);
            return TopicResult.Ok(topic);
        }
    }

    /// <summary>CreatePartitions: the new partitions continue Kafka's placement from partition 0's leader.</summary>
    public KafkaError AddPartitions(int caller, string name, int count, bool validateOnly)
    {
        lock (_lock)
        {
            if (!_metadata.Topics.TryGetValue(name, out var topic))
                return new(ErrorCode.UnknownTopicOrPartition, "This server does not host this topic-partition.");
            int current = topic.Partitions.Length;
            int rf = topic.Partitions[0].Replicas.Length;
            var brokers = RegisteredIds();
            int start = Math.Max(0, brokers.IndexOf(topic.Partitions[0].Replicas[0]));
            int[][] replicas;
            try { replicas = ReplicaPlacement.Assign(brokers, count - current, rf, current, start, _random); }
            catch (KafkaException e) { return e.KafkaError; }
            if (validateOnly) return KafkaError.None;
            var parts = new PartitionAssignment[count];
            Array.Copy(topic.Partitions, parts, current);
            for (int p = current; p < count; p++) parts[p] = new PartitionAssignment(replicas[p - current], replicas[p - current][0], 0, InitialIsr(replicas[p - current]));
            foreach (var (node, host) in _hosts) host.AddPartitionsLocal(name, count, HostedBy(node, parts));
            Publish(topic with { Partitions = parts } is var changed ? _metadata.With(changed) : _metadata);
            return KafkaError.None;
        }
    }

    private List<int> RegisteredIds()
    {
        var ids = new List<int>(_hosts.Keys);
        ids.Sort();
        return ids;
    }

    /// <summary>
    /// Raised (under the controller's lock) after each change of the metadata is visible, as Kafka's brokers see each
    /// new metadata image: the brokers' replica trackers end the waits of partitions they no longer lead.
    /// </summary>
    public event Action? Published;

    private void Publish(ClusterMetadata next)
    {
        next.Save(_path); // durable before anyone sees it, as a committed metadata record
        var before = _metadata;
        SyncReplicaLogs(before, next, adding: true);
        _metadata = next;
        SyncReplicaLogs(before, next, adding: false);
        Published?.Invoke();
    }

    /// <summary>
    /// Applies replica-set changes of existing partitions (reassignments, KIP-455) to the running brokers' logs, as
    /// Kafka's brokers do when they see a PartitionChangeRecord: a broker that became a replica creates the empty log
    /// (before the change is visible, so it can follow at once), one that stopped being a replica deletes it (after,
    /// so nothing treats it as a replica any more). Topics created, deleted or grown are handled by their operations.
    /// </summary>
    private void SyncReplicaLogs(ClusterMetadata before, ClusterMetadata next, bool adding)
    {
        foreach (var t in next.Topics.Values)
        {
            if (!before.Topics.TryGetValue(t.Name, out var old) || old.TopicId != t.TopicId || ReferenceEquals(old, t)) continue;
            int n = Math.Min(old.Partitions.Length, t.Partitions.Length);
            for (int i = 0; i < n; i++)
            {
                int[] was = old.Partitions[i].Replicas, now = t.Partitions[i].Replicas;
                if (ReferenceEquals(was, now)) continue;
                foreach (var (node, host) in _hosts)
                {
                    bool had = Array.IndexOf(was, node) >= 0, has = Array.IndexOf(now, node) >= 0;
                    if (adding && has && !had) host.CreateReplicaLocal(t.Name, i, t.Partitions.Length);
                    else if (!adding && had && !has) host.DeleteReplicaLocal(t.Name, i);
                }
            }
        }
    }

    /// <summary>Which partitions <paramref name="nodeId"/> is a replica of (those an ongoing reassignment adds included).</summary>
    internal static bool[] HostedBy(int nodeId, PartitionAssignment[] partitions)
    {
        var hosted = new bool[partitions.Length];
        for (int i = 0; i < partitions.Length; i++) hosted[i] = Array.IndexOf(partitions[i].Replicas, nodeId) >= 0;
        return hosted;
    }
}
