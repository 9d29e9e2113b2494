using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Text;

namespace Kayak.Protocol;

/// <summary>
/// Writes Kafka protocol primitives into an <see cref="IBufferWriter{T}"/> (a PipeWriter, a pooled
/// buffer), asking it for a new span only when the current one is full. Call <see cref="Flush"/>
/// when done so the last span is committed.
/// </summary>
public ref struct KafkaWriter
{
    private const int MinChunk = 4096;

    /// <summary>
    /// The longest string, in UTF-8 bytes, the protocol carries: an INT16 length's maximum, and Kafka holds compact
    /// strings to it too (its generated readers refuse longer ones, its writers will not send them).
    /// </summary>
    public const int MaxStringBytes = short.MaxValue;
    private readonly IBufferWriter<byte> _output;
    private Span<byte> _span;
    private int _pos;
    private long _flushed;

    public KafkaWriter(IBufferWriter<byte> output)
    {
        _output = output;
        _span = default;
        _pos = 0;
        _flushed = 0;
    }

    /// <summary>Bytes written so far, flushed or not.</summary>
    public readonly long BytesWritten => _flushed + _pos;

    public void Flush()
    {
        if (_pos > 0)
        {
            _output.Advance(_pos);
            _flushed += _pos;
        }
        _pos = 0;
        _span = default;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private Span<byte> Reserve(int count)
    {
        if (_span.Length - _pos < count) Grow(count);
        var s = _span.Slice(_pos, count);
        _pos += count;
        return s;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void Grow(int count)
    {
        Flush();
        _span = _output.GetSpan(Math.Max(count, MinChunk));
    }

    public void WriteInt8(sbyte v) => Reserve(1)[0] = (byte)v;
    public void WriteUInt8(byte v) => Reserve(1)[0] = v;
    public void WriteBool(bool v) => Reserve(1)[0] = v ? (byte)1 : (byte)0;
    public void WriteInt16(short v) => BinaryPrimitives.WriteInt16BigEndian(Reserve(2), v);
    public void WriteUInt16(ushort v) => BinaryPrimitives.WriteUInt16BigEndian(Reserve(2), v);
    public void WriteInt32(int v) => BinaryPrimitives.WriteInt32BigEndian(Reserve(4), v);
    public void WriteUInt32(uint v) => BinaryPrimitives.WriteUInt32BigEndian(Reserve(4), v);
    public void WriteInt64(long v) => BinaryPrimitives.WriteInt64BigEndian(Reserve(8), v);
    public void WriteFloat64(double v) => BinaryPrimitives.WriteDoubleBigEndian(Reserve(8), v);
    public void WriteUuid(Uuid v) => v.WriteTo(Reserve(16));

    public void WriteUnsignedVarInt(uint v) => VarInt.WriteUnsigned(Reserve(VarInt.SizeOfUnsigned(v)), v);

    public void WriteUnsignedVarLong(ulong v) => VarInt.WriteUnsigned(Reserve(VarInt.SizeOfUnsigned(v)), v);

    public void WriteVarInt(int v) => WriteUnsignedVarInt((uint)((v << 1) ^ (v >> 31)));
    public void WriteVarLong(long v) => WriteUnsignedVarLong((ulong)((v << 1) ^ (v >> 63)));

    /// <summary>Raw bytes, copied in chunks so a large field never needs one huge span.</summary>
    public void WriteRaw(ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty)
        {
            if (_span.Length - _pos == 0) Grow(Math.Min(data.Length, 1 << 16));
            int n = Math.Min(data.Length, _span.Length - _pos);
            data[..n].CopyTo(_span[_pos..]);
            _pos += n;
            data = data[n..];
        }
    }

    private void WriteUtf8(string s, int byteCount)
    {
        if (byteCount <= 1024) Encoding.UTF8.GetBytes(s, Reserve(byteCount));
        else
        {
            var rented = ArrayPool<byte>.Shared.Rent(byteCount);
            int n = Encoding.UTF8.GetBytes(s, rented);
            WriteRaw(rented.AsSpan(0, n));
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    public void WriteString(string v)
    {
        int n = VarInt.SizeOfString(v);
        WriteInt16((short)n);
        WriteUtf8(v, n);
    }

    public void WriteNullableString(string? v)
    {
        if (v is null) { WriteInt16(-1); return; }
        WriteString(v);
    }

    public void WriteCompactString(string v)
    {
        int n = VarInt.SizeOfString(v);
        WriteUnsignedVarInt((uint)n + 1);
        WriteUtf8(v, n);
    }

    public void WriteCompactNullableString(string? v)
    {
        if (v is null) { WriteUnsignedVarInt(0); return; }
        WriteCompactString(v);
    }

    public void WriteNullableBytes(ReadOnlySpan<byte> v, bool isNull)
    {
        if (isNull) { WriteInt32(-1); return; }
        WriteInt32(v.Length);
        WriteRaw(v);
    }

    public void WriteCompactNullableBytes(ReadOnlySpan<byte> v, bool isNull)
    {
        if (isNull) { WriteUnsignedVarInt(0); return; }
        WriteUnsignedVarInt((uint)v.Length + 1);
        WriteRaw(v);
    }

    /// <summary>A records field (nullable bytes): see <see cref="WriteRecordsBody"/>.</summary>
    public void WriteNullableRecords(ReadOnlyMemory<byte>? v)
    {
        if (v is not { } records) { WriteInt32(-1); return; }
        WriteInt32(records.Length);
        WriteRecordsBody(records);
    }

    /// <summary>A records field in a flexible version (compact nullable bytes): see <see cref="WriteRecordsBody"/>.</summary>
    public void WriteCompactNullableRecords(ReadOnlyMemory<byte>? v)
    {
        if (v is not { } records) { WriteUnsignedVarInt(0); return; }
        WriteUnsignedVarInt((uint)records.Length + 1);
        WriteRecordsBody(records);
    }

    /// <summary>
    /// A records field's bytes. An output implementing <see cref="IByReferenceBufferWriter"/> is offered the memory
    /// itself first and may send it by reference (zero copy) if it owns a segment for exactly that memory; else copied.
    /// </summary>
    private void WriteRecordsBody(ReadOnlyMemory<byte> records)
    {
        if (records.Length >= IByReferenceBufferWriter.MinimumLength && _output is IByReferenceBufferWriter byRef)
        {
            Flush();
            if (byRef.TryWriteByReference(records)) { _flushed += records.Length; return; }
        }
        WriteRaw(records.Span);
    }

    public void WriteArrayLength(int count) => WriteInt32(count);

    /// <summary>Compact array length: N+1, 0 for null (pass -1).</summary>
    public void WriteCompactArrayLength(int count) => WriteUnsignedVarInt((uint)(count + 1));
}

/// <summary>Sizes of variable-length encodings, for <c>Size(version)</c>.</summary>
public static class VarInt
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int SizeOfUnsigned(uint v) => v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5;

    public static int SizeOfUnsigned(ulong v)
    {
        int n = 1;
        while (v >= 0x80) { v >>= 7; n++; }
        return n;
    }

    public static int SizeOf(int v) => SizeOfUnsigned((uint)((v << 1) ^ (v >> 31)));
    public static int SizeOf(long v) => SizeOfUnsigned((ulong)((v << 1) ^ (v >> 63)));

    /// <summary>
    /// UTF-8 length of a string field; throws when it exceeds <see cref="KafkaWriter.MaxStringBytes"/>. Generated
    /// <c>Size</c> methods call this, and the connection sizes a response before writing a byte of it, so a string too
    /// long for the wire is found while the response can still be replaced, not halfway through the socket's stream.
    /// </summary>
    public static int SizeOfString(string v)
    {
        // Three UTF-8 bytes at most per UTF-16 char (a surrogate pair is two chars, four bytes).
        if (v.Length <= KafkaWriter.MaxStringBytes / 3) return v.Length == 0 ? 0 : Encoding.UTF8.GetByteCount(v);
        int n = Encoding.UTF8.GetByteCount(v);
        if (n > KafkaWriter.MaxStringBytes) ThrowStringTooLong(n);
        return n;
    }

    public static int SizeOfCompactString(string? v)
    {
        if (v is null) return 1;
        int n = SizeOfString(v);
        return SizeOfUnsigned((uint)n + 1) + n;
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private static void ThrowStringTooLong(int n) =>
        throw new StringTooLongException($"String of {n} bytes is longer than the protocol's {KafkaWriter.MaxStringBytes}.");

    /// <summary>
    /// Decodes a zigzag varint from a span without a reader (record batches walk records this way).
    /// Returns false when the span ends first; throws on a varint longer than 5 bytes.
    /// </summary>
    public static bool TryReadVarInt(ReadOnlySpan<byte> src, out int value, out int bytesRead)
    {
        uint result = 0;
        for (int i = 0; i < 5; i++)
        {
            if (i >= src.Length) { value = 0; bytesRead = 0; return false; }
            byte b = src[i];
            if (i == 4 && b > 0x0f) ThrowHelper.BadVarint();
            result |= (uint)(b & 0x7f) << (7 * i);
            if ((b & 0x80) == 0)
            {
                value = (int)(result >> 1) ^ -(int)(result & 1);
                bytesRead = i + 1;
                return true;
            }
        }
        ThrowHelper.BadVarint();
        value = 0; bytesRead = 0;
        return false;
    }

    public static bool TryReadVarLong(ReadOnlySpan<byte> src, out long value, out int bytesRead)
    {
        ulong result = 0;
        for (int i = 0; i < 10; i++)
        {
            if (i >= src.Length) { value = 0; bytesRead = 0; return false; }
            byte b = src[i];
            if (i == 9 && b > 0x01) ThrowHelper.BadVarint();
            result |= (ulong)(b & 0x7f) << (7 * i);
            if ((b & 0x80) == 0)
            {
                value = (long)(result >> 1) ^ -(long)(result & 1);
                bytesRead = i + 1;
                return true;
            }
        }
        ThrowHelper.BadVarint();
        value = 0; bytesRead = 0;
        return false;
    }

    /// <summary>Writes a zigzag varint into a span; returns bytes written.</summary>
    public static int WriteVarInt(Span<byte> dst, int v) => WriteUnsigned(dst, (uint)((v << 1) ^ (v >> 31)));

    public static int WriteVarLong(Span<byte> dst, long v) => WriteUnsigned(dst, (ulong)((v << 1) ^ (v >> 63)));

    public static int WriteUnsigned(Span<byte> dst, uint u)
    {
        int i = 0;
        while (u >= 0x80) { dst[i++] = (byte)(u | 0x80); u >>= 7; }
        dst[i++] = (byte)u;
        return i;
    }

    public static int WriteUnsigned(Span<byte> dst, ulong u)
    {
        int i = 0;
        while (u >= 0x80) { dst[i++] = (byte)(u | 0x80); u >>= 7; }
        dst[i++] = (byte)u;
        return i;
    }
}

/// <summary>
/// An <see cref="IBufferWriter{T}"/> that can send a large byte field (a Fetch response's records, read from a
/// mapped log segment) by reference instead of having <see cref="KafkaWriter"/> copy it into its buffers.
/// </summary>
public interface IByReferenceBufferWriter
{
    /// <summary>Fields shorter than this are always copied (a copy is cheaper than a separate send).</summary>
    public const int MinimumLength = 32 * 1024;

    /// <summary>
    /// Called with everything written so far committed (Advance), for a records field. True when the output took
    /// <paramref name="records"/> by reference — it holds a segment for exactly this memory (same memory object,
    /// start and length) that stays alive until sent; false to have the bytes copied.
    /// </summary>
    bool TryWriteByReference(ReadOnlyMemory<byte> records);
}
