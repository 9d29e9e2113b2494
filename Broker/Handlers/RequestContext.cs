using System.Net;
using Kayak.Protocol;

namespace Kayak.Broker.Handlers;

/// <summary>
/// What a handler knows about the request beyond its body: request metadata only. Everything a handler works with
/// (topics, groups, transactions, cluster identity, config) it takes in its constructor (issue 10, step 1).
/// </summary>
internal sealed class RequestContext
{
    public required ApiKey ApiKey { get; init; }
    public required short ApiVersion { get; init; }
    public required int CorrelationId { get; init; }
    public string? ClientId { get; init; }
    public EndPoint? ClientAddress { get; init; }
    /// <summary>Closed when the client's connection goes away; long polls stop waiting.</summary>
    public CancellationToken ConnectionClosed { get; init; }
}
