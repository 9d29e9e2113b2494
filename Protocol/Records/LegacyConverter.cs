using System.Buffers;
using System.Buffers.Binary;
using Kayak.Protocol.Compression;

namespace Kayak.Protocol.Records;

/// <summary>Knobs for <see cref="LegacyConverter.ToV2"/>.</summary>
public sealed class LegacyConversionOptions
{
    public long BaseOffset { get; init; }
    public int PartitionLeaderEpoch { get; init; } = -1;
    /// <summary>Codec of the new batch; null keeps the source codec (Kafka's compression.type=producer).</summary>
    public CompressionType? TargetCompression { get; init; }
    public long MaxDecompressedBytes { get; init; } = DecompressionOptions.DefaultMaxOutputBytes;
}

/// <summary>
/// Up-conversion of an old client's v0/v1 message set into one magic v2 batch, as Kafka's
/// LogValidator does when the log format is v2 (buildRecordsAndAssignOffsets): offsets become
/// deltas 0..n-1 from <see cref="LegacyConversionOptions.BaseOffset"/>, timestamps are kept
/// (v0 has none: -1), no producer id, no headers.
/// </summary>
public static class LegacyConverter
{
    /// <summary>Returns the number of records written (0 writes nothing).</summary>
    public static int ToV2(ReadOnlySpan<byte> messageSet, IBufferWriter<byte> output, LegacyConversionOptions? options = null)
    {
        options ??= new LegacyConversionOptions();
        // First pass only determines the source codec (Kafka takes it from the wrappers).
        var sourceCodec = CompressionType.None;
        var scan = messageSet;
        while (LegacyMessageSet.TryReadEntry(scan, out var m, out int size))
        {
            if (m.Compression != CompressionType.None) sourceCodec = m.Compression;
            scan = scan[size..];
        }
        bool logAppend = false;
        long logAppendTime = -1;
        using var builder = new RecordBatchBuilder(new RecordBatchOptions
        {
            BaseOffset = options.BaseOffset,
            PartitionLeaderEpoch = options.PartitionLeaderEpoch,
            Compression = options.TargetCompression ?? sourceCodec,
        });
        var e = LegacyMessageSet.Enumerate(messageSet, new LegacyReadOptions { MaxDecompressedBytes = options.MaxDecompressedBytes });
        try
        {
            while (e.MoveNext())
            {
                var m = e.Current;
                if (m.TimestampType == TimestampType.LogAppendTime) { logAppend = true; logAppendTime = Math.Max(logAppendTime, m.Timestamp); }
                builder.Append(m.Timestamp, m.Key, m.KeyIsNull, m.Value, m.ValueIsNull);
            }
        }
        finally { e.Dispose(); }
        if (builder.Count == 0) return 0;
        if (!logAppend) { builder.Build(output); return builder.Count; }
        using var tmp = new PooledBufferWriter();
        builder.Build(tmp);
        RecordBatchRewriter.SetLogAppendTime(tmp.WrittenSpanMutable, logAppendTime);
        output.WriteContiguous(tmp.WrittenSpan);
        return builder.Count;
    }
}

/// <summary>Knobs for <see cref="DownConverter.ToMagic"/>.</summary>
public sealed class DownConversionOptions
{
    public long MaxDecompressedBytes { get; init; } = DecompressionOptions.DefaultMaxOutputBytes;
}

/// <summary>
/// Down-conversion for consumers fetching with Fetch v0-v3, which only understand magic 0/1
/// (Kafka's RecordsUtil.downConvert / LazyDownConversionRecords). Per v2 batch: control batches
/// are dropped, headers are dropped, each record becomes a legacy message with its absolute offset;
/// compressed batches become one wrapper message with the same codec whose inner offsets are
/// relative for magic 1 and absolute for magic 0 and whose offset is the last inner record's.
/// Magic 0 drops timestamps; LZ4 wrappers for magic 0 carry the broken header checksum (KAFKA-1493).
/// zstd cannot be expressed in magic 0/1: Kafka answers UNSUPPORTED_COMPRESSION_TYPE to such
/// fetches before converting, so this throws. A partial trailing batch is ignored.
/// </summary>
public static class DownConverter
{
    /// <summary>Returns the number of messages written.</summary>
    public static int ToMagic(ReadOnlySpan<byte> v2Batches, byte magic, IBufferWriter<byte> output, DownConversionOptions? options = null)
    {
        if (magic > 1) throw new ArgumentOutOfRangeException(nameof(magic), "Down-conversion targets magic 0 or 1.");
        options ??= new DownConversionOptions();
        int written = 0;
        using var records = new PooledBufferWriter();
        using var inner = new PooledBufferWriter();
        var rest = v2Batches;
        while (RecordBatch.TryReadBatch(rest, out var h, out int size))
        {
            var batch = rest[..size];
            rest = rest[size..];
            if (h.Magic != RecordBatch.MagicV2)
            {
                // Already old-format (e.g. a log written before an upgrade): pass through when not newer than asked.
                if (batch[RecordBatchHeader.MagicOffset] > magic) throw new ProtocolException("Cannot down-convert magic 1 messages to magic 0");
                output.WriteContiguous(batch);
                continue;
            }
            if (h.IsControl) continue;
            var codec = h.Compression;
            if (codec == CompressionType.Zstd) throw new ProtocolException("zstd batches cannot be down-converted to magic 0/1 (UNSUPPORTED_COMPRESSION_TYPE)");
            records.Clear();
            Compressor.Decompress(codec, batch[RecordBatchHeader.Size..], records, options.MaxDecompressedBytes);
            bool logAppend = h.IsLogAppendTime;
            var target = codec == CompressionType.None ? output : inner;
            inner.Clear();
            long lastOffset = h.BaseOffset;
            long firstOffset = -1;
            foreach (var r in new RecordEnumerator(records.WrittenSpan, h.RecordsCount))
            {
                long offset = h.BaseOffset + r.OffsetDelta;
                if (firstOffset < 0) firstOffset = offset;
                long ts = logAppend ? h.MaxTimestamp : h.BaseTimestamp + r.TimestampDelta;
                long msgOffset = codec == CompressionType.None || magic == 0 ? offset : offset - firstOffset;
                WriteMessage(target, msgOffset, magic, (sbyte)(magic == 1 && logAppend ? 0x8 : 0), ts,
                    r.Key, r.KeyIsNull, r.Value, r.ValueIsNull);
                lastOffset = offset;
                written++;
            }
            if (codec != CompressionType.None && firstOffset >= 0)
            {
                using var compressed = new PooledBufferWriter(inner.WrittenCount / 2 + 64);
                Compressor.Compress(codec, inner.WrittenSpan, compressed, new CompressionOptions { Lz4LegacyHeaderChecksum = magic == 0 });
                sbyte attrs = (sbyte)((int)codec | (magic == 1 && logAppend ? 0x8 : 0));
                WriteMessage(output, lastOffset, magic, attrs, h.MaxTimestamp, default, true, compressed.WrittenSpan, false);
            }
        }
        return written;
    }

    /// <summary>Writes one legacy message (LegacyRecord.write) including its CRC-32.</summary>
    public static void WriteMessage(IBufferWriter<byte> output, long offset, byte magic, sbyte attributes, long timestamp,
        ReadOnlySpan<byte> key, bool keyIsNull, ReadOnlySpan<byte> value, bool valueIsNull)
    {
        int size = 4 + 1 + 1 + (magic == 1 ? 8 : 0) + 4 + (keyIsNull ? 0 : key.Length) + 4 + (valueIsNull ? 0 : value.Length);
        int total = LegacyMessageSet.LogOverhead + size;
        var s = output.GetSpan(total)[..total];
        BinaryPrimitives.WriteInt64BigEndian(s, offset);
        BinaryPrimitives.WriteInt32BigEndian(s[8..], size);
        int p = 16;
        s[p++] = magic;
        s[p++] = (byte)attributes;
        if (magic == 1) { BinaryPrimitives.WriteInt64BigEndian(s[p..], timestamp); p += 8; }
        p = WriteBytes(s, p, key, keyIsNull);
        p = WriteBytes(s, p, value, valueIsNull);
        BinaryPrimitives.WriteUInt32BigEndian(s[12..], Crc32.Compute(s[16..p]));
        output.Advance(total);
    }

    private static int WriteBytes(Span<byte> s, int p, ReadOnlySpan<byte> data, bool isNull)
    {
        BinaryPrimitives.WriteInt32BigEndian(s[p..], isNull ? -1 : data.Length);
        p += 4;
        if (isNull) return p;
        data.CopyTo(s[p..]);
        return p + data.Length;
    }
}
