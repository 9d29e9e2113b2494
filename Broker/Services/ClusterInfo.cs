using Kayak.Broker.Config;

namespace Kayak.Broker.Services;

/// <summary>
/// Who this broker is to clients: node id, cluster id and the endpoints it advertises. The cluster id is known once
/// the log dirs are opened (meta.properties) and the endpoints once the listeners are bound, so the composition root
/// (<see cref="BrokerState"/>) fills them in before the first request is read.
/// </summary>
internal sealed class ClusterInfo
{
    public ClusterInfo(int nodeId) { NodeId = nodeId; }

    public int NodeId { get; }
    public string ClusterId { get; internal set; } = "";
    public IReadOnlyList<ListenerEndpoint> AdvertisedListeners
    {
        get => _advertised;
        internal set
        {
            _advertised = value;
            _self = [new BrokerNode(NodeId, value)];
        }
    }

    private IReadOnlyList<ListenerEndpoint> _advertised = [];
    private IReadOnlyList<BrokerNode> _self = [];

    /// <summary>The other brokers of an in-process cluster (issue 14); null for a single broker.</summary>
    internal IClusterView? View { get; set; }

    /// <summary>The live brokers clients are told about, sorted by node id: this node alone unless in a cluster.</summary>
    public IReadOnlyList<BrokerNode> Brokers => View?.LiveBrokers ?? _self;

    /// <summary>
    /// What Metadata and DescribeCluster report as controller. A KRaft broker reports a random live broker (the
    /// controllers are not reachable by clients); the lowest live id here, so answers are stable.
    /// </summary>
    public int ControllerId
    {
        get
        {
            var brokers = Brokers;
            return brokers.Count > 0 ? brokers[0].NodeId : NodeId;
        }
    }

    /// <summary>A live broker by id, or null when it is not running.</summary>
    public BrokerNode? Broker(int nodeId)
    {
        foreach (var b in Brokers)
            if (b.NodeId == nodeId) return b;
        return null;
    }

    /// <summary>One node; with several listeners the first advertised one is the endpoint clients are told about.</summary>
    public ListenerEndpoint AdvertisedEndpoint => AdvertisedListeners[0];

    /// <summary>
    /// The advertised endpoint of the listener a request came in on (Kafka's rule: a client is told about the listener
    /// it used, so an SSL client never gets sent to the PLAINTEXT port); the first one when the name is unknown
    /// (in-memory connections have none).
    /// </summary>
    public ListenerEndpoint EndpointFor(string? listenerName)
    {
        if (listenerName is not null)
            foreach (var l in AdvertisedListeners)
                if (l.Name.Equals(listenerName, StringComparison.OrdinalIgnoreCase)) return l;
        return AdvertisedEndpoint;
    }
}
