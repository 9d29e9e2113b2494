using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Text;

namespace Kayak.Protocol;

/// <summary>
/// Reads Kafka protocol primitives from one contiguous frame. The frame is held as memory so
/// <c>records</c> fields can be sliced without a copy. Every length is checked against what is
/// left in the frame before anything is allocated, so a hostile length costs nothing.
/// </summary>
public ref struct KafkaReader
{
    private readonly ReadOnlyMemory<byte> _memory;
    private readonly ReadOnlySpan<byte> _span;
    private int _position;

    public KafkaReader(ReadOnlyMemory<byte> frame)
    {
        _memory = frame;
        _span = frame.Span;
        _position = 0;
    }

    public readonly int Position => _position;
    public readonly int Remaining => _span.Length - _position;
    public readonly int Length => _span.Length;
    public readonly bool End => _position >= _span.Length;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ReadOnlySpan<byte> Take(int count)
    {
        if ((uint)count > (uint)(_span.Length - _position)) ThrowHelper.Truncated(count, _span.Length - _position);
        var s = _span.Slice(_position, count);
        _position += count;
        return s;
    }

    public void Skip(int count) => Take(count);

    public sbyte ReadInt8() => (sbyte)Take(1)[0];
    public byte ReadUInt8() => Take(1)[0];
    public bool ReadBool() => Take(1)[0] != 0;
    public short ReadInt16() => BinaryPrimitives.ReadInt16BigEndian(Take(2));
    public ushort ReadUInt16() => BinaryPrimitives.ReadUInt16BigEndian(Take(2));
    public int ReadInt32() => BinaryPrimitives.ReadInt32BigEndian(Take(4));
    public uint ReadUInt32() => BinaryPrimitives.ReadUInt32BigEndian(Take(4));
    public long ReadInt64() => BinaryPrimitives.ReadInt64BigEndian(Take(8));
    public double ReadFloat64() => BinaryPrimitives.ReadDoubleBigEndian(Take(8));
    public Uuid ReadUuid() => Uuid.Read(Take(16));

    /// <summary>Unsigned LEB128 varint, at most 5 bytes.</summary>
    public uint ReadUnsignedVarInt()
    {
        uint result = 0;
        for (int shift = 0; shift < 35; shift += 7)
        {
            byte b = Take(1)[0];
            if (shift == 28 && b > 0x0f) ThrowHelper.BadVarint();
            result |= (uint)(b & 0x7f) << shift;
            if ((b & 0x80) == 0) return result;
        }
        ThrowHelper.BadVarint();
        return 0;
    }

    /// <summary>Unsigned LEB128 varlong, at most 10 bytes.</summary>
    public ulong ReadUnsignedVarLong()
    {
        ulong result = 0;
        for (int shift = 0; shift < 70; shift += 7)
        {
            byte b = Take(1)[0];
            if (shift == 63 && b > 0x01) ThrowHelper.BadVarint();
            result |= (ulong)(b & 0x7f) << shift;
            if ((b & 0x80) == 0) return result;
        }
        ThrowHelper.BadVarint();
        return 0;
    }

    /// <summary>Zigzag-encoded signed varint (record fields).</summary>
    public int ReadVarInt() { uint v = ReadUnsignedVarInt(); return (int)(v >> 1) ^ -(int)(v & 1); }

    /// <summary>Zigzag-encoded signed varlong (record fields).</summary>
    public long ReadVarLong() { ulong v = ReadUnsignedVarLong(); return (long)(v >> 1) ^ -(long)(v & 1); }

    private string DecodeString(int length) => length == 0 ? string.Empty : Encoding.UTF8.GetString(Take(length));

    private int CheckLength(long length)
    {
        if (length < 0 || length > Remaining) ThrowHelper.BadLength(length, Remaining);
        return (int)length;
    }

    public string ReadString()
    {
        short len = ReadInt16();
        if (len < 0) ThrowHelper.Malformed("Null value for a non-nullable string.");
        return DecodeString(CheckLength(len));
    }

    public string? ReadNullableString()
    {
        short len = ReadInt16();
        return len < 0 ? null : DecodeString(CheckLength(len));
    }

    public string ReadCompactString()
    {
        uint len = ReadUnsignedVarInt();
        if (len == 0) ThrowHelper.Malformed("Null value for a non-nullable compact string.");
        return DecodeString(CheckCompactStringLength(len - 1L));
    }

    public string? ReadCompactNullableString()
    {
        uint len = ReadUnsignedVarInt();
        return len == 0 ? null : DecodeString(CheckCompactStringLength(len - 1L));
    }

    /// <summary>
    /// A compact string's length could say up to 4 GB, but every Kafka string is at most 32,767 UTF-8 bytes, compact
    /// or not: Kafka's generated readers refuse longer ones ("string field ... had invalid length"), so the request
    /// does not parse and the connection closes, and its writers refuse to send them, so nothing a client sends
    /// legitimately and nothing echoed back from it can be longer (issue 15, K14).
    /// </summary>
    private int CheckCompactStringLength(long length)
    {
        if (length > KafkaWriter.MaxStringBytes) ThrowHelper.Malformed($"String of {length} bytes is longer than the protocol's {KafkaWriter.MaxStringBytes}.");
        return CheckLength(length);
    }

    /// <summary>INT32-length bytes; null when the length is -1.</summary>
    public byte[]? ReadNullableBytes()
    {
        int len = ReadInt32();
        return len < 0 ? null : Take(CheckLength(len)).ToArray();
    }

    public byte[]? ReadCompactNullableBytes()
    {
        uint len = ReadUnsignedVarInt();
        return len == 0 ? null : Take(CheckLength(len - 1L)).ToArray();
    }

    /// <summary>INT32-length bytes sliced from the frame without a copy (records fields). Valid while the frame is.</summary>
    public ReadOnlyMemory<byte>? ReadNullableMemory()
    {
        int len = ReadInt32();
        return len < 0 ? null : ReadMemory(len);
    }

    /// <summary>Compact (uvarint length+1) bytes sliced from the frame without a copy.</summary>
    public ReadOnlyMemory<byte>? ReadCompactNullableMemory()
    {
        uint len = ReadUnsignedVarInt();
        return len == 0 ? null : ReadMemory(CheckLength(len - 1L));
    }

    /// <summary>A raw slice of the frame, no copy.</summary>
    public ReadOnlyMemory<byte> ReadMemory(int count)
    {
        int n = CheckLength(count);
        var m = _memory.Slice(_position, n);
        _position += n;
        return m;
    }

    /// <summary>
    /// INT32 array length; -1 is null. A count larger than the bytes left cannot be honest
    /// (every element takes at least one byte), so it is rejected before any allocation.
    /// </summary>
    public int ReadArrayLength()
    {
        int len = ReadInt32();
        if (len < -1 || len > Remaining) ThrowHelper.BadLength(len, Remaining);
        return len;
    }

    /// <summary>
    /// Initial capacity for a list of <paramref name="count"/> elements about to be read. A count may claim one
    /// element per byte left in the frame (up to socket.request.max.bytes); presizing by it would allocate 8 bytes
    /// per claimed element before the first one fails to parse, so large lists start small and grow as they fill.
    /// </summary>
    public static int InitialCapacity(int count) => count < MaxInitialCapacity ? count : MaxInitialCapacity;

    private const int MaxInitialCapacity = 1024;

    /// <summary>Compact array length (uvarint N+1); -1 is null.</summary>
    public int ReadCompactArrayLength()
    {
        uint len = ReadUnsignedVarInt();
        if (len == 0) return -1;
        if (len - 1 > (uint)Remaining) ThrowHelper.BadLength(len - 1L, Remaining);
        return (int)(len - 1);
    }

    /// <summary>Reads a tagged-field buffer's raw bytes (after its uvarint size) for an unknown tag.</summary>
    public TaggedField ReadUnknownTaggedField(int tag, int size) => new(tag, Take(CheckLength(size)).ToArray());
}
