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
    public IReadOnlyList<ListenerEndpoint> AdvertisedListeners { get; internal set; } = [];

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
