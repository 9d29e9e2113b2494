using System.Buffers.Binary;
using Kayak.Protocol;
using Kayak.Protocol.Compression;
using Kayak.Protocol.Records;

namespace Kayak.Storage;

/// <summary>
/// The per-batch half of the log cleaner (Kafka's Cleaner.buildOffsetMap / MemoryRecords.filterTo): maps keys to
/// their latest offset, then rewrites batches keeping only what compaction must keep. Compressed batches are
/// decompressed, filtered and recompressed with their own codec (issue 11). One instance per cleaning pass; its
/// scratch buffers are reused from batch to batch, so filtering allocates nothing per record (a new key in the
/// offset map costs one array, as a key, not per record).
/// <para>Rules, as Kafka 4.0's cleaner:</para>
/// <list type="bullet">
/// <item>A keyed record is kept when it is the latest offset of its key; keyless records are kept (Kafka refuses
/// them on append to compacted topics; we never drop data we cannot judge).</item>
/// <item>Tombstones (KIP-534): the first pass that keeps a tombstone stamps its batch with a delete horizon
/// (attribute bit 0x40, baseTimestamp = now + delete.retention.ms, record timestamp deltas re-based so every
/// record keeps its absolute timestamp); a later pass at or after the horizon drops it.</item>
/// <item>Control batches (transaction markers) and batches of aborted transactions are kept whole and their keys
/// are not mapped: aborted values must not shadow committed ones, and read_committed consumers skip them through
/// the aborted-transaction index.</item>
/// <item>A batch left without records is dropped, except the batch holding an active producer's last data offset,
/// which is kept as an empty 61-byte header (producer id, epoch, base sequence and last offset intact) so its
/// sequence state survives a rebuild from the log (Kafka's BatchRetention.RETAIN_EMPTY).</item>
/// <item>Kept batches keep base offset, lastOffsetDelta (the producer's last sequence depends on it), producer
/// fields, partition leader epoch, record offsets, timestamps and headers; count, length, max timestamp (CreateTime:
/// of the kept records, as Kafka's builder) and CRC are recomputed.</item>
/// <item>A batch that cannot be decompressed or parsed is kept whole and maps no keys (conservative).</item>
/// </list>
/// </summary>
internal sealed class CompactionFilter : IDisposable
{
    private const short CompressionMask = 0x07;
    private const short LogAppendTimeFlag = 0x08;
    private const short TransactionalFlag = 0x10;
    private const short ControlFlag = 0x20;
    /// <summary>KIP-534: baseTimestamp holds the delete horizon.</summary>
    private const short DeleteHorizonFlag = 0x40;

    private readonly PooledBufferWriter _plain = new(64 * 1024);
    private readonly PooledBufferWriter _kept = new(64 * 1024);
    private readonly PooledBufferWriter _compressed = new(64 * 1024);
    private readonly Dictionary<byte[], long>.AlternateLookup<ReadOnlySpan<byte>> _lookup;
    private readonly AbortedTransaction[] _aborted;
    private readonly Dictionary<long, (long LastDataOffset, short Epoch)> _producers;
    private readonly long _now;
    private readonly long _deleteRetentionMs;

    /// <summary>Key → latest offset over the cleanable part of the log.</summary>
    public Dictionary<byte[], long> Latest { get; } = new(ByteArrayComparer.Instance);
    /// <summary>Smallest delete horizon of the batches written with tombstones still in them (long.MaxValue: none).</summary>
    public long NextDeleteHorizon { get; private set; } = long.MaxValue;
    /// <summary>Records removed so far (the caller takes back a group's count when its swap is abandoned).</summary>
    public long RecordsRemoved { get; set; }

    public CompactionFilter(long now, long deleteRetentionMs, AbortedTransaction[] aborted, ProducerStateEntry[] activeProducers)
    {
        _now = now;
        _deleteRetentionMs = deleteRetentionMs;
        _aborted = aborted;
        _lookup = Latest.GetAlternateLookup<ReadOnlySpan<byte>>();
        _producers = new Dictionary<long, (long, short)>(activeProducers.Length);
        foreach (var p in activeProducers) _producers[p.ProducerId] = (p.LastDataOffset, p.ProducerEpoch);
    }

    /// <summary>Pass 1: records the offset of every key in <paramref name="segment"/> (whole batches, in log order).</summary>
    public void MapKeys(ReadOnlySpan<byte> segment)
    {
        foreach (var batch in Batches(segment))
        {
            short attrs = BinaryPrimitives.ReadInt16BigEndian(batch[RecordBatchHeader.AttributesOffset..]);
            if ((attrs & ControlFlag) != 0 || IsAborted(batch, attrs) || !TryGetRecords(batch, attrs, out var records, out int count)) continue;
            long baseOffset = BinaryPrimitives.ReadInt64BigEndian(batch);
            for (int i = 0; i < count && TryParse(records, out var r); i++)
            {
                if (r.HasKey) _lookup[r.Key] = baseOffset + r.OffsetDelta;
                records = records[r.Size..];
            }
        }
    }

    /// <summary>Pass 2: writes what is kept of <paramref name="batch"/> to <paramref name="output"/>; true when anything changed.</summary>
    public bool Filter(ReadOnlySpan<byte> batch, Stream output)
    {
        short attrs = BinaryPrimitives.ReadInt16BigEndian(batch[RecordBatchHeader.AttributesOffset..]);
        if ((attrs & ControlFlag) != 0 || IsAborted(batch, attrs) || !TryGetRecords(batch, attrs, out var records, out int count))
        {
            output.Write(batch);
            return false;
        }
        long baseOffset = BinaryPrimitives.ReadInt64BigEndian(batch);
        long baseTs = BinaryPrimitives.ReadInt64BigEndian(batch[RecordBatchHeader.BaseTimestampOffset..]);
        bool hasHorizon = (attrs & DeleteHorizonFlag) != 0;
        bool horizonPassed = hasHorizon && _now >= baseTs;

        // Walk once: decide per record, remember whether the kept ones are the original bytes unchanged.
        _kept.Clear();
        int kept = 0, removed = 0;
        bool keptTombstone = false, malformed = false;
        long maxTs = -1;
        var rest = records;
        for (int i = 0; i < count; i++)
        {
            if (!TryParse(rest, out var r)) { malformed = true; break; }
            bool keep = !r.HasKey || !_lookup.TryGetValue(r.Key, out long last) || last == baseOffset + r.OffsetDelta;
            if (keep && r.Tombstone)
            {
                if (horizonPassed) keep = false;
                else keptTombstone = true;
            }
            if (keep)
            {
                kept++;
                _kept.Write(rest[..r.Size]);
                maxTs = Math.Max(maxTs, baseTs + r.TimestampDelta);
            }
            else removed++;
            rest = rest[r.Size..];
        }
        if (malformed || rest.Length != 0)
        {
            output.Write(batch);
            return false;
        }

        bool setHorizon = keptTombstone && !hasHorizon;
        if (kept > 0 && removed == 0 && !setHorizon)
        {
            if (keptTombstone) NextDeleteHorizon = Math.Min(NextDeleteHorizon, baseTs);
            output.Write(batch);
            return false;
        }
        RecordsRemoved += removed;
        if (kept == 0)
        {
            if (!IsLastBatchOfActiveProducer(batch)) return true; // dropped
            if (count == 0) { output.Write(batch); return false; } // already the empty header
            WriteEmptyHeader(batch, attrs, output);
            return true;
        }

        long newBaseTs = baseTs;
        if (setHorizon)
        {
            newBaseTs = _now + _deleteRetentionMs;
            RebaseTimestamps(baseTs, newBaseTs);
        }
        if (keptTombstone) NextDeleteHorizon = Math.Min(NextDeleteHorizon, newBaseTs);
        WriteBatch(batch, attrs, setHorizon || hasHorizon, newBaseTs, (attrs & LogAppendTimeFlag) != 0 ? BinaryPrimitives.ReadInt64BigEndian(batch[RecordBatchHeader.MaxTimestampOffset..]) : maxTs, kept, output);
        return true;
    }

    /// <summary>Kafka's lastRecordsOfActiveProducers check: the batch holding a live producer's last data offset.</summary>
    private bool IsLastBatchOfActiveProducer(ReadOnlySpan<byte> batch)
    {
        long pid = BinaryPrimitives.ReadInt64BigEndian(batch[RecordBatchHeader.ProducerIdOffset..]);
        if (pid < 0 || !_producers.TryGetValue(pid, out var p)) return false;
        long lastOffset = BinaryPrimitives.ReadInt64BigEndian(batch) + BinaryPrimitives.ReadInt32BigEndian(batch[RecordBatchHeader.LastOffsetDeltaOffset..]);
        return p.LastDataOffset == lastOffset;
    }

    /// <summary>Kafka's DefaultRecordBatch.writeEmptyHeader: no records, uncompressed, both timestamps = max timestamp.</summary>
    private static void WriteEmptyHeader(ReadOnlySpan<byte> batch, short attrs, Stream output)
    {
        Span<byte> h = stackalloc byte[RecordBatchHeader.Size];
        batch[..RecordBatchHeader.Size].CopyTo(h);
        long maxTs = BinaryPrimitives.ReadInt64BigEndian(batch[RecordBatchHeader.MaxTimestampOffset..]);
        BinaryPrimitives.WriteInt32BigEndian(h[RecordBatchHeader.BatchLengthOffset..], RecordBatchHeader.Size - RecordBatchHeader.LogOverhead);
        BinaryPrimitives.WriteInt16BigEndian(h[RecordBatchHeader.AttributesOffset..], (short)(attrs & (LogAppendTimeFlag | TransactionalFlag | ControlFlag)));
        BinaryPrimitives.WriteInt64BigEndian(h[RecordBatchHeader.BaseTimestampOffset..], maxTs);
        BinaryPrimitives.WriteInt32BigEndian(h[RecordBatchHeader.RecordsCountOffset..], 0);
        BinaryPrimitives.WriteUInt32BigEndian(h[RecordBatchHeader.CrcOffset..], Crc32C.Compute(h[RecordBatchHeader.AttributesOffset..]));
        output.Write(h);
    }

    private void WriteBatch(ReadOnlySpan<byte> batch, short attrs, bool horizon, long baseTs, long maxTs, int count, Stream output)
    {
        var codec = (CompressionType)(attrs & CompressionMask);
        ReadOnlySpan<byte> body = _kept.WrittenSpan;
        if (codec != CompressionType.None)
        {
            _compressed.Clear();
            Compressor.Compress(codec, body, _compressed);
            body = _compressed.WrittenSpan;
        }
        Span<byte> h = stackalloc byte[RecordBatchHeader.Size];
        batch[..RecordBatchHeader.Size].CopyTo(h);
        if (horizon) attrs |= DeleteHorizonFlag;
        BinaryPrimitives.WriteInt32BigEndian(h[RecordBatchHeader.BatchLengthOffset..], RecordBatchHeader.Size - RecordBatchHeader.LogOverhead + body.Length);
        BinaryPrimitives.WriteInt16BigEndian(h[RecordBatchHeader.AttributesOffset..], attrs);
        BinaryPrimitives.WriteInt64BigEndian(h[RecordBatchHeader.BaseTimestampOffset..], baseTs);
        BinaryPrimitives.WriteInt64BigEndian(h[RecordBatchHeader.MaxTimestampOffset..], maxTs);
        BinaryPrimitives.WriteInt32BigEndian(h[RecordBatchHeader.RecordsCountOffset..], count);
        uint crc = ~Crc32C.Append(Crc32C.Append(0xFFFFFFFFu, h[RecordBatchHeader.AttributesOffset..]), body);
        BinaryPrimitives.WriteUInt32BigEndian(h[RecordBatchHeader.CrcOffset..], crc);
        output.Write(h);
        output.Write(body);
    }

    /// <summary>
    /// Rewrites the kept records' timestamp deltas against <paramref name="newBase"/> (the delete horizon), so
    /// baseTimestamp + delta still yields each record's own timestamp. Only on the pass that sets a horizon.
    /// </summary>
    private void RebaseTimestamps(long oldBase, long newBase)
    {
        _compressed.Clear();
        var src = _kept.WrittenSpan;
        Span<byte> varint = stackalloc byte[10];
        while (!src.IsEmpty)
        {
            TryParse(src, out var r); // parsed successfully once already
            var body = src.Slice(r.LengthBytes, r.Size - r.LengthBytes);
            int n = VarInt.WriteVarLong(varint, oldBase + r.TimestampDelta - newBase);
            int newLen = body.Length - r.TimestampDeltaBytes + n;
            var dst = _compressed.GetSpan(VarInt.SizeOf(newLen) + newLen);
            int p = VarInt.WriteVarInt(dst, newLen);
            dst[p++] = body[0]; // record attributes
            varint[..n].CopyTo(dst[p..]);
            p += n;
            body[(1 + r.TimestampDeltaBytes)..].CopyTo(dst[p..]);
            _compressed.Advance(p + body.Length - 1 - r.TimestampDeltaBytes);
            src = src[r.Size..];
        }
        _kept.Clear();
        _kept.Write(_compressed.WrittenSpan);
    }

    private bool IsAborted(ReadOnlySpan<byte> batch, short attrs)
    {
        if (_aborted.Length == 0 || (attrs & TransactionalFlag) == 0) return false;
        long pid = BinaryPrimitives.ReadInt64BigEndian(batch[RecordBatchHeader.ProducerIdOffset..]);
        long offset = BinaryPrimitives.ReadInt64BigEndian(batch);
        foreach (var a in _aborted)
            if (a.ProducerId == pid && offset >= a.FirstOffset && offset <= a.LastOffset) return true;
        return false;
    }

    /// <summary>The records section, decompressed into a reused buffer when the batch is compressed.</summary>
    private bool TryGetRecords(ReadOnlySpan<byte> batch, short attrs, out ReadOnlySpan<byte> records, out int count)
    {
        count = BinaryPrimitives.ReadInt32BigEndian(batch[RecordBatchHeader.RecordsCountOffset..]);
        records = batch[RecordBatchHeader.Size..];
        var codec = (CompressionType)(attrs & CompressionMask);
        if (codec == CompressionType.None) return count >= 0;
        _plain.Clear();
        try { Compressor.Decompress(codec, records, _plain, DecompressionOptions.DefaultMaxOutputBytes); }
        catch (ProtocolException) { return false; }
        records = _plain.WrittenSpan;
        return count >= 0;
    }

    /// <summary>One record's fields the cleaner needs (KIP-98 record layout), without copying.</summary>
    private readonly ref struct RecordView
    {
        public int Size { get; init; }
        public int LengthBytes { get; init; }
        public long TimestampDelta { get; init; }
        public int TimestampDeltaBytes { get; init; }
        public int OffsetDelta { get; init; }
        public bool HasKey { get; init; }
        public ReadOnlySpan<byte> Key { get; init; }
        public bool Tombstone { get; init; }
    }

    private static bool TryParse(ReadOnlySpan<byte> src, out RecordView view)
    {
        view = default;
        if (!VarInt.TryReadVarInt(src, out int length, out int n) || length <= 0 || length > src.Length - n) return false;
        var rec = src.Slice(n, length);
        int p = 1; // attributes
        if (!VarInt.TryReadVarLong(rec[p..], out long tsDelta, out int tsBytes)) return false;
        p += tsBytes;
        if (!VarInt.TryReadVarInt(rec[p..], out int offsetDelta, out int m)) return false;
        p += m;
        if (!VarInt.TryReadVarInt(rec[p..], out int keyLen, out m)) return false;
        p += m;
        ReadOnlySpan<byte> key = default;
        if (keyLen > 0)
        {
            if (keyLen > rec.Length - p) return false;
            key = rec.Slice(p, keyLen);
            p += keyLen;
        }
        if (!VarInt.TryReadVarInt(rec[p..], out int valueLen, out _)) return false;
        view = new RecordView
        {
            Size = n + length, LengthBytes = n, TimestampDelta = tsDelta, TimestampDeltaBytes = tsBytes,
            OffsetDelta = offsetDelta, HasKey = keyLen >= 0, Key = key, Tombstone = valueLen < 0,
        };
        return true;
    }

    /// <summary>Whole batches of a segment's data; stops at a truncated tail.</summary>
    internal static BatchWalker Batches(ReadOnlySpan<byte> data) => new(data);

    internal ref struct BatchWalker(ReadOnlySpan<byte> data)
    {
        private ReadOnlySpan<byte> _rest = data;
        public ReadOnlySpan<byte> Current { get; private set; }
        public readonly BatchWalker GetEnumerator() => this;

        public bool MoveNext()
        {
            if (_rest.Length < RecordBatchHeader.Size) return false;
            int total = RecordBatchHeader.LogOverhead + BinaryPrimitives.ReadInt32BigEndian(_rest[RecordBatchHeader.BatchLengthOffset..]);
            if (total < RecordBatchHeader.Size || total > _rest.Length) return false;
            Current = _rest[..total];
            _rest = _rest[total..];
            return true;
        }
    }

    public void Dispose()
    {
        _plain.Dispose();
        _kept.Dispose();
        _compressed.Dispose();
    }
}

/// <summary>Byte-array keys compared by content, with span lookups so probing the offset map does not allocate.</summary>
internal sealed class ByteArrayComparer : IEqualityComparer<byte[]>, IAlternateEqualityComparer<ReadOnlySpan<byte>, byte[]>
{
    public static readonly ByteArrayComparer Instance = new();
    public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);
    public int GetHashCode(byte[] obj) => GetHashCode((ReadOnlySpan<byte>)obj);
    public bool Equals(ReadOnlySpan<byte> alternate, byte[] other) => alternate.SequenceEqual(other);
    public int GetHashCode(ReadOnlySpan<byte> alternate)
    {
        var h = new HashCode();
        h.AddBytes(alternate);
        return h.ToHashCode();
    }
    public byte[] Create(ReadOnlySpan<byte> alternate) => alternate.ToArray();
}
