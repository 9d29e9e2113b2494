using System.Net;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Kayak.Storage;
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

    // ---- Transport seam (the zero-copy refactor replaces this) -------------------------------------------------
    // Response resources are not request metadata: they tie a response to the mapped log memory it references until
    // the connection has written it. They stay here, unchanged, until the transport refactor gives responses their
    // own lifetime; Fetch is the only handler that calls DisposeAfterSend, Connection the only caller of the rest.

    private List<IDisposable>? _afterSend;

    /// <summary>
    /// Keeps a resource alive until the response has been written to the socket: Fetch responses
    /// reference mapped log memory directly, which must not be unmapped before it is sent.
    /// </summary>
    public void DisposeAfterSend(IDisposable resource) => (_afterSend ??= new List<IDisposable>()).Add(resource);

    /// <summary>
    /// The fetched slice (kept alive by <see cref="DisposeAfterSend"/>) whose Data is exactly
    /// <paramref name="records"/> (same address and length), so the connection can send those bytes from the
    /// segment file with sendfile(2). Null when the memory is not a slice's (e.g. down-converted records).
    /// </summary>
    internal FetchSlice? FindFetchSlice(ReadOnlyMemory<byte> records)
    {
        if (_afterSend is null) return null;
        ref byte start = ref MemoryMarshal.GetReference(records.Span);
        foreach (var d in _afterSend)
            if (d is FetchSlice s && s.Data.Length == records.Length && Unsafe.AreSame(ref MemoryMarshal.GetReference(s.Data.Span), ref start))
                return s;
        return null;
    }

    internal void ResponseSent()
    {
        if (_afterSend is null) return;
        foreach (var d in _afterSend) d.Dispose();
        _afterSend = null;
    }
}
