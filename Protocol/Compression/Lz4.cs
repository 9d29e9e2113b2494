using System.Buffers;
using System.Buffers.Binary;
using K4os.Compression.LZ4;
using Hash = System.IO.Hashing.XxHash32;

namespace Kayak.Protocol.Compression;

/// <summary>
/// LZ4 frame format (magic 0x184D2204), which is what Kafka puts in batches (Lz4BlockOutputStream). The block codec
/// is K4os.Compression.LZ4; the frame around it is written and read here because Kafka's frames need control a
/// frame library does not give: KAFKA-1493 (magic v0 computed the header checksum HC over the magic bytes too, so
/// it must be written broken for magic v0 and ignored when reading it, as Java's ignoreFlagDescriptorChecksum), an
/// output limit checked block by block, and no per-call encoder objects or buffers (blocks go straight into the
/// caller's writer).
/// Frames are written as Java does: FLG 0x60 (version 1, independent blocks, no checksums, no content size),
/// BD 0x40 (64 KiB blocks), blocks stored raw when they do not shrink, then the 0 end mark.
/// Reading accepts what Java's Lz4BlockInputStream accepts (independent blocks only: Java refuses dependent ones,
/// as it refuses a dictionary id, which sits in its "reserved" bits), verifies block and content checksums when
/// present, and, as liblz4 did before, reads concatenated frames and checks a declared content size.
/// </summary>
public static class Lz4
{
    private const uint FrameMagic = 0x184D2204;
    private const int BlockSize = 64 * 1024;
    private const uint Incompressible = 0x80000000u;
    private const byte FlgVersionMask = 0xC0, FlgVersion1 = 0x40, FlgIndependent = 0x20, FlgBlockChecksum = 0x10,
        FlgContentSize = 0x08, FlgContentChecksum = 0x04, FlgReserved = 0x03;

    public static void Compress(ReadOnlySpan<byte> src, IBufferWriter<byte> dst, int level = 0, bool brokenHeaderChecksum = false)
    {
        // liblz4's levels: below 3 is the fast compressor, 3..12 high compression; K4os uses the same numbers.
        var lz4Level = level < 3 ? LZ4Level.L00_FAST : (LZ4Level)Math.Min(level, (int)LZ4Level.L12_MAX);
        var header = dst.GetSpan(7);
        BinaryPrimitives.WriteUInt32LittleEndian(header, FrameMagic);
        header[4] = FlgVersion1 | FlgIndependent;
        header[5] = 0x40; // 64 KiB maximum block size
        header[6] = HeaderChecksum(header[..6], brokenHeaderChecksum);
        dst.Advance(7);
        for (int pos = 0; pos < src.Length; pos += BlockSize)
        {
            var block = src.Slice(pos, Math.Min(BlockSize, src.Length - pos));
            var span = dst.GetSpan(4 + LZ4Codec.MaximumOutputSize(block.Length));
            int n = LZ4Codec.Encode(block, span[4..], lz4Level);
            if (n <= 0 || n >= block.Length)
            {
                // Incompressible: stored as is, flagged by the size's high bit (as Java and liblz4 do).
                block.CopyTo(span[4..]);
                BinaryPrimitives.WriteUInt32LittleEndian(span, (uint)block.Length | Incompressible);
                n = block.Length;
            }
            else BinaryPrimitives.WriteUInt32LittleEndian(span, (uint)n);
            dst.Advance(4 + n);
        }
        BinaryPrimitives.WriteUInt32LittleEndian(dst.GetSpan(4), 0);
        dst.Advance(4);
    }

    /// <summary>HC: the second byte of xxh32 over FLG..the descriptor's end; the broken (magic v0) one also covers the 4 magic bytes.</summary>
    private static byte HeaderChecksum(ReadOnlySpan<byte> magicAndDescriptor, bool broken) =>
        (byte)(Hash.HashToUInt32(broken ? magicAndDescriptor : magicAndDescriptor[4..]) >> 8);

    /// <summary>
    /// Decodes one or more concatenated LZ4 frames, refusing to produce more than <paramref name="maxOutput"/> bytes
    /// (the writer holds at most one 64 KiB..4 MiB block beyond it). <paramref name="legacyHeaderChecksum"/> ignores the
    /// header checksum, which magic v0 producers got wrong (KAFKA-1493).
    /// </summary>
    public static void Decompress(ReadOnlySpan<byte> src, IBufferWriter<byte> dst, long maxOutput, bool legacyHeaderChecksum = false)
    {
        long produced = 0;
        int pos = 0;
        while (pos < src.Length)
            pos += DecompressFrame(src[pos..], dst, maxOutput, legacyHeaderChecksum, ref produced);
    }

    /// <summary>Decodes the frame at the start of <paramref name="src"/>; returns its length.</summary>
    private static int DecompressFrame(ReadOnlySpan<byte> src, IBufferWriter<byte> dst, long maxOutput, bool legacyHeaderChecksum, ref long produced)
    {
        if (src.Length < 7 || BinaryPrimitives.ReadUInt32LittleEndian(src) != FrameMagic)
            ThrowHelper.Malformed("lz4: invalid or truncated frame header");
        byte flg = src[4], bd = src[5];
        if ((flg & FlgVersionMask) != FlgVersion1) ThrowHelper.Malformed($"lz4: frame version {flg >> 6} is unsupported");
        if ((flg & FlgReserved) != 0) ThrowHelper.Malformed("lz4: reserved FLG bits set (dictionary ids are unsupported)");
        if ((flg & FlgIndependent) == 0) ThrowHelper.Malformed("lz4: dependent block stream is unsupported");
        int bsid = (bd >> 4) & 7;
        if ((bd & 0x8F) != 0 || bsid < 4) ThrowHelper.Malformed("lz4: bad block descriptor");
        int maxBlock = 1 << (2 * bsid + 8);
        int pos = 6;
        long contentSize = -1;
        if ((flg & FlgContentSize) != 0)
        {
            if (src.Length < pos + 9) ThrowHelper.Malformed("lz4: truncated frame header");
            ulong declared = BinaryPrimitives.ReadUInt64LittleEndian(src[pos..]);
            // A declared size over the limit fails before anything is decoded.
            if (declared > (ulong)(maxOutput - produced))
                throw new ProtocolException($"lz4: declared content size {declared} exceeds the limit of {maxOutput} bytes");
            contentSize = (long)declared;
            pos += 8;
        }
        if (!legacyHeaderChecksum && src[pos] != HeaderChecksum(src[..pos], broken: false))
            ThrowHelper.Malformed("lz4: frame header checksum mismatch");
        pos++;
        bool blockChecksums = (flg & FlgBlockChecksum) != 0;
        // Only built when the frame asks for a content checksum (kafka-python and sarama frames may).
        Hash? content = (flg & FlgContentChecksum) != 0 ? new Hash() : null;
        long frameStart = produced;
        while (true)
        {
            if (src.Length - pos < 4) ThrowHelper.Malformed("lz4: truncated frame");
            uint word = BinaryPrimitives.ReadUInt32LittleEndian(src[pos..]);
            pos += 4;
            if (word == 0) break; // end mark
            int len = (int)(word & ~Incompressible);
            if (len > maxBlock) ThrowHelper.Malformed($"lz4: block size {len} exceeds the frame's maximum {maxBlock}");
            if (src.Length - pos < len + (blockChecksums ? 4 : 0)) ThrowHelper.Malformed("lz4: truncated block");
            var block = src.Slice(pos, len);
            pos += len;
            if (blockChecksums)
            {
                if (Hash.HashToUInt32(block) != BinaryPrimitives.ReadUInt32LittleEndian(src[pos..]))
                    ThrowHelper.Malformed("lz4: block checksum mismatch");
                pos += 4;
            }
            Span<byte> output;
            int n;
            if ((word & Incompressible) != 0)
            {
                n = len;
                if (produced + n > maxOutput) throw LimitExceeded(maxOutput);
                output = dst.GetSpan(n);
                block.CopyTo(output);
            }
            else
            {
                // A block decodes to at most maxBlock bytes, so the span is bounded before the decoder runs.
                output = dst.GetSpan(maxBlock);
                n = LZ4Codec.Decode(block, output[..maxBlock]);
                if (n < 0) ThrowHelper.Malformed("lz4: corrupt block");
                if (produced + n > maxOutput) throw LimitExceeded(maxOutput);
            }
            content?.Append(output[..n]);
            dst.Advance(n);
            produced += n;
        }
        if (content != null)
        {
            if (src.Length - pos < 4) ThrowHelper.Malformed("lz4: truncated content checksum");
            if (content.GetCurrentHashAsUInt32() != BinaryPrimitives.ReadUInt32LittleEndian(src[pos..]))
                ThrowHelper.Malformed("lz4: content checksum mismatch");
            pos += 4;
        }
        if (contentSize >= 0 && produced - frameStart != contentSize)
            ThrowHelper.Malformed($"lz4: frame decoded to {produced - frameStart} bytes but declares {contentSize}");
        return pos;
    }

    private static ProtocolException LimitExceeded(long max) => new($"lz4: decompressed size exceeds the limit of {max} bytes");
}
