using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using Kayak.Protocol.Compression;

namespace Kayak.Protocol.Records;

/// <summary>Timestamp type bit of the batch attributes.</summary>
public enum TimestampType : byte
{
    CreateTime = 0,
    LogAppendTime = 1,
}

/// <summary>Batch-level fields for <see cref="RecordBatchBuilder"/>. Defaults match a non-idempotent producer.</summary>
public sealed class RecordBatchOptions
{
    /// <summary>Only magic 2 is built here; older formats go through <see cref="DownConverter"/>.</summary>
    public sbyte Magic { get; init; } = RecordBatch.MagicV2;
    public CompressionType Compression { get; init; } = CompressionType.None;
    public CompressionOptions? CompressionOptions { get; init; }
    public long BaseOffset { get; init; }
    public int PartitionLeaderEpoch { get; init; } = -1;
    public long ProducerId { get; init; } = -1;
    public short ProducerEpoch { get; init; } = -1;
    public int BaseSequence { get; init; } = -1;
    public bool IsTransactional { get; init; }
    public bool IsControl { get; init; }
    public TimestampType TimestampType { get; init; } = TimestampType.CreateTime;
    /// <summary>With LogAppendTime: the broker's append time written as maxTimestamp (Kafka also keeps baseTimestamp = first record's).</summary>
    public long? LogAppendTime { get; init; }
    /// <summary>
    /// Overrides lastOffsetDelta, so a compacted batch keeps its original last offset even when its
    /// trailing records were removed (Kafka preserves it for producer-state/sequence continuity).
    /// </summary>
    public int? LastOffsetDelta { get; init; }
}

/// <summary>An owned record header for building batches.</summary>
public readonly record struct RecordHeader(string Key, byte[]? Value);

/// <summary>Control record types (ControlRecordType): key version 0 + type.</summary>
public enum ControlRecordType : short
{
    Abort = 0,
    Commit = 1,
}

/// <summary>
/// Builds one magic v2 batch: records are encoded into a pooled buffer as they are appended,
/// then <see cref="Build"/> compresses the section (if asked), writes the 61-byte header and
/// CRC-32C. Offset deltas are 0..n-1 (or copied from source records); timestamps are stored relative to the first record's.
/// </summary>
public sealed class RecordBatchBuilder : IDisposable
{
    private readonly RecordBatchOptions _options;
    private readonly PooledBufferWriter _records = new(1024);
    private int _count;
    private int _lastOffsetDelta = -1;
    private long _baseTimestamp = -1;
    private long _maxTimestamp = -1;

    public RecordBatchBuilder(RecordBatchOptions? options = null)
    {
        _options = options ?? new RecordBatchOptions();
        if (_options.Magic != RecordBatch.MagicV2)
            throw new ArgumentException("RecordBatchBuilder writes magic 2 only; use DownConverter for magic 0/1.", nameof(options));
    }

    public int Count => _count;

    /// <summary>Appends a record; null arrays are written as null (length -1).</summary>
    public void Append(long timestamp, byte[]? key, byte[]? value, IReadOnlyList<RecordHeader>? headers = null) =>
        Append(timestamp, key, key is null, value, value is null, headers);

    public void Append(long timestamp, ReadOnlySpan<byte> key, bool keyIsNull, ReadOnlySpan<byte> value, bool valueIsNull, IReadOnlyList<RecordHeader>? headers = null) =>
        AppendCore(_lastOffsetDelta + 1, timestamp, key, keyIsNull, value, valueIsNull, headers, default, 0);

    /// <summary>
    /// Copies a record from another batch keeping its offset delta, timestamp and raw headers, e.g.
    /// when compaction retains some records (gaps allowed; Kafka's MemoryRecords.filterTo) or when the
    /// broker recompresses a batch. <paramref name="sourceBaseTimestamp"/> is the source batch's baseTimestamp.
    /// </summary>
    public void Append(in Record record, long sourceBaseTimestamp) =>
        AppendCore(record.OffsetDelta, sourceBaseTimestamp + record.TimestampDelta, record.Key, record.KeyIsNull,
            record.Value, record.ValueIsNull, null, record.HeadersSection, record.HeaderCount);

    private void AppendCore(int offsetDelta, long timestamp, ReadOnlySpan<byte> key, bool keyIsNull, ReadOnlySpan<byte> value, bool valueIsNull,
        IReadOnlyList<RecordHeader>? headers, ReadOnlySpan<byte> rawHeaders, int rawHeaderCount)
    {
        if (offsetDelta <= _lastOffsetDelta) throw new ArgumentException($"Offset delta {offsetDelta} must exceed the previous {_lastOffsetDelta}.");
        if (_count == 0) _baseTimestamp = timestamp;
        if (timestamp > _maxTimestamp) _maxTimestamp = timestamp;
        long tsDelta = timestamp - _baseTimestamp;
        int headerCount = headers?.Count ?? rawHeaderCount;

        int bodySize = 1 + VarInt.SizeOf(tsDelta) + VarInt.SizeOf(offsetDelta)
            + (keyIsNull ? 1 : VarInt.SizeOf(key.Length) + key.Length)
            + (valueIsNull ? 1 : VarInt.SizeOf(value.Length) + value.Length)
            + VarInt.SizeOf(headerCount);
        if (headers is null) bodySize += rawHeaders.Length;
        else
        {
            for (int i = 0; i < headerCount; i++)
            {
                var h = headers[i];
                int kl = Encoding.UTF8.GetByteCount(h.Key);
                bodySize += VarInt.SizeOf(kl) + kl + (h.Value is null ? 1 : VarInt.SizeOf(h.Value.Length) + h.Value.Length);
            }
        }

        Span<byte> s = _records.GetSpan(5 + bodySize);
        int p = VarInt.WriteVarInt(s, bodySize);
        s[p++] = 0; // record attributes: unused
        p += VarInt.WriteVarLong(s[p..], tsDelta);
        p += VarInt.WriteVarInt(s[p..], offsetDelta);
        p = WriteBytes(s, p, key, keyIsNull);
        p = WriteBytes(s, p, value, valueIsNull);
        p += VarInt.WriteVarInt(s[p..], headerCount);
        if (headers is null)
        {
            rawHeaders.CopyTo(s[p..]);
            p += rawHeaders.Length;
        }
        else
        {
            for (int i = 0; i < headerCount; i++)
            {
                var h = headers[i];
                int kl = Encoding.UTF8.GetByteCount(h.Key);
                p += VarInt.WriteVarInt(s[p..], kl);
                p += Encoding.UTF8.GetBytes(h.Key, s[p..]);
                p = WriteBytes(s, p, h.Value, h.Value is null);
            }
        }
        _records.Advance(p);
        _count++;
        _lastOffsetDelta = offsetDelta;
    }

    /// <summary>
    /// Appends a transaction marker (KIP-98): key = int16 version 0 + int16 type, value =
    /// EndTransactionMarker int16 version 0 + int32 coordinator epoch. The batch must be built with
    /// IsControl and IsTransactional set.
    /// </summary>
    public void AppendEndTransactionMarker(ControlRecordType type, int coordinatorEpoch, long timestamp)
    {
        Span<byte> key = stackalloc byte[4];
        BinaryPrimitives.WriteInt16BigEndian(key, 0);
        BinaryPrimitives.WriteInt16BigEndian(key[2..], (short)type);
        Span<byte> value = stackalloc byte[6];
        BinaryPrimitives.WriteInt16BigEndian(value, 0);
        BinaryPrimitives.WriteInt32BigEndian(value[2..], coordinatorEpoch);
        Append(timestamp, key, false, value, false);
    }

    private static int WriteBytes(Span<byte> s, int p, ReadOnlySpan<byte> data, bool isNull)
    {
        if (isNull) return p + VarInt.WriteVarInt(s[p..], -1);
        p += VarInt.WriteVarInt(s[p..], data.Length);
        data.CopyTo(s[p..]);
        return p + data.Length;
    }

    /// <summary>Writes the finished batch to <paramref name="output"/>; returns its size. The builder may be reused after <see cref="Reset"/>.</summary>
    public int Build(IBufferWriter<byte> output)
    {
        var o = _options;
        ReadOnlySpan<byte> body = _records.WrittenSpan;
        PooledBufferWriter? compressed = null;
        try
        {
            if (o.Compression != CompressionType.None)
            {
                compressed = new PooledBufferWriter(body.Length / 2 + 64);
                Compressor.Compress(o.Compression, body, compressed, o.CompressionOptions);
                body = compressed.WrittenSpan;
            }
            int total = RecordBatchHeader.Size + body.Length;
            Span<byte> b = output.GetSpan(total)[..total];
            short attributes = (short)((int)o.Compression
                | (o.TimestampType == TimestampType.LogAppendTime ? 0x08 : 0)
                | (o.IsTransactional ? 0x10 : 0)
                | (o.IsControl ? 0x20 : 0));
            long baseTs = _count == 0 ? -1 : _baseTimestamp;
            long maxTs = o.TimestampType == TimestampType.LogAppendTime && o.LogAppendTime is long lat ? lat : (_count == 0 ? -1 : _maxTimestamp);
            BinaryPrimitives.WriteInt64BigEndian(b, o.BaseOffset);
            BinaryPrimitives.WriteInt32BigEndian(b[RecordBatchHeader.BatchLengthOffset..], total - RecordBatchHeader.LogOverhead);
            BinaryPrimitives.WriteInt32BigEndian(b[RecordBatchHeader.PartitionLeaderEpochOffset..], o.PartitionLeaderEpoch);
            b[RecordBatchHeader.MagicOffset] = (byte)RecordBatch.MagicV2;
            BinaryPrimitives.WriteInt16BigEndian(b[RecordBatchHeader.AttributesOffset..], attributes);
            BinaryPrimitives.WriteInt32BigEndian(b[RecordBatchHeader.LastOffsetDeltaOffset..], Math.Max(o.LastOffsetDelta ?? _lastOffsetDelta, 0));
            BinaryPrimitives.WriteInt64BigEndian(b[RecordBatchHeader.BaseTimestampOffset..], baseTs);
            BinaryPrimitives.WriteInt64BigEndian(b[RecordBatchHeader.MaxTimestampOffset..], maxTs);
            BinaryPrimitives.WriteInt64BigEndian(b[RecordBatchHeader.ProducerIdOffset..], o.ProducerId);
            BinaryPrimitives.WriteInt16BigEndian(b[RecordBatchHeader.ProducerEpochOffset..], o.ProducerEpoch);
            BinaryPrimitives.WriteInt32BigEndian(b[RecordBatchHeader.BaseSequenceOffset..], o.BaseSequence);
            BinaryPrimitives.WriteInt32BigEndian(b[RecordBatchHeader.RecordsCountOffset..], _count);
            body.CopyTo(b[RecordBatchHeader.Size..]);
            BinaryPrimitives.WriteUInt32BigEndian(b[RecordBatchHeader.CrcOffset..], RecordBatch.ComputeCrc(b));
            output.Advance(total);
            return total;
        }
        finally { compressed?.Dispose(); }
    }

    /// <summary>Convenience: builds into a new array.</summary>
    public byte[] ToArray()
    {
        using var w = new PooledBufferWriter(RecordBatchHeader.Size + _records.WrittenCount + 64);
        Build(w);
        return w.WrittenSpan.ToArray();
    }

    public void Reset()
    {
        _records.Clear();
        _count = 0;
        _lastOffsetDelta = -1;
        _baseTimestamp = -1;
        _maxTimestamp = -1;
    }

    public void Dispose() => _records.Dispose();
}

/// <summary>Control record helpers (transaction markers, KIP-98).</summary>
public static class ControlRecord
{
    /// <summary>Builds a complete commit/abort marker batch as the transaction coordinator's WriteTxnMarkers asks the leader to append.</summary>
    public static int WriteEndTransactionMarker(IBufferWriter<byte> output, ControlRecordType type, long producerId, short producerEpoch,
        int coordinatorEpoch, long timestamp, long baseOffset = 0, int partitionLeaderEpoch = -1)
    {
        using var b = new RecordBatchBuilder(new RecordBatchOptions
        {
            BaseOffset = baseOffset,
            PartitionLeaderEpoch = partitionLeaderEpoch,
            ProducerId = producerId,
            ProducerEpoch = producerEpoch,
            IsTransactional = true,
            IsControl = true,
        });
        b.AppendEndTransactionMarker(type, coordinatorEpoch, timestamp);
        return b.Build(output);
    }

    /// <summary>Parses a control record key: int16 version, int16 type. False for unknown versions/short keys.</summary>
    public static bool TryReadKey(ReadOnlySpan<byte> key, out short version, out ControlRecordType type)
    {
        version = 0; type = default;
        if (key.Length < 4) return false;
        version = BinaryPrimitives.ReadInt16BigEndian(key);
        type = (ControlRecordType)BinaryPrimitives.ReadInt16BigEndian(key[2..]);
        // Kafka reads only version 0 keys; higher versions may append fields (ControlRecordType.parseTypeId).
        return version >= 0;
    }

    /// <summary>Parses EndTransactionMarker value: int16 version, int32 coordinator epoch.</summary>
    public static bool TryReadEndTransactionMarker(ReadOnlySpan<byte> value, out int coordinatorEpoch)
    {
        coordinatorEpoch = 0;
        if (value.Length < 6 || BinaryPrimitives.ReadInt16BigEndian(value) < 0) return false;
        coordinatorEpoch = BinaryPrimitives.ReadInt32BigEndian(value[2..]);
        return true;
    }
}

/// <summary>In-place header patches the broker applies on append (Kafka's DefaultRecordBatch setters).</summary>
public static class RecordBatchRewriter
{
    /// <summary>Sets base offset; the CRC does not cover it, so no recompute.</summary>
    public static void SetBaseOffset(Span<byte> batch, long baseOffset) =>
        BinaryPrimitives.WriteInt64BigEndian(batch, baseOffset);

    /// <summary>Sets partition leader epoch (not CRC-covered either).</summary>
    public static void SetPartitionLeaderEpoch(Span<byte> batch, int epoch) =>
        BinaryPrimitives.WriteInt32BigEndian(batch[RecordBatchHeader.PartitionLeaderEpochOffset..], epoch);

    /// <summary>
    /// Sets the timestamp type bit and maxTimestamp, then recomputes the CRC (DefaultRecordBatch.setMaxTimestamp).
    /// LogAppendTime: <paramref name="maxTimestamp"/> is the broker's append time.
    /// </summary>
    public static void SetMaxTimestamp(Span<byte> batch, TimestampType type, long maxTimestamp)
    {
        if (batch.Length < RecordBatchHeader.Size) ThrowHelper.Truncated(RecordBatchHeader.Size, batch.Length);
        int total = BinaryPrimitives.ReadInt32BigEndian(batch[RecordBatchHeader.BatchLengthOffset..]) + RecordBatchHeader.LogOverhead;
        if (total < RecordBatchHeader.Size || total > batch.Length) ThrowHelper.BadLength(total, batch.Length);
        batch = batch[..total];
        short attrs = BinaryPrimitives.ReadInt16BigEndian(batch[RecordBatchHeader.AttributesOffset..]);
        attrs = type == TimestampType.LogAppendTime ? (short)(attrs | 0x08) : (short)(attrs & ~0x08);
        BinaryPrimitives.WriteInt16BigEndian(batch[RecordBatchHeader.AttributesOffset..], attrs);
        BinaryPrimitives.WriteInt64BigEndian(batch[RecordBatchHeader.MaxTimestampOffset..], maxTimestamp);
        BinaryPrimitives.WriteUInt32BigEndian(batch[RecordBatchHeader.CrcOffset..], RecordBatch.ComputeCrc(batch));
    }

    public static void SetLogAppendTime(Span<byte> batch, long appendTime) => SetMaxTimestamp(batch, TimestampType.LogAppendTime, appendTime);
}
