using System.Buffers.Binary;

namespace Kayak.Protocol.Records;

/// <summary>
/// The fixed 61-byte header of a magic v2 record batch (Kafka's DefaultRecordBatch). Byte offsets
/// are public so Storage can patch base offset / timestamps in place without decoding records.
/// Magic v0/v1 message sets share the first 17 bytes' shape: offset, size, (crc), magic at byte 16.
/// </summary>
public readonly struct RecordBatchHeader
{
    public const int BaseOffsetOffset = 0;
    public const int BatchLengthOffset = 8;
    public const int PartitionLeaderEpochOffset = 12;
    public const int MagicOffset = 16;
    public const int CrcOffset = 17;
    public const int AttributesOffset = 21;
    public const int LastOffsetDeltaOffset = 23;
    public const int BaseTimestampOffset = 27;
    public const int MaxTimestampOffset = 35;
    public const int ProducerIdOffset = 43;
    public const int ProducerEpochOffset = 51;
    public const int BaseSequenceOffset = 53;
    public const int RecordsCountOffset = 57;
    public const int Size = 61;
    /// <summary>Bytes before <c>batchLength</c> counts: baseOffset + batchLength itself.</summary>
    public const int LogOverhead = 12;

    public long BaseOffset { get; init; }
    /// <summary>Bytes after the batchLength field; the whole batch is <c>BatchLength + 12</c>.</summary>
    public int BatchLength { get; init; }
    public int PartitionLeaderEpoch { get; init; }
    public sbyte Magic { get; init; }
    public uint Crc { get; init; }
    public short Attributes { get; init; }
    public int LastOffsetDelta { get; init; }
    public long BaseTimestamp { get; init; }
    public long MaxTimestamp { get; init; }
    public long ProducerId { get; init; }
    public short ProducerEpoch { get; init; }
    public int BaseSequence { get; init; }
    public int RecordsCount { get; init; }

    public int TotalSize => BatchLength + LogOverhead;
    public long LastOffset => BaseOffset + LastOffsetDelta;
    public CompressionType Compression => (CompressionType)(Attributes & 0x7);
    public bool IsLogAppendTime => (Attributes & 0x8) != 0;
    public bool IsTransactional => (Attributes & 0x10) != 0;
    public bool IsControl => (Attributes & 0x20) != 0;
    public bool HasDeleteHorizon => (Attributes & 0x40) != 0;

    /// <summary>
    /// Reads the header of a v2 batch. False when fewer than 61 bytes are available (need more
    /// bytes); the caller checks Magic before trusting the rest.
    /// </summary>
    public static bool TryRead(ReadOnlySpan<byte> src, out RecordBatchHeader header)
    {
        if (src.Length < Size) { header = default; return false; }
        header = new RecordBatchHeader
        {
            BaseOffset = BinaryPrimitives.ReadInt64BigEndian(src),
            BatchLength = BinaryPrimitives.ReadInt32BigEndian(src[BatchLengthOffset..]),
            PartitionLeaderEpoch = BinaryPrimitives.ReadInt32BigEndian(src[PartitionLeaderEpochOffset..]),
            Magic = (sbyte)src[MagicOffset],
            Crc = BinaryPrimitives.ReadUInt32BigEndian(src[CrcOffset..]),
            Attributes = BinaryPrimitives.ReadInt16BigEndian(src[AttributesOffset..]),
            LastOffsetDelta = BinaryPrimitives.ReadInt32BigEndian(src[LastOffsetDeltaOffset..]),
            BaseTimestamp = BinaryPrimitives.ReadInt64BigEndian(src[BaseTimestampOffset..]),
            MaxTimestamp = BinaryPrimitives.ReadInt64BigEndian(src[MaxTimestampOffset..]),
            ProducerId = BinaryPrimitives.ReadInt64BigEndian(src[ProducerIdOffset..]),
            ProducerEpoch = BinaryPrimitives.ReadInt16BigEndian(src[ProducerEpochOffset..]),
            BaseSequence = BinaryPrimitives.ReadInt32BigEndian(src[BaseSequenceOffset..]),
            RecordsCount = BinaryPrimitives.ReadInt32BigEndian(src[RecordsCountOffset..]),
        };
        return true;
    }
}

/// <summary>Compression codec ids as in the batch attributes' low 3 bits.</summary>
public enum CompressionType : byte
{
    None = 0,
    Gzip = 1,
    Snappy = 2,
    Lz4 = 3,
    Zstd = 4,
}
