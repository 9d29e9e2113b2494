using System.Text;
using Confluent.Kafka;
using Kayak.IntegrationTests.Infrastructure;
using NUnit.Framework;

namespace Kayak.IntegrationTests;

/// <summary>
/// Issue 11 / K12 end to end: librdkafka produces overwrites of the same keys with each codec to a compacted topic
/// with small segments; the broker's cleaner pass (run here directly instead of waiting for its 15 s timer) must
/// remove the superseded records from the compressed batches and merge the segments, and a consumer then reads
/// the latest value of every key, with its headers, through librdkafka's own decompression.
/// </summary>
[TestFixture]
public sealed class CompactionTests : BrokerTestBase
{
    private const int Keys = 60, Rounds = 6;

    [TestCase("gzip")]
    [TestCase("snappy")]
    [TestCase("lz4")]
    [TestCase("zstd")]
    [CancelAfter(120_000)]
    public async Task CompressedOverwrites_AreCompacted_AndTheLatestValuesRead(string codec)
    {
        RequireKayak("runs the broker's log cleaner in-process");
        var broker = await StartBrokerAsync(BrokerMode.InProcess);
        var topic = TopicName("compact" + codec);
        await broker.CreateTopicAsync(topic, 1, new Dictionary<string, string>
        {
            ["cleanup.policy"] = "compact",
            ["segment.bytes"] = "4096",
            ["min.cleanable.dirty.ratio"] = "0.01",
        }, Token);

        var latest = new Dictionary<string, string>();
        var rng = new Random(5); // hex values: compressible by half, so compressed batches still fill several segments
        var state = (broker as InProcessBroker)!.Instance!.State;
        long removed = 0;
        int produced = 0, segmentsAfterPass = 0;
        // Two cleaner passes: segments are grouped by their size before cleaning (Kafka's groupSegmentsBySize), so the
        // full 4 KB segments of the first pass are cleaned one by one and merged by the pass after the next roll.
        for (int pass = 0; pass < 2; pass++)
        {
            using (var producer = ConfluentClients.Producer(broker.BootstrapServers, c =>
            {
                c.CompressionType = Enum.Parse<CompressionType>(codec, ignoreCase: true);
                c.BatchNumMessages = 20;
            }))
            {
                for (int round = pass * Rounds; round < (pass + 1) * Rounds; round++)
                {
                    for (int k = 0; k < Keys; k++)
                    {
                        string key = $"key-{k:D3}", value = $"round {round} of {key}: " + Convert.ToHexString(RandomBytes(rng, 80));
                        latest[key] = value;
                        producer.Produce(topic, new Message<byte[], byte[]>
                        {
                            Key = Encoding.UTF8.GetBytes(key),
                            Value = Encoding.UTF8.GetBytes(value),
                            Headers = [new Header("round", Encoding.UTF8.GetBytes(round.ToString(System.Globalization.CultureInfo.InvariantCulture)))],
                        });
                        produced++;
                    }
                    producer.Flush(Token);
                }
            }
            Assert.That(state.Logs.TryGetTopic(topic, out var log), Is.True);
            var partition = log.Partitions[0];
            int segmentsBefore = partition.SegmentCount;
            if (pass == 0) Assert.That(StoredCodecs(partition), Does.Contain(codec), "librdkafka's batches are stored compressed");
            long n = state.Logs.RunCompaction();
            removed += n;
            TestContext.Out.WriteLine($"{codec} pass {pass}: {segmentsBefore} segments before, {partition.SegmentCount} after, {n} records removed");
            Assert.That(segmentsBefore, Is.GreaterThan(5), "small segments rolled while producing");
            Assert.That(n, Is.GreaterThan(Keys * (Rounds - 2)), "superseded records inside compressed batches were removed");
            // Those of the earlier pass, now small or empty, are merged (one per rolled segment stays: it was full when grouped).
            if (pass == 1)
                Assert.That(partition.SegmentCount, Is.LessThanOrEqualTo(segmentsBefore - segmentsAfterPass + 6), $"the {segmentsAfterPass} cleaned segments were merged");
            segmentsAfterPass = partition.SegmentCount;
        }

        var consumed = ConfluentClients.ConsumeAll(broker.BootstrapServers, topic, TimeSpan.FromSeconds(30), cancellationToken: Token);
        var lastSeen = new Dictionary<string, string?>();
        foreach (var r in consumed) lastSeen[r.Key!] = r.Value;
        Assert.That(lastSeen, Is.EquivalentTo(latest.ToDictionary(kv => kv.Key, kv => (string?)kv.Value)), "the latest value of every key");
        Assert.That(consumed.Count, Is.EqualTo(produced - removed), "exactly what the cleaner kept is read");
        Assert.That(consumed.Select(r => r.Offset), Is.Ordered.And.Unique);
        foreach (var r in consumed)
            Assert.That(r.Headers.Single(h => h.Key == "round").Value, Is.EqualTo(r.Value!.Split(' ')[1]), "headers survive recompression");
    }

    /// <summary>The codecs of the stored batches, read from their attributes.</summary>
    private static HashSet<string> StoredCodecs(Kayak.Storage.PartitionLog partition)
    {
        var codecs = new HashSet<string>();
        long offset = partition.LogStartOffset;
        while (offset < partition.LogEndOffset)
        {
            using var slice = partition.Read(offset, 1 << 20);
            var rest = slice.Data.Span;
            while (Kayak.Protocol.Records.RecordBatchHeader.TryRead(rest, out var h) && h.TotalSize <= rest.Length)
            {
                codecs.Add(h.Compression.ToString().ToLowerInvariant());
                offset = h.LastOffset + 1;
                rest = rest[h.TotalSize..];
            }
        }
        TestContext.Out.WriteLine("stored codecs: " + string.Join(",", codecs));
        return codecs;
    }

    private static byte[] RandomBytes(Random rng, int n)
    {
        var b = new byte[n];
        rng.NextBytes(b);
        return b;
    }
}
