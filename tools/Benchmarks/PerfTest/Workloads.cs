using System.Buffers.Binary;
using System.Diagnostics;
using Confluent.Kafka;

namespace Kayak.PerfTest;

public sealed record ProduceCase(string Name, Acks Acks, CompressionType Compression);

public readonly record struct Throughput(long Records, long Bytes, double Seconds, double BrokerCpuSeconds, long Errors)
{
    /// <summary>Consume only: how many times the partition was read from its start (see Consume).</summary>
    public long Passes { get; init; }
    /// <summary>Consume only: records the broker still held (high - low watermark).</summary>
    public long Retained { get; init; }
    public double RecordsPerSecond => Records / Seconds;
    /// <summary>MB/s with MB = 2^20 bytes, as kafka-producer-perf-test prints it.</summary>
    public double MbPerSecond => Bytes / 1048576.0 / Seconds;
    /// <summary>Broker CPU seconds per GB (2^30 bytes) of record payload moved.</summary>
    public double CpuSecondsPerGb => BrokerCpuSeconds / (Bytes / 1073741824.0);
    /// <summary>The user-mode part of <see cref="BrokerCpuSeconds"/> (the broker's own code; the rest is kernel).</summary>
    public double BrokerUserCpuSeconds { get; init; }
    public double UserCpuSecondsPerGb => BrokerUserCpuSeconds / (Bytes / 1073741824.0);
}

public readonly record struct Latency(double P50Ms, double P99Ms, double P999Ms, int Samples, long Lost);

/// <summary>The client side of each measurement, the same code for every broker.</summary>
internal static class Workloads
{
    /// <summary>
    /// Like kafka-producer-perf-test: fire-and-forget Produce with a delivery callback, then flush; the clock runs from
    /// the first Produce to the last delivery report. Payloads are random upper-case letters (the perf-test's default
    /// payload), 1,000 distinct ones cycled so lz4 cannot just match the previous record.
    /// </summary>
    public static Throughput Produce(BrokerProcess broker, string topic, ProduceCase c, int count, int size)
    {
        var config = broker.Client(new ProducerConfig
        {
            Acks = c.Acks,
            LingerMs = 5,
            BatchSize = 1 << 20,
            MessageMaxBytes = 1048588, // the broker default max.message.bytes; lets a 1 MB batch through
            CompressionType = c.Compression,
            EnableIdempotence = false,
            QueueBufferingMaxMessages = 1_000_000,
            QueueBufferingMaxKbytes = 1 << 20,
            DeliveryReportFields = "none",
        });
        var payloads = Payloads(1000, size);
        long errors = 0, delivered = 0;
        Action<DeliveryReport<Null, byte[]>> onDelivery = dr =>
        {
            if (dr.Error.IsError) Interlocked.Increment(ref errors);
            Interlocked.Increment(ref delivered);
        };
        using var producer = new ProducerBuilder<Null, byte[]>(config).SetLogHandler(static (_, _) => { }).Build();
        // Connect and learn the leader before the clock starts.
        using (var admin = new DependentAdminClientBuilder(producer.Handle).Build())
            admin.GetMetadata(topic, TimeSpan.FromSeconds(10));

        var message = new Message<Null, byte[]> { Value = payloads[0] };
        double cpu0 = broker.CpuSeconds(), user0 = broker.UserCpuSeconds();
        long t0 = Stopwatch.GetTimestamp();
        for (int i = 0; i < count; i++)
        {
            message.Value = payloads[i % payloads.Length]; // librdkafka copies the value: the Message can be reused
            while (true)
            {
                try
                {
                    producer.Produce(topic, message, onDelivery);
                    break;
                }
                catch (ProduceException<Null, byte[]> e) when (e.Error.Code == ErrorCode.Local_QueueFull)
                {
                    producer.Poll(TimeSpan.FromMilliseconds(5));
                }
            }
        }
        while (producer.Flush(TimeSpan.FromSeconds(60)) > 0) { }
        double seconds = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        double cpu = broker.CpuSeconds() - cpu0, user = broker.UserCpuSeconds() - user0;
        if (Interlocked.Read(ref delivered) != count) throw new InvalidOperationException($"{delivered} of {count} delivery reports");
        return new Throughput(count, (long)count * size, seconds, cpu, errors) { BrokerUserCpuSeconds = user };
    }

    /// <summary>
    /// Like kafka-consumer-perf-test: read the partition from the beginning until <paramref name="count"/> records
    /// arrived. Values are not deserialized (Ignore) so the client spends as little as possible per record.
    /// The mock cluster keeps only the newest few MB of each partition (librdkafka's mock partition log is capped),
    /// so at the end of the partition the consumer seeks back to its start and reads the retained records again
    /// until the count is reached; Kayak keeps everything and reads each record once.
    /// </summary>
    public static Throughput Consume(BrokerProcess broker, string topic, int count, int size)
    {
        var config = broker.Client(new ConsumerConfig
        {
            GroupId = "perf-" + Guid.NewGuid().ToString("N")[..8],
            EnableAutoCommit = false,
            AutoOffsetReset = AutoOffsetReset.Earliest,
            EnablePartitionEof = false,
            // The mock does not answer a Fetch at the log end before fetch.wait.max.ms (500 ms) and every re-read
            // pass starts with one; 10 ms keeps that from dominating. Kayak always has data here, so it never waits.
            FetchWaitMaxMs = 10,
            // librdkafka 2.0.2 stops fetching once its local queue holds queued.min.messages (100,000) and only
            // re-checks about once a second after the application drained it: with the defaults that stall, not the
            // broker, set the rate (~300k rec/s with 1 s gaps in the fetch debug log). Room for the whole run avoids it.
            QueuedMinMessages = 10_000_000,
            QueuedMaxMessagesKbytes = 2_097_151,
        });
        // KAYAK_PERF_CONSUMER_CONFIG="key=value,key=value" adds librdkafka settings for experiments.
        foreach (var kv in (Environment.GetEnvironmentVariable("KAYAK_PERF_CONSUMER_CONFIG") ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = kv.IndexOf('=');
            if (eq > 0) config.Set(kv[..eq], kv[(eq + 1)..]);
        }
        // KAYAK_PERF_DEBUG=fetch,protocol (librdkafka debug contexts) prints the consumer's log with timestamps.
        string? debug = Environment.GetEnvironmentVariable("KAYAK_PERF_DEBUG");
        if (!string.IsNullOrEmpty(debug)) config.Debug = debug;
        using var consumer = new ConsumerBuilder<Ignore, Ignore>(config)
            .SetLogHandler((_, m) => { if (debug is { Length: > 0 }) Console.Error.WriteLine($"{DateTime.Now:HH:mm:ss.ffffff} {m.Facility} {m.Message}"); })
            .Build();
        var tp = new TopicPartition(topic, 0);
        var marks = consumer.QueryWatermarkOffsets(tp, TimeSpan.FromSeconds(10));
        double cpu0 = broker.CpuSeconds(), user0 = broker.UserCpuSeconds();
        long t0 = Stopwatch.GetTimestamp();
        consumer.Assign(new TopicPartitionOffset(tp, marks.Low));
        long got = 0, passes = 1;
        long lastProgress = Stopwatch.GetTimestamp();
        while (got < count)
        {
            var r = consumer.Consume(100);
            if (r is null)
            {
                if (Stopwatch.GetElapsedTime(lastProgress).TotalSeconds > 30) throw new TimeoutException($"consumed {got} of {count}");
                continue;
            }
            got++;
            // Seek at the last retained record rather than on partition EOF: an EOF means a fetch already went out
            // past the end and waits fetch.wait.max.ms, which would measure the wait rather than the broker.
            if (r.Offset.Value == marks.High - 1 && got < count)
            {
                consumer.Seek(new TopicPartitionOffset(tp, marks.Low));
                passes++;
            }
            lastProgress = Stopwatch.GetTimestamp();
        }
        double seconds = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        double cpu = broker.CpuSeconds() - cpu0, user = broker.UserCpuSeconds() - user0;
        consumer.Close();
        return new Throughput(got, got * size, seconds, cpu, 0) { BrokerUserCpuSeconds = user, Passes = passes, Retained = marks.High - marks.Low };
    }

    /// <summary>
    /// Like Kafka's EndToEndLatency, but paced: records at a fixed rate (acks=1, linger.ms=0), each carrying its send
    /// time (Stopwatch ticks, same process) in the first 8 bytes; a consumer in a second thread records receive time
    /// minus send time. The first second is warm-up and not counted.
    /// </summary>
    public static Latency EndToEnd(BrokerProcess broker, string topic, int ratePerSecond, TimeSpan duration, int size)
    {
        var pconfig = new ProducerConfig
        {
            BootstrapServers = broker.Bootstrap,
            Acks = Acks.Leader,
            LingerMs = 0,
            EnableIdempotence = false,
            DeliveryReportFields = "none",
        };
        var cconfig = new ConsumerConfig
        {
            BootstrapServers = broker.Bootstrap,
            GroupId = "perf-lat-" + Guid.NewGuid().ToString("N")[..8],
            EnableAutoCommit = false,
            AutoOffsetReset = AutoOffsetReset.Earliest,
            EnablePartitionEof = false,
        };
        long total = (long)(ratePerSecond * duration.TotalSeconds);
        long warmup = ratePerSecond; // first second
        var samples = new double[total];
        long received = 0;
        double ticksToMs = 1000.0 / Stopwatch.Frequency;

        using var consumer = new ConsumerBuilder<Ignore, byte[]>(cconfig).SetLogHandler(static (_, _) => { }).Build();
        consumer.Assign(new TopicPartitionOffset(topic, 0, Offset.Beginning));
        var stop = new CancellationTokenSource();
        var consumerThread = new Thread(() =>
        {
            while (!stop.IsCancellationRequested && received < total)
            {
                var r = consumer.Consume(50);
                if (r is null) continue;
                long now = Stopwatch.GetTimestamp();
                var v = r.Message.Value;
                long sent = BinaryPrimitives.ReadInt64LittleEndian(v);
                long seq = BinaryPrimitives.ReadInt64LittleEndian(v.AsSpan(8));
                if (seq >= 0 && seq < total) samples[seq] = (now - sent) * ticksToMs;
                received++;
            }
        }) { IsBackground = true, Name = "latency-consumer" };
        consumerThread.Start();

        using var producer = new ProducerBuilder<Null, byte[]>(pconfig).SetLogHandler(static (_, _) => { }).Build();
        using (var admin = new DependentAdminClientBuilder(producer.Handle).Build())
            admin.GetMetadata(topic, TimeSpan.FromSeconds(10));
        // Let the consumer's first fetch reach the broker so it is parked in long poll when records start.
        Thread.Sleep(500);

        var message = new Message<Null, byte[]>();
        long start = Stopwatch.GetTimestamp();
        double ticksPerRecord = (double)Stopwatch.Frequency / ratePerSecond;
        // Pacing sleeps ~1 ms and then sends every record that has come due (about 20 at 20,000/s): spinning
        // would take one of the machine's two cores away from the brokers and clients under test.
        for (long i = 0; i < total; i++)
        {
            long due = start + (long)(i * ticksPerRecord);
            while (Stopwatch.GetTimestamp() < due) Thread.Sleep(1);
            var value = new byte[size];
            BinaryPrimitives.WriteInt64LittleEndian(value, Stopwatch.GetTimestamp());
            BinaryPrimitives.WriteInt64LittleEndian(value.AsSpan(8), i);
            message.Value = value;
            producer.Produce(topic, message);
        }
        producer.Flush(TimeSpan.FromSeconds(30));
        var deadline = Stopwatch.GetTimestamp() + 30 * Stopwatch.Frequency;
        while (Interlocked.Read(ref received) < total && Stopwatch.GetTimestamp() < deadline) Thread.Sleep(10);
        stop.Cancel();
        consumerThread.Join();
        consumer.Close();

        var counted = new List<double>((int)(total - warmup));
        for (long i = warmup; i < total; i++)
            if (samples[i] > 0) counted.Add(samples[i]);
        counted.Sort();
        long lost = total - received;
        if (counted.Count == 0) return new Latency(double.NaN, double.NaN, double.NaN, 0, lost);
        return new Latency(Percentile(counted, 0.50), Percentile(counted, 0.99), Percentile(counted, 0.999), counted.Count, lost);
    }

    private static double Percentile(List<double> sorted, double p) =>
        sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Count) - 1, 0, sorted.Count - 1)];

    private static byte[][] Payloads(int distinct, int size)
    {
        var rng = new Random(42);
        var result = new byte[distinct][];
        for (int i = 0; i < distinct; i++)
        {
            var b = new byte[size];
            for (int j = 0; j < size; j++) b[j] = (byte)('A' + rng.Next(26));
            result[i] = b;
        }
        return result;
    }
}
