using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Kayak.Protocol.Compression;

namespace Kayak.Protocol.Records;

/// <summary>Knobs for <see cref="RecordBatch.Validate"/>.</summary>
public sealed class ValidationOptions
{
    public static readonly ValidationOptions Default = new();
    /// <summary>
    /// Decompression-bomb guard for compressed batches: past it Validate answers MESSAGE_TOO_LARGE (see
    /// <see cref="DecompressedTooLargeException"/>). Kafka streams the records and has no such limit.
    /// </summary>
    public long MaxDecompressedBytes { get; init; } = DecompressionOptions.DefaultMaxOutputBytes;
    /// <summary>
    /// Produce path: offset deltas must be 0..count-1 and count == lastOffsetDelta + 1 (Kafka's
    /// LogValidator). Off for batches from the log, where compaction leaves gaps.
    /// </summary>
    public bool RequireContiguousOffsets { get; init; } = true;
}

/// <summary>Outcome of <see cref="RecordBatch.Validate"/>: an error code plus what the broker needs for appends.</summary>
public readonly struct ValidationResult
{
    public ErrorCode Error { get; init; }
    public string? Message { get; init; }
    public int RecordCount { get; init; }
    /// <summary>Maximum record timestamp (baseTimestamp + max delta), -1 without records; Kafka rewrites the header's maxTimestamp with it for CreateTime.</summary>
    public long MaxTimestamp { get; init; }
    /// <summary>Offset delta of the record carrying <see cref="MaxTimestamp"/> (first one on ties, like Kafka).</summary>
    public int OffsetDeltaOfMaxTimestamp { get; init; }
    public bool IsValid => Error == ErrorCode.None;

    internal static ValidationResult Fail(ErrorCode e, string message) => new() { Error = e, Message = message, MaxTimestamp = -1 };
}

/// <summary>Magic v2 record batch framing, validation and record access.</summary>
public static class RecordBatch
{
    public const sbyte MagicV2 = 2;
    /// <summary>Bytes covered by the CRC start at attributes (KIP-98: CRC excludes base offset, length, leader epoch, magic).</summary>
    public const int CrcCoveredOffset = RecordBatchHeader.AttributesOffset;

    /// <summary>
    /// Frames the next batch (any magic: v0/v1 entries share offset+size). False = need more bytes.
    /// Throws <see cref="CorruptRecordException"/> when the size field is impossible.
    /// <paramref name="header"/> is only meaningful for magic 2.
    /// </summary>
    public static bool TryReadBatch(ReadOnlySpan<byte> src, out RecordBatchHeader header, out int totalSize)
    {
        header = default; totalSize = 0;
        if (src.Length < RecordBatchHeader.LogOverhead) return false;
        int batchLength = BinaryPrimitives.ReadInt32BigEndian(src[RecordBatchHeader.BatchLengthOffset..]);
        // Smallest legal entry is a magic v0 message (MinMessageSizeV0 = 14 bytes after the size field).
        if (batchLength < LegacyMessageSet.MinMessageSizeV0 || batchLength > int.MaxValue - RecordBatchHeader.LogOverhead)
            throw new CorruptRecordException($"Invalid batch length {batchLength}");
        if (src.Length < RecordBatchHeader.MagicOffset + 1) return false;
        sbyte magic = (sbyte)src[RecordBatchHeader.MagicOffset];
        if (magic == MagicV2 && batchLength < RecordBatchHeader.Size - RecordBatchHeader.LogOverhead)
            throw new CorruptRecordException($"Batch length {batchLength} is smaller than the v2 header");
        int total = batchLength + RecordBatchHeader.LogOverhead;
        if (src.Length < total) return false;
        totalSize = total;
        if (magic == MagicV2) RecordBatchHeader.TryRead(src, out header);
        return true;
    }

    /// <summary>Computes the CRC-32C stored in a v2 batch (attributes..end).</summary>
    public static uint ComputeCrc(ReadOnlySpan<byte> batch) => Crc32C.Compute(batch[CrcCoveredOffset..]);

    /// <summary>
    /// Checks one complete v2 batch as a broker must before appending it: length sanity, magic,
    /// CRC (→ CORRUPT_MESSAGE), count vs lastOffsetDelta, and every record's framing (→ INVALID_RECORD, as
    /// Kafka; decompressing into a pooled buffer for compressed batches). Never throws for bad input.
    /// </summary>
    public static ValidationResult Validate(ReadOnlySpan<byte> batch, ValidationOptions? options = null)
    {
        options ??= ValidationOptions.Default;
        if (!RecordBatchHeader.TryRead(batch, out var h))
            return ValidationResult.Fail(ErrorCode.CorruptMessage, $"Batch of {batch.Length} bytes is smaller than the v2 header");
        if (h.Magic != MagicV2)
            return ValidationResult.Fail(ErrorCode.UnsupportedForMessageFormat, $"Expected magic 2, got {h.Magic}");
        if (h.BatchLength < RecordBatchHeader.Size - RecordBatchHeader.LogOverhead || (long)h.BatchLength + RecordBatchHeader.LogOverhead != batch.Length)
            return ValidationResult.Fail(ErrorCode.CorruptMessage, $"Batch length {h.BatchLength} does not match the {batch.Length} bytes given");
        uint crc = ComputeCrc(batch);
        if (crc != h.Crc)
            return ValidationResult.Fail(ErrorCode.CorruptMessage, $"Record batch is corrupt (stored crc = {h.Crc}, computed crc = {crc})");
        if ((int)h.Compression > (int)CompressionType.Zstd)
            return ValidationResult.Fail(ErrorCode.CorruptMessage, $"Unknown compression type id {(int)h.Compression}");
        // Past the CRC the batch arrived as the producer built it, so a framing lie inside it is the producer's
        // bug, not corruption in transit: Kafka's DefaultRecordBatch iterator and DefaultRecord.readFrom throw
        // InvalidRecordException (INVALID_RECORD, not retriable) where CRC and size failures are
        // CorruptRecordException (CORRUPT_MESSAGE, retriable; a producer would resend the same bad batch).
        if (h.RecordsCount < 0)
            return ValidationResult.Fail(ErrorCode.InvalidRecord, $"Found invalid record count {h.RecordsCount} in magic v2 batch");
        if (options.RequireContiguousOffsets)
        {
            if (h.RecordsCount == 0)
                return ValidationResult.Fail(ErrorCode.InvalidRecord, "Record batch has no records");
            if (h.LastOffsetDelta != h.RecordsCount - 1)
                return ValidationResult.Fail(ErrorCode.InvalidRecord, $"Inconsistent batch: lastOffsetDelta {h.LastOffsetDelta} but {h.RecordsCount} records");
        }
        var body = batch[RecordBatchHeader.Size..];
        // Every record takes at least 7 bytes; a larger count cannot be honest (and would let a
        // compressed batch claim huge counts cheaply). Kafka finds the same by reaching premature EOF.
        if (h.Compression == CompressionType.None && h.RecordsCount > body.Length / 7)
            return ValidationResult.Fail(ErrorCode.InvalidRecord, $"Record count {h.RecordsCount} exceeds what {body.Length} bytes can hold");
        try
        {
            if (h.Compression == CompressionType.None)
                return WalkRecords(body, h, options);
            using var buf = new DecompressionBuffer(body.Length * 4, options.MaxDecompressedBytes);
            try
            {
                buf.Decompress(h.Compression, body);
            }
            catch (DecompressedTooLargeException e)
            {
                return ValidationResult.Fail(ErrorCode.MessageTooLarge, e.Message);
            }
            catch (ProtocolException e)
            {
                return ValidationResult.Fail(ErrorCode.CorruptMessage, e.Message);
            }
            if (h.RecordsCount > buf.WrittenCount / 7)
                return ValidationResult.Fail(ErrorCode.InvalidRecord, $"Record count {h.RecordsCount} exceeds what the decompressed data can hold");
            return WalkRecords(buf.WrittenSpan, h, options);
        }
        catch (ProtocolException e)
        {
            return ValidationResult.Fail(ErrorCode.InvalidRecord, e.Message);
        }
    }

    /// <summary>Like <see cref="Validate"/> but throws <see cref="CorruptRecordException"/> on failure.</summary>
    public static ValidationResult ValidateOrThrow(ReadOnlySpan<byte> batch, ValidationOptions? options = null)
    {
        var r = Validate(batch, options);
        if (!r.IsValid) throw new CorruptRecordException($"{ErrorCodes.KafkaName(r.Error)}: {r.Message}");
        return r;
    }

    private static ValidationResult WalkRecords(ReadOnlySpan<byte> records, in RecordBatchHeader h, ValidationOptions options)
    {
        // Kafka's LogValidator reads every record of a produced v2 batch (DefaultRecord.readFrom), and so do we; the
        // lean walk below checks the same framing without building Record views. Any irregularity sends the batch
        // through the full enumerator, which produces the exact error and message.
        if (FastRecordWalk.TryValidate(records, h, options.RequireContiguousOffsets, out int count, out long fastMaxTs, out int fastMaxTsDelta))
            return new ValidationResult { Error = ErrorCode.None, RecordCount = count, MaxTimestamp = fastMaxTs, OffsetDeltaOfMaxTimestamp = Math.Max(fastMaxTsDelta, 0) };
        var e = new RecordEnumerator(records, h.RecordsCount);
        long maxTs = -1;
        int maxTsDelta = -1;
        int i = 0;
        int lastDelta = -1;
        while (e.MoveNext())
        {
            var r = e.Current;
            if (options.RequireContiguousOffsets ? r.OffsetDelta != i : r.OffsetDelta <= lastDelta)
                return ValidationResult.Fail(ErrorCode.InvalidRecord, $"Record {i} has offset delta {r.OffsetDelta}");
            if (r.OffsetDelta > h.LastOffsetDelta)
                return ValidationResult.Fail(ErrorCode.InvalidRecord, $"Record offset delta {r.OffsetDelta} exceeds lastOffsetDelta {h.LastOffsetDelta}");
            lastDelta = r.OffsetDelta;
            long ts = h.BaseTimestamp + r.TimestampDelta;
            if (ts > maxTs || maxTsDelta < 0) { maxTs = ts; maxTsDelta = r.OffsetDelta; }
            i++;
        }
        if (e.RemainingBytes != 0)
            return ValidationResult.Fail(ErrorCode.InvalidRecord, $"Incorrect declared batch size: {e.RemainingBytes} bytes after the last record");
        return new ValidationResult { Error = ErrorCode.None, RecordCount = i, MaxTimestamp = maxTs, OffsetDeltaOfMaxTimestamp = Math.Max(maxTsDelta, 0) };
    }

    /// <summary>Records section of an uncompressed batch (no copy).</summary>
    public static ReadOnlySpan<byte> RecordsSection(ReadOnlySpan<byte> batch) => batch[RecordBatchHeader.Size..];

    /// <summary>
    /// Writes the decompressed records section of a batch into <paramref name="dst"/> (copies it when
    /// uncompressed). Use with <see cref="RecordEnumerator"/> over <c>dst.WrittenSpan</c>.
    /// </summary>
    public static void DecompressRecords(ReadOnlySpan<byte> batch, PooledBufferWriter dst, long maxDecompressedBytes = DecompressionOptions.DefaultMaxOutputBytes)
    {
        if (!RecordBatchHeader.TryRead(batch, out var h)) ThrowHelper.Truncated(RecordBatchHeader.Size, batch.Length);
        Compressor.Decompress(h.Compression, batch[RecordBatchHeader.Size..], dst, maxDecompressedBytes);
    }

    /// <summary>
    /// Decompresses a batch's records into a <see cref="DecompressionBuffer"/>, which keeps no array above 1 MiB
    /// pooled once disposed (the produce path, where batches up to the limit come from clients).
    /// </summary>
    public static void DecompressRecords(ReadOnlySpan<byte> batch, DecompressionBuffer dst)
    {
        if (!RecordBatchHeader.TryRead(batch, out var h)) ThrowHelper.Truncated(RecordBatchHeader.Size, batch.Length);
        if (h.Compression == CompressionType.None) ThrowHelper.Malformed("Batch is not compressed; use RecordsSection");
        dst.Decompress(h.Compression, batch[RecordBatchHeader.Size..]);
    }

    /// <summary>Enumerates the records of an uncompressed batch in place.</summary>
    public static RecordEnumerator EnumerateUncompressed(ReadOnlySpan<byte> batch)
    {
        if (!RecordBatchHeader.TryRead(batch, out var h)) ThrowHelper.Truncated(RecordBatchHeader.Size, batch.Length);
        if (h.Compression != CompressionType.None) ThrowHelper.Malformed("Batch is compressed; use DecompressRecords first");
        return new RecordEnumerator(batch[RecordBatchHeader.Size..], h.RecordsCount);
    }
}

/// <summary>
/// Walks concatenated batches (a produce request's or a log segment's records field) yielding each
/// complete batch. A partial trailing batch ends the walk (fetch responses may truncate the last one,
/// as Kafka allows); <see cref="TrailingBytes"/> tells how many bytes were left.
/// </summary>
public ref struct BatchEnumerator
{
    private ReadOnlySpan<byte> _rest;
    private ReadOnlySpan<byte> _current;

    public BatchEnumerator(ReadOnlySpan<byte> records) { _rest = records; _current = default; }

    public readonly BatchEnumerator GetEnumerator() => this;
    public readonly ReadOnlySpan<byte> Current => _current;
    public readonly int TrailingBytes => _rest.Length;

    public bool MoveNext()
    {
        if (!RecordBatch.TryReadBatch(_rest, out _, out int size)) return false;
        _current = _rest[..size];
        _rest = _rest[size..];
        return true;
    }
}

/// <summary>
/// Validation-only walk over an uncompressed v2 records section: the same checks as <see cref="RecordParser.ReadRecord"/>
/// plus <c>WalkRecords</c>' offset-delta rules, on indexes instead of spans and Record views, never throwing. It only
/// answers "valid, and here are the totals" or "not sure": callers re-walk with the full parser for the error.
/// </summary>
/// <remarks>
/// Every produced record passes through here (Kafka's LogValidator reads each record of a client's v2 batch), so the
/// varints take 1- and 2-byte fast paths: one unaligned 16-bit load answers both (a 100-byte record's length, value
/// length and most offset deltas are 2-byte varints). Memory safety comes from the load being inside the records span;
/// the record's own end is enforced by the length checks and the final pos == end (see <see cref="TryShort"/>), which
/// rejects exactly what a bounds-checked byte-by-byte read rejects. Longer encodings go through the careful loops, which
/// keep the original acceptance rules.
/// </remarks>
internal static class FastRecordWalk
{
    internal static bool TryValidate(ReadOnlySpan<byte> s, in RecordBatchHeader h, bool contiguous, out int count, out long maxTs, out int maxTsDelta)
    {
        count = 0; maxTs = -1; maxTsDelta = -1;
        int pos = 0;
        int lastDelta = -1;
        int records = h.RecordsCount;
        int lastOffsetDelta = h.LastOffsetDelta;
        long baseTimestamp = h.BaseTimestamp;
        long bestTs = -1;
        int bestDelta = -1;
        for (int i = 0; i < records; i++)
        {
            if (!VarInt<Checked>(s, ref pos, s.Length, out int length) || length < 1 || length > s.Length - pos) return false;
            int end = pos + length;
            // The fields are read with their own cursor and the next record starts at end, not where the fields
            // stopped: the two must agree anyway, and this keeps the chain from record to record down to one length
            // varint, so the CPU can check a record's fields while already reading the next one's length.
            // Every fixed-field read starts at most 2 bytes past the previous one's start or at or before end (see
            // TryShort), so the fifth (header count) starts at most at end + 8: with 10 bytes of slack after end the
            // 2-byte loads need no bounds check. Only records near the section's end take the checked variant.
            if (end <= s.Length - 10
                ? !Fields<Hoisted>(s, pos + 1, end, out long tsDelta, out int offsetDelta)
                : !Fields<Checked>(s, pos + 1, end, out tsDelta, out offsetDelta))
                return false;
            pos = end;
            if (contiguous ? offsetDelta != i : offsetDelta <= lastDelta) return false;
            if (offsetDelta > lastOffsetDelta) return false;
            lastDelta = offsetDelta;
            long ts = baseTimestamp + tsDelta;
            if (ts > bestTs || bestDelta < 0) { bestTs = ts; bestDelta = offsetDelta; }
        }
        if (pos != s.Length) return false;
        count = records; maxTs = bestTs; maxTsDelta = bestDelta;
        return true;
    }

    /// <summary>
    /// One record's fields after the attributes byte at <paramref name="q"/> - 1 (DefaultRecord order: timestamp delta,
    /// offset delta, key, value, headers); true when they end exactly at <paramref name="end"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Fields<TBounds>(ReadOnlySpan<byte> s, int q, int end, out long tsDelta, out int offsetDelta) where TBounds : struct, IBounds
    {
        offsetDelta = 0;
        if (!VarLong<TBounds>(s, ref q, end, out tsDelta)) return false;
        if (!VarInt<TBounds>(s, ref q, end, out offsetDelta)) return false;
        if (!SkipNullableBytes<TBounds>(s, ref q, end)) return false; // key
        if (!SkipNullableBytes<TBounds>(s, ref q, end)) return false; // value
        if (!VarInt<TBounds>(s, ref q, end, out int headerCount) || headerCount < 0 || headerCount > (end - q) / 2) return false;
        for (int k = 0; k < headerCount; k++)
        {
            // Header keys are non-null strings; values may be null (DefaultRecord). Past the fixed fields the slack
            // argument no longer holds, so these reads are always checked.
            if (!VarInt<Checked>(s, ref q, end, out int keyLength) || keyLength < 0 || keyLength > end - q) return false;
            q += keyLength;
            if (!SkipNullableBytes<Checked>(s, ref q, end)) return false;
        }
        return q == end;
    }

    /// <summary>Whether the 2-byte loads must check the span's length (compile-time constant per instantiation).</summary>
    private interface IBounds { static abstract bool Check { get; } }
    private struct Checked : IBounds { public static bool Check => true; }
    private struct Hoisted : IBounds { public static bool Check => false; }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool SkipNullableBytes<TBounds>(ReadOnlySpan<byte> s, ref int pos, int end) where TBounds : struct, IBounds
    {
        if (!VarInt<TBounds>(s, ref pos, end, out int length)) return false;
        if (length < 0) return length == -1;
        if (length > end - pos) return false;
        pos += length;
        return true;
    }

    /// <summary>
    /// Raw (not yet zigzag-decoded) 1- or 2-byte varint at <paramref name="pos"/>. False when longer, or when fewer than
    /// 2 bytes of the span remain (the careful path decides). Deliberately does not look at the record's end: a varint
    /// running past it leaves pos beyond end, and then every later check fails (lengths must be ≤ end − pos, header
    /// counts ≤ (end − pos) / 2, and the record must finish exactly at end), so the verdict equals a bounded read's.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool TryShort<TBounds>(ReadOnlySpan<byte> s, ref int pos, out uint raw) where TBounds : struct, IBounds
    {
        int p = pos;
        if (!BitConverter.IsLittleEndian || (TBounds.Check && (uint)(p + 1) >= (uint)s.Length)) { raw = 0; return false; }
        uint x = Unsafe.ReadUnaligned<ushort>(ref Unsafe.Add(ref MemoryMarshal.GetReference(s), (nint)(uint)p));
        if ((x & 0x80) == 0) { raw = x & 0x7F; pos = p + 1; return true; }
        if ((x & 0x8000) == 0) { raw = (x & 0x7F) | ((x >> 1) & 0x3F80); pos = p + 2; return true; }
        raw = 0;
        return false;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool VarInt<TBounds>(ReadOnlySpan<byte> s, ref int pos, int end, out int value) where TBounds : struct, IBounds
    {
        if (TryShort<TBounds>(s, ref pos, out uint raw))
        {
            value = (int)(raw >> 1) ^ -(int)(raw & 1);
            return true;
        }
        var d = VarIntLong(s, pos, end);
        value = (int)d.Value;
        if (d.Next < 0) return false;
        pos = d.Next;
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool VarLong<TBounds>(ReadOnlySpan<byte> s, ref int pos, int end, out long value) where TBounds : struct, IBounds
    {
        if (TryShort<TBounds>(s, ref pos, out uint raw))
        {
            value = (long)(raw >> 1) ^ -(long)(raw & 1);
            return true;
        }
        var d = VarLongLong(s, pos, end);
        value = d.Value;
        if (d.Next < 0) return false;
        pos = d.Next;
        return true;
    }

    /// <summary>
    /// A varint decoded by the careful loops: returned by value (two registers) rather than through ref/out
    /// parameters, so the walk's cursors are not address-exposed and stay in registers.
    /// </summary>
    private readonly struct Decoded(long value, int next)
    {
        public readonly long Value = value;
        /// <summary>Position after the varint, -1 when it is truncated at end or malformed.</summary>
        public readonly int Next = next;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Decoded VarIntLong(ReadOnlySpan<byte> s, int pos, int end)
    {
        uint result = 0;
        for (int i = 0; i < 5; i++)
        {
            if (pos + i >= end) break;
            uint b = s[pos + i];
            if (i == 4 && b > 0x0f) break; // over 32 bits: the full parser reports it
            result |= (b & 0x7f) << (7 * i);
            if ((b & 0x80) == 0)
                return new Decoded((int)(result >> 1) ^ -(int)(result & 1), pos + i + 1);
        }
        return new Decoded(0, -1);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Decoded VarLongLong(ReadOnlySpan<byte> s, int pos, int end)
    {
        ulong result = 0;
        for (int i = 0; i < 10; i++)
        {
            if (pos + i >= end) break;
            ulong b = s[pos + i];
            if (i == 9 && b > 0x01) break;
            result |= (b & 0x7f) << (7 * i);
            if ((b & 0x80) == 0)
                return new Decoded((long)(result >> 1) ^ -(long)(result & 1), pos + i + 1);
        }
        return new Decoded(0, -1);
    }
}
