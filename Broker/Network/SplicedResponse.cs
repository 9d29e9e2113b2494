using System.Buffers;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Network;

/// <summary>
/// One response whose large records fields are sent straight from the memory they live in (mapped log segments)
/// instead of being copied into the connection's pipe first: Kafka's zero-copy fetch path (FileRecords.writeTo →
/// FileChannel.transferTo) in the same spirit. The small protocol bytes around them go into a pooled buffer; the
/// parts are then sent in order. Without this every fetched byte was copied twice (mapping → pipe buffer →
/// kernel socket buffer); now once. The caller keeps the mapped slices alive (RequestContext.DisposeAfterSend)
/// until <see cref="SendAsync"/> has completed.
/// </summary>
internal sealed class SplicedResponse : IBufferWriter<byte>, IByReferenceBufferWriter, IDisposable
{
    private readonly List<ReadOnlyMemory<byte>> _candidates;
    // Parts in send order: Length > 0 with Reference default = _buffer[Start..Start+Length]; otherwise Reference.
    private readonly List<Part> _parts = new();
    private byte[] _buffer;
    private int _written;
    private int _partStart;

    private SplicedResponse(List<ReadOnlyMemory<byte>> candidates)
    {
        _candidates = candidates;
        _buffer = ArrayPool<byte>.Shared.Rent(4096);
    }

    /// <summary>A spliced writer when the response carries at least one records field worth sending by reference; null otherwise.</summary>
    public static SplicedResponse? For(IApiMessage response)
    {
        if (response is not FetchResponse fetch) return null;
        List<ReadOnlyMemory<byte>>? candidates = null;
        foreach (var topic in fetch.Responses)
            foreach (var p in topic.Partitions)
                if (p.Records is { Length: >= IByReferenceBufferWriter.MinimumLength } r)
                    (candidates ??= new List<ReadOnlyMemory<byte>>()).Add(r);
        return candidates is null ? null : new SplicedResponse(candidates);
    }

    public bool TryWriteByReference(ReadOnlySpan<byte> data)
    {
        // The writer only hands us a span; find the records field it came from (same address and length).
        ref byte start = ref MemoryMarshal.GetReference(data);
        foreach (var c in _candidates)
        {
            if (c.Length == data.Length && Unsafe.AreSame(ref MemoryMarshal.GetReference(c.Span), ref start))
            {
                EndBufferedPart();
                _parts.Add(new Part(0, 0, c));
                return true;
            }
        }
        return false;
    }

    public void Advance(int count) => _written += count;

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _buffer.AsMemory(_written);
    }

    public Span<byte> GetSpan(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _buffer.AsSpan(_written);
    }

    private void Ensure(int sizeHint)
    {
        int need = Math.Max(sizeHint, 1);
        if (_buffer.Length - _written >= need) return;
        var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(_buffer.Length * 2, _written + need));
        _buffer.AsSpan(0, _written).CopyTo(bigger);
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = bigger;
    }

    private void EndBufferedPart()
    {
        if (_written > _partStart) _parts.Add(new Part(_partStart, _written - _partStart, default));
        _partStart = _written;
    }

    /// <summary>Sends every part in order (the pipe must have been flushed before, so earlier responses precede it).</summary>
    public async ValueTask SendAsync(Socket socket, CancellationToken cancel)
    {
        EndBufferedPart();
        foreach (var part in _parts)
        {
            var memory = part.Length > 0 ? _buffer.AsMemory(part.Start, part.Length) : part.Reference;
            // Socket.SendAsync on a stream socket completes only when all bytes were handed to the kernel.
            await socket.SendAsync(memory, SocketFlags.None, cancel).ConfigureAwait(false);
        }
    }

    public void Dispose()
    {
        var b = _buffer;
        _buffer = [];
        if (b.Length > 0) ArrayPool<byte>.Shared.Return(b);
    }

    private readonly record struct Part(int Start, int Length, ReadOnlyMemory<byte> Reference);
}
