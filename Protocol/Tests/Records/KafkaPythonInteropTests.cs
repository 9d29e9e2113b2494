using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Kayak.Protocol.Compression;
using Kayak.Protocol.Records;
using NUnit.Framework;

namespace Kayak.Protocol.Tests.Records;

/// <summary>
/// Batches we encode must be read back correctly by a real client: each test writes a file and
/// runs kafka-python's reader (tools/golden/read_batches.py) with /usr/bin/python3. Missing
/// python3 or python3-kafka (+ codec modules) is a test FAILURE, not a skip: CI installs them.
/// </summary>
public class KafkaPythonInteropTests
{
    private const string Python = "/usr/bin/python3";

    private static JsonElement ReadWithKafkaPython(ReadOnlySpan<byte> data)
    {
        Assert.That(File.Exists(Python), Is.True, "python3 is required (apt-get install python3 python3-kafka python3-snappy python3-lz4 python3-zstandard python3-xxhash)");
        string file = Path.Combine(Path.GetTempPath(), $"kayak-interop-{Guid.NewGuid():N}.bin");
        File.WriteAllBytes(file, data.ToArray());
        try
        {
            var psi = new ProcessStartInfo(Python)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            psi.ArgumentList.Add(Path.Combine(GoldenTests.RepoRoot(), "tools", "golden", "read_batches.py"));
            psi.ArgumentList.Add(file);
            using var p = Process.Start(psi)!;
            var stderrTask = p.StandardError.ReadToEndAsync();
            string stdout = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            string stderr = stderrTask.Result;
            Assert.That(p.ExitCode, Is.Zero, "kafka-python reader failed (is python3-kafka installed?):\n" + stderr);
            return JsonDocument.Parse(stdout).RootElement.Clone();
        }
        finally { File.Delete(file); }
    }

    private static byte[] Bytes(string s) => Encoding.UTF8.GetBytes(s);

    [TestCaseSource(typeof(RecordBatchTests), nameof(RecordBatchTests.AllCodecs))]
    public void KafkaPythonReadsOurV2Batches(CompressionType codec)
    {
        using var w = new PooledBufferWriter();
        using (var b = new RecordBatchBuilder(new RecordBatchOptions { Compression = codec, BaseOffset = 40, ProducerId = 1001, ProducerEpoch = 4, BaseSequence = 17 }))
        {
            for (int i = 0; i < 50; i++)
                b.Append(1_650_000_000_000 + i, i % 5 == 0 ? null : Bytes("k" + i), i % 9 == 4 ? null : Bytes(new string('x', i * 20)),
                    i % 2 == 0 ? [new RecordHeader("hdr", Bytes("h" + i)), new RecordHeader("nul", null)] : null);
            b.Build(w);
        }
        var batches = ReadWithKafkaPython(w.WrittenSpan);
        Assert.That(batches.GetArrayLength(), Is.EqualTo(1));
        var batch = batches[0];
        Assert.That(batch.GetProperty("crcValid").GetBoolean(), Is.True);
        Assert.That(batch.GetProperty("magic").GetInt32(), Is.EqualTo(2));
        Assert.That(batch.GetProperty("codec").GetString(), Is.EqualTo(codec.ToString().ToLowerInvariant()));
        Assert.That(batch.GetProperty("baseOffset").GetInt64(), Is.EqualTo(40));
        Assert.That(batch.GetProperty("producerId").GetInt64(), Is.EqualTo(1001));
        Assert.That(batch.GetProperty("producerEpoch").GetInt32(), Is.EqualTo(4));
        Assert.That(batch.GetProperty("baseSequence").GetInt32(), Is.EqualTo(17));
        GoldenTests.AssertSame(GoldenTests.Records(batch), GoldenTests.DecodeV2(w.WrittenSpan), "kafka-python vs ours");
        Assert.That(GoldenTests.Records(batch), Has.Count.EqualTo(50));
    }

    [Test]
    public void KafkaPythonReadsControlMarkerAndLogAppendTimeBatches()
    {
        using var w = new PooledBufferWriter();
        ControlRecord.WriteEndTransactionMarker(w, ControlRecordType.Commit, 5, 1, 9, 1234, baseOffset: 10);
        int start = w.WrittenCount;
        using (var b = new RecordBatchBuilder(new RecordBatchOptions { BaseOffset = 11, Compression = CompressionType.Gzip }))
        {
            b.Append(100, Bytes("a"), Bytes("b"));
            b.Append(200, Bytes("c"), Bytes("d"));
            b.Build(w);
        }
        RecordBatchRewriter.SetLogAppendTime(w.WrittenSpanMutable[start..], 999_999);
        var batches = ReadWithKafkaPython(w.WrittenSpan);
        Assert.That(batches.GetArrayLength(), Is.EqualTo(2));
        Assert.That(batches[0].GetProperty("control").GetBoolean(), Is.True);
        Assert.That(batches[0].GetProperty("transactional").GetBoolean(), Is.True);
        Assert.That(batches[0].GetProperty("crcValid").GetBoolean(), Is.True);
        Assert.That(batches[1].GetProperty("crcValid").GetBoolean(), Is.True);
        Assert.That(batches[1].GetProperty("timestampType").GetInt32(), Is.EqualTo(1));
        var recs = GoldenTests.Records(batches[1]);
        // LogAppendTime: clients report the batch's max timestamp for every record.
        Assert.That(recs.Select(r => r.Timestamp), Is.EqualTo(new long[] { 999_999, 999_999 }));
        Assert.That(recs.Select(r => r.Offset), Is.EqualTo(new long[] { 11, 12 }));
    }

    [TestCase((byte)0, CompressionType.None), TestCase((byte)0, CompressionType.Gzip), TestCase((byte)0, CompressionType.Snappy), TestCase((byte)0, CompressionType.Lz4)]
    [TestCase((byte)1, CompressionType.None), TestCase((byte)1, CompressionType.Gzip), TestCase((byte)1, CompressionType.Snappy), TestCase((byte)1, CompressionType.Lz4)]
    public void KafkaPythonReadsOurDownConvertedMessageSets(byte magic, CompressionType codec)
    {
        using var v2 = new PooledBufferWriter();
        for (int batchNo = 0; batchNo < 2; batchNo++)
        {
            using var b = new RecordBatchBuilder(new RecordBatchOptions { Compression = codec, BaseOffset = 300 + batchNo * 10 });
            for (int i = 0; i < 4; i++)
                b.Append(1_600_000_000_000 + batchNo * 100 + i, i == 2 ? null : Bytes($"k{batchNo}-{i}"), Bytes($"value {batchNo}/{i}"), [new RecordHeader("dropped", Bytes("x"))]);
            b.Build(v2);
        }
        // A control batch in between must be skipped.
        ControlRecord.WriteEndTransactionMarker(v2, ControlRecordType.Abort, 1, 0, 0, 5, baseOffset: 320);
        using var legacy = new PooledBufferWriter();
        int n = DownConverter.ToMagic(v2.WrittenSpan, magic, legacy);
        Assert.That(n, Is.EqualTo(8));

        var ours = GoldenTests.DecodeLegacy(legacy.WrittenSpan);
        var expectedOffsets = new long[] { 300, 301, 302, 303, 310, 311, 312, 313 };
        Assert.That(ours.Select(r => r.Offset), Is.EqualTo(expectedOffsets));
        if (magic == 1) Assert.That(ours[5].Timestamp, Is.EqualTo(1_600_000_000_101));
        else Assert.That(ours.All(r => r.Timestamp == -1));
        Assert.That(ours[2].Key, Is.Null);
        Assert.That(ours[6].Value, Is.EqualTo(Convert.ToHexStringLower(Bytes("value 1/2"))));

        var batches = ReadWithKafkaPython(legacy.WrittenSpan);
        var theirs = new List<GoldenTests.ExpectedRecord>();
        foreach (var entry in batches.EnumerateArray())
        {
            Assert.That(entry.GetProperty("crcValid").GetBoolean(), Is.True);
            Assert.That(entry.GetProperty("magic").GetInt32(), Is.EqualTo(magic));
            Assert.That(entry.GetProperty("codec").GetString(), Is.EqualTo(codec.ToString().ToLowerInvariant()));
            theirs.AddRange(GoldenTests.Records(entry));
        }
        // kafka-python reports magic 0 timestamps as None (-1 here) just like ours.
        GoldenTests.AssertSame(theirs, ours, $"magic {magic} {codec}");
    }

    [Test]
    public void ZstdCannotBeDownConverted()
    {
        using var w = new PooledBufferWriter();
        using (var b = new RecordBatchBuilder(new RecordBatchOptions { Compression = CompressionType.Zstd }))
        {
            b.Append(1, null, Bytes("v"));
            b.Build(w);
        }
        using var o = new PooledBufferWriter();
        Assert.Throws<ProtocolException>(() => DownConverter.ToMagic(w.WrittenSpan, 1, o));
    }
}
