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
        int n = Math.Max(initialCapacity, 16);
        _buffer = n <= MaxPooledArray ? ArrayPool<byte>.Shared.Rent(n) : GC.AllocateUninitializedArray<byte>(n);
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
        var next = size <= MaxPooledArray ? ArrayPool<byte>.Shared.Rent((int)size) : GC.AllocateUninitializedArray<byte>((int)size);
        _buffer.AsSpan(0, _written).CopyTo(next);
        Release(_buffer);
        _buffer = next;
    }

    /// <summary>
    /// Larger arrays are allocated for one use and left to the GC: the shared pool keeps what it is given for good,
    /// and a few 64 MiB decompression buffers kept ~1 GB resident (issue 15, K13).
    /// </summary>
    private const int MaxPooledArray = 1 << 20;

    private static void Release(byte[] buffer)
    {
        if (buffer.Length > 0 && buffer.Length <= MaxPooledArray) ArrayPool<byte>.Shared.Return(buffer);
    }

    public void Dispose()
    {
        var b = _buffer;
        _buffer = [];
        _written = 0;
        Release(b);
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
