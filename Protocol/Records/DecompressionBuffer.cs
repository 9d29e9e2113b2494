using System.Buffers;
using Kayak.Protocol.Compression;

namespace Kayak.Protocol.Records;

/// <summary>
/// A batch's records decompress to more than the broker will materialise. Kafka streams a compressed batch's
/// records through LogValidator and has no such limit; Kayak validates the records section as one span and refuses
/// past <see cref="ValidationOptions.MaxDecompressedBytes"/> with MESSAGE_TOO_LARGE (Kafka's RecordTooLargeException):
/// not CORRUPT_MESSAGE, which a producer retries unchanged forever, while on MESSAGE_TOO_LARGE the Java producer
/// splits the batch and resends smaller ones (issue 15, K13).
/// </summary>
public sealed class DecompressedTooLargeException(long limit)
    : ProtocolException($"The record batch decompresses to more than {limit} bytes, the most the broker accepts")
{
    public long Limit { get; } = limit;
}

/// <summary>
/// Where a compressed batch's records are decompressed to: an <see cref="IBufferWriter{T}"/> that enforces the limit
/// itself, on the bytes actually produced, and never holds more than the limit plus one codec chunk. Arrays up to
/// <see cref="MaxPooledArray"/> come from <see cref="ArrayPool{T}.Shared"/>; larger ones are allocated for this
/// batch only and left to the GC on <see cref="Dispose"/>. Decompression bombs grew a PooledBufferWriter by doubling
/// through the shared pool, which then kept its 64 and 128 MiB arrays: ~1 GB stayed resident (issue 15, K13).
/// </summary>
public sealed class DecompressionBuffer : IBufferWriter<byte>, IDisposable
{
    /// <summary>Largest array taken from (and returned to) the shared pool.</summary>
    public const int MaxPooledArray = 1 << 20;

    /// <summary>Codecs ask for up to this much space at a time (lz4 and zstd 64 KiB, gzip 16 KiB) and may fill less.</summary>
    private const int ChunkSlack = 64 * 1024;

    private readonly long _limit;
    private byte[] _buffer;
    private int _written;

    public DecompressionBuffer(int initialCapacity, long limit)
    {
        _limit = limit;
        int initial = (int)Math.Min(Math.Clamp(initialCapacity, 256, MaxPooledArray), limit + ChunkSlack);
        _buffer = ArrayPool<byte>.Shared.Rent(initial);
    }

    public int WrittenCount => _written;
    public ReadOnlySpan<byte> WrittenSpan => _buffer.AsSpan(0, _written);

    /// <summary>Decompresses <paramref name="body"/> (a batch's records section) into this buffer.</summary>
    public void Decompress(CompressionType codec, ReadOnlySpan<byte> body)
    {
        // The codec's own limit is off: it checks before handing bytes over, with a message that cannot be told
        // apart from corruption. This buffer refuses the first byte past the limit instead.
        Compressor.Decompress(codec, body, this, long.MaxValue);
    }

    public void Advance(int count)
    {
        if (count < 0 || _written + count > _buffer.Length) throw new ArgumentOutOfRangeException(nameof(count));
        if (_written + (long)count > _limit) throw new DecompressedTooLargeException(_limit);
        _written += count;
    }

    public Memory<byte> GetMemory(int sizeHint = 0) { Ensure(sizeHint); return _buffer.AsMemory(_written); }
    public Span<byte> GetSpan(int sizeHint = 0) { Ensure(sizeHint); return _buffer.AsSpan(_written); }

    private void Ensure(int sizeHint)
    {
        if (sizeHint < 1) sizeHint = 1;
        if (_buffer.Length - _written >= sizeHint) return;
        long needed = (long)_written + sizeHint;
        // A codec that knows its output (snappy asks for a whole block) would fill the span: past the limit it is
        // refused before the space is allocated.
        if (needed > _limit + ChunkSlack) throw new DecompressedTooLargeException(_limit);
        long size = Math.Max(needed, (long)_buffer.Length * 2);
        // Reaching the limit, go straight to its full size: one more doubling step would copy the limit's worth again.
        if (size >= _limit) size = _limit + ChunkSlack;
        size = Math.Min(size, Array.MaxLength);
        var next = size <= MaxPooledArray ? ArrayPool<byte>.Shared.Rent((int)size) : GC.AllocateUninitializedArray<byte>((int)size);
        _buffer.AsSpan(0, _written).CopyTo(next);
        Release(_buffer);
        _buffer = next;
    }

    private static void Release(byte[] buffer)
    {
        // Only arrays the pool could have handed out go back; a larger one returned to it would be kept for good.
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
