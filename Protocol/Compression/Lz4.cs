using System.Buffers;
using System.Runtime.InteropServices;

namespace Kayak.Protocol.Compression;

/// <summary>
/// LZ4 frame format (magic 0x184D2204), which is what Kafka puts in batches (KafkaLZ4BlockOutputStream).
/// We P/Invoke the OS liblz4.so.1 frame API instead of writing a managed codec: it is the reference
/// implementation, fast, already a dependency of librdkafka installs, and keeps this file small.
/// Frames are written as Java does: independent 64 KiB blocks, no content size, no block checksums.
/// KAFKA-1493: magic v0 messages computed the header checksum (HC) over the magic bytes too; for
/// those we patch HC to the correct value before handing the frame to liblz4, and write the broken
/// value when producing magic v0 (KIP-57 fixed it from magic v1 on).
/// </summary>
public static unsafe class Lz4
{
    private const string Lib = "liblz4.so.1";
    private const uint Version = 100; // LZ4F_VERSION
    private const uint FrameMagic = 0x184D2204;

    [StructLayout(LayoutKind.Sequential)]
    private struct FrameInfo
    {
        public int BlockSizeId;      // LZ4F_max64KB = 4
        public int BlockMode;        // LZ4F_blockIndependent = 1
        public int ContentChecksum;  // 0
        public int FrameType;        // 0 = frame
        public ulong ContentSize;    // 0 = unknown
        public uint DictId;
        public int BlockChecksum;    // 0
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct Preferences
    {
        public FrameInfo Info;
        public int CompressionLevel;
        public uint AutoFlush;
        public uint FavorDecSpeed;
        public uint Reserved0, Reserved1, Reserved2;
    }

    [DllImport(Lib)] private static extern nuint LZ4F_compressFrameBound(nuint srcSize, Preferences* prefs);
    [DllImport(Lib)] private static extern nuint LZ4F_compressFrame(byte* dst, nuint dstCapacity, byte* src, nuint srcSize, Preferences* prefs);
    [DllImport(Lib)] private static extern uint LZ4F_isError(nuint code);
    [DllImport(Lib)] private static extern IntPtr LZ4F_getErrorName(nuint code);
    [DllImport(Lib)] private static extern nuint LZ4F_createDecompressionContext(IntPtr* ctx, uint version);
    [DllImport(Lib)] private static extern nuint LZ4F_freeDecompressionContext(IntPtr ctx);
    [DllImport(Lib)] private static extern nuint LZ4F_decompress(IntPtr ctx, byte* dst, nuint* dstSize, byte* src, nuint* srcSize, void* options);

    private static Exception Missing(Exception e) => new NativeLibraryMissingException(Lib, "liblz4-1", e);

    private static string ErrorName(nuint code) => Marshal.PtrToStringAnsi(LZ4F_getErrorName(code)) ?? "unknown";

    public static void Compress(ReadOnlySpan<byte> src, IBufferWriter<byte> dst, int level = 0, bool brokenHeaderChecksum = false)
    {
        try { CompressCore(src, dst, level, brokenHeaderChecksum); }
        catch (DllNotFoundException e) { throw Missing(e); }
        catch (EntryPointNotFoundException e) { throw Missing(e); }
    }

    private static void CompressCore(ReadOnlySpan<byte> src, IBufferWriter<byte> dst, int level, bool brokenHeaderChecksum)
    {
        Preferences p = default;
        p.Info.BlockSizeId = 4;
        p.Info.BlockMode = 1;
        p.CompressionLevel = level;
        int bound = checked((int)LZ4F_compressFrameBound((nuint)src.Length, &p));
        Span<byte> outSpan = dst.GetSpan(bound);
        nuint n;
        fixed (byte* s = src)
        fixed (byte* d = outSpan)
            n = LZ4F_compressFrame(d, (nuint)outSpan.Length, s, (nuint)src.Length, &p);
        if (LZ4F_isError(n) != 0) throw new InvalidOperationException("LZ4F_compressFrame failed: " + ErrorName(n));
        if (brokenHeaderChecksum) PatchHeaderChecksum(outSpan[..(int)n], broken: true);
        dst.Advance((int)n);
    }

    /// <summary>Length of the frame header (magic..HC) or -1 if it is not a readable LZ4 frame header.</summary>
    private static int HeaderLength(ReadOnlySpan<byte> frame)
    {
        if (frame.Length < 7 || System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(frame) != FrameMagic) return -1;
        byte flg = frame[4];
        int len = 4 + 2 + ((flg & 0x08) != 0 ? 8 : 0) + ((flg & 0x01) != 0 ? 4 : 0) + 1;
        return frame.Length >= len ? len : -1;
    }

    /// <summary>Rewrites the HC byte: correct = xxh32(FLG..descriptor end) &gt;&gt; 8; broken (magic v0) includes the 4 magic bytes.</summary>
    internal static void PatchHeaderChecksum(Span<byte> frame, bool broken)
    {
        int len = HeaderLength(frame);
        if (len < 0) return;
        var covered = broken ? frame[..(len - 1)] : frame[4..(len - 1)];
        frame[len - 1] = (byte)((XxHash32.Hash(covered) >> 8) & 0xFF);
    }

    /// <summary>
    /// Decodes one or more concatenated LZ4 frames. <paramref name="legacyHeaderChecksum"/> accepts
    /// the magic v0 broken header checksum (KAFKA-1493).
    /// </summary>
    public static void Decompress(ReadOnlySpan<byte> src, IBufferWriter<byte> dst, long maxOutput, bool legacyHeaderChecksum = false)
    {
        try { DecompressCore(src, dst, maxOutput, legacyHeaderChecksum); }
        catch (DllNotFoundException e) { throw Missing(e); }
        catch (EntryPointNotFoundException e) { throw Missing(e); }
    }

    private static void DecompressCore(ReadOnlySpan<byte> src, IBufferWriter<byte> dst, long maxOutput, bool legacyHeaderChecksum)
    {
        IntPtr ctx;
        nuint rc = LZ4F_createDecompressionContext(&ctx, Version);
        if (LZ4F_isError(rc) != 0) throw new InvalidOperationException("LZ4F_createDecompressionContext failed: " + ErrorName(rc));
        try
        {
            long produced = 0;
            int pos = 0;
            Span<byte> header = stackalloc byte[19];
            while (pos < src.Length)
            {
                var frame = src[pos..];
                int hl = HeaderLength(frame);
                if (hl < 0) ThrowHelper.Malformed("lz4: invalid or truncated frame header");
                // Feed a patched copy of the header first when the legacy checksum may be wrong.
                if (legacyHeaderChecksum)
                {
                    frame[..hl].CopyTo(header);
                    PatchHeaderChecksum(header[..hl], broken: false);
                    produced = Feed(ctx, header[..hl], dst, maxOutput, produced, out _, out _);
                    pos += hl;
                }
                produced = Feed(ctx, src[pos..], dst, maxOutput, produced, out int consumed, out bool done);
                if (!done) ThrowHelper.Malformed("lz4: truncated frame");
                pos += consumed;
            }
        }
        finally { LZ4F_freeDecompressionContext(ctx); }
    }

    /// <summary>Feeds input until it is used up or a frame ends; returns total produced.</summary>
    private static long Feed(IntPtr ctx, ReadOnlySpan<byte> input, IBufferWriter<byte> dst, long maxOutput, long produced, out int consumedTotal, out bool frameDone)
    {
        consumedTotal = 0;
        frameDone = false;
        fixed (byte* s0 = input)
        {
            while (true)
            {
                Span<byte> outSpan = dst.GetSpan(64 * 1024);
                nuint outSize = (nuint)outSpan.Length;
                nuint inSize = (nuint)(input.Length - consumedTotal);
                nuint hint;
                fixed (byte* d = outSpan)
                    hint = LZ4F_decompress(ctx, d, &outSize, s0 + consumedTotal, &inSize, null);
                if (LZ4F_isError(hint) != 0) throw new ProtocolException("lz4: " + ErrorName(hint));
                consumedTotal += (int)inSize;
                produced += (long)outSize;
                if (produced > maxOutput) throw new ProtocolException($"lz4: decompressed size exceeds the limit of {maxOutput} bytes");
                dst.Advance((int)outSize);
                if (hint == 0) { frameDone = true; return produced; } // frame complete
                if (consumedTotal == input.Length && outSize == 0)   // needs more input than we have
                {
                    return produced;
                }
            }
        }
    }
}
