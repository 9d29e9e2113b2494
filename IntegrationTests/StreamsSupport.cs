using System.Collections.Concurrent;
using Confluent.Kafka;
using Kayak.IntegrationTests.Infrastructure;
using Microsoft.Extensions.Logging;
using NUnit.Framework;
using Streamiz.Kafka.Net;
using Streamiz.Kafka.Net.SerDes;

namespace Kayak.IntegrationTests;

/// <summary>One record as read back: string key and value, where it was stored.</summary>
public sealed record StreamRecord(int Partition, long Offset, string? Key, string? Value);

/// <summary>
/// Streamiz.Kafka.Net (Kafka Streams for .NET, on Confluent.Kafka) applications against a broker: configs with
/// test-friendly timings, start-and-wait-for-RUNNING, and readers that stop at the partition's end as the given
/// isolation level sees it (high watermark, or the last stable offset for read_committed).
/// </summary>
public static class StreamsSupport
{
    /// <summary>Streamiz's own log (warnings and up), kept per application and printed when a test fails.</summary>
    public sealed class Log : ILoggerProvider, ILogger
    {
        private readonly ConcurrentQueue<string> lines = new();

        public ILoggerFactory Factory() => LoggerFactory.Create(b => b.AddProvider(this).SetMinimumLevel(LogLevel.Warning));

        public string Dump() => string.Join("\n", lines);

        ILogger ILoggerProvider.CreateLogger(string categoryName) => this;

        IDisposable? ILogger.BeginScope<TState>(TState state) => null;

        bool ILogger.IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

        void ILogger.Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lines.Enqueue($"[streamiz {logLevel}] {formatter(state, exception)}{(exception is null ? "" : " " + exception)}");
        }

        void IDisposable.Dispose()
        {
        }
    }

    public static StreamConfig<StringSerDes, StringSerDes> Config(string bootstrap, string applicationId, string stateDir, Log log)
    {
        NativeKafka.EnsureLoaded();
        return new StreamConfig<StringSerDes, StringSerDes>
        {
            ApplicationId = applicationId,
            BootstrapServers = bootstrap,
            StateDir = stateDir,
            AutoOffsetReset = AutoOffsetReset.Earliest,
            // Kafka Streams' defaults (30 s commits, 45 s session) only slow a test down; records are checked, not timing.
            CommitIntervalMs = 200,
            SessionTimeoutMs = 10_000,
            Logger = log.Factory(),
        };
    }

    /// <summary>Starts the application and waits for Streamiz's RUNNING state (group joined, tasks assigned, stores restored).</summary>
    public static async Task StartAndWaitRunningAsync(KafkaStream stream, Log log, CancellationToken cancellationToken)
    {
        var running = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        stream.StateChanged += (_, state) =>
        {
            if (state == KafkaStream.State.RUNNING)
                running.TrySetResult();
            else if (state == KafkaStream.State.ERROR)
                running.TrySetException(new AssertionException("Streamiz application went to ERROR\n" + log.Dump()));
        };
        await stream.StartAsync(cancellationToken);
        try
        {
            await running.Task.WaitAsync(TimeSpan.FromSeconds(60), cancellationToken);
        }
        catch (TimeoutException)
        {
            Assert.Fail("Streamiz application not RUNNING after 60 s\n" + log.Dump());
        }
    }

    public static void Produce(string bootstrap, string topic, IEnumerable<(string Key, string Value)> records)
    {
        using var producer = ConfluentClients.Producer(bootstrap);
        foreach (var (key, value) in records)
            producer.Produce(topic, new Message<byte[], byte[]> { Key = ConfluentClients.Utf8(key)!, Value = ConfluentClients.Utf8(value)! });
        var left = producer.Flush(TimeSpan.FromSeconds(30));
        Assert.That(left, Is.Zero, $"records of {topic} still undelivered");
    }

    /// <summary>Every record of the topic up to its end for this isolation level, as the end was when the read began.</summary>
    public static List<StreamRecord> ReadAll(string bootstrap, string topic, IsolationLevel isolation = IsolationLevel.ReadCommitted)
    {
        var partitions = ConfluentClients.PartitionCount(bootstrap, topic);
        using var consumer = ConfluentClients.Consumer(bootstrap, c =>
        {
            c.IsolationLevel = isolation;
            // The end is where librdkafka reports EOF: the high watermark, or the LSO under read_committed, past
            // aborted records and transaction markers that no record is returned for.
            c.EnablePartitionEof = true;
        });
        var ends = Enumerable.Range(0, partitions).ToDictionary(p => p, p => consumer.QueryWatermarkOffsets(new TopicPartition(topic, p), TimeSpan.FromSeconds(10)).High.Value);
        consumer.Assign(Enumerable.Range(0, partitions).Select(p => new TopicPartitionOffset(topic, p, Offset.Beginning)));
        var result = new List<StreamRecord>();
        var reached = new HashSet<int>();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (reached.Count < partitions)
        {
            if (DateTime.UtcNow > deadline)
                Assert.Fail($"{topic}: read {result.Count} records, ends {string.Join(",", ends)} not all reached ({string.Join(",", reached)})");
            var r = consumer.Consume(TimeSpan.FromMilliseconds(200));
            if (r is null)
                continue;
            if (r.IsPartitionEOF)
            {
                if (r.Offset.Value >= ends[r.Partition.Value])
                    reached.Add(r.Partition.Value);
                continue;
            }
            result.Add(new StreamRecord(r.Partition.Value, r.Offset.Value, ConfluentClients.FromUtf8(r.Message.Key), ConfluentClients.FromUtf8(r.Message.Value)));
        }
        consumer.Close();
        return result;
    }

    /// <summary>Re-reads the topic until the condition holds on what was read; fails with the last read after the budget.</summary>
    public static async Task<List<StreamRecord>> ReadUntilAsync(string bootstrap, string topic, Func<List<StreamRecord>, bool> done, string what, Log log, CancellationToken cancellationToken, IsolationLevel isolation = IsolationLevel.ReadCommitted)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
        while (true)
        {
            var records = ReadAll(bootstrap, topic, isolation);
            if (done(records))
                return records;
            if (DateTime.UtcNow > deadline)
                Assert.Fail($"{what}: {topic} has {records.Count} records, condition not met after 90 s\n{log.Dump()}");
            await Task.Delay(250, cancellationToken);
        }
    }

    /// <summary>The latest value per key in offset order (what a compacted read or a table would hold).</summary>
    public static Dictionary<string, string> LatestByKey(IEnumerable<StreamRecord> records) =>
        records.OrderBy(r => r.Partition).ThenBy(r => r.Offset)
            .GroupBy(r => r.Key!)
            .ToDictionary(g => g.Key, g => g.Last().Value!);
}
