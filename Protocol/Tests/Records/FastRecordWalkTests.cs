using Kayak.Protocol.Records;
using NUnit.Framework;

namespace Kayak.Protocol.Tests.Records;

/// <summary>
/// RecordBatch.Validate walks uncompressed records with <see cref="FastRecordWalk"/> and falls back to the full
/// parser only when the lean walk is unsure. The lean walk must therefore never accept a batch the full parser
/// rejects, and must report the same totals when both accept. Differential test over randomly mutated records
/// sections (the walk is called directly, so the batch CRC does not hide the mutations).
/// </summary>
[TestFixture]
public sealed class FastRecordWalkTests
{
    [TestCase(true, 12345)]
    [TestCase(false, 12345)]
    [TestCase(true, 1)]
    [TestCase(false, 2)]
    [TestCase(true, 3)]
    [TestCase(false, 4)]
    public void AgreesWithTheFullParserOnMutatedBatches(bool contiguous, int seed)
    {
        var rng = new Random(seed);
        int accepted = 0, rejected = 0;
        for (int n = 0; n < 3000; n++)
        {
            var batch = Build(rng);
            int mutations = rng.Next(0, 4);
            for (int m = 0; m < mutations; m++)
            {
                int at = RecordBatchHeader.Size + rng.Next(batch.Length - RecordBatchHeader.Size);
                switch (rng.Next(8))
                {
                    case 0: batch[at] = (byte)rng.Next(256); break;
                    // Shift the framing: drop or insert one byte, or cut the section short.
                    case 1: batch = [.. batch.AsSpan(0, at), .. batch.AsSpan(at + 1)]; break;
                    case 2: batch = [.. batch.AsSpan(0, at), (byte)rng.Next(256), .. batch.AsSpan(at)]; break;
                    case 3: batch = batch[..at]; break;
                    // Set or clear a continuation bit: turns 1-byte varints into 2-byte ones and back.
                    case 4: batch[at] ^= 0x80; break;
                    default: batch[at] ^= (byte)(1 << rng.Next(8)); break;
                }
                if (batch.Length <= RecordBatchHeader.Size) break;
            }
            if (rng.Next(10) == 0) Patch(batch, RecordBatchHeader.RecordsCountOffset, ReadCount(batch) + rng.Next(-1, 2));
            Check(batch, contiguous, $"seed {seed} case {n}", ref accepted, ref rejected);
        }
        // Both outcomes must actually have been exercised.
        Assert.That(accepted, Is.GreaterThan(100));
        Assert.That(rejected, Is.GreaterThan(100));
    }

    /// <summary>
    /// Hand-made records with encodings a client library does not produce: overlong varints (extra 0x80 groups), 5- and
    /// 10-byte varints with legal and illegal top bytes, lengths below -1, negative and oversized header counts, record
    /// lengths off by one, counts that disagree with the section, sections cut inside a varint.
    /// </summary>
    [TestCase(true, 11)]
    [TestCase(false, 12)]
    [TestCase(true, 13)]
    [TestCase(false, 14)]
    public void AgreesWithTheFullParserOnUnusualEncodings(bool contiguous, int seed)
    {
        var rng = new Random(seed);
        int accepted = 0, rejected = 0;
        for (int n = 0; n < 4000; n++)
        {
            var batch = Crafted(rng);
            Check(batch, contiguous, $"seed {seed} case {n}", ref accepted, ref rejected);
        }
        Assert.That(accepted, Is.GreaterThan(200));
        Assert.That(rejected, Is.GreaterThan(200));
    }

    // Single cases whose verdict is known, so the differential tests cannot both be wrong in the same way.
    [TestCase(new byte[] { 0x0E, 0, 0, 0, 1, 0x02, 0x41, 0 }, true, TestName = "Canonical record with a 1-byte value")]
    [TestCase(new byte[] { 0x9E, 0x00, 0, 0x80, 0x00, 0x80, 0x80, 0x80, 0x80, 0x00, 1, 0x82, 0x80, 0x00, 0x41, 0x80, 0x00 }, true, TestName = "Overlong 2-, 3- and 5-byte varints are accepted")]
    [TestCase(new byte[] { 0x8E, 0x80, 0x80, 0x80, 0x10, 0, 0, 0, 1, 0x02, 0x41, 0 }, false, TestName = "5-byte length with a top byte over 0x0F")]
    [TestCase(new byte[] { 0x0E, 0, 0, 0, 0x03, 0x02, 0x41, 0 }, false, TestName = "Key length -2")]
    [TestCase(new byte[] { 0x0E, 0, 0, 0, 1, 0x02, 0x41, 0x01 }, false, TestName = "Header count -1")]
    [TestCase(new byte[] { 0x0E, 0, 0, 0, 1, 0x02, 0x41 }, false, TestName = "Record length one past the section")]
    [TestCase(new byte[] { 0x0E, 0, 0, 0, 1, 0x02, 0x41, 0x80 }, false, TestName = "Header count cut after a continuation byte")]
    [TestCase(new byte[] { 0x12, 0, 0, 0, 1, 0x02, 0x41, 0x02, 0x00, 0x01 }, true, TestName = "Header with empty key and null value ends exactly at the section end")]
    [TestCase(new byte[] { 0x00 }, false, TestName = "Zero record length")]
    [TestCase(new byte[] { 0x0E, 0, 0, 0, 1, 0x02, 0x41, 0, 0 }, false, TestName = "Trailing byte after the last record")]
    public void KnownVerdicts(byte[] records, bool valid)
    {
        var batch = WithHeader(records, 1, 0);
        RecordBatchHeader.TryRead(batch, out var h);
        var section = RecordBatch.RecordsSection(batch);
        Assert.That(FullWalk(section, h, true, out _, out _, out _), Is.EqualTo(valid), "full parser");
        Assert.That(FastRecordWalk.TryValidate(section, h, true, out int count, out _, out _), Is.EqualTo(valid), "lean walk");
        if (valid) Assert.That(count, Is.EqualTo(1));
    }

    /// <summary>The 2-byte loads must stop at the section's end even when the memory after it would complete a varint.</summary>
    [Test]
    public void DoesNotReadPastTheRecordsSection()
    {
        // Header count 0x80 is cut; a following 0x00 in memory (outside the span) would make it a valid overlong 0.
        byte[] records = [0x0E, 0, 0, 0, 1, 0x02, 0x41, 0x80];
        var batch = WithHeader(records, 1, 0);
        byte[] bigger = [.. batch, 0x00, 0x00];
        RecordBatchHeader.TryRead(bigger, out var h);
        var section = bigger.AsSpan(RecordBatchHeader.Size, records.Length);
        Assert.That(FastRecordWalk.TryValidate(section, h, true, out _, out _, out _), Is.False);
        // And the same bytes with the 0x00 inside the section (record length covers it) are valid.
        byte[] longer = [0x10, 0, 0, 0, 1, 0x02, 0x41, 0x80, 0x00];
        var ok = WithHeader(longer, 1, 0);
        RecordBatchHeader.TryRead(ok, out var h2);
        Assert.That(FastRecordWalk.TryValidate(RecordBatch.RecordsSection(ok), h2, true, out int count, out _, out _), Is.True);
        Assert.That(count, Is.EqualTo(1));
    }

    private static void Check(byte[] batch, bool contiguous, string what, ref int accepted, ref int rejected)
    {
        if (!RecordBatchHeader.TryRead(batch, out var h)) return;
        var records = RecordBatch.RecordsSection(batch);
        bool fast = FastRecordWalk.TryValidate(records, h, contiguous, out int count, out long maxTs, out int maxTsDelta);
        bool full = FullWalk(records, h, contiguous, out int fullCount, out long fullMaxTs, out int fullMaxTsDelta);
        if (fast)
        {
            Assert.That(full, Is.True, $"lean walk accepted a batch the full parser rejects ({what})");
            Assert.That((count, maxTs, maxTsDelta), Is.EqualTo((fullCount, fullMaxTs, fullMaxTsDelta)), what);
            accepted++;
        }
        else
        {
            // Only framing the lean walk does not handle (none today) may fall back on a valid batch.
            Assert.That(full, Is.False, $"lean walk rejected a valid batch ({what})");
            rejected++;
        }
    }

    [Test]
    public void ValidateResultIsUnchangedForValidBatches()
    {
        var rng = new Random(7);
        for (int n = 0; n < 200; n++)
        {
            var batch = Build(rng);
            var r = RecordBatch.Validate(batch);
            RecordBatchHeader.TryRead(batch, out var h);
            Assert.That(FullWalk(RecordBatch.RecordsSection(batch), h, true, out int count, out long maxTs, out int maxTsDelta), Is.True);
            Assert.That((r.IsValid, r.RecordCount, r.MaxTimestamp, r.OffsetDeltaOfMaxTimestamp), Is.EqualTo((true, count, maxTs, Math.Max(maxTsDelta, 0))));
        }
    }

    private static byte[] Build(Random rng)
    {
        using var b = new RecordBatchBuilder(new RecordBatchOptions());
        // Sometimes past 64 records (2-byte offset deltas) and values past 8 KB (3-byte lengths).
        int records = rng.Next(8) == 0 ? rng.Next(60, 140) : rng.Next(1, 6);
        for (int i = 0; i < records; i++)
        {
            byte[]? key = rng.Next(3) == 0 ? null : new byte[rng.Next(0, 5)];
            byte[]? value = rng.Next(5) == 0 ? null : new byte[rng.Next(40) == 0 ? rng.Next(8000, 9000) : rng.Next(0, 300)];
            List<RecordHeader>? headers = null;
            if (rng.Next(2) == 0)
            {
                headers = new List<RecordHeader>();
                for (int k = rng.Next(1, 3); k > 0; k--) headers.Add(new RecordHeader("h" + k, rng.Next(3) == 0 ? null : new byte[rng.Next(0, 4)]));
            }
            b.Append(1_700_000_000_000 + rng.Next(-1000, 1000), key, value, headers);
        }
        return b.ToArray();
    }

    private static int ReadCount(byte[] batch) => System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(batch.AsSpan(RecordBatchHeader.RecordsCountOffset));

    private static void Patch(byte[] batch, int offset, int value) => System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(batch.AsSpan(offset), value);

    /// <summary>A v2 header (taken from a built batch) in front of <paramref name="records"/>, with the given count and lastOffsetDelta.</summary>
    private static byte[] WithHeader(ReadOnlySpan<byte> records, int count, int lastOffsetDelta)
    {
        byte[] header;
        using (var b = new RecordBatchBuilder(new RecordBatchOptions()))
        {
            b.Append(1_700_000_000_000, null, [1], null);
            header = b.ToArray()[..RecordBatchHeader.Size];
        }
        byte[] batch = [.. header, .. records];
        Patch(batch, RecordBatchHeader.BatchLengthOffset, batch.Length - RecordBatchHeader.LogOverhead);
        Patch(batch, RecordBatchHeader.RecordsCountOffset, count);
        Patch(batch, RecordBatchHeader.LastOffsetDeltaOffset, lastOffsetDelta);
        return batch;
    }

    /// <summary>Unsigned varint of <paramref name="raw"/> in at least <paramref name="width"/> bytes (extra groups are overlong zeros).</summary>
    private static void Unsigned(List<byte> dst, ulong raw, int width)
    {
        for (int i = 0; ; i++)
        {
            byte group = (byte)(raw & 0x7F);
            raw >>= 7;
            if (raw == 0 && i + 1 >= width) { dst.Add(group); return; }
            dst.Add((byte)(group | 0x80));
        }
    }

    /// <summary>A zigzag varint of <paramref name="v"/>, usually canonical, sometimes overlong or junk.</summary>
    private static void Field(List<byte> dst, Random rng, long v, bool isLong, int spread)
    {
        ulong raw = isLong ? (ulong)((v << 1) ^ (v >> 63)) : (uint)(((int)v << 1) ^ ((int)v >> 31));
        int max = isLong ? 10 : 5;
        switch (rng.Next(spread))
        {
            case 0: case 1: Unsigned(dst, raw, rng.Next(2, max + 1)); break; // overlong, still legal
            case 2: Unsigned(dst, raw, max + 1); break; // one byte too many
            case 3:
                // Maximum width with a random top byte: legal only up to 0x0F (int) / 0x01 (long).
                for (int i = 0; i < max - 1; i++) dst.Add((byte)(0x80 | rng.Next(128)));
                dst.Add((byte)rng.Next(isLong ? 4 : 0x20));
                break;
            case 4:
                for (int i = rng.Next(1, 4); i > 0; i--) dst.Add((byte)rng.Next(256));
                break;
            case 5:
                // The right value at maximum width plus bits beyond 32 / 64 in the top byte: shifted out, so only the
                // top-byte rule rejects it.
                Unsigned(dst, raw, max);
                dst[^1] |= (byte)(isLong ? rng.Next(1, 64) << 1 : rng.Next(1, 8) << 4);
                break;
            default: Unsigned(dst, raw, 1); break;
        }
    }

    private static long Pick(Random rng, long actual, int spread) => rng.Next(spread + 6) switch
    {
        0 => -1,
        1 => -2,
        2 => int.MinValue,
        3 => actual + 1,
        4 => actual - 1,
        5 => rng.Next(1 << 14),
        _ => actual,
    };

    private static byte[] Crafted(Random rng)
    {
        // Most batches carry only a few odd encodings (so that many are valid), some carry many.
        int spread = rng.Next(3) == 0 ? 24 : 400;
        var section = new List<byte>();
        var body = new List<byte>();
        int records = rng.Next(1, rng.Next(6) == 0 ? 150 : 5);
        for (int i = 0; i < records; i++)
        {
            body.Clear();
            body.Add((byte)rng.Next(256)); // attributes: unused by the framing
            Field(body, rng, rng.Next(6) == 0 ? (long)(rng.NextDouble() * long.MaxValue) * (rng.Next(2) * 2 - 1) : rng.Next(-5000, 5000), true, spread);
            Field(body, rng, rng.Next(25) == 0 ? rng.Next(-2, 300) : i, false, spread);
            for (int kv = 0; kv < 2; kv++)
            {
                int len = rng.Next(5) == 0 ? -1 : rng.Next(4) == 0 ? rng.Next(64, 300) : rng.Next(0, 64);
                Field(body, rng, Pick(rng, len, spread), false, spread);
                for (int j = 0; j < len; j++) body.Add((byte)j);
            }
            int headers = rng.Next(4) == 0 ? rng.Next(1, 4) : 0;
            Field(body, rng, rng.Next(20) == 0 ? rng.Next(-3, 100) : headers, false, spread);
            for (int k = 0; k < headers; k++)
            {
                int keyLen = rng.Next(0, 4);
                Field(body, rng, rng.Next(20) == 0 ? -1 : keyLen, false, spread);
                for (int j = 0; j < keyLen; j++) body.Add((byte)'k');
                int valueLen = rng.Next(6) == 0 ? -1 : rng.Next(0, 80);
                Field(body, rng, Pick(rng, valueLen, spread), false, spread);
                for (int j = 0; j < valueLen; j++) body.Add((byte)'v');
            }
            Field(section, rng, Pick(rng, body.Count, spread), false, spread);
            section.AddRange(body);
        }
        // Cut the section (possibly inside a varint) or leave junk behind the last record.
        switch (rng.Next(10))
        {
            case 0: { int cut = rng.Next(1, Math.Min(4, section.Count)); section.RemoveRange(section.Count - cut, cut); } break;
            case 1: if (section.Count > 1) section.RemoveAt(section.Count - 1); break;
            case 2: section.Add((byte)rng.Next(256)); break;
        }
        int count = rng.Next(12) == 0 ? records + rng.Next(-1, 2) : records;
        int lastOffsetDelta = rng.Next(12) == 0 ? records - 1 + rng.Next(-1, 2) : records - 1;
        return WithHeader(section.ToArray(), count, lastOffsetDelta);
    }

    /// <summary>What Validate did before the lean walk: RecordEnumerator plus the offset-delta rules.</summary>
    private static bool FullWalk(ReadOnlySpan<byte> records, in RecordBatchHeader h, bool contiguous, out int count, out long maxTs, out int maxTsDelta)
    {
        count = 0; maxTs = -1; maxTsDelta = -1;
        try
        {
            var e = new RecordEnumerator(records, h.RecordsCount);
            int i = 0, last = -1;
            while (e.MoveNext())
            {
                var r = e.Current;
                if (contiguous ? r.OffsetDelta != i : r.OffsetDelta <= last) return false;
                if (r.OffsetDelta > h.LastOffsetDelta) return false;
                last = r.OffsetDelta;
                long ts = h.BaseTimestamp + r.TimestampDelta;
                if (ts > maxTs || maxTsDelta < 0) { maxTs = ts; maxTsDelta = r.OffsetDelta; }
                i++;
            }
            if (e.RemainingBytes != 0) return false;
            count = i;
            return true;
        }
        catch (ProtocolException)
        {
            return false;
        }
    }
}
