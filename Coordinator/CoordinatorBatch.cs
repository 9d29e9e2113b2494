using System.Buffers;
using System.Buffers.Binary;
using Kayak.Protocol;
using Kayak.Protocol.Records;

namespace Kayak.Coordinator;

/// <summary>
/// One record of <c>__consumer_offsets</c>: a versioned key and a versioned value, or a tombstone
/// (null value). Kafka serializes both as an int16 schema version followed by the schema's fields
/// (CoordinatorRecordSerde), which is what Burrow or kcat decode.
/// </summary>
public readonly record struct CoordinatorRecord(IKafkaMessage Key, short KeyVersion, IKafkaMessage? Value, short ValueVersion);

/// <summary>The producer of a transactional coordinator batch (TxnOffsetCommit); <see cref="None"/> for plain ones.</summary>
public readonly record struct TransactionalProducer(long ProducerId, short ProducerEpoch, int BaseSequence)
{
    public static TransactionalProducer None => new(-1, -1, -1);
}

/// <summary>
/// Encodes and decodes the magic v2 record batches the coordinator writes: uncompressed, CreateTime,
/// no producer id, CRC-32C over attributes..end as in Kafka's DefaultRecordBatch.
/// </summary>
public static class CoordinatorBatch
{
    /// <summary>Encodes records as one v2 batch with base offset 0 (the log assigns offsets).</summary>
    public static byte[] Encode(IReadOnlyList<CoordinatorRecord> records, long timestampMs) =>
        Encode(records, timestampMs, TransactionalProducer.None);

    /// <summary>
    /// Encodes records as one v2 batch; with a producer (TxnOffsetCommit) the batch carries its producer id,
    /// epoch and sequence and the transactional attribute, as Kafka's GroupMetadataManager.storeOffsets writes
    /// it, so the partition's producer state holds the last stable offset below it until the marker.
    /// </summary>
    public static byte[] Encode(IReadOnlyList<CoordinatorRecord> records, long timestampMs, TransactionalProducer producer)
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
        BinaryPrimitives.WriteInt16BigEndian(h[RecordBatchHeader.AttributesOffset..], (short)(producer.ProducerId >= 0 ? 0x10 : 0));
        BinaryPrimitives.WriteInt32BigEndian(h[RecordBatchHeader.LastOffsetDeltaOffset..], records.Count - 1);
        BinaryPrimitives.WriteInt64BigEndian(h[RecordBatchHeader.BaseTimestampOffset..], timestampMs);
        BinaryPrimitives.WriteInt64BigEndian(h[RecordBatchHeader.MaxTimestampOffset..], timestampMs);
        BinaryPrimitives.WriteInt64BigEndian(h[RecordBatchHeader.ProducerIdOffset..], producer.ProducerId);
        BinaryPrimitives.WriteInt16BigEndian(h[RecordBatchHeader.ProducerEpochOffset..], producer.ProducerEpoch);
        BinaryPrimitives.WriteInt32BigEndian(h[RecordBatchHeader.BaseSequenceOffset..], producer.BaseSequence);
        BinaryPrimitives.WriteInt32BigEndian(h[RecordBatchHeader.RecordsCountOffset..], records.Count);
        uint crc = Protocol.Records.Crc32C.Compute(h[RecordBatchHeader.AttributesOffset..]);
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

    /// <summary>A commit/abort marker batch (KIP-98 control batch) for the in-memory log and tests.</summary>
    public static byte[] EncodeEndTxnMarker(long producerId, short producerEpoch, int coordinatorEpoch, bool commit, long timestampMs)
    {
        var output = new ArrayBufferWriter<byte>(128);
        ControlRecord.WriteEndTransactionMarker(output, commit ? ControlRecordType.Commit : ControlRecordType.Abort,
            producerId, producerEpoch, coordinatorEpoch, timestampMs);
        return output.WrittenSpan.ToArray();
    }

    /// <summary>Receives what <see cref="Replay"/> finds, in log order.</summary>
    public interface IReplayVisitor
    {
        /// <summary>Every data batch with a producer id, before its records (sequence bookkeeping).</summary>
        void OnProducerBatch(in RecordBatchHeader header);
        /// <summary>One record; <paramref name="producerId"/> is -1 unless the batch is transactional.</summary>
        void OnRecord(long offset, long producerId, ReadOnlyMemory<byte> key, ReadOnlyMemory<byte>? value);
        /// <summary>A commit or abort marker of <paramref name="header"/>'s producer.</summary>
        void OnMarker(in RecordBatchHeader header, bool commit);
    }

    /// <summary>
    /// Like <see cref="Decode"/> but reports record offsets, which batches are transactional, and the control
    /// markers that end them: what loading needs to keep TxnOffsetCommit records pending until their marker
    /// (Kafka's GroupMetadataManager.doLoadGroupsAndOffsets / OffsetMetadataManager.replayEndTransactionMarker).
    /// </summary>
    public static void Replay(ReadOnlyMemory<byte> chunk, IReplayVisitor visitor)
    {
        while (RecordBatchHeader.TryRead(chunk.Span, out var header))
        {
            if (header.TotalSize > chunk.Length || header.BatchLength < RecordBatchHeader.Size - RecordBatchHeader.LogOverhead) return;
            var batch = chunk[..header.TotalSize];
            chunk = chunk[header.TotalSize..];
            if (header.Magic != 2) throw new CorruptRecordException($"__consumer_offsets batch has magic {header.Magic}; only v2 is supported.");
            if (Protocol.Records.Crc32C.Compute(batch.Span[RecordBatchHeader.AttributesOffset..]) != header.Crc)
                throw new CorruptRecordException("__consumer_offsets batch failed its CRC check.");
            if (header.IsControl)
            {
                if (header.RecordsCount < 1) continue;
                var cr = new KafkaReader(batch[RecordBatchHeader.Size..]);
                cr.ReadVarInt(); cr.ReadInt8(); cr.ReadVarLong(); cr.ReadVarInt();
                int keyLength = cr.ReadVarInt();
                if (keyLength < 4) continue;
                var key = cr.ReadMemory(keyLength);
                // Only commit/abort markers end a transaction; other control types are not ours.
                if (ControlRecord.TryReadKey(key.Span, out _, out var type) && type is ControlRecordType.Commit or ControlRecordType.Abort)
                    visitor.OnMarker(header, type == ControlRecordType.Commit);
                continue;
            }
            if (header.ProducerId >= 0) visitor.OnProducerBatch(header);
            if (header.RecordsCount == 0) continue; // compaction keeps emptied producer batches for their sequences
            if (header.Compression != CompressionType.None)
                throw new CorruptRecordException("compressed __consumer_offsets batches are not supported.");
            long producerId = header.IsTransactional ? header.ProducerId : -1;
            var reader = new KafkaReader(batch[RecordBatchHeader.Size..]);
            for (int i = 0; i < header.RecordsCount; i++)
            {
                int length = reader.ReadVarInt();
                int start = reader.Position;
                reader.ReadInt8();
                reader.ReadVarLong();
                int offsetDelta = reader.ReadVarInt();
                int keyLength = reader.ReadVarInt();
                var key = keyLength < 0 ? ReadOnlyMemory<byte>.Empty : reader.ReadMemory(keyLength);
                int valueLength = reader.ReadVarInt();
                ReadOnlyMemory<byte>? value = valueLength < 0 ? (ReadOnlyMemory<byte>?)null : reader.ReadMemory(valueLength);
                reader.Skip(length - (reader.Position - start));
                if (keyLength >= 0) visitor.OnRecord(header.BaseOffset + offsetDelta, producerId, key, value);
            }
        }
    }

    /// <summary>Called per record while decoding: key bytes and value bytes (null = tombstone).</summary>
    public delegate void RecordVisitor(ReadOnlyMemory<byte> key, ReadOnlyMemory<byte>? value);

    /// <summary>
    /// Walks every record of the whole v2 batches in <paramref name="chunk"/>. Control batches
    /// (transaction markers) are skipped; a trailing partial batch is ignored. Throws
    /// <see cref="CorruptRecordException"/> on a bad CRC or a compressed batch (we never write one).
    /// </summary>
    public static void Decode(ReadOnlyMemory<byte> chunk, RecordVisitor visitor) => Replay(chunk, new DecodeVisitor(visitor));

    private sealed class DecodeVisitor(RecordVisitor visitor) : IReplayVisitor
    {
        public void OnProducerBatch(in RecordBatchHeader header) { }
        public void OnRecord(long offset, long producerId, ReadOnlyMemory<byte> key, ReadOnlyMemory<byte>? value) => visitor(key, value);
        public void OnMarker(in RecordBatchHeader header, bool commit) { }
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
