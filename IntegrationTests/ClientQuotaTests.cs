using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Confluent.Kafka;
using Kayak.IntegrationTests.Drivers;
using Kayak.IntegrationTests.Infrastructure;
using NUnit.Framework;

namespace Kayak.IntegrationTests;

/// <summary>
/// Client quotas with real clients: AlterClientQuotas / DescribeClientQuotas sent over kafka-python's connection
/// (python/client_quotas.py; no client on the machine has these admin calls built in), kept across a restart, and a
/// Confluent.Kafka 2.16 producer held to producer_byte_rate: librdkafka reports the broker's throttle in its
/// statistics, and the bytes acknowledged over the run stay within rate x time plus Kafka's burst allowance.
/// </summary>
[TestFixture]
public sealed class ClientQuotaTests : BrokerTestBase
{
    private static readonly PythonKafka Python = (PythonKafka)ClientDrivers.Python;

    private static Task<JsonNode> QuotasAsync(string bootstrap, JsonObject request)
    {
        request["bootstrap"] = bootstrap;
        return Python.RunAsync("client_quotas", request, cancellationToken: Token);
    }

    private static JsonObject Entry(JsonArray entity, params (string Key, double Value, bool Remove)[] ops)
    {
        var list = new JsonArray();
        foreach (var (k, v, r) in ops) list.Add(new JsonArray(k, v, r));
        return new JsonObject { ["entity"] = entity, ["ops"] = list };
    }

    private static async Task<JsonArray> AlterAsync(string bootstrap, bool validateOnly, params JsonObject[] entries)
    {
        var answer = await QuotasAsync(bootstrap, new JsonObject { ["op"] = "alter", ["validate_only"] = validateOnly, ["entries"] = new JsonArray(entries) });
        return answer["entries"]!.AsArray();
    }

    /// <summary>The described quotas as "type=name,type=name key=value" lines, sorted.</summary>
    private static async Task<string[]> DescribeAsync(string bootstrap, JsonArray? components = null, bool strict = false)
    {
        var answer = await QuotasAsync(bootstrap, new JsonObject { ["op"] = "describe", ["components"] = components ?? [], ["strict"] = strict });
        Assert.That((int)answer["error_code"]!, Is.Zero, (string?)answer["error_message"]);
        return answer["entries"]!.AsArray().Select(e =>
            string.Join(",", e!["entity"]!.AsArray().Select(x => $"{x![0]}={(string?)x[1] ?? "<default>"}")) + " " +
            string.Join(",", e["values"]!.AsObject().OrderBy(p => p.Key).Select(p => $"{p.Key}={(double)p.Value!}")))
            .OrderBy(s => s, StringComparer.Ordinal).ToArray();
    }

    [Test]
    [CancelAfter(180_000)]
    public async Task KafkaPython_AltersAndDescribesQuotas_AndTheySurviveARestart()
    {
        RequireKayak("client quotas are Kayak's");
        var broker = await StartBrokerAsync(BrokerMode.Process);
        var b = broker.BootstrapServers;

        var set = await AlterAsync(b, false,
            Entry(new JsonArray(new JsonArray("user", "alice"), new JsonArray("client-id", null)), ("producer_byte_rate", 1048576, false)),
            Entry(new JsonArray(new JsonArray("client-id", null)), ("consumer_byte_rate", 2097152, false), ("request_percentage", 50, false)),
            Entry(new JsonArray(new JsonArray("client-id", "bad")), ("bytes_per_second", 1, false)));
        Assert.That(set.Select(e => (int)e!["error_code"]!), Is.EqualTo(new[] { 0, 0, 42 }), set.ToJsonString());
        Assert.That((string?)set[2]!["error_message"], Is.EqualTo("Invalid configuration key bytes_per_second"));
        var validated = await AlterAsync(b, true, Entry(new JsonArray(new JsonArray("user", "bob")), ("controller_mutation_rate", 10, false)));
        Assert.That((int)validated[0]!["error_code"]!, Is.Zero);

        string[] expected =
        [
            "client-id=<default> consumer_byte_rate=2097152,request_percentage=50",
            "user=alice,client-id=<default> producer_byte_rate=1048576",
        ];
        Assert.That(await DescribeAsync(b), Is.EqualTo(expected), "validate_only stored nothing for bob");
        Assert.That(await DescribeAsync(b, new JsonArray(new JsonArray("user", 0, "alice")), strict: true), Is.Empty);
        Assert.That(await DescribeAsync(b, new JsonArray(new JsonArray("client-id", 1, null)), strict: true), Is.EqualTo(new[] { expected[0] }));

        await broker.RestartAsync(Token);
        Assert.That(await DescribeAsync(broker.BootstrapServers), Is.EqualTo(expected), "after a restart");
    }

    [Test]
    [CancelAfter(180_000)]
    public async Task ConfluentProducer_IsHeldToProducerByteRate_AndReportsTheThrottle()
    {
        RequireKayak("client quotas are Kayak's");
        var broker = await StartBrokerAsync(BrokerMode.InProcess);
        var topic = TopicName("quota");
        await broker.CreateTopicAsync(topic, 1, cancellationToken: Token);
        const string clientId = "quota-producer";
        const double rate = 100_000; // bytes per second
        var set = await AlterAsync(broker.BootstrapServers, false,
            Entry(new JsonArray(new JsonArray("client-id", clientId)), ("producer_byte_rate", rate, false)));
        Assert.That((int)set[0]!["error_code"]!, Is.Zero);

        long ackedBytes = 0, failed = 0;
        int maxThrottleMs = 0;
        var config = ConfluentClients.ProducerConfig(broker.BootstrapServers);
        config.ClientId = clientId;
        config.StatisticsIntervalMs = 500;
        config.QueueBufferingMaxKbytes = 256; // a small queue, so the final flush is short
        config.LingerMs = 5;
        config.MessageTimeoutMs = 120_000;
        config.RequestTimeoutMs = 60_000;
        using var producer = new ProducerBuilder<byte[], byte[]>(config)
            .SetStatisticsHandler((_, json) =>
            {
                using var doc = JsonDocument.Parse(json);
                foreach (var b in doc.RootElement.GetProperty("brokers").EnumerateObject())
                    if (b.Value.TryGetProperty("throttle", out var t) && t.GetProperty("max").GetInt32() is var max && max > Volatile.Read(ref maxThrottleMs))
                        Volatile.Write(ref maxThrottleMs, max);
            })
            .Build();

        var value = new byte[1000];
        var watch = Stopwatch.StartNew();
        var produceFor = TimeSpan.FromSeconds(8);
        while (watch.Elapsed < produceFor)
        {
            try
            {
                producer.Produce(topic, new Message<byte[], byte[]> { Value = value }, r =>
                {
                    if (r.Error.IsError) Interlocked.Increment(ref failed);
                    else Interlocked.Add(ref ackedBytes, r.Message.Value.Length);
                });
            }
            catch (ProduceException<byte[], byte[]> e) when (e.Error.Code == ErrorCode.Local_QueueFull)
            {
                producer.Poll(TimeSpan.FromMilliseconds(20));
            }
        }
        int unflushed = producer.Flush(TimeSpan.FromSeconds(90));
        double seconds = watch.Elapsed.TotalSeconds;
        producer.Poll(TimeSpan.FromSeconds(1)); // a last statistics callback

        // Kafka's sampled rate lets a fresh client send quota.window.num - 1 windows' worth before its first throttle
        // (the burst), then keeps the average over the window at the rate; one request more is in flight at most.
        double bound = rate * (seconds + 10) + 1_048_576;
        TestContext.Out.WriteLine($"acked {ackedBytes} B in {seconds:F1} s ({ackedBytes / seconds:F0} B/s, quota {rate} B/s), bound {bound:F0} B, max throttle reported {maxThrottleMs} ms");
        Assert.That((unflushed, Interlocked.Read(ref failed)), Is.EqualTo((0, 0L)), "every record is acknowledged");
        Assert.That(ackedBytes, Is.GreaterThan(0));
        Assert.That(ackedBytes, Is.LessThanOrEqualTo(bound), "the producer is held to producer_byte_rate");
        Assert.That(Volatile.Read(ref maxThrottleMs), Is.GreaterThan(0), "librdkafka reports the broker's throttle_time_ms");
    }

    [Test]
    [CancelAfter(180_000)]
    public async Task ConfluentConsumer_OverConsumerByteRate_GetsEveryRecordInOrder_AndReportsTheThrottle()
    {
        RequireKayak("client quotas are Kayak's");
        var broker = await StartBrokerAsync(BrokerMode.InProcess);
        var topic = TopicName("cquota");
        await broker.CreateTopicAsync(topic, 1, cancellationToken: Token);
        const int count = 2000;
        using (var producer = ConfluentClients.Producer(broker.BootstrapServers))
        {
            for (int i = 0; i < count; i++)
                producer.Produce(topic, new Message<byte[], byte[]> { Key = BitConverter.GetBytes(i), Value = new byte[1000] });
            Assert.That(producer.Flush(TimeSpan.FromSeconds(60)), Is.Zero);
        }
        // 2 MB against 100 kB/s: the first ~1 MB is the burst Kafka's sampled rate allows, the rest is throttled, and
        // every throttled fetch is answered empty (KafkaApis: getThrottledResponse) until the client may have more.
        const string clientId = "quota-consumer";
        var set = await AlterAsync(broker.BootstrapServers, false,
            Entry(new JsonArray(new JsonArray("client-id", clientId)), ("consumer_byte_rate", 100_000, false)));
        Assert.That((int)set[0]!["error_code"]!, Is.Zero);

        int maxThrottleMs = 0;
        var config = ConfluentClients.ConsumerConfig(broker.BootstrapServers);
        config.ClientId = clientId;
        config.StatisticsIntervalMs = 500;
        config.MaxPartitionFetchBytes = 256 * 1024; // several fetches, so some are throttled
        using var consumer = new ConsumerBuilder<byte[], byte[]>(config)
            .SetStatisticsHandler((_, json) =>
            {
                using var doc = JsonDocument.Parse(json);
                foreach (var b in doc.RootElement.GetProperty("brokers").EnumerateObject())
                    if (b.Value.TryGetProperty("throttle", out var t) && t.GetProperty("max").GetInt32() is var max && max > maxThrottleMs)
                        maxThrottleMs = max;
            })
            .Build();
        consumer.Assign(new TopicPartitionOffset(topic, 0, Offset.Beginning));
        var keys = new List<int>(count);
        var deadline = DateTime.UtcNow.AddSeconds(120);
        while (keys.Count < count && DateTime.UtcNow < deadline)
        {
            var r = consumer.Consume(TimeSpan.FromMilliseconds(500));
            if (r?.Message is { } m) keys.Add(BitConverter.ToInt32(m.Key));
        }
        for (int i = 0; i < 6 && maxThrottleMs == 0; i++) consumer.Consume(TimeSpan.FromMilliseconds(500)); // a last statistics callback
        Assert.That(keys, Is.EqualTo(Enumerable.Range(0, count).ToList()), "every record once, in order, despite the empty throttled fetches");
        Assert.That(maxThrottleMs, Is.GreaterThan(0), "librdkafka reports the broker's throttle_time_ms");
    }

    [Test]
    [CancelAfter(180_000)]
    public async Task SaramaProducer_OnProduceV3_GetsItsThrottledResponsesLate_AndEveryRecordIsAcknowledged()
    {
        RequireKayak("client quotas are Kayak's");
        var broker = await StartBrokerAsync(BrokerMode.InProcess);
        var quotas = ((InProcessBroker)broker).Instance!.State.Quotas;
        var topic = TopicName("squota");
        await broker.CreateTopicAsync(topic, 1, cancellationToken: Token);
        // sarama 1.22 speaks Produce v3, before KIP-219: the broker holds each throttled response back instead of
        // muting (sarama never reads throttle_time_ms). 20 kB/s: ~200 kB pass as the burst, the rest is delayed.
        var set = await AlterAsync(broker.BootstrapServers, false,
            Entry(new JsonArray(new JsonArray("client-id", "kayak-itest-sarama")), ("producer_byte_rate", 20_000, false)));
        Assert.That((int)set[0]!["error_code"]!, Is.Zero);

        var records = Enumerable.Range(0, 300).Select(i => new TestRecord($"k{i}", new string((char)('a' + i % 26), 1000), 0, [])).ToList();
        var sarama = new SaramaDriver();
        var acks = await sarama.ProduceAsync(broker.BootstrapServers, topic, records, cancellationToken: Token);
        Assert.That(acks, Has.Count.EqualTo(records.Count));
        Assert.That(acks.Select(a => a.Offset), Is.EqualTo(Enumerable.Range(0, records.Count).Select(i => (long)i)));
        Assert.That(quotas.DelayedResponses, Is.GreaterThan(0), "sarama's Produce v3 responses were held back");
    }
}
