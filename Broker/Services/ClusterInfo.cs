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
}
