using System.Buffers;
using System.Buffers.Binary;

namespace Kayak.Protocol.Compression;

/// <summary>
/// Managed Snappy: the raw block format (varint length preamble, literal/copy elements) plus the
/// xerial-snappy stream framing the Java client emits (SnappyOutputStream: 8-byte magic
/// <c>82 'SNAPPY' 00</c>, int32 version, int32 min-compatible version, then [int32 length][block]...).
/// librdkafka emits raw blocks and reads both; Java's SnappyInputStream also falls back to raw blocks,
/// so decoding sniffs the magic and encoding uses xerial framing like Java and kafka-python.
/// </summary>
public static class Snappy
{
    internal static ReadOnlySpan<byte> XerialMagic => [0x82, (byte)'S', (byte)'N', (byte)'A', (byte)'P', (byte)'P', (byte)'Y', 0];
    private const int XerialHeaderSize = 16;
    /// <summary>Block size of Java's SnappyOutputStream default / kafka-python's xerial_blocksize.</summary>
    public const int XerialBlockSize = 32 * 1024;
    private const int FragmentSize = 1 << 16; // Copies never cross 64 KiB fragments, so 2-byte offsets suffice.

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
    public static void Decompress(ReadOnlySpan<byte> src, IBufferWriter<byte> dst, long maxOutput)
    {
        if (!IsXerialFramed(src)) { DecompressBlock(src, dst, maxOutput); return; }
        long produced = 0;
        int pos = XerialHeaderSize;
        while (pos < src.Length)
        {
            if (src.Length - pos < 4) ThrowHelper.Malformed("snappy: truncated xerial block length");
            int len = BinaryPrimitives.ReadInt32BigEndian(src[pos..]);
            pos += 4;
            if (len < 0 || len > src.Length - pos) ThrowHelper.BadLength(len, src.Length - pos);
            produced += DecompressBlock(src.Slice(pos, len), dst, maxOutput - produced);
            pos += len;
        }
    }

    // ------------------------------------------------------------------ raw block

    public static int MaxCompressedLength(int n) => 32 + n + n / 6;

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
    public static int DecompressBlock(ReadOnlySpan<byte> src, IBufferWriter<byte> dst, long maxOutput)
    {
        if (!TryGetUncompressedLength(src, out long total, out int ip)) ThrowHelper.Malformed("snappy: bad length preamble");
        if (total > maxOutput || total > Array.MaxLength)
            throw new ProtocolException($"snappy: decompressed size {total} exceeds the limit of {maxOutput} bytes");
        int n = (int)total;
        Span<byte> outSpan = dst.GetSpan(Math.Max(n, 1))[..n];
        int op = 0;
        while (ip < src.Length)
        {
            byte tag = src[ip++];
            int len, offset;
            switch (tag & 3)
            {
                case 0:
                    len = tag >> 2;
                    if (len >= 60)
                    {
                        int extra = len - 59;
                        if (src.Length - ip < extra) ThrowHelper.Malformed("snappy: truncated literal length");
                        uint l = 0;
                        for (int k = 0; k < extra; k++) l |= (uint)src[ip + k] << (8 * k);
                        ip += extra;
                        if (l >= int.MaxValue) ThrowHelper.Malformed("snappy: literal too long");
                        len = (int)l;
                    }
                    len++;
                    if (len > src.Length - ip || len > n - op) ThrowHelper.Malformed("snappy: literal overruns input or output");
                    src.Slice(ip, len).CopyTo(outSpan[op..]);
                    ip += len; op += len;
                    continue;
                case 1:
                    if (ip >= src.Length) ThrowHelper.Malformed("snappy: truncated copy");
                    len = 4 + ((tag >> 2) & 7);
                    offset = ((tag >> 5) << 8) | src[ip++];
                    break;
                case 2:
                    if (src.Length - ip < 2) ThrowHelper.Malformed("snappy: truncated copy");
                    len = (tag >> 2) + 1;
                    offset = BinaryPrimitives.ReadUInt16LittleEndian(src[ip..]);
                    ip += 2;
                    break;
                default:
                    if (src.Length - ip < 4) ThrowHelper.Malformed("snappy: truncated copy");
                    len = (tag >> 2) + 1;
                    uint o = BinaryPrimitives.ReadUInt32LittleEndian(src[ip..]);
                    if (o > int.MaxValue) ThrowHelper.Malformed("snappy: bad copy offset");
                    offset = (int)o;
                    ip += 4;
                    break;
            }
            if (offset == 0 || offset > op || len > n - op) ThrowHelper.Malformed("snappy: copy out of range");
            // Overlapping copies (offset < len) repeat a pattern, so copy byte by byte then.
            if (offset >= len) outSpan.Slice(op - offset, len).CopyTo(outSpan[op..]);
            else for (int k = 0; k < len; k++) outSpan[op + k] = outSpan[op - offset + k];
            op += len;
        }
        if (op != n) ThrowHelper.Malformed("snappy: decoded length does not match the preamble");
        dst.Advance(n);
        return n;
    }

    /// <summary>Greedy single-pass compressor (hash of 4-byte sequences per 64 KiB fragment). Returns bytes written.</summary>
    public static int CompressBlock(ReadOnlySpan<byte> src, Span<byte> dst)
    {
        int op = 0;
        uint v = (uint)src.Length;
        while (v >= 0x80) { dst[op++] = (byte)(v | 0x80); v >>= 7; }
        dst[op++] = (byte)v;
        Span<ushort> table = stackalloc ushort[1 << 14];
        for (int fragStart = 0; fragStart < src.Length; fragStart += FragmentSize)
        {
            var frag = src.Slice(fragStart, Math.Min(FragmentSize, src.Length - fragStart));
            table.Clear();
            op = CompressFragment(frag, dst, op, table);
        }
        return op;
    }

    private static int CompressFragment(ReadOnlySpan<byte> s, Span<byte> dst, int op, Span<ushort> table)
    {
        int literalStart = 0;
        int ip = 1;
        int limit = s.Length - 4;
        while (ip <= limit)
        {
            uint cur = BinaryPrimitives.ReadUInt32LittleEndian(s[ip..]);
            int h = (int)((cur * 0x1E35A7BDu) >> 18);
            int candidate = table[h];
            table[h] = (ushort)ip;
            if (candidate < ip && BinaryPrimitives.ReadUInt32LittleEndian(s[candidate..]) == cur)
            {
                op = EmitLiteral(s[literalStart..ip], dst, op);
                int matchLen = 4;
                while (ip + matchLen < s.Length && s[candidate + matchLen] == s[ip + matchLen]) matchLen++;
                op = EmitCopy(ip - candidate, matchLen, dst, op);
                ip += matchLen;
                literalStart = ip;
            }
            else
            {
                ip++;
            }
        }
        if (literalStart < s.Length) op = EmitLiteral(s[literalStart..], dst, op);
        return op;
    }

    private static int EmitLiteral(ReadOnlySpan<byte> lit, Span<byte> dst, int op)
    {
        if (lit.Length == 0) return op;
        int n = lit.Length - 1;
        if (n < 60) dst[op++] = (byte)(n << 2);
        else
        {
            int bytes = n < 0x100 ? 1 : n < 0x10000 ? 2 : n < 0x1000000 ? 3 : 4;
            dst[op++] = (byte)((59 + bytes) << 2);
            for (int k = 0; k < bytes; k++) dst[op++] = (byte)(n >> (8 * k));
        }
        lit.CopyTo(dst[op..]);
        return op + lit.Length;
    }

    private static int EmitCopy(int offset, int len, Span<byte> dst, int op)
    {
        // 2-byte-offset copies carry up to 64 bytes; keep the tail >= 4 so it stays encodable.
        while (len >= 68) { op = EmitCopy2(offset, 64, dst, op); len -= 64; }
        if (len > 64) { op = EmitCopy2(offset, 60, dst, op); len -= 60; }
        if (len < 12 && offset < 2048)
        {
            dst[op++] = (byte)(1 | ((len - 4) << 2) | ((offset >> 8) << 5));
            dst[op++] = (byte)offset;
            return op;
        }
        return EmitCopy2(offset, len, dst, op);
    }

    private static int EmitCopy2(int offset, int len, Span<byte> dst, int op)
    {
        dst[op++] = (byte)(2 | ((len - 1) << 2));
        BinaryPrimitives.WriteUInt16LittleEndian(dst[op..], (ushort)offset);
        return op + 2;
    }

}
