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
    [TestCase(true)]
    [TestCase(false)]
    public void AgreesWithTheFullParserOnMutatedBatches(bool contiguous)
    {
        var rng = new Random(12345);
        int accepted = 0, rejected = 0;
        for (int n = 0; n < 3000; n++)
        {
            var batch = Build(rng);
            int mutations = rng.Next(0, 3);
            for (int m = 0; m < mutations; m++)
            {
                int at = RecordBatchHeader.Size + rng.Next(batch.Length - RecordBatchHeader.Size);
                batch[at] = (byte)(rng.Next(4) == 0 ? rng.Next(256) : batch[at] ^ (1 << rng.Next(8)));
            }
            RecordBatchHeader.TryRead(batch, out var h);
            var records = RecordBatch.RecordsSection(batch);
            bool fast = FastRecordWalk.TryValidate(records, h, contiguous, out int count, out long maxTs, out int maxTsDelta);
            bool full = FullWalk(records, h, contiguous, out int fullCount, out long fullMaxTs, out int fullMaxTsDelta);
            if (fast)
            {
                Assert.That(full, Is.True, $"lean walk accepted a batch the full parser rejects (case {n})");
                Assert.That((count, maxTs, maxTsDelta), Is.EqualTo((fullCount, fullMaxTs, fullMaxTsDelta)), $"case {n}");
                accepted++;
            }
            else
            {
                // Only framing the lean walk does not handle (none today) may fall back on a valid batch.
                Assert.That(full, Is.False, $"lean walk rejected a valid batch (case {n})");
                rejected++;
            }
        }
        // Both outcomes must actually have been exercised.
        Assert.That(accepted, Is.GreaterThan(100));
        Assert.That(rejected, Is.GreaterThan(100));
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
        int records = rng.Next(1, 6);
        for (int i = 0; i < records; i++)
        {
            byte[]? key = rng.Next(3) == 0 ? null : new byte[rng.Next(0, 5)];
            byte[]? value = rng.Next(5) == 0 ? null : new byte[rng.Next(0, 300)];
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
