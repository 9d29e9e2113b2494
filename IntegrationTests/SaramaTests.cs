using System.Text.Json.Nodes;
using Confluent.Kafka;
using Kayak.IntegrationTests.Drivers;
using Kayak.IntegrationTests.Infrastructure;
using Kayak.Protocol.Records;
using CompressionType = Kayak.Protocol.Records.CompressionType;
using NUnit.Framework;

namespace Kayak.IntegrationTests;

/// <summary>
/// Shopify/sarama 1.22.1 (Debian 12's Go client) against Kayak: produce/consume with keys, headers and partitions at
/// its newest Kafka version and at legacy ones (magic 0/1 message sets, Produce v1/v2, Fetch v1/v3), every codec,
/// records crossing to and from librdkafka and kafka-python, sarama consumer groups (split, leave, session timeout,
/// commit and resume), the idempotent producer and ClusterAdmin.
/// </summary>
[TestFixture]
public sealed class SaramaTests : BrokerTestBase
{
    private const int Partitions = 3;
    private const int RecordCount = 30;

    private static readonly SaramaDriver Sarama = new();

    /// <summary>The records a client configured for kafkaVersion can carry: no headers before 0.11 (magic 0/1).</summary>
    private static List<TestRecord> RecordsFor(SaramaDriver driver, string producer, int count, int partitions) =>
        [.. TestData.Records(producer, count, partitions).Select(r => driver.SupportsHeaders ? r : r with { Headers = [] })];

    [TestCase(BrokerMode.InProcess)]
    [TestCase(BrokerMode.Process)]
    [CancelAfter(120_000)]
    public async Task RoundTrip(BrokerMode mode)
    {
        var broker = await StartBrokerAsync(mode);
        var topic = TopicName("sarama");
        await broker.CreateTopicAsync(topic, Partitions, cancellationToken: Token);
        var records = TestData.Records("sarama", RecordCount, Partitions);

        var acks = await Sarama.ProduceAsync(broker.BootstrapServers, topic, records, cancellationToken: Token);
        var consumed = await Sarama.ConsumeAllAsync(broker.BootstrapServers, topic, Token);

        TestData.AssertExactlyConsumed(topic, records, acks, consumed, $"sarama -> sarama ({broker.Mode})");
        // sarama 2.x stamps CreateTime from its clock; a consumer must see a real timestamp, not -1 or 0.
        Assert.That(consumed.Select(r => r.TimestampMs), Has.All.GreaterThan(1_500_000_000_000L), "record timestamps");
    }

    /// <summary>
    /// Old protocol versions: 0.10.2 produces magic 1 message sets with Produce v2 and fetches with Fetch v3; 0.9.0
    /// uses magic 0, Produce v1, Fetch v1, Metadata v0. Kayak stores them as v2 batches; they must come back
    /// unchanged to the old client (down-converted), to librdkafka (as stored), and records librdkafka wrote as v2
    /// must reach the old client.
    /// </summary>
    [TestCase("0.10.2.0")]
    [TestCase("0.9.0.0")]
    [CancelAfter(120_000)]
    public async Task LegacyVersionRoundTrip(string kafkaVersion)
    {
        var old = new SaramaDriver(kafkaVersion);
        var broker = await StartBrokerAsync(BrokerMode.InProcess);
        var topic = TopicName("legacy");
        await broker.CreateTopicAsync(topic, Partitions, cancellationToken: Token);
        var records = RecordsFor(old, old.Name, RecordCount, Partitions);

        var acks = await old.ProduceAsync(broker.BootstrapServers, topic, records, cancellationToken: Token);
        TestData.AssertExactlyConsumed(topic, records, acks, await old.ConsumeAllAsync(broker.BootstrapServers, topic, Token), $"{old.Name} -> {old.Name}");
        TestData.AssertExactlyConsumed(topic, records, acks, await ClientDrivers.Confluent.ConsumeAllAsync(broker.BootstrapServers, topic, Token), $"{old.Name} -> confluent");

        var topic2 = TopicName("legacy2");
        await broker.CreateTopicAsync(topic2, Partitions, cancellationToken: Token);
        var fromConfluent = RecordsFor(old, "confluent", RecordCount, Partitions);
        var acks2 = await ClientDrivers.Confluent.ProduceAsync(broker.BootstrapServers, topic2, fromConfluent, cancellationToken: Token);
        TestData.AssertExactlyConsumed(topic2, fromConfluent, acks2, await old.ConsumeAllAsync(broker.BootstrapServers, topic2, Token), $"confluent -> {old.Name}");
    }

    private static IEnumerable<TestCaseData> Codecs()
    {
        foreach (var codec in new[] { "gzip", "snappy", "lz4" })
        {
            yield return new TestCaseData(SaramaDriver.Latest, codec).SetName($"Compressed_{codec}_by_sarama");
            // Magic 1 wrapper messages with relative inner offsets (KIP-31), LZ4 with the fixed frame checksum (KIP-57).
            yield return new TestCaseData("0.10.2.0", codec).SetName($"Compressed_{codec}_by_sarama_0_10_2");
        }
        yield return new TestCaseData("0.9.0.0", "gzip").SetName("Compressed_gzip_by_sarama_0_9_0");
    }

    /// <summary>Each codec sarama writes is read back exactly by sarama itself, by librdkafka and by kafka-python.</summary>
    [TestCaseSource(nameof(Codecs))]
    [CancelAfter(120_000)]
    public async Task CompressedBatchesRoundTrip(string kafkaVersion, string codec)
    {
        var driver = new SaramaDriver(kafkaVersion);
        var broker = await StartBrokerAsync(BrokerMode.InProcess);
        var topic = TopicName("sz" + codec);
        await broker.CreateTopicAsync(topic, Partitions, cancellationToken: Token);
        var records = RecordsFor(driver, driver.Name + "-" + codec, 60, Partitions);

        var acks = await driver.ProduceAsync(broker.BootstrapServers, topic, records, new ProduceOptions { Compression = codec }, Token);

        // The batches really are compressed with that codec (magic 2: the batch attributes; older: stored converted).
        if (driver.SupportsHeaders && !BrokerUnderTest.UsingMock)
            Assert.That(StoredCompression(broker, topic, 0), Is.EqualTo(CodecOf(codec)), "codec of the stored batch");

        TestData.AssertExactlyConsumed(topic, records, acks, await driver.ConsumeAllAsync(broker.BootstrapServers, topic, Token), $"{codec} by {driver.Name}, read by {driver.Name}");
        TestData.AssertExactlyConsumed(topic, records, acks, await ClientDrivers.Confluent.ConsumeAllAsync(broker.BootstrapServers, topic, Token), $"{codec} by {driver.Name}, read by confluent");
        TestData.AssertExactlyConsumed(topic, records, acks, await ClientDrivers.Python.ConsumeAllAsync(broker.BootstrapServers, topic, Token), $"{codec} by {driver.Name}, read by kafka-python");
    }

    /// <summary>
    /// zstd (KIP-110) needs Produce v7, but sarama 1.22 sends zstd batches in Produce v3 (its newest). Kafka refuses
    /// that with UNSUPPORTED_COMPRESSION_TYPE ("Produce requests with version 3 are not allowed to use ZStandard
    /// compression"), and so must Kayak: a sarama 1.22 bug, fixed in later sarama releases that send Produce v7.
    /// Reading zstd works: a topic with compression.type=producer serves librdkafka's zstd batches to sarama's
    /// Fetch v4 unchanged, as Kafka does (it refuses Fetch &lt; v10 only for topics configured compression.type=zstd).
    /// </summary>
    [Test]
    [CancelAfter(120_000)]
    public async Task ZstdIsRefusedBelowProduceV7AndReadableByFetchV4()
    {
        RequireKayak("Kayak's produce validation and stored batches");
        var broker = await StartBrokerAsync(BrokerMode.InProcess);
        var topic = TopicName("szstd");
        await broker.CreateTopicAsync(topic, Partitions, cancellationToken: Token);
        var records = TestData.Records("sarama-zstd", 12, Partitions);

        var refused = await Sarama.TryProduceAsync(broker.BootstrapServers, topic, records, new SaramaProduceOptions { Compression = "zstd" }, Token);
        Assert.That(refused.Errors, Has.Count.EqualTo(records.Count), "every record refused");
        Assert.That(refused.Errors, Has.All.Contains("compression"), "sarama's text for UNSUPPORTED_COMPRESSION_TYPE (76)");
        var none = await ClientDrivers.Confluent.ConsumeAllAsync(broker.BootstrapServers, topic, Token);
        Assert.That(none, Is.Empty, "nothing appended");

        var fromConfluent = TestData.Records("confluent-zstd", 60, Partitions);
        var acks = await ClientDrivers.Confluent.ProduceAsync(broker.BootstrapServers, topic, fromConfluent, new ProduceOptions { Compression = "zstd" }, Token);
        // librdkafka sends a batch uncompressed when compressing would not make it smaller (a lone short record),
        // so which batch is zstd depends on how its linger timer split the records; some batch must be.
        Assert.That(StoredCompressions(broker, topic), Does.Contain(CompressionType.Zstd), "librdkafka's zstd batches stored as sent");
        TestData.AssertExactlyConsumed(topic, fromConfluent, acks, await Sarama.ConsumeAllAsync(broker.BootstrapServers, topic, Token), "zstd by confluent, read by sarama");
    }

    private static IEnumerable<TestCaseData> CrossClient()
    {
        foreach (var other in new[] { "confluent", "kafka-python", "kafkajs" })
        {
            yield return new TestCaseData("sarama", other).SetName($"Cross_sarama_to_{other}");
            yield return new TestCaseData(other, "sarama").SetName($"Cross_{other}_to_sarama");
        }
    }

    [TestCaseSource(nameof(CrossClient))]
    [CancelAfter(120_000)]
    public async Task CrossClientRoundTrip(string producerName, string consumerName)
    {
        var broker = await StartBrokerAsync(BrokerMode.InProcess);
        var topic = TopicName("sx");
        await broker.CreateTopicAsync(topic, Partitions, cancellationToken: Token);
        IClientDriver Driver(string name) => name == "sarama" ? Sarama : ClientDrivers.ByName(name);
        var records = TestData.Records(producerName, RecordCount, Partitions);

        var acks = await Driver(producerName).ProduceAsync(broker.BootstrapServers, topic, records, cancellationToken: Token);
        var consumed = await Driver(consumerName).ConsumeAllAsync(broker.BootstrapServers, topic, Token);

        TestData.AssertExactlyConsumed(topic, records, acks, consumed, $"{producerName} -> {consumerName}");
    }

    /// <summary>
    /// sarama's idempotent producer (InitProducerId, then batches with producer id, epoch and sequence 0..n-1 per
    /// partition) with acks=all: records arrive exactly once, and the stored batch carries the producer id the broker
    /// handed out with sequence 0.
    /// </summary>
    [Test]
    [CancelAfter(120_000)]
    public async Task IdempotentProducerAcksAll()
    {
        var broker = await StartBrokerAsync(BrokerMode.InProcess);
        var topic = TopicName("sidem");
        await broker.CreateTopicAsync(topic, Partitions, cancellationToken: Token);
        var records = TestData.Records("sarama-idempotent", 45, Partitions);

        var result = await Sarama.TryProduceAsync(broker.BootstrapServers, topic, records, new SaramaProduceOptions { Idempotent = true, Acks = "all" }, Token);
        Assert.That(result.Errors, Is.Empty);
        TestData.AssertExactlyConsumed(topic, records, result.Acks, await ClientDrivers.Confluent.ConsumeAllAsync(broker.BootstrapServers, topic, Token), "idempotent sarama -> confluent");

        if (BrokerUnderTest.UsingMock)
            return; // the stored batches below are Kayak's
        var producerIds = new HashSet<long>();
        for (var p = 0; p < Partitions; p++)
        {
            var header = FirstBatch(broker, topic, p);
            Assert.That(header.ProducerId, Is.GreaterThanOrEqualTo(0), $"partition {p}: batch has a producer id");
            Assert.That(header.BaseSequence, Is.EqualTo(0), $"partition {p}: first sequence");
            producerIds.Add(header.ProducerId);
        }
        Assert.That(producerIds, Has.Count.EqualTo(1), "one producer id for the whole producer");
    }

    /// <summary>
    /// Two sarama members (range assignor, JoinGroup v1 / SyncGroup v0) split 6 partitions; a librdkafka member with
    /// the same "range" protocol joins them; members leave cleanly (LeaveGroup) and by kill -9 (session timeout),
    /// and the survivors take the partitions over.
    /// </summary>
    [Test]
    [CancelAfter(120_000)]
    public async Task GroupMembersSplitAndResplit()
    {
        const int groupPartitions = 6;
        var broker = await StartBrokerAsync(BrokerMode.InProcess, GroupAssert.FastGroups());
        var topic = TopicName("sgrp");
        var group = "sg-" + Guid.NewGuid().ToString("N")[..8];
        await broker.CreateTopicAsync(topic, groupPartitions, cancellationToken: Token);
        JsonObject Request() => new()
        {
            ["bootstrap"] = broker.BootstrapServers,
            ["topic"] = topic,
            ["group"] = group,
            ["session_timeout_ms"] = 3000,
            ["heartbeat_interval_ms"] = 300,
        };

        // The librdkafka member joins first and so leads the group while it is in it: sarama 1.22 as leader cannot
        // read librdkafka's subscription metadata (seen with 2.0.2; it carries fields after the user data, which sarama's
        // decoder rejects with "invalid length") and would never assign, which made this test fail whenever the
        // leadership race went to sarama. A librdkafka leader reads sarama's metadata and sarama reads its assignment.
        using var c = new PolledConsumer("confluent-c", broker.BootstrapServers, topic, cfg =>
        {
            cfg.GroupId = group;
            cfg.SessionTimeoutMs = 3000;
            cfg.HeartbeatIntervalMs = 300;
            cfg.PartitionAssignmentStrategy = PartitionAssignmentStrategy.Range;
        });
        await GroupAssert.SplitAsync([c], groupPartitions, "one librdkafka member", cancellationToken: Token);
        await using var a = Sarama.StartMember("sarama-a", Request());
        await GroupAssert.SplitAsync([c, a], groupPartitions, "sarama member joined the librdkafka-led group", cancellationToken: Token);
        await using var b = Sarama.StartMember("sarama-b", Request());
        await GroupAssert.SplitAsync([c, a, b], groupPartitions, "second sarama member joined", cancellationToken: Token);
        if (!BrokerUnderTest.UsingMock)
            Assert.That(GroupAssert.State(broker).Groups.Describe(group)!.ProtocolName, Is.EqualTo("range"));
        await c.CloseAsync();
        await GroupAssert.SplitAsync([a, b], groupPartitions, "librdkafka member left", cancellationToken: Token);

        await b.CloseAsync();
        await GroupAssert.SplitAsync([a], groupPartitions, "sarama-b left cleanly", cancellationToken: Token);

        await using var d = Sarama.StartMember("sarama-d", Request());
        await GroupAssert.SplitAsync([a, d], groupPartitions, "sarama-d joined", cancellationToken: Token);
        await d.KillAsync();
        await GroupAssert.SplitAsync([a], groupPartitions, "sarama-d killed (session timeout)", TimeSpan.FromSeconds(20), Token);
        if (!BrokerUnderTest.UsingMock)
            Assert.That(GroupAssert.State(broker).Groups.Describe(group)!.MemberIds, Has.Count.EqualTo(1), "only sarama-a remains");
        await a.CloseAsync();
    }

    /// <summary>
    /// A sarama group consumer marks 25 of 60 records and closes (its session release commits with OffsetCommit v1);
    /// the committed offsets are what it consumed per partition (as librdkafka's OffsetFetch sees them), and a new
    /// sarama member of the group resumes exactly there: together they read every record once.
    /// </summary>
    [Test]
    [CancelAfter(120_000)]
    public async Task GroupCommitsAndResumes()
    {
        const int total = 60;
        const int first = 25;
        var broker = await StartBrokerAsync(BrokerMode.InProcess, GroupAssert.FastGroups());
        var topic = TopicName("scommit");
        var group = "sc-" + Guid.NewGuid().ToString("N")[..8];
        await broker.CreateTopicAsync(topic, Partitions, cancellationToken: Token);
        var records = TestData.Records("sarama-commit", total, Partitions);
        var acks = await Sarama.ProduceAsync(broker.BootstrapServers, topic, records, cancellationToken: Token);

        var (run1, assignments1) = await Sarama.GroupConsumeAsync(broker.BootstrapServers, topic, group, first, Token);
        Assert.That(run1, Has.Count.EqualTo(first));
        Assert.That(assignments1.Last(), Is.EqualTo(new[] { 0, 1, 2 }), "a lone member owns every partition");

        var committed = ConfluentClients.Committed(broker.BootstrapServers, topic, group, Partitions);
        for (var p = 0; p < Partitions; p++)
        {
            var inRun1 = run1.Where(r => r.Partition == p).Select(r => r.Offset).Order().ToList();
            Assert.That(inRun1, Is.EqualTo(Enumerable.Range(0, inRun1.Count).Select(i => (long)i)), $"partition {p}: run 1 read a prefix");
            var expected = inRun1.Count == 0 ? Offset.Unset.Value : inRun1.Count;
            Assert.That(committed[p], Is.EqualTo(expected), $"partition {p}: committed offset after run 1");
        }

        var (run2, _) = await Sarama.GroupConsumeAsync(broker.BootstrapServers, topic, group, total - first, Token);
        foreach (var p in Enumerable.Range(0, Partitions))
        {
            var start = run1.Count(r => r.Partition == p);
            var offsets = run2.Where(r => r.Partition == p).Select(r => r.Offset).ToList();
            Assert.That(offsets, Is.EqualTo(Enumerable.Range(start, total / Partitions - start).Select(i => (long)i)), $"partition {p}: run 2 resumes at the committed offset, in order");
        }
        TestData.AssertExactlyConsumed(topic, records, acks, [.. run1, .. run2], "sarama group, two runs");
        Assert.That(ConfluentClients.Committed(broker.BootstrapServers, topic, group, Partitions).Values, Has.All.EqualTo((long)(total / Partitions)), "everything committed after run 2");
    }

    /// <summary>sarama's ClusterAdmin: CreateTopics v2, Metadata v5, DeleteTopics v1, with Kafka's errors for a duplicate.</summary>
    [Test]
    [CancelAfter(120_000)]
    public async Task ClusterAdminCreatesDescribesAndDeletesTopics()
    {
        RequireKayak("admin APIs");
        var broker = await StartBrokerAsync(BrokerMode.InProcess);
        var topic = TopicName("sadm");

        var created = await Sarama.AdminAsync(broker.BootstrapServers, "create_topic", new JsonObject { ["topic"] = topic, ["partitions"] = 4 }, Token);
        Assert.That(created["error_message"], Is.Null, created.ToJsonString());
        Assert.That(ConfluentClients.PartitionCount(broker.BootstrapServers, topic), Is.EqualTo(4), "librdkafka sees the topic");

        var described = await Sarama.AdminAsync(broker.BootstrapServers, "describe_topic", new JsonObject { ["topic"] = topic }, Token);
        Assert.That(described["error"]!.GetValue<int>(), Is.EqualTo(0), described.ToJsonString());
        var partitions = described["partitions"]!.AsArray();
        Assert.That(partitions.Select(p => p!["partition"]!.GetValue<int>()), Is.EqualTo(new[] { 0, 1, 2, 3 }));
        Assert.That(partitions.Select(p => p!["leader"]!.GetValue<int>()), Has.All.GreaterThanOrEqualTo(0), "every partition has a leader");

        var duplicate = await Sarama.AdminAsync(broker.BootstrapServers, "create_topic", new JsonObject { ["topic"] = topic, ["partitions"] = 4 }, Token);
        Assert.That(duplicate["error_code"]?.GetValue<int>(), Is.EqualTo(36), $"TOPIC_ALREADY_EXISTS: {duplicate.ToJsonString()}");

        var listed = await Sarama.AdminAsync(broker.BootstrapServers, "list_topics", cancellationToken: Token);
        Assert.That(listed["topics"]![topic]?.GetValue<int>(), Is.EqualTo(4), listed.ToJsonString());

        var deleted = await Sarama.AdminAsync(broker.BootstrapServers, "delete_topic", new JsonObject { ["topic"] = topic }, Token);
        Assert.That(deleted["error_message"], Is.Null, deleted.ToJsonString());
        await GroupAssert.WaitUntilAsync(() => !GroupAssert.State(broker).Logs.TryGetTopic(topic, out _), "topic deleted", TimeSpan.FromSeconds(10), Token);
        var after = await Sarama.AdminAsync(broker.BootstrapServers, "list_topics", cancellationToken: Token);
        Assert.That(after["topics"]!.AsObject().ContainsKey(topic), Is.False, after.ToJsonString());
    }

    private static CompressionType CodecOf(string codec) => codec switch
    {
        "gzip" => CompressionType.Gzip,
        "snappy" => CompressionType.Snappy,
        "lz4" => CompressionType.Lz4,
        "zstd" => CompressionType.Zstd,
        _ => CompressionType.None,
    };

    private static CompressionType StoredCompression(BrokerUnderTest broker, string topic, int partition) => FirstBatch(broker, topic, partition).Compression;

    /// <summary>The codec of every batch stored in the topic (in-process broker only).</summary>
    private static List<CompressionType> StoredCompressions(BrokerUnderTest broker, string topic)
    {
        Assert.That(GroupAssert.State(broker).Logs.TryGetTopic(topic, out var log), Is.True, $"topic {topic} exists");
        var codecs = new List<CompressionType>();
        foreach (var partition in log.Partitions)
        {
            using var slice = partition.Read(0, 16 << 20);
            var bytes = slice.Data.Span;
            while (RecordBatchHeader.TryRead(bytes, out var header) && header.TotalSize <= bytes.Length)
            {
                codecs.Add(header.Compression);
                bytes = bytes[header.TotalSize..];
            }
        }
        return codecs;
    }

    /// <summary>The header of the first batch stored in the partition (in-process broker only).</summary>
    private static RecordBatchHeader FirstBatch(BrokerUnderTest broker, string topic, int partition)
    {
        Assert.That(GroupAssert.State(broker).Logs.TryGetTopic(topic, out var log), Is.True, $"topic {topic} exists");
        using var slice = log.Partitions[partition].Read(0, 1 << 20);
        var bytes = slice.Data.ToArray();
        Assert.That(RecordBatchHeader.TryRead(bytes, out var header), Is.True, $"partition {partition} has a batch");
        return header;
    }
}
