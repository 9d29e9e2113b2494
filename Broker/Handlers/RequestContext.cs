using System.Net;
using Kayak.Protocol;

namespace Kayak.Broker.Handlers;

/// <summary>What a handler knows about the request beyond its body.</summary>
public sealed class RequestContext
{
    public required BrokerState Broker { get; init; }
    public required ApiKey ApiKey { get; init; }
    public required short ApiVersion { get; init; }
    public required int CorrelationId { get; init; }
    public string? ClientId { get; init; }
    public EndPoint? ClientAddress { get; init; }
    /// <summary>Closed when the client's connection goes away; long polls stop waiting.</summary>
    public CancellationToken ConnectionClosed { get; init; }

    private List<IDisposable>? _afterSend;

    /// <summary>
    /// Keeps a resource alive until the response has been written to the socket: Fetch responses
    /// reference mapped log memory directly, which must not be unmapped before it is sent.
    /// </summary>
    public void DisposeAfterSend(IDisposable resource) => (_afterSend ??= new List<IDisposable>()).Add(resource);

    internal void ResponseSent()
    {
        if (_afterSend is null) return;
        foreach (var d in _afterSend) d.Dispose();
        _afterSend = null;
    }
}
