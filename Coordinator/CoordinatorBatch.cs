using System.Buffers;
using System.Buffers.Binary;
using System.Numerics;
using Kayak.Protocol;
using Kayak.Protocol.Records;

namespace Kayak.Coordinator;

/// <summary>
/// One record of <c>__consumer_offsets</c>: a versioned key and a versioned value, or a tombstone
/// (null value). Kafka serializes both as an int16 schema version followed by the schema's fields
/// (CoordinatorRecordSerde), which is what Burrow or kcat decode.
/// </summary>
public readonly record struct CoordinatorRecord(IKafkaMessage Key, short KeyVersion, IKafkaMessage? Value, short ValueVersion);

/// <summary>
/// Encodes and decodes the magic v2 record batches the coordinator writes: uncompressed, CreateTime,
/// no producer id, CRC-32C over attributes..end as in Kafka's DefaultRecordBatch.
/// </summary>
public static class CoordinatorBatch
{
    /// <summary>Encodes records as one v2 batch with base offset 0 (the log assigns offsets).</summary>
    public static byte[] Encode(IReadOnlyList<CoordinatorRecord> records, long timestampMs)
    {
        int total = RecordBatchHeader.Size;
        for (int i = 0; i < records.Count; i++)
        {
            int body = RecordBodySize(records[i], i);
            total += VarInt.SizeOf(body) + body;
        }
        var buffer = new byte[total];
        var sink = new FixedBufferWriter(buffer, RecordBatchHeader.Size);
        var w = new KafkaWriter(sink);
        for (int i = 0; i < records.Count; i++)
        {
            var r = records[i];
            w.WriteVarInt(RecordBodySize(r, i));
            w.WriteInt8(0);            // record attributes: unused
            w.WriteVarLong(0);         // timestamp delta
            w.WriteVarInt(i);          // offset delta
            w.WriteVarInt(r.Key.Size(r.KeyVersion) + 2);
            w.WriteInt16(r.KeyVersion);
            r.Key.Write(ref w, r.KeyVersion);
            if (r.Value is null) w.WriteVarInt(-1);
            else
            {
                w.WriteVarInt(r.Value.Size(r.ValueVersion) + 2);
                w.WriteInt16(r.ValueVersion);
                r.Value.Write(ref w, r.ValueVersion);
            }
            w.WriteVarInt(0);          // no headers
        }
        w.Flush();
        if (sink.Position != total) throw new InvalidOperationException("record batch size mismatch");

        var h = buffer.AsSpan();
        BinaryPrimitives.WriteInt64BigEndian(h, 0);
        BinaryPrimitives.WriteInt32BigEndian(h[RecordBatchHeader.BatchLengthOffset..], total - RecordBatchHeader.LogOverhead);
        BinaryPrimitives.WriteInt32BigEndian(h[RecordBatchHeader.PartitionLeaderEpochOffset..], -1);
        h[RecordBatchHeader.MagicOffset] = 2;
        BinaryPrimitives.WriteInt16BigEndian(h[RecordBatchHeader.AttributesOffset..], 0);
        BinaryPrimitives.WriteInt32BigEndian(h[RecordBatchHeader.LastOffsetDeltaOffset..], records.Count - 1);
        BinaryPrimitives.WriteInt64BigEndian(h[RecordBatchHeader.BaseTimestampOffset..], timestampMs);
        BinaryPrimitives.WriteInt64BigEndian(h[RecordBatchHeader.MaxTimestampOffset..], timestampMs);
        BinaryPrimitives.WriteInt64BigEndian(h[RecordBatchHeader.ProducerIdOffset..], -1);
        BinaryPrimitives.WriteInt16BigEndian(h[RecordBatchHeader.ProducerEpochOffset..], -1);
        BinaryPrimitives.WriteInt32BigEndian(h[RecordBatchHeader.BaseSequenceOffset..], -1);
        BinaryPrimitives.WriteInt32BigEndian(h[RecordBatchHeader.RecordsCountOffset..], records.Count);
        uint crc = Crc32C(h[RecordBatchHeader.AttributesOffset..]);
        BinaryPrimitives.WriteUInt32BigEndian(h[RecordBatchHeader.CrcOffset..], crc);
        return buffer;
    }

    private static int RecordBodySize(in CoordinatorRecord r, int offsetDelta)
    {
        int key = r.Key.Size(r.KeyVersion) + 2;
        int value = r.Value is null ? -1 : r.Value.Size(r.ValueVersion) + 2;
        return 1 + 1 + VarInt.SizeOf(offsetDelta)
            + VarInt.SizeOf(key) + key
            + VarInt.SizeOf(value) + Math.Max(value, 0)
            + 1;
    }

    /// <summary>CRC-32C (Castagnoli) as Kafka's Crc32C: init 0xFFFFFFFF, final complement.</summary>
    public static uint Crc32C(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFFu;
        while (data.Length >= 8)
        {
            crc = BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data));
            data = data[8..];
        }
        foreach (byte b in data) crc = BitOperations.Crc32C(crc, b);
        return ~crc;
    }

    /// <summary>Called per record while decoding: key bytes and value bytes (null = tombstone).</summary>
    public delegate void RecordVisitor(ReadOnlyMemory<byte> key, ReadOnlyMemory<byte>? value);

    /// <summary>
    /// Walks every record of the whole v2 batches in <paramref name="chunk"/>. Control batches
    /// (transaction markers) are skipped; a trailing partial batch is ignored. Throws
    /// <see cref="CorruptRecordException"/> on a bad CRC or a compressed batch (we never write one).
    /// </summary>
    public static void Decode(ReadOnlyMemory<byte> chunk, RecordVisitor visitor)
    {
        while (RecordBatchHeader.TryRead(chunk.Span, out var header))
        {
            if (header.TotalSize > chunk.Length || header.BatchLength < RecordBatchHeader.Size - RecordBatchHeader.LogOverhead) return;
            var batch = chunk[..header.TotalSize];
            chunk = chunk[header.TotalSize..];
            if (header.Magic != 2) throw new CorruptRecordException($"__consumer_offsets batch has magic {header.Magic}; only v2 is supported.");
            if (Crc32C(batch.Span[RecordBatchHeader.AttributesOffset..]) != header.Crc)
                throw new CorruptRecordException("__consumer_offsets batch failed its CRC check.");
            if (header.IsControl) continue;
            if (header.Compression != CompressionType.None)
                throw new CorruptRecordException("compressed __consumer_offsets batches are not supported.");
            var reader = new KafkaReader(batch[RecordBatchHeader.Size..]);
            for (int i = 0; i < header.RecordsCount; i++)
            {
                int length = reader.ReadVarInt();
                int start = reader.Position;
                reader.ReadInt8();
                reader.ReadVarLong();
                reader.ReadVarInt();
                int keyLength = reader.ReadVarInt();
                var key = keyLength < 0 ? ReadOnlyMemory<byte>.Empty : reader.ReadMemory(keyLength);
                int valueLength = reader.ReadVarInt();
                // Careful: a bare null would convert to an empty ReadOnlyMemory through byte[]'s implicit conversion.
                ReadOnlyMemory<byte>? value = valueLength < 0 ? (ReadOnlyMemory<byte>?)null : reader.ReadMemory(valueLength);
                reader.Skip(length - (reader.Position - start)); // headers: the coordinator writes none
                if (keyLength >= 0) visitor(key, value);
            }
        }
    }

    /// <summary>Java's String.hashCode over UTF-16 chars, then Kafka's Utils.abs (x &amp; 0x7fffffff) mod n.</summary>
    public static int PartitionFor(string groupId, int numPartitions)
    {
        int h = 0;
        foreach (char c in groupId) h = unchecked(31 * h + c);
        return (h & 0x7fffffff) % numPartitions;
    }

    private sealed class FixedBufferWriter(byte[] buffer, int start) : IBufferWriter<byte>
    {
        public int Position { get; private set; } = start;
        public void Advance(int count) => Position += count;
        public Memory<byte> GetMemory(int sizeHint = 0) => buffer.AsMemory(Position);
        public Span<byte> GetSpan(int sizeHint = 0) => buffer.AsSpan(Position);
    }
}
