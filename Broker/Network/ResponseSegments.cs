using Kayak.Storage;

namespace Kayak.Broker.Network;

/// <summary>
/// The fetched log slices a response references, owned by the response until the connection has written it. The
/// transport sends a records field that is exactly one of these (<see cref="TryFind"/>: the same memory object, start
/// and length, as ReadOnlyMemory equality defines it) by reference — with sendfile(2) from the segment file, or from
/// the mapping — and copies anything else. <see cref="Dispose"/> releases every slice (unmapping is deferred until then).
/// </summary>
internal sealed class ResponseSegments : IDisposable
{
    private readonly List<(ReadOnlyMemory<byte> Records, FetchSlice Slice)> _segments = new();

    /// <summary>Takes ownership of <paramref name="slice"/>; <paramref name="records"/> is the memory the response carries for it.</summary>
    public void Add(ReadOnlyMemory<byte> records, FetchSlice slice)
    {
        _segments.Add((records, slice));
        if (records.Length >= Kayak.Protocol.IByReferenceBufferWriter.MinimumLength) WorthSplicing = true;
    }

    /// <summary>
    /// Some segment is large enough to be sent by reference. When none is, the connection copies the response into
    /// its pipe like any other (one write for pipelined responses) and releases the segments right after.
    /// </summary>
    public bool WorthSplicing { get; private set; }

    public bool TryFind(ReadOnlyMemory<byte> records, out FetchSlice? slice)
    {
        foreach (var (memory, s) in _segments)
        {
            if (memory.Equals(records))
            {
                slice = s;
                return true;
            }
        }
        slice = null;
        return false;
    }

    public void Dispose()
    {
        foreach (var (_, s) in _segments) s.Dispose();
        _segments.Clear();
    }
}
