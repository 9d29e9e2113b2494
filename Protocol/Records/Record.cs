namespace Kayak.Protocol.Records;

/// <summary>
/// One magic v2 record viewed in place (DefaultRecord): spans point into the (decompressed)
/// records section, so nothing is copied. Key/Value carry a null flag because Kafka distinguishes
/// a null key (length -1) from an empty one.
/// </summary>
public readonly ref struct Record
{
    public Record(sbyte attributes, long timestampDelta, int offsetDelta, ReadOnlySpan<byte> key, bool keyIsNull,
        ReadOnlySpan<byte> value, bool valueIsNull, int headerCount, ReadOnlySpan<byte> headersSection, int sizeInBytes)
    {
        Attributes = attributes;
        TimestampDelta = timestampDelta;
        OffsetDelta = offsetDelta;
        Key = key;
        KeyIsNull = keyIsNull;
        Value = value;
        ValueIsNull = valueIsNull;
        HeaderCount = headerCount;
        HeadersSection = headersSection;
        SizeInBytes = sizeInBytes;
    }

    public sbyte Attributes { get; }
    public long TimestampDelta { get; }
    public int OffsetDelta { get; }
    public ReadOnlySpan<byte> Key { get; }
    public bool KeyIsNull { get; }
    public ReadOnlySpan<byte> Value { get; }
    public bool ValueIsNull { get; }
    public int HeaderCount { get; }
    /// <summary>Raw header bytes after the count (already validated by the enumerator).</summary>
    public ReadOnlySpan<byte> HeadersSection { get; }
    /// <summary>Bytes of the record body (excluding its length varint).</summary>
    public int SizeInBytes { get; }

    public HeaderEnumerator Headers => new(HeadersSection, HeaderCount);
}

/// <summary>A record header viewed in place. Header keys are non-null UTF-8 strings; values may be null.</summary>
public readonly ref struct RecordHeaderView
{
    public RecordHeaderView(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, bool valueIsNull)
    {
        Key = key; Value = value; ValueIsNull = valueIsNull;
    }

    public ReadOnlySpan<byte> Key { get; }
    public ReadOnlySpan<byte> Value { get; }
    public bool ValueIsNull { get; }
    public string KeyString => System.Text.Encoding.UTF8.GetString(Key);
}

/// <summary>Enumerates headers of one record (foreach-able).</summary>
public ref struct HeaderEnumerator
{
    private ReadOnlySpan<byte> _rest;
    private int _remaining;
    private RecordHeaderView _current;

    public HeaderEnumerator(ReadOnlySpan<byte> section, int count) { _rest = section; _remaining = count; _current = default; }

    public readonly HeaderEnumerator GetEnumerator() => this;
    public readonly RecordHeaderView Current => _current;

    public bool MoveNext()
    {
        if (_remaining <= 0) return false;
        _remaining--;
        if (!RecordParser.TryReadHeader(_rest, out int used, out var k, out var v, out bool vNull))
            ThrowHelper.Malformed("Malformed record header");
        _rest = _rest[used..];
        _current = new RecordHeaderView(k, v, vNull);
        return true;
    }
}

/// <summary>
/// Lazy enumerator over a v2 records section (after the 61-byte header, decompressed). Throws
/// <see cref="CorruptRecordException"/> on malformed records, like Java's DefaultRecord.readFrom
/// raising InvalidRecordException; the total count is checked by <see cref="RecordBatch.Validate"/>.
/// </summary>
public ref struct RecordEnumerator
{
    private ReadOnlySpan<byte> _rest;
    private int _remaining;
    private Record _current;

    public RecordEnumerator(ReadOnlySpan<byte> recordsSection, int count)
    {
        _rest = recordsSection; _remaining = count; _current = default;
    }

    public readonly RecordEnumerator GetEnumerator() => this;
    public readonly Record Current => _current;
    /// <summary>Bytes not consumed yet (non-empty after the last record means trailing garbage).</summary>
    public readonly int RemainingBytes => _rest.Length;

    public bool MoveNext()
    {
        if (_remaining <= 0) return false;
        _remaining--;
        _current = RecordParser.ReadRecord(_rest, out int used);
        _rest = _rest[used..];
        return true;
    }
}

internal static class RecordParser
{
    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    internal static void Corrupt(string what) => throw new CorruptRecordException(what);

    internal static Record ReadRecord(ReadOnlySpan<byte> src, out int consumed)
    {
        if (!VarInt.TryReadVarInt(src, out int length, out int n)) Corrupt("Truncated record length");
        if (length < 0 || length > src.Length - n) Corrupt($"Invalid record size {length} (remaining {src.Length - n} bytes)");
        var body = src.Slice(n, length);
        consumed = n + length;
        int pos = 0;
        if (body.Length < 1) Corrupt("Truncated record");
        sbyte attributes = (sbyte)body[pos++];
        if (!VarInt.TryReadVarLong(body[pos..], out long tsDelta, out n)) Corrupt("Truncated record timestamp delta");
        pos += n;
        if (!VarInt.TryReadVarInt(body[pos..], out int offsetDelta, out n)) Corrupt("Truncated record offset delta");
        pos += n;
        var key = ReadBytes(body, ref pos, out bool keyNull, "key");
        var value = ReadBytes(body, ref pos, out bool valueNull, "value");
        if (!VarInt.TryReadVarInt(body[pos..], out int headerCount, out n)) Corrupt("Truncated header count");
        pos += n;
        if (headerCount < 0) Corrupt($"Invalid negative header count {headerCount}");
        // Each header needs at least 2 bytes; reject impossible counts before walking.
        if (headerCount > (body.Length - pos) / 2) Corrupt($"Header count {headerCount} exceeds record size");
        var headers = body[pos..];
        int hp = 0;
        for (int i = 0; i < headerCount; i++)
        {
            if (!TryReadHeader(headers[hp..], out int used, out _, out _, out _)) Corrupt("Malformed record header");
            hp += used;
        }
        // DefaultRecord.readFrom: the declared size must be consumed exactly.
        if (hp != headers.Length) Corrupt($"Invalid record size: {headers.Length - hp} unread bytes after headers");
        return new Record(attributes, tsDelta, offsetDelta, key, keyNull, value, valueNull, headerCount, headers, length);
    }

    private static ReadOnlySpan<byte> ReadBytes(ReadOnlySpan<byte> body, scoped ref int pos, out bool isNull, string what)
    {
        if (!VarInt.TryReadVarInt(body[pos..], out int len, out int n)) Corrupt($"Truncated record {what} length");
        pos += n;
        if (len < 0)
        {
            if (len != -1) Corrupt($"Invalid record {what} length {len}");
            isNull = true;
            return default;
        }
        if (len > body.Length - pos) Corrupt($"Record {what} length {len} exceeds record size");
        isNull = false;
        var s = body.Slice(pos, len);
        pos += len;
        return s;
    }

    /// <summary>Reads one header; false when malformed (null key, bad lengths, truncated).</summary>
    internal static bool TryReadHeader(ReadOnlySpan<byte> src, out int consumed, out ReadOnlySpan<byte> key, out ReadOnlySpan<byte> value, out bool valueIsNull)
    {
        key = default; value = default; valueIsNull = false; consumed = 0;
        if (!VarInt.TryReadVarInt(src, out int klen, out int n)) return false;
        if (klen < 0 || klen > src.Length - n) return false; // null header keys are invalid (DefaultRecord)
        key = src.Slice(n, klen);
        int pos = n + klen;
        if (!VarInt.TryReadVarInt(src[pos..], out int vlen, out n)) return false;
        pos += n;
        if (vlen < 0)
        {
            if (vlen != -1) return false;
            valueIsNull = true;
            consumed = pos;
            return true;
        }
        if (vlen > src.Length - pos) return false;
        value = src.Slice(pos, vlen);
        consumed = pos + vlen;
        return true;
    }
}
