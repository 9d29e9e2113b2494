using System.Buffers;
using System.Runtime.InteropServices;

namespace Kayak.Protocol.Compression;

/// <summary>
/// Zstandard (KIP-110) via the OS libzstd.so.1. Decoding streams (ZSTD_decompressStream) because
/// Java's ZstdOutputStream writes frames without a content size, and streaming lets us stop at the
/// caller's output limit instead of trusting a declared size.
/// </summary>
public static unsafe class Zstd
{
    private const string Lib = "libzstd.so.1";

    [StructLayout(LayoutKind.Sequential)]
    private struct InBuffer { public byte* Src; public nuint Size; public nuint Pos; }

    [StructLayout(LayoutKind.Sequential)]
    private struct OutBuffer { public byte* Dst; public nuint Size; public nuint Pos; }

    [DllImport(Lib)] private static extern nuint ZSTD_compressBound(nuint srcSize);
    [DllImport(Lib)] private static extern nuint ZSTD_compress(byte* dst, nuint dstCapacity, byte* src, nuint srcSize, int level);
    [DllImport(Lib)] private static extern uint ZSTD_isError(nuint code);
    [DllImport(Lib)] private static extern IntPtr ZSTD_getErrorName(nuint code);
    [DllImport(Lib)] private static extern IntPtr ZSTD_createDStream();
    [DllImport(Lib)] private static extern nuint ZSTD_freeDStream(IntPtr ds);
    [DllImport(Lib)] private static extern nuint ZSTD_initDStream(IntPtr ds);
    [DllImport(Lib)] private static extern nuint ZSTD_decompressStream(IntPtr ds, OutBuffer* output, InBuffer* input);

    /// <summary>Kafka's default zstd level (compression.zstd.level, KIP-390).</summary>
    public const int DefaultLevel = 3;

    private static Exception Missing(Exception e) => new NativeLibraryMissingException(Lib, "libzstd1", e);
    private static string ErrorName(nuint code) => Marshal.PtrToStringAnsi(ZSTD_getErrorName(code)) ?? "unknown";

    public static void Compress(ReadOnlySpan<byte> src, IBufferWriter<byte> dst, int level = DefaultLevel)
    {
        try
        {
            int bound = checked((int)ZSTD_compressBound((nuint)src.Length));
            Span<byte> outSpan = dst.GetSpan(bound);
            nuint n;
            fixed (byte* s = src)
            fixed (byte* d = outSpan)
                n = ZSTD_compress(d, (nuint)outSpan.Length, s, (nuint)src.Length, level);
            if (ZSTD_isError(n) != 0) throw new InvalidOperationException("ZSTD_compress failed: " + ErrorName(n));
            dst.Advance((int)n);
        }
        catch (DllNotFoundException e) { throw Missing(e); }
        catch (EntryPointNotFoundException e) { throw Missing(e); }
    }

    public static void Decompress(ReadOnlySpan<byte> src, IBufferWriter<byte> dst, long maxOutput)
    {
        IntPtr ds;
        try { ds = ZSTD_createDStream(); }
        catch (DllNotFoundException e) { throw Missing(e); }
        catch (EntryPointNotFoundException e) { throw Missing(e); }
        if (ds == IntPtr.Zero) throw new InvalidOperationException("ZSTD_createDStream failed");
        try
        {
            ZSTD_initDStream(ds);
            long produced = 0;
            nuint last = 1;
            fixed (byte* s = src)
            {
                InBuffer input = new() { Src = s, Size = (nuint)src.Length, Pos = 0 };
                while (true)
                {
                    Span<byte> outSpan = dst.GetSpan(64 * 1024);
                    fixed (byte* d = outSpan)
                    {
                        OutBuffer output = new() { Dst = d, Size = (nuint)outSpan.Length, Pos = 0 };
                        last = ZSTD_decompressStream(ds, &output, &input);
                        if (ZSTD_isError(last) != 0) throw new ProtocolException("zstd: " + ErrorName(last));
                        produced += (long)output.Pos;
                        if (produced > maxOutput) throw new ProtocolException($"zstd: decompressed size exceeds the limit of {maxOutput} bytes");
                        dst.Advance((int)output.Pos);
                        // Done when all input is consumed and the decoder has flushed everything it holds.
                        if (input.Pos == input.Size && output.Pos < output.Size) break;
                    }
                }
            }
            // A non-zero return at the end means the last frame is incomplete.
            if (last != 0) ThrowHelper.Malformed("zstd: truncated frame");
        }
        finally { ZSTD_freeDStream(ds); }
    }
}
