using System.Buffers;

namespace Kayak.Protocol.Compression;

/// <summary>
/// An <see cref="IBufferWriter{T}"/> over ArrayPool arrays, for scratch space (decompressed
/// records, batch bodies before compression). Dispose returns the array; the written span is only
/// valid until then.
/// </summary>
public sealed class PooledBufferWriter : IBufferWriter<byte>, IDisposable
{
    private byte[] _buffer;
    private int _written;

    public PooledBufferWriter(int initialCapacity = 256)
    {
        _buffer = ArrayPool<byte>.Shared.Rent(Math.Max(initialCapacity, 16));
    }

    public int WrittenCount => _written;
    public ReadOnlySpan<byte> WrittenSpan => _buffer.AsSpan(0, _written);
    public ReadOnlyMemory<byte> WrittenMemory => _buffer.AsMemory(0, _written);
    /// <summary>Writable view of what was written, for in-place patches (CRC, offsets).</summary>
    public Span<byte> WrittenSpanMutable => _buffer.AsSpan(0, _written);

    public void Clear() => _written = 0;

    public void Advance(int count)
    {
        if (count < 0 || _written + count > _buffer.Length) throw new ArgumentOutOfRangeException(nameof(count));
        _written += count;
    }

    public Memory<byte> GetMemory(int sizeHint = 0) { Ensure(sizeHint); return _buffer.AsMemory(_written); }
    public Span<byte> GetSpan(int sizeHint = 0) { Ensure(sizeHint); return _buffer.AsSpan(_written); }

    public void Write(ReadOnlySpan<byte> data)
    {
        Ensure(data.Length);
        data.CopyTo(_buffer.AsSpan(_written));
        _written += data.Length;
    }

    private void Ensure(int sizeHint)
    {
        if (sizeHint < 1) sizeHint = 1;
        if (_buffer.Length - _written >= sizeHint) return;
        long needed = (long)_written + sizeHint;
        long size = Math.Max(needed, (long)_buffer.Length * 2);
        if (size > Array.MaxLength) size = Math.Max(needed, Array.MaxLength);
        if (size > Array.MaxLength) throw new OutOfMemoryException("PooledBufferWriter capacity exceeded.");
        var next = ArrayPool<byte>.Shared.Rent((int)size);
        _buffer.AsSpan(0, _written).CopyTo(next);
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = next;
    }

    public void Dispose()
    {
        var b = _buffer;
        _buffer = [];
        _written = 0;
        if (b.Length > 0) ArrayPool<byte>.Shared.Return(b);
    }
}

internal static class BufferWriterExtensions
{
    /// <summary>Copies <paramref name="src"/> into one span of <paramref name="dst"/> (nothing for an empty source).</summary>
    internal static void WriteContiguous(this IBufferWriter<byte> dst, ReadOnlySpan<byte> src)
    {
        if (src.Length == 0) return;
        src.CopyTo(dst.GetSpan(src.Length));
        dst.Advance(src.Length);
    }
}
