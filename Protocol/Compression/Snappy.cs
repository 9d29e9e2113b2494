using System.Buffers;
using System.Buffers.Binary;
using SnappierCodec = Snappier.Snappy;

namespace Kayak.Protocol.Compression;

/// <summary>
/// Snappy: raw blocks (varint length preamble, literal/copy elements) from Snappier, plus the xerial-snappy stream
/// framing the Java client emits, which Snappier lacks (its stream is Google's framing format): SnappyOutputStream's
/// 8-byte magic <c>82 'SNAPPY' 00</c>, int32 version, int32 min-compatible version, then [int32 length][block]....
/// librdkafka emits raw blocks and reads both; Java's SnappyInputStream also falls back to raw blocks,
/// so decoding sniffs the magic and encoding uses xerial framing like Java and kafka-python.
/// </summary>
public static class Snappy
{
    internal static ReadOnlySpan<byte> XerialMagic => [0x82, (byte)'S', (byte)'N', (byte)'A', (byte)'P', (byte)'P', (byte)'Y', 0];
    private const int XerialHeaderSize = 16;
    /// <summary>Block size of Java's SnappyOutputStream default / kafka-python's xerial_blocksize.</summary>
    public const int XerialBlockSize = 32 * 1024;

    public static bool IsXerialFramed(ReadOnlySpan<byte> src) =>
        src.Length >= XerialHeaderSize && src[..8].SequenceEqual(XerialMagic);

    // ------------------------------------------------------------------ framing

    public static void CompressXerial(ReadOnlySpan<byte> src, IBufferWriter<byte> dst)
    {
        var header = dst.GetSpan(XerialHeaderSize);
        XerialMagic.CopyTo(header);
        BinaryPrimitives.WriteInt32BigEndian(header[8..], 1);
        BinaryPrimitives.WriteInt32BigEndian(header[12..], 1);
        dst.Advance(XerialHeaderSize);
        for (int pos = 0; pos < src.Length; pos += XerialBlockSize)
        {
            var block = src.Slice(pos, Math.Min(XerialBlockSize, src.Length - pos));
            var span = dst.GetSpan(4 + MaxCompressedLength(block.Length));
            int n = CompressBlock(block, span[4..]);
            BinaryPrimitives.WriteInt32BigEndian(span, n);
            dst.Advance(4 + n);
        }
    }

    /// <summary>Decodes xerial-framed or raw snappy, refusing to produce more than <paramref name="maxOutput"/> bytes.</summary>
    public static unsafe void Decompress(ReadOnlySpan<byte> src, IBufferWriter<byte> dst, long maxOutput)
    {
        fixed (byte* p = src)
        {
            using var pinned = new PinnedMemory(p, src.Length);
            ReadOnlyMemory<byte> memory = pinned.Memory;
            if (!IsXerialFramed(src)) { DecodeBlock(memory, dst, maxOutput); return; }
            long produced = 0;
            int pos = XerialHeaderSize;
            while (pos < src.Length)
            {
                if (src.Length - pos < 4) ThrowHelper.Malformed("snappy: truncated xerial block length");
                int len = BinaryPrimitives.ReadInt32BigEndian(src[pos..]);
                pos += 4;
                if (len < 0 || len > src.Length - pos) ThrowHelper.BadLength(len, src.Length - pos);
                produced += DecodeBlock(memory.Slice(pos, len), dst, maxOutput - produced);
                pos += len;
            }
        }
    }

    // ------------------------------------------------------------------ raw block

    public static int MaxCompressedLength(int n) => SnappierCodec.GetMaxCompressedLength(n);

    /// <summary>Reads the uncompressed length preamble of a raw block.</summary>
    public static bool TryGetUncompressedLength(ReadOnlySpan<byte> src, out long length, out int headerBytes)
    {
        ulong v = 0;
        for (int i = 0; i < 5 && i < src.Length; i++)
        {
            v |= (ulong)(src[i] & 0x7F) << (7 * i);
            if ((src[i] & 0x80) == 0) { length = (long)v; headerBytes = i + 1; return v <= uint.MaxValue; }
        }
        length = 0; headerBytes = 0;
        return false;
    }

    /// <summary>Decodes one raw block into <paramref name="dst"/>; returns the number of bytes produced.</summary>
    public static unsafe int DecompressBlock(ReadOnlySpan<byte> src, IBufferWriter<byte> dst, long maxOutput)
    {
        fixed (byte* p = src)
        {
            using var pinned = new PinnedMemory(p, src.Length);
            return DecodeBlock(pinned.Memory, dst, maxOutput);
        }
    }

    private static int DecodeBlock(ReadOnlyMemory<byte> block, IBufferWriter<byte> dst, long maxOutput)
    {
        // The preamble is checked here, before Snappier asks the writer for that much memory.
        if (!TryGetUncompressedLength(block.Span, out long total, out _)) ThrowHelper.Malformed("snappy: bad length preamble");
        if (total > maxOutput || total > Array.MaxLength)
            throw new ProtocolException($"snappy: decompressed size {total} exceeds the limit of {maxOutput} bytes");
        // Snappier's IBufferWriter overload decodes straight into the writer (its span overload decodes into a pooled
        // array and copies), but takes a sequence, hence the pinned input wrapped as memory without a copy.
        try
        {
            SnappierCodec.Decompress(new ReadOnlySequence<byte>(block), dst);
        }
        catch (InvalidDataException e) { throw new ProtocolException("snappy: " + e.Message, e); }
        catch (InvalidOperationException e) { throw new ProtocolException("snappy: " + e.Message, e); }
        return (int)total;
    }

    /// <summary>Compresses one raw block (Snappier); returns bytes written. <paramref name="dst"/> holds <see cref="MaxCompressedLength"/>.</summary>
    public static int CompressBlock(ReadOnlySpan<byte> src, Span<byte> dst) => SnappierCodec.Compress(src, dst);

    /// <summary>A <see cref="Memory{T}"/> over pinned bytes, valid only inside the <c>fixed</c> that pinned them.</summary>
    private sealed unsafe class PinnedMemory(byte* pointer, int length) : MemoryManager<byte>
    {
        public override Span<byte> GetSpan() => new(pointer, length);
        public override MemoryHandle Pin(int elementIndex = 0) => new(pointer + elementIndex);
        public override void Unpin() { }
        protected override void Dispose(bool disposing) { }
    }
}
