using System.Buffers;
using System.IO.Compression;
using Kayak.Protocol.Records;

namespace Kayak.Protocol.Compression;

/// <summary>Knobs for <see cref="Compressor.Compress"/>.</summary>
public sealed class CompressionOptions
{
    public static readonly CompressionOptions Default = new();
    /// <summary>Codec level; null = codec default (gzip Optimal, lz4 fast, zstd 3).</summary>
    public int? Level { get; init; }
    /// <summary>Write the magic v0 LZ4 header checksum (KAFKA-1493), for down-conversion to magic 0.</summary>
    public bool Lz4LegacyHeaderChecksum { get; init; }
}

/// <summary>Knobs for <see cref="Compressor.Decompress(CompressionType, ReadOnlySpan{byte}, IBufferWriter{byte}, DecompressionOptions)"/>.</summary>
public sealed class DecompressionOptions
{
    /// <summary>The default of <see cref="MaxOutputBytes"/> and of every other decompressed-size limit in Protocol.</summary>
    public const long DefaultMaxOutputBytes = 64L * 1024 * 1024;
    /// <summary>Decompression-bomb guard: producing more than this throws <see cref="ProtocolException"/>.</summary>
    public long MaxOutputBytes { get; init; } = DefaultMaxOutputBytes;
    /// <summary>Accept the broken magic v0 LZ4 header checksum (KAFKA-1493).</summary>
    public bool Lz4LegacyHeaderChecksum { get; init; }
}

/// <summary>Batch-body codecs keyed by the attributes' compression id.</summary>
public static class Compressor
{
    public static void Compress(CompressionType type, ReadOnlySpan<byte> src, IBufferWriter<byte> dst, CompressionOptions? options = null)
    {
        options ??= CompressionOptions.Default;
        switch (type)
        {
            case CompressionType.None: dst.WriteContiguous(src); break;
            case CompressionType.Gzip: GzipCompress(src, dst, options.Level); break;
            case CompressionType.Snappy: Snappy.CompressXerial(src, dst); break;
            case CompressionType.Lz4: Lz4.Compress(src, dst, options.Level ?? 0, options.Lz4LegacyHeaderChecksum); break;
            case CompressionType.Zstd: Zstd.Compress(src, dst, options.Level ?? Zstd.DefaultLevel); break;
            default: throw new ProtocolException($"Unknown compression type {(int)type}");
        }
    }

    public static void Decompress(CompressionType type, ReadOnlySpan<byte> src, IBufferWriter<byte> dst, long maxOutputBytes) =>
        Decompress(type, src, dst, new DecompressionOptions { MaxOutputBytes = maxOutputBytes });

    public static void Decompress(CompressionType type, ReadOnlySpan<byte> src, IBufferWriter<byte> dst, DecompressionOptions options)
    {
        long max = options.MaxOutputBytes;
        switch (type)
        {
            case CompressionType.None:
                if (src.Length > max) throw new ProtocolException($"Output size {src.Length} exceeds the limit of {max} bytes");
                dst.WriteContiguous(src);
                break;
            case CompressionType.Gzip: GzipDecompress(src, dst, max); break;
            case CompressionType.Snappy: Snappy.Decompress(src, dst, max); break;
            case CompressionType.Lz4: Lz4.Decompress(src, dst, max, options.Lz4LegacyHeaderChecksum); break;
            case CompressionType.Zstd: Zstd.Decompress(src, dst, max); break;
            default: throw new ProtocolException($"Unknown compression type {(int)type}");
        }
    }

    private static unsafe void GzipCompress(ReadOnlySpan<byte> src, IBufferWriter<byte> dst, int? level)
    {
        var lvl = level switch { null => CompressionLevel.Optimal, <= 0 => CompressionLevel.NoCompression, < 6 => CompressionLevel.Fastest, >= 9 => CompressionLevel.SmallestSize, _ => CompressionLevel.Optimal };
        if (src.Length == 0)
        {
            // GZipStream emits nothing for no input; write a valid empty member (header, empty final block, crc 0, size 0).
            dst.WriteContiguous([0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 0xFF, 0x03, 0x00, 0, 0, 0, 0, 0, 0, 0, 0]);
            return;
        }
        using var sink = new BufferWriterStream(dst);
        using (var gz = new GZipStream(sink, lvl, leaveOpen: true))
            gz.Write(src);
    }

    private static unsafe void GzipDecompress(ReadOnlySpan<byte> src, IBufferWriter<byte> dst, long max)
    {
        // GZipStream silently stops at truncated input, so we verify the member trailer (CRC-32 and
        // size mod 2^32, RFC 1952) ourselves. Only single-member streams pass this check, which is
        // what every Kafka client writes.
        if (src.Length < 18) ThrowHelper.Malformed("gzip: input shorter than a gzip header and trailer");
        uint expectedCrc = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(src[^8..]);
        uint expectedSize = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(src[^4..]);
        var crc = new System.IO.Hashing.Crc32();
        long produced = 0;
        fixed (byte* p = src)
        {
            using var input = new UnmanagedMemoryStream(p, src.Length);
            try
            {
                using var gz = new GZipStream(input, CompressionMode.Decompress);
                while (true)
                {
                    var span = dst.GetSpan(16 * 1024);
                    int n = gz.Read(span);
                    if (n == 0) break;
                    produced += n;
                    if (produced > max) throw new ProtocolException($"gzip: decompressed size exceeds the limit of {max} bytes");
                    crc.Append(span[..n]);
                    dst.Advance(n);
                }
            }
            catch (InvalidDataException e) { throw new ProtocolException("gzip: " + e.Message, e); }
        }
        if (crc.GetCurrentHashAsUInt32() != expectedCrc || (uint)produced != expectedSize)
            ThrowHelper.Malformed("gzip: truncated or corrupt stream (trailer CRC/size mismatch)");
    }

    /// <summary>Write-only stream adapter so GZipStream can emit straight into an IBufferWriter.</summary>
    private sealed class BufferWriterStream(IBufferWriter<byte> dst) : Stream
    {
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
        public override void Write(ReadOnlySpan<byte> buffer) => dst.WriteContiguous(buffer);
    }
}
