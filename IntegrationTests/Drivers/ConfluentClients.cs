using System.Text;
using Confluent.Kafka;
using Kayak.IntegrationTests.Infrastructure;
using NUnit.Framework;

namespace Kayak.IntegrationTests;

/// <summary>Confluent.Kafka (librdkafka) clients with test-friendly settings: fail fast instead of retrying for minutes.</summary>
public static class ConfluentClients
{
    public static ProducerConfig ProducerConfig(string bootstrap)
    {
        NativeKafka.EnsureLoaded();
        return new ProducerConfig
        {
            BootstrapServers = bootstrap,
            SocketTimeoutMs = 10_000,
            MessageTimeoutMs = 30_000,
            RequestTimeoutMs = 10_000,
            Acks = Acks.All,
            LingerMs = 5,
            // One request in flight keeps per-partition order even across retries without needing idempotence.
            MaxInFlight = 1,
            EnableIdempotence = false,
        };
    }

    public static ConsumerConfig ConsumerConfig(string bootstrap, string? groupId = null)
    {
        NativeKafka.EnsureLoaded();
        return new ConsumerConfig
        {
            BootstrapServers = bootstrap,
            SocketTimeoutMs = 10_000,
            GroupId = groupId ?? "kayak-itest-" + Guid.NewGuid().ToString("N"),
            EnableAutoCommit = false,
            AutoOffsetReset = AutoOffsetReset.Earliest,
            SessionTimeoutMs = 10_000,
            EnablePartitionEof = false,
        };
    }

    public static AdminClientConfig AdminConfig(string bootstrap)
    {
        NativeKafka.EnsureLoaded();
        return new AdminClientConfig { BootstrapServers = bootstrap, SocketTimeoutMs = 10_000 };
    }

    public static IProducer<byte[], byte[]> Producer(string bootstrap, Action<ProducerConfig>? configure = null)
    {
        var config = ProducerConfig(bootstrap);
        configure?.Invoke(config);
        return new ProducerBuilder<byte[], byte[]>(config).SetLogHandler(Log).Build();
    }

    public static IConsumer<byte[], byte[]> Consumer(string bootstrap, Action<ConsumerConfig>? configure = null)
    {
        var config = ConsumerConfig(bootstrap);
        configure?.Invoke(config);
        return new ConsumerBuilder<byte[], byte[]>(config).SetLogHandler(Log).Build();
    }

    public static IAdminClient Admin(string bootstrap)
    {
        return new AdminClientBuilder(AdminConfig(bootstrap)).SetLogHandler(Log).Build();
    }

    /// <summary>librdkafka's own log lines go to the test's output (shown with the failure), not the console.</summary>
    private static void Log<T>(T client, LogMessage message)
    {
        if (message.Level <= SyslogLevel.Warning)
            TestContext.Out.WriteLine($"[librdkafka {message.Level} {message.Facility}] {message.Message}");
    }

    public static byte[]? Utf8(string? s) => s is null ? null : Encoding.UTF8.GetBytes(s);

    public static string? FromUtf8(byte[]? b) => b is null ? null : Encoding.UTF8.GetString(b);

    /// <summary>Partition count of a topic from metadata.</summary>
    public static int PartitionCount(string bootstrap, string topic)
    {
        using var admin = Admin(bootstrap);
        var metadata = admin.GetMetadata(topic, TimeSpan.FromSeconds(10));
        var t = metadata.Topics.Single(x => x.Topic == topic);
        if (t.Error.Code != ErrorCode.NoError)
            Assert.Fail($"metadata for {topic}: {t.Error}");
        return t.Partitions.Count;
    }

    /// <summary>Committed offsets of a group as Confluent's Committed() (OffsetFetch) reports them; -1001 when none.</summary>
    public static Dictionary<int, long> Committed(string bootstrap, string topic, string group, int partitions)
    {
        using var consumer = Consumer(bootstrap, c => c.GroupId = group);
        var committed = consumer.Committed(Enumerable.Range(0, partitions).Select(p => new TopicPartition(topic, p)), TimeSpan.FromSeconds(10));
        return committed.ToDictionary(c => c.Partition.Value, c => c.Offset.Value);
    }

    /// <summary>
    /// Assigns every partition from its beginning and consumes up to the high watermarks read first; a consume error
    /// fails the test. Deadline-bounded.
    /// </summary>
    /// <param name="partitionCount">Known partition count (saves the admin lookup, which has no SSL settings).</param>
    public static List<ConsumedRecord> ConsumeAll(string bootstrap, string topic, TimeSpan timeout, Action<ConsumerConfig>? configure = null, CancellationToken cancellationToken = default, int? partitionCount = null)
    {
        var partitions = partitionCount ?? PartitionCount(bootstrap, topic);
        using var consumer = Consumer(bootstrap, configure);
        var targets = new Dictionary<int, long>();
        for (var p = 0; p < partitions; p++)
        {
            var w = consumer.QueryWatermarkOffsets(new TopicPartition(topic, p), TimeSpan.FromSeconds(10));
            targets[p] = w.High.Value;
        }
        consumer.Assign(Enumerable.Range(0, partitions).Select(p => new TopicPartitionOffset(topic, p, Offset.Beginning)));

        var result = new List<ConsumedRecord>();
        var positions = new Dictionary<int, long>();
        var deadline = DateTime.UtcNow + timeout;
        bool Done() => targets.All(t => t.Value == 0 || positions.GetValueOrDefault(t.Key, -1) + 1 >= t.Value);
        while (!Done())
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (DateTime.UtcNow > deadline)
                Assert.Fail($"consumed {result.Count} records of {topic} in {timeout}; high watermarks {string.Join(",", targets.Select(t => $"{t.Key}:{t.Value}"))}, positions {string.Join(",", positions.Select(t => $"{t.Key}:{t.Value}"))}");
            ConsumeResult<byte[], byte[]>? r;
            try
            {
                r = consumer.Consume(TimeSpan.FromMilliseconds(200));
            }
            catch (ConsumeException e)
            {
                Assert.Fail($"consume error on {topic}: {e.Error} ({e.Error.Code}) after {result.Count} records");
                throw;
            }
            if (r is null || r.IsPartitionEOF)
                continue;
            positions[r.Partition.Value] = r.Offset.Value;
            var headers = new List<TestHeader>();
            if (r.Message.Headers is not null)
            {
                foreach (var h in r.Message.Headers)
                    headers.Add(new TestHeader(h.Key, FromUtf8(h.GetValueBytes()) ?? ""));
            }
            result.Add(new ConsumedRecord(r.Topic, r.Partition.Value, r.Offset.Value, FromUtf8(r.Message.Key), FromUtf8(r.Message.Value), headers, r.Message.Timestamp.UnixTimestampMs));
        }
        consumer.Close();
        return result;
    }
}
