using System.Text.Json;
using Kayak.Protocol.Compression;
using Kayak.Protocol.Records;
using NUnit.Framework;

namespace Kayak.Protocol.Tests.Records;

/// <summary>
/// Batches produced by kafka-python 2.0.2's own builders (tools/golden/make_golden.py) must decode
/// exactly to the records the script fed in.
/// </summary>
public class GoldenTests
{
    internal static string RepoRoot()
    {
        var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Kayak.slnx"))) dir = dir.Parent;
        if (dir is null) Assert.Fail("Could not locate the repository root (Kayak.slnx) above " + TestContext.CurrentContext.TestDirectory);
        return dir!.FullName;
    }

    internal sealed record ExpectedRecord(long Offset, long Timestamp, string? Key, string? Value, List<string?[]> Headers);

    internal static string TestDataDir => Path.Combine(RepoRoot(), "Protocol", "Tests", "TestData");

    private static Dictionary<string, JsonElement> Manifest()
    {
        var json = File.ReadAllText(Path.Combine(TestDataDir, "golden.json"));
        return JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(json)!;
    }

    public static IEnumerable<string> CaseNames()
    {
        var json = File.ReadAllText(Path.Combine(RepoRoot(), "Protocol", "Tests", "TestData", "golden.json"));
        return JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(json)!.Keys.OrderBy(k => k, StringComparer.Ordinal).ToList();
    }

    internal static List<ExpectedRecord> Records(JsonElement e)
    {
        var list = new List<ExpectedRecord>();
        foreach (var r in e.GetProperty("records").EnumerateArray())
        {
            var headers = new List<string?[]>();
            foreach (var h in r.GetProperty("headers").EnumerateArray())
                headers.Add([h[0].GetString(), h[1].ValueKind == JsonValueKind.Null ? null : h[1].GetString()]);
            list.Add(new ExpectedRecord(r.GetProperty("offset").GetInt64(), r.GetProperty("timestamp").GetInt64(),
                r.GetProperty("key").ValueKind == JsonValueKind.Null ? null : r.GetProperty("key").GetString(),
                r.GetProperty("value").ValueKind == JsonValueKind.Null ? null : r.GetProperty("value").GetString(),
                headers));
        }
        return list;
    }

    internal static string? Hex(ReadOnlySpan<byte> s, bool isNull) => isNull ? null : Convert.ToHexStringLower(s);

    /// <summary>Decodes v2 batches with our reader into the manifest's shape.</summary>
    internal static List<ExpectedRecord> DecodeV2(ReadOnlySpan<byte> data)
    {
        var list = new List<ExpectedRecord>();
        foreach (var batch in new BatchEnumerator(data))
        {
            RecordBatchHeader.TryRead(batch, out var h);
            using var buf = new PooledBufferWriter();
            RecordBatch.DecompressRecords(batch, buf);
            foreach (var r in new RecordEnumerator(buf.WrittenSpan, h.RecordsCount))
            {
                var headers = new List<string?[]>();
                foreach (var hv in r.Headers) headers.Add([hv.KeyString, Hex(hv.Value, hv.ValueIsNull)]);
                list.Add(new ExpectedRecord(h.BaseOffset + r.OffsetDelta, h.BaseTimestamp + r.TimestampDelta,
                    Hex(r.Key, r.KeyIsNull), Hex(r.Value, r.ValueIsNull), headers));
            }
        }
        return list;
    }

    internal static List<ExpectedRecord> DecodeLegacy(ReadOnlySpan<byte> data)
    {
        var list = new List<ExpectedRecord>();
        var e = LegacyMessageSet.Enumerate(data);
        try
        {
            while (e.MoveNext())
            {
                var m = e.Current;
                list.Add(new ExpectedRecord(m.Offset, m.Timestamp, Hex(m.Key, m.KeyIsNull), Hex(m.Value, m.ValueIsNull), []));
            }
        }
        finally { e.Dispose(); }
        return list;
    }

    internal static void AssertSame(List<ExpectedRecord> actual, List<ExpectedRecord> expected, string what)
    {
        Assert.That(actual, Has.Count.EqualTo(expected.Count), what);
        for (int i = 0; i < expected.Count; i++)
        {
            var a = actual[i]; var x = expected[i];
            Assert.That((a.Offset, a.Timestamp, a.Key, a.Value), Is.EqualTo((x.Offset, x.Timestamp, x.Key, x.Value)), $"{what} record {i}");
            Assert.That(a.Headers, Has.Count.EqualTo(x.Headers.Count), $"{what} record {i} headers");
            for (int k = 0; k < x.Headers.Count; k++)
                Assert.That(a.Headers[k], Is.EqualTo(x.Headers[k]), $"{what} record {i} header {k}");
        }
    }

    [TestCaseSource(nameof(CaseNames))]
    public void DecodesKafkaPythonBatch(string name)
    {
        var expected = Manifest()[name];
        var data = File.ReadAllBytes(Path.Combine(TestDataDir, name + ".bin"));
        int magic = expected.GetProperty("magic").GetInt32();
        var records = Records(expected);
        if (magic == 2)
        {
            Assert.That(RecordBatch.TryReadBatch(data, out var h, out int total), Is.True);
            Assert.That(total, Is.EqualTo(data.Length));
            Assert.That(h.Compression.ToString().ToLowerInvariant(), Is.EqualTo(expected.GetProperty("codec").GetString()));
            Assert.That(h.BaseOffset, Is.EqualTo(expected.GetProperty("baseOffset").GetInt64()));
            Assert.That(h.ProducerId, Is.EqualTo(expected.GetProperty("producerId").GetInt64()));
            Assert.That(h.ProducerEpoch, Is.EqualTo(expected.GetProperty("producerEpoch").GetInt16()));
            Assert.That(h.BaseSequence, Is.EqualTo(expected.GetProperty("baseSequence").GetInt32()));
            Assert.That(h.IsTransactional, Is.EqualTo(expected.GetProperty("transactional").GetBoolean()));
            var v = RecordBatch.Validate(data);
            Assert.That(v.Error, Is.EqualTo(ErrorCode.None), v.Message);
            Assert.That(v.RecordCount, Is.EqualTo(records.Count));
            Assert.That(v.MaxTimestamp, Is.EqualTo(records.Max(r => r.Timestamp)));
            Assert.That(h.MaxTimestamp, Is.EqualTo(v.MaxTimestamp));
            AssertSame(DecodeV2(data), records, name);
        }
        else
        {
            AssertSame(DecodeLegacy(data), records, name);
            // Up-conversion keeps keys, values, timestamps and relative offsets.
            using var w = new PooledBufferWriter();
            int n = LegacyConverter.ToV2(data, w, new LegacyConversionOptions { BaseOffset = 500 });
            Assert.That(n, Is.EqualTo(records.Count));
            var batch = w.WrittenSpan;
            var v = RecordBatch.Validate(batch);
            Assert.That(v.Error, Is.EqualTo(ErrorCode.None), v.Message);
            RecordBatchHeader.TryRead(batch, out var h);
            Assert.That(h.Compression.ToString().ToLowerInvariant(), Is.EqualTo(expected.GetProperty("codec").GetString()));
            var shifted = records.Select(r => r with { Offset = r.Offset + 500 }).ToList();
            AssertSame(DecodeV2(batch), shifted, name + " as v2");
        }
    }

    [Test]
    public void LegacyCorruptCrcIsRejected()
    {
        var data = File.ReadAllBytes(Path.Combine(TestDataDir, "v1_none.bin"));
        data[30] ^= 1;
        Assert.Throws<CorruptRecordException>(() => DecodeLegacy(data));
    }

    [Test]
    public void LegacyBadSizesAreRejected()
    {
        var data = File.ReadAllBytes(Path.Combine(TestDataDir, "v0_none.bin"));
        var bad = (byte[])data.Clone();
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(bad.AsSpan(8), 3);
        Assert.Throws<CorruptRecordException>(() => DecodeLegacy(bad));
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(bad.AsSpan(8), -5);
        Assert.Throws<CorruptRecordException>(() => DecodeLegacy(bad));
        // Truncated final entry: iteration just stops (fetch responses may cut the last message).
        var cut = data.AsSpan(0, data.Length - 3).ToArray();
        Assert.That(DecodeLegacy(cut), Has.Count.EqualTo(5));
    }

    [Test]
    public void LegacyWrapperDecompressionBombIsRejected()
    {
        // A magic 1 gzip wrapper around ~8 MB of inner messages, read with a 1 MB limit.
        using var inner = new PooledBufferWriter();
        var big = new byte[1 << 20];
        for (int i = 0; i < 8; i++) DownConverter.WriteMessage(inner, i, 1, 0, 0, default, true, big, false);
        using var compressed = new PooledBufferWriter();
        Compressor.Compress(CompressionType.Gzip, inner.WrittenSpan, compressed);
        using var set = new PooledBufferWriter();
        DownConverter.WriteMessage(set, 7, 1, (sbyte)CompressionType.Gzip, 0, default, true, compressed.WrittenSpan, false);
        var bytes = set.WrittenSpan.ToArray();
        var e = LegacyMessageSet.Enumerate(bytes, new LegacyReadOptions { MaxDecompressedBytes = 1 << 20 });
        try
        {
            bool threw = false;
            try { e.MoveNext(); } catch (ProtocolException) { threw = true; }
            Assert.That(threw, Is.True);
        }
        finally { e.Dispose(); }
    }
}
