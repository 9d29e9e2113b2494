using System.Buffers.Binary;
using System.Text;
using Kayak.Protocol.Compression;
using Kayak.Protocol.Records;
using NUnit.Framework;

namespace Kayak.Protocol.Tests.Records;

public class RecordBatchTests
{
    internal static readonly CompressionType[] AllCodecs =
        [CompressionType.None, CompressionType.Gzip, CompressionType.Snappy, CompressionType.Lz4, CompressionType.Zstd];

    internal static byte[] BuildSample(CompressionType codec, int count = 3, RecordBatchOptions? opts = null)
    {
        using var b = new RecordBatchBuilder(opts ?? new RecordBatchOptions { Compression = codec, BaseOffset = 100, ProducerId = 7, ProducerEpoch = 2, BaseSequence = 5 });
        for (int i = 0; i < count; i++)
        {
            var headers = i % 2 == 0
                ? new[] { new RecordHeader("h" + i, Encoding.UTF8.GetBytes("v" + i)), new RecordHeader("nullv", null) }
                : null;
            b.Append(1_700_000_000_000 + i * 10, i == 1 ? null : Encoding.UTF8.GetBytes("key" + i),
                Encoding.UTF8.GetBytes(new string((char)('a' + i % 26), 50 + i)), headers);
        }
        return b.ToArray();
    }

    [TestCaseSource(nameof(AllCodecs))]
    public void BuildValidateAndEnumerateRoundTrip(CompressionType codec)
    {
        var batch = BuildSample(codec, 20);
        Assert.That(RecordBatch.TryReadBatch(batch, out var h, out int total), Is.True);
        Assert.That(total, Is.EqualTo(batch.Length));
        Assert.That(h.Magic, Is.EqualTo(2));
        Assert.That(h.Compression, Is.EqualTo(codec));
        Assert.That(h.BaseOffset, Is.EqualTo(100));
        Assert.That(h.ProducerId, Is.EqualTo(7));
        Assert.That(h.ProducerEpoch, Is.EqualTo(2));
        Assert.That(h.BaseSequence, Is.EqualTo(5));
        Assert.That(h.RecordsCount, Is.EqualTo(20));
        Assert.That(h.LastOffsetDelta, Is.EqualTo(19));
        Assert.That(h.BaseTimestamp, Is.EqualTo(1_700_000_000_000));
        Assert.That(h.MaxTimestamp, Is.EqualTo(1_700_000_000_190));
        Assert.That(h.Crc, Is.EqualTo(Crc32C.Compute(batch.AsSpan(21))));

        var result = RecordBatch.Validate(batch);
        Assert.That(result.Error, Is.EqualTo(ErrorCode.None), result.Message);
        Assert.That(result.RecordCount, Is.EqualTo(20));
        Assert.That(result.MaxTimestamp, Is.EqualTo(1_700_000_000_190));
        Assert.That(result.OffsetDeltaOfMaxTimestamp, Is.EqualTo(19));

        using var buf = new PooledBufferWriter();
        RecordBatch.DecompressRecords(batch, buf);
        int i = 0;
        foreach (var r in new RecordEnumerator(buf.WrittenSpan, h.RecordsCount))
        {
            Assert.That(r.OffsetDelta, Is.EqualTo(i));
            Assert.That(r.TimestampDelta, Is.EqualTo(i * 10));
            Assert.That(r.KeyIsNull, Is.EqualTo(i == 1));
            if (i != 1) Assert.That(Encoding.UTF8.GetString(r.Key), Is.EqualTo("key" + i));
            Assert.That(r.ValueIsNull, Is.False);
            Assert.That(Encoding.UTF8.GetString(r.Value), Is.EqualTo(new string((char)('a' + i % 26), 50 + i)));
            Assert.That(r.HeaderCount, Is.EqualTo(i % 2 == 0 ? 2 : 0));
            int hi = 0;
            foreach (var hv in r.Headers)
            {
                if (hi == 0)
                {
                    Assert.That(hv.KeyString, Is.EqualTo("h" + i));
                    Assert.That(Encoding.UTF8.GetString(hv.Value), Is.EqualTo("v" + i));
                    Assert.That(hv.ValueIsNull, Is.False);
                }
                else
                {
                    Assert.That(hv.KeyString, Is.EqualTo("nullv"));
                    Assert.That(hv.ValueIsNull, Is.True);
                }
                hi++;
            }
            Assert.That(hi, Is.EqualTo(r.HeaderCount));
            i++;
        }
        Assert.That(i, Is.EqualTo(20));
    }

    [Test]
    public void UncompressedEnumerationIsInPlace()
    {
        var batch = BuildSample(CompressionType.None, 2);
        var e = RecordBatch.EnumerateUncompressed(batch);
        Assert.That(e.MoveNext());
        var key = e.Current.Key;
        // The key span must alias the batch buffer, not a copy.
        Assert.That(System.Runtime.CompilerServices.Unsafe.AreSame(
            ref System.Runtime.InteropServices.MemoryMarshal.GetReference(key),
            ref batch[batch.AsSpan().IndexOf("key0"u8)]), Is.True);
    }

    [Test]
    public void EmptyBuilderProducesZeroRecordBatchRejectedOnProducePath()
    {
        using var b = new RecordBatchBuilder();
        var batch = b.ToArray();
        Assert.That(batch.Length, Is.EqualTo(RecordBatchHeader.Size));
        Assert.That(RecordBatch.Validate(batch).Error, Is.EqualTo(ErrorCode.InvalidRecord));
        var lenient = RecordBatch.Validate(batch, new ValidationOptions { RequireContiguousOffsets = false });
        Assert.That(lenient.IsValid, lenient.Message);
        Assert.That(lenient.RecordCount, Is.Zero);
    }

    [TestCase(ControlRecordType.Commit), TestCase(ControlRecordType.Abort)]
    public void ControlMarkerBatch(ControlRecordType type)
    {
        using var w = new PooledBufferWriter();
        ControlRecord.WriteEndTransactionMarker(w, type, producerId: 4242, producerEpoch: 3, coordinatorEpoch: 17, timestamp: 1234, baseOffset: 50);
        var batch = w.WrittenSpan.ToArray();
        Assert.That(RecordBatch.Validate(batch).IsValid);
        RecordBatchHeader.TryRead(batch, out var h);
        Assert.That(h.IsControl && h.IsTransactional, Is.True);
        Assert.That(h.ProducerId, Is.EqualTo(4242));
        Assert.That(h.ProducerEpoch, Is.EqualTo(3));
        Assert.That(h.BaseOffset, Is.EqualTo(50));
        var e = RecordBatch.EnumerateUncompressed(batch);
        Assert.That(e.MoveNext());
        Assert.That(ControlRecord.TryReadKey(e.Current.Key, out short ver, out var t), Is.True);
        Assert.That(ver, Is.Zero);
        Assert.That(t, Is.EqualTo(type));
        Assert.That(ControlRecord.TryReadEndTransactionMarker(e.Current.Value, out int epoch), Is.True);
        Assert.That(epoch, Is.EqualTo(17));
        // Exact bytes of the key/value per KIP-98.
        Assert.That(e.Current.Key.ToArray(), Is.EqualTo(new byte[] { 0, 0, 0, (byte)type }));
        Assert.That(e.Current.Value.ToArray(), Is.EqualTo(new byte[] { 0, 0, 0, 0, 0, 17 }));
        Assert.That(e.MoveNext(), Is.False);
    }

    [Test]
    public void RewriterPatchesOffsetsAndLogAppendTimeWithValidCrc()
    {
        var batch = BuildSample(CompressionType.Lz4, 4);
        RecordBatchRewriter.SetBaseOffset(batch, 9_000);
        RecordBatchRewriter.SetPartitionLeaderEpoch(batch, 12);
        Assert.That(RecordBatch.Validate(batch).IsValid, "base offset/epoch are outside the CRC");
        RecordBatchRewriter.SetLogAppendTime(batch, 1_800_000_000_000);
        RecordBatchHeader.TryRead(batch, out var h);
        Assert.That(h.BaseOffset, Is.EqualTo(9_000));
        Assert.That(h.PartitionLeaderEpoch, Is.EqualTo(12));
        Assert.That(h.IsLogAppendTime, Is.True);
        Assert.That(h.Compression, Is.EqualTo(CompressionType.Lz4));
        Assert.That(h.MaxTimestamp, Is.EqualTo(1_800_000_000_000));
        Assert.That(RecordBatch.Validate(batch).IsValid);
        RecordBatchRewriter.SetMaxTimestamp(batch, TimestampType.CreateTime, 5);
        RecordBatchHeader.TryRead(batch, out h);
        Assert.That(h.IsLogAppendTime, Is.False);
        Assert.That(RecordBatch.Validate(batch).IsValid);
    }

    [Test]
    public void BatchEnumeratorSplitsConcatenatedBatchesAndStopsAtPartialTail()
    {
        var a = BuildSample(CompressionType.None, 2);
        var b = BuildSample(CompressionType.Gzip, 3);
        var all = a.Concat(b).Concat(b.Take(30)).ToArray();
        var e = new BatchEnumerator(all);
        Assert.That(e.MoveNext());
        Assert.That(e.Current.Length, Is.EqualTo(a.Length));
        Assert.That(e.MoveNext());
        Assert.That(e.Current.Length, Is.EqualTo(b.Length));
        Assert.That(e.MoveNext(), Is.False);
        Assert.That(e.TrailingBytes, Is.EqualTo(30));
    }

    // ------------------------------------------------------------ malformed input

    [Test]
    public void TruncatedBatchNeedsMoreBytes()
    {
        var batch = BuildSample(CompressionType.None);
        for (int n = 0; n < batch.Length; n += 5)
            Assert.That(RecordBatch.TryReadBatch(batch.AsSpan(0, n), out _, out _), Is.False, $"prefix {n}");
        Assert.That(RecordBatch.Validate(batch.AsSpan(0, batch.Length - 1)).Error, Is.EqualTo(ErrorCode.CorruptMessage));
        Assert.That(RecordBatch.Validate(batch.AsSpan(0, 30)).Error, Is.EqualTo(ErrorCode.CorruptMessage));
    }

    [TestCase(-1), TestCase(0), TestCase(13), TestCase(int.MaxValue)]
    public void ImpossibleBatchLengthThrowsCorrupt(int length)
    {
        var batch = BuildSample(CompressionType.None);
        BinaryPrimitives.WriteInt32BigEndian(batch.AsSpan(8), length);
        Assert.Throws<CorruptRecordException>(() => RecordBatch.TryReadBatch(batch, out _, out _));
        Assert.That(RecordBatch.Validate(batch).Error, Is.EqualTo(ErrorCode.CorruptMessage));
    }

    [TestCaseSource(nameof(AllCodecs))]
    public void FlippedByteFailsCrc(CompressionType codec)
    {
        var batch = BuildSample(codec);
        batch[^3] ^= 0x40;
        var r = RecordBatch.Validate(batch);
        Assert.That(r.Error, Is.EqualTo(ErrorCode.CorruptMessage));
        Assert.That(r.Message, Does.Contain("crc"));
        Assert.Throws<CorruptRecordException>(() => RecordBatch.ValidateOrThrow(batch));
    }

    [Test]
    public void WrongMagicIsRejected()
    {
        var batch = BuildSample(CompressionType.None);
        batch[RecordBatchHeader.MagicOffset] = 3;
        Assert.That(RecordBatch.Validate(batch).Error, Is.EqualTo(ErrorCode.UnsupportedForMessageFormat));
    }

    /// <summary>Rewrites a field then fixes the CRC, so structural checks (not the CRC) must catch it.</summary>
    private static ValidationResult PatchAndValidate(byte[] batch, Action<byte[]> patch)
    {
        patch(batch);
        BinaryPrimitives.WriteUInt32BigEndian(batch.AsSpan(RecordBatchHeader.CrcOffset), RecordBatch.ComputeCrc(batch));
        return RecordBatch.Validate(batch);
    }

    [Test]
    public void CountMismatchWithLastOffsetDelta()
    {
        var r = PatchAndValidate(BuildSample(CompressionType.None), b => BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(RecordBatchHeader.LastOffsetDeltaOffset), 5));
        Assert.That(r.Error, Is.EqualTo(ErrorCode.InvalidRecord));
    }

    [TestCase(4), TestCase(2), TestCase(-1), TestCase(1_000_000)]
    public void WrongRecordCount(int count)
    {
        var r = PatchAndValidate(BuildSample(CompressionType.None), b =>
        {
            BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(RecordBatchHeader.RecordsCountOffset), count);
            BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(RecordBatchHeader.LastOffsetDeltaOffset), count - 1);
        });
        Assert.That(r.IsValid, Is.False);
    }

    [TestCase(CompressionType.None), TestCase(CompressionType.Zstd)]
    public void HugeRecordCountInCompressedBatchIsRejectedCheaply(CompressionType codec)
    {
        var r = PatchAndValidate(BuildSample(codec), b =>
        {
            BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(RecordBatchHeader.RecordsCountOffset), int.MaxValue);
            BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(RecordBatchHeader.LastOffsetDeltaOffset), int.MaxValue - 1);
        });
        Assert.That(r.Error, Is.EqualTo(ErrorCode.InvalidRecord));
    }

    [Test]
    public void BadRecordLengthVarint()
    {
        // First record's length varint: make it huge (5 continuation bytes is malformed).
        var r = PatchAndValidate(BuildSample(CompressionType.None), b => b.AsSpan(RecordBatchHeader.Size, 5).Fill(0xFF));
        Assert.That(r.Error, Is.EqualTo(ErrorCode.InvalidRecord));
    }

    [Test]
    public void NegativeRecordLength()
    {
        var r = PatchAndValidate(BuildSample(CompressionType.None), b => b[RecordBatchHeader.Size] = 0x03 /* zigzag -2 */);
        Assert.That(r.Error, Is.EqualTo(ErrorCode.InvalidRecord));
    }

    [Test]
    public void RecordLengthShorterThanContent()
    {
        var batch = BuildSample(CompressionType.None, 1);
        // Length varint of record 0 (1 byte): shrink by one so the headers run past the declared size.
        var r = PatchAndValidate(batch, b => b[RecordBatchHeader.Size] = (byte)(b[RecordBatchHeader.Size] - 2));
        Assert.That(r.Error, Is.EqualTo(ErrorCode.InvalidRecord));
    }

    [Test]
    public void TrailingBytesAfterLastRecord()
    {
        var batch = BuildSample(CompressionType.None, 2).Concat(new byte[] { 0, 0, 0 }).ToArray();
        var r = PatchAndValidate(batch, b => BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(8), b.Length - 12));
        Assert.That(r.Error, Is.EqualTo(ErrorCode.InvalidRecord));
    }

    [Test]
    public void UnknownCompressionId()
    {
        var r = PatchAndValidate(BuildSample(CompressionType.None), b => b[RecordBatchHeader.AttributesOffset + 1] |= 0x07);
        Assert.That(r.Error, Is.EqualTo(ErrorCode.CorruptMessage));
    }

    [Test]
    public void DecompressionBombIsRejected()
    {
        using var b = new RecordBatchBuilder(new RecordBatchOptions { Compression = CompressionType.Zstd });
        b.Append(0, null, new byte[4 * 1024 * 1024]);
        var batch = b.ToArray();
        Assert.That(batch.Length, Is.LessThan(4096));
        Assert.That(RecordBatch.Validate(batch).IsValid);
        var r = RecordBatch.Validate(batch, new ValidationOptions { MaxDecompressedBytes = 1024 * 1024 });
        // Too large, not corrupt (issue 15, K13; DecompressionBombTests).
        Assert.That(r.Error, Is.EqualTo(ErrorCode.MessageTooLarge));
        Assert.That(r.Message, Does.Contain("decompresses to more than 1048576 bytes"));
    }

    [Test]
    public void GarbageCompressedBodyIsCorrupt([ValueSource(nameof(AllCodecs))] CompressionType codec)
    {
        if (codec == CompressionType.None) return;
        var batch = BuildSample(codec, 5);
        var r = PatchAndValidate(batch, b => b.AsSpan(RecordBatchHeader.Size + 2, 8).Fill(0xA5));
        Assert.That(r.Error, Is.EqualTo(ErrorCode.CorruptMessage), r.Message);
    }

    [Test]
    public void RandomCorruptionNeverCrashes()
    {
        var rnd = new Random(42);
        foreach (var codec in AllCodecs)
        {
            var original = BuildSample(codec, 6);
            for (int iter = 0; iter < 200; iter++)
            {
                var b = (byte[])original.Clone();
                int flips = 1 + rnd.Next(4);
                for (int f = 0; f < flips; f++) b[RecordBatchHeader.Size + rnd.Next(b.Length - RecordBatchHeader.Size)] = (byte)rnd.Next(256);
                BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(RecordBatchHeader.CrcOffset), RecordBatch.ComputeCrc(b));
                // Must return (valid or not), never throw.
                var r = RecordBatch.Validate(b, new ValidationOptions { MaxDecompressedBytes = 1 << 20 });
                Assert.That(r.Error == ErrorCode.None || r.Message is not null);
            }
        }
    }
}

public class RecordCopyTests
{
    [Test]
    public void CompactionStyleCopyKeepsDeltasHeadersAndLastOffset()
    {
        var source = RecordBatchTests.BuildSample(CompressionType.Snappy, 10);
        RecordBatchHeader.TryRead(source, out var sh);
        using var records = new PooledBufferWriter();
        RecordBatch.DecompressRecords(source, records);
        using var b = new RecordBatchBuilder(new RecordBatchOptions
        {
            BaseOffset = sh.BaseOffset, Compression = CompressionType.Gzip, LastOffsetDelta = sh.LastOffsetDelta,
            ProducerId = sh.ProducerId, ProducerEpoch = sh.ProducerEpoch, BaseSequence = sh.BaseSequence,
        });
        foreach (var r in new RecordEnumerator(records.WrittenSpan, sh.RecordsCount))
            if (r.OffsetDelta % 3 == 0 && r.OffsetDelta != 9) b.Append(r, sh.BaseTimestamp); // keep 0,3,6: drop the tail
        var compacted = b.ToArray();

        Assert.That(RecordBatch.Validate(compacted).Error, Is.EqualTo(ErrorCode.InvalidRecord), "gaps are not allowed on the produce path");
        var v = RecordBatch.Validate(compacted, new ValidationOptions { RequireContiguousOffsets = false });
        Assert.That(v.IsValid, v.Message);
        Assert.That(v.RecordCount, Is.EqualTo(3));
        RecordBatchHeader.TryRead(compacted, out var h);
        Assert.That(h.LastOffsetDelta, Is.EqualTo(9));
        Assert.That(h.LastOffset, Is.EqualTo(sh.LastOffset));

        var original = GoldenTests.DecodeV2(source);
        var kept = GoldenTests.DecodeV2(compacted);
        GoldenTests.AssertSame(kept, [original[0], original[3], original[6]], "compacted");
    }

    [Test]
    public void OffsetDeltasMustIncrease()
    {
        var source = RecordBatchTests.BuildSample(CompressionType.None, 3);
        using var b = new RecordBatchBuilder();
        var e = RecordBatch.EnumerateUncompressed(source);
        e.MoveNext();
        e.MoveNext();
        b.Append(e.Current, 0);
        bool threw = false;
        try { b.Append(e.Current, 0); } catch (ArgumentException) { threw = true; }
        Assert.That(threw, Is.True);
    }
}
