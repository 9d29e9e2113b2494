using System.Buffers;
using ZstdSharp.Unsafe;
using Z = ZstdSharp.Unsafe.Methods;

namespace Kayak.Protocol.Compression;

/// <summary>
/// Zstandard (KIP-110) via ZstdSharp.Port, a C# translation of the reference libzstd that keeps its C API, so this is
/// the same code as against libzstd.so.1 before, without a native library. Decoding streams (ZSTD_decompressStream)
/// because Java's ZstdOutputStream writes frames without a content size, and streaming lets us stop at the caller's
/// output limit instead of trusting a declared size. Contexts live for one call, as ZSTD_compress's own does: pooling
/// them would keep a hostile frame's window buffer (up to 128 MiB at the default windowLogMax) alive between calls.
/// </summary>
public static unsafe class Zstd
{
    /// <summary>Kafka's default zstd level (compression.zstd.level, KIP-390).</summary>
    public const int DefaultLevel = 3;

    public static void Compress(ReadOnlySpan<byte> src, IBufferWriter<byte> dst, int level = DefaultLevel)
    {
        int bound = checked((int)Z.ZSTD_compressBound((nuint)src.Length));
        Span<byte> outSpan = dst.GetSpan(bound);
        nuint n;
        fixed (byte* s = src)
        fixed (byte* d = outSpan)
            n = Z.ZSTD_compress(d, (nuint)outSpan.Length, s, (nuint)src.Length, level);
        if (Z.ZSTD_isError(n)) throw new InvalidOperationException("ZSTD_compress failed: " + Z.ZSTD_getErrorName(n));
        dst.Advance((int)n);
    }

    public static void Decompress(ReadOnlySpan<byte> src, IBufferWriter<byte> dst, long maxOutput)
    {
        ZSTD_DCtx_s* ds = Z.ZSTD_createDStream();
        if (ds == null) throw new InvalidOperationException("ZSTD_createDStream failed");
        try
        {
            Z.ZSTD_initDStream(ds);
            long produced = 0;
            nuint last;
            fixed (byte* s = src)
            {
                ZSTD_inBuffer_s input = new() { src = s, size = (nuint)src.Length, pos = 0 };
                while (true)
                {
                    Span<byte> outSpan = dst.GetSpan(64 * 1024);
                    fixed (byte* d = outSpan)
                    {
                        ZSTD_outBuffer_s output = new() { dst = d, size = (nuint)outSpan.Length, pos = 0 };
                        last = Z.ZSTD_decompressStream(ds, &output, &input);
                        if (Z.ZSTD_isError(last)) throw new ProtocolException("zstd: " + Z.ZSTD_getErrorName(last));
                        produced += (long)output.pos;
                        if (produced > maxOutput) throw new ProtocolException($"zstd: decompressed size exceeds the limit of {maxOutput} bytes");
                        dst.Advance((int)output.pos);
                        // Done when all input is consumed and the decoder holds nothing more: a frame just ended (0,
                        // which also means fully flushed, even if that filled the span exactly; calling again would
                        // start a new frame and ask for its header), or it stopped short of a full span.
                        if (input.pos == input.size && (last == 0 || output.pos < output.size)) break;
                    }
                }
            }
            // A non-zero return at the end means the last frame is incomplete.
            if (last != 0) ThrowHelper.Malformed("zstd: truncated frame");
        }
        finally { Z.ZSTD_freeDStream(ds); }
    }
}
