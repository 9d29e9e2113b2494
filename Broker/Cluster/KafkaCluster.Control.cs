using Kayak.Protocol;

namespace Kayak.Broker.Cluster;

/// <summary>
/// Control and fault injection of the cluster's brokers (issue 14, steps 3-5), after librdkafka's mock cluster
/// (rd_kafka_mock_broker_set_down, rd_kafka_mock_broker_set_rtt, rd_kafka_mock_push_request_errors): each node id has
/// one <see cref="BrokerFaults"/> that survives the broker being stopped and started again, and the cluster has one
/// <see cref="NetworkPartitions"/> table the replication code asks (<see cref="IsPartitioned"/>).
/// </summary>
public sealed partial class KafkaCluster
{
    private BrokerFaults[]? _nodeFaults;

    /// <summary>Node id <paramref name="nodeId"/>'s fault injection, whether it is running or not.</summary>
    public BrokerFaults Faults(int nodeId)
    {
        int i = Index(nodeId);
        var all = LazyInitializer.EnsureInitialized(ref _nodeFaults, () => new BrokerFaults[_brokers.Length]);
        lock (all) return all[i] ??= Options.Faults.GetValueOrDefault(nodeId) ?? new BrokerFaults();
    }

    /// <summary>Which brokers cannot reach which (both directions unless one-way). Clients still reach every broker.</summary>
    public NetworkPartitions Network { get; } = new();

    /// <summary>True while messages from broker <paramref name="from"/> do not reach broker <paramref name="to"/>.</summary>
    public bool IsPartitioned(int from, int to) => Network.IsPartitioned(from, to);

    /// <summary>The broker accepts connections but answers nothing until <see cref="ResumeBroker"/> (a hung process).</summary>
    public void PauseBroker(int nodeId) => Faults(nodeId).Pause();

    public void ResumeBroker(int nodeId) => Faults(nodeId).Resume();

    /// <summary>Clears every node's injected errors, latencies and drops, resumes paused brokers and heals the network.</summary>
    public void ClearFaults()
    {
        for (int id = 1; id <= _brokers.Length; id++) Faults(id).Clear();
        Network.HealAll();
    }

    /// <summary>Node ids 1..N with each one's state: running, paused or stopped.</summary>
    public IReadOnlyList<(int NodeId, BrokerRunState State, string? BootstrapServers)> Nodes()
    {
        var list = new List<(int, BrokerRunState, string?)>(_brokers.Length);
        for (int id = 1; id <= _brokers.Length; id++)
        {
            var b = _brokers[id - 1];
            var state = b is null ? BrokerRunState.Stopped : Faults(id).IsPaused ? BrokerRunState.Paused : BrokerRunState.Running;
            list.Add((id, state, b?.BootstrapServers));
        }
        return list;
    }

    /// <summary>The controller's topics by name (for the control endpoint's GET /v1/cluster).</summary>
    public IReadOnlyList<string> TopicNames()
    {
        var names = new List<string>(Controller.Metadata.Topics.Keys);
        names.Sort(StringComparer.Ordinal);
        return names;
    }

    /// <summary>Number of partitions of <paramref name="topic"/>, per the controller.</summary>
    public int PartitionCount(string topic) =>
        (Controller.Topic(topic) ?? throw new KafkaException(ErrorCode.UnknownTopicOrPartition, $"Unknown topic {topic}")).Partitions.Length;
}

public enum BrokerRunState { Running, Paused, Stopped }

/// <summary>
/// A network partition between brokers, for replication (issue 14): brokers cut off from each other keep serving
/// clients. Thread-safe; read by the replication code on every fetch it would send, so the check is a lock-free read
/// of an immutable set.
/// </summary>
public sealed class NetworkPartitions
{
    private HashSet<(int From, int To)> _cut = new();
    private readonly Lock _lock = new();

    /// <summary>True while broker <paramref name="from"/>'s messages do not reach <paramref name="to"/>.</summary>
    public bool IsPartitioned(int from, int to) => from != to && Volatile.Read(ref _cut).Contains((from, to));

    /// <summary>Cuts <paramref name="a"/> from <paramref name="b"/>: both directions, or only a → b with <paramref name="oneWay"/>.</summary>
    public void Cut(int a, int b, bool oneWay = false)
    {
        if (a == b) throw new ArgumentException("A broker cannot be partitioned from itself");
        Update(set => { set.Add((a, b)); if (!oneWay) set.Add((b, a)); });
    }

    /// <summary>Cuts <paramref name="nodeId"/> off from every broker in <paramref name="others"/>, both directions.</summary>
    public void Isolate(int nodeId, IEnumerable<int> others)
    {
        foreach (int o in others) if (o != nodeId) Cut(nodeId, o);
    }

    /// <summary>The current cuts, (from, to) pairs, sorted.</summary>
    public IReadOnlyList<(int From, int To)> Cuts()
    {
        var list = new List<(int From, int To)>(Volatile.Read(ref _cut));
        list.Sort();
        return list;
    }

    /// <summary>Heals every cut involving <paramref name="nodeId"/>.</summary>
    public void Heal(int nodeId) => Update(set => set.RemoveWhere(c => c.Item1 == nodeId || c.Item2 == nodeId));

    public void HealAll() => Update(set => set.Clear());

    private void Update(Action<HashSet<(int, int)>> change)
    {
        lock (_lock)
        {
            var copy = new HashSet<(int, int)>(_cut);
            change(copy);
            Volatile.Write(ref _cut, copy);
        }
    }
}
