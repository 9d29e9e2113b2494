using System.Buffers;
using System.Buffers.Binary;
using Kayak.Protocol.Compression;

namespace Kayak.Protocol.Records;

/// <summary>
/// One magic v0/v1 message (Kafka's LegacyRecord) viewed in place:
/// offset int64, size int32, crc int32 (CRC-32 over magic..end), magic int8, attributes int8,
/// [timestamp int64 in v1], key bytes, value bytes (int32 lengths, -1 = null).
/// </summary>
public readonly ref struct LegacyMessage
{
    public LegacyMessage(long offset, sbyte magic, sbyte attributes, long timestamp, uint crc,
        ReadOnlySpan<byte> key, bool keyIsNull, ReadOnlySpan<byte> value, bool valueIsNull)
    {
        Offset = offset; Magic = magic; Attributes = attributes; Timestamp = timestamp; Crc = crc;
        Key = key; KeyIsNull = keyIsNull; Value = value; ValueIsNull = valueIsNull;
    }

    public long Offset { get; }
    public sbyte Magic { get; }
    public sbyte Attributes { get; }
    /// <summary>-1 (NO_TIMESTAMP) for magic 0.</summary>
    public long Timestamp { get; }
    public uint Crc { get; }
    public ReadOnlySpan<byte> Key { get; }
    public bool KeyIsNull { get; }
    public ReadOnlySpan<byte> Value { get; }
    public bool ValueIsNull { get; }
    public CompressionType Compression => (CompressionType)(Attributes & 0x7);
    public TimestampType TimestampType => Magic > 0 && (Attributes & 0x8) != 0 ? TimestampType.LogAppendTime : TimestampType.CreateTime;
}

/// <summary>Knobs for reading legacy message sets.</summary>
public sealed class LegacyReadOptions
{
    public static readonly LegacyReadOptions Default = new();
    public long MaxDecompressedBytes { get; init; } = DecompressionOptions.DefaultMaxOutputBytes;
}

/// <summary>Magic v0/v1 message set parsing.</summary>
public static class LegacyMessageSet
{
    public const int LogOverhead = RecordBatchHeader.LogOverhead;
    /// <summary>crc + magic + attributes + key length + value length.</summary>
    public const int MinMessageSizeV0 = 14;
    public const int MinMessageSizeV1 = 22;

    /// <summary>
    /// Reads the next shallow entry. False = need more bytes. Throws <see cref="CorruptRecordException"/>
    /// for a bad CRC, magic, or impossible lengths (LegacyRecord.ensureValid).
    /// </summary>
    public static bool TryReadEntry(ReadOnlySpan<byte> src, out LegacyMessage message, out int entrySize)
    {
        message = default; entrySize = 0;
        if (src.Length < LogOverhead) return false;
        long offset = BinaryPrimitives.ReadInt64BigEndian(src);
        int size = BinaryPrimitives.ReadInt32BigEndian(src[8..]);
        if (size < MinMessageSizeV0) throw new CorruptRecordException($"Message size {size} is less than the minimum {MinMessageSizeV0}");
        if (size > int.MaxValue - LogOverhead) throw new CorruptRecordException($"Message size {size} is too large");
        if (src.Length - LogOverhead < size) return false;
        var m = src.Slice(LogOverhead, size);
        uint crc = BinaryPrimitives.ReadUInt32BigEndian(m);
        sbyte magic = (sbyte)m[4];
        if (magic is not (0 or 1)) throw new CorruptRecordException($"Invalid legacy magic {magic}");
        if (magic == 1 && size < MinMessageSizeV1) throw new CorruptRecordException($"Message size {size} is less than the v1 minimum {MinMessageSizeV1}");
        uint computed = Crc32.Compute(m[4..]);
        if (computed != crc) throw new CorruptRecordException($"Message is corrupt (stored crc = {crc}, computed crc = {computed})");
        sbyte attributes = (sbyte)m[5];
        int pos = 6;
        long ts = -1;
        if (magic == 1) { ts = BinaryPrimitives.ReadInt64BigEndian(m[pos..]); pos += 8; }
        var key = ReadBytes(m, ref pos, out bool keyNull);
        if (m.Length - pos < 4) throw new CorruptRecordException("Truncated message value length");
        var value = ReadBytes(m, ref pos, out bool valueNull);
        if (pos != m.Length) throw new CorruptRecordException("Message size does not match its key and value");
        message = new LegacyMessage(offset, magic, attributes, ts, crc, key, keyNull, value, valueNull);
        entrySize = LogOverhead + size;
        return true;
    }

    private static ReadOnlySpan<byte> ReadBytes(ReadOnlySpan<byte> m, scoped ref int pos, out bool isNull)
    {
        if (m.Length - pos < 4) throw new CorruptRecordException("Truncated message length field");
        int len = BinaryPrimitives.ReadInt32BigEndian(m[pos..]);
        pos += 4;
        if (len < 0)
        {
            if (len != -1) throw new CorruptRecordException($"Invalid message length {len}");
            isNull = true;
            return default;
        }
        if (len > m.Length - pos) throw new CorruptRecordException($"Message length {len} exceeds the message size");
        isNull = false;
        var s = m.Slice(pos, len);
        pos += len;
        return s;
    }

    /// <summary>Deep enumeration: compressed wrappers are expanded into their inner messages with absolute offsets.</summary>
    public static LegacyRecordEnumerator Enumerate(ReadOnlySpan<byte> messageSet, LegacyReadOptions? options = null) =>
        new(messageSet, options ?? LegacyReadOptions.Default);
}

/// <summary>
/// Deep iterator over a v0/v1 message set (AbstractLegacyRecordBatch.DeepRecordsIterator). Inner
/// offsets of magic 1 wrappers are relative: absolute = wrapperOffset - lastInnerOffset + inner
/// (KIP-31); when that base would be negative (a producer-side set whose wrapper offset is still 0)
/// the relative offsets are reported as-is, like kafka-python. Inner timestamps of a LogAppendTime
/// wrapper are the wrapper's. Nested compression is rejected. Dispose returns the scratch buffer.
/// A partial trailing entry ends the iteration (fetch responses may cut the last one).
/// </summary>
public ref struct LegacyRecordEnumerator
{
    private ReadOnlySpan<byte> _outer;
    private ReadOnlySpan<byte> _inner;
    private readonly LegacyReadOptions _options;
    private PooledBufferWriter? _buffer;
    private long _innerBase;
    private long _wrapperTimestamp;
    private bool _wrapperLogAppend;
    private LegacyMessage _current;

    internal LegacyRecordEnumerator(ReadOnlySpan<byte> set, LegacyReadOptions options)
    {
        _outer = set; _inner = default; _options = options; _buffer = null; _innerBase = 0;
        _wrapperTimestamp = -1; _wrapperLogAppend = false; _current = default;
    }

    public readonly LegacyRecordEnumerator GetEnumerator() => this;
    public readonly LegacyMessage Current => _current;
    /// <summary>Compression codec of the last wrapper seen (None when only plain messages were read).</summary>
    public CompressionType LastWrapperCompression { get; private set; }

    public bool MoveNext()
    {
        while (true)
        {
            if (!_inner.IsEmpty)
            {
                if (!LegacyMessageSet.TryReadEntry(_inner, out var m, out int size))
                    throw new CorruptRecordException("Truncated message inside a compressed wrapper");
                _inner = _inner[size..];
                if (m.Compression != CompressionType.None) throw new CorruptRecordException("Nested compressed message set");
                long ts = _wrapperLogAppend ? _wrapperTimestamp : m.Timestamp;
                sbyte attrs = _wrapperLogAppend ? (sbyte)(m.Attributes | 0x8) : m.Attributes;
                _current = new LegacyMessage(m.Offset + _innerBase, m.Magic, attrs, ts, m.Crc, m.Key, m.KeyIsNull, m.Value, m.ValueIsNull);
                return true;
            }
            if (!LegacyMessageSet.TryReadEntry(_outer, out var w, out int wsize)) return false;
            _outer = _outer[wsize..];
            if (w.Compression == CompressionType.None) { _current = w; return true; }
            if (w.Compression > CompressionType.Lz4) throw new CorruptRecordException($"Compression {w.Compression} is not valid for magic {w.Magic}");
            LastWrapperCompression = w.Compression;
            if (w.ValueIsNull) throw new CorruptRecordException("Compressed wrapper message has a null value");
            _buffer ??= new PooledBufferWriter(Math.Max(256, w.Value.Length * 4));
            _buffer.Clear();
            Compressor.Decompress(w.Compression, w.Value, _buffer, new DecompressionOptions
            {
                MaxOutputBytes = _options.MaxDecompressedBytes,
                Lz4LegacyHeaderChecksum = w.Magic == 0, // KAFKA-1493
            });
            _inner = _buffer.WrittenSpan;
            _wrapperTimestamp = w.Timestamp;
            _wrapperLogAppend = w.TimestampType == TimestampType.LogAppendTime;
            _innerBase = 0;
            if (w.Magic > 0)
            {
                long last = LastOffset(_inner);
                long b = w.Offset - last;
                _innerBase = b >= 0 ? b : 0;
            }
        }
    }

    private static long LastOffset(ReadOnlySpan<byte> set)
    {
        long last = -1;
        while (LegacyMessageSet.TryReadEntry(set, out var m, out int size)) { last = m.Offset; set = set[size..]; }
        if (!set.IsEmpty) throw new CorruptRecordException("Truncated message inside a compressed wrapper");
        return last;
    }

    public void Dispose()
    {
        _inner = default;
        _buffer?.Dispose();
        _buffer = null;
    }
}
