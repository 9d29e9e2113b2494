using System.Text;
using Confluent.Kafka;
using Kayak.Broker;
using Kayak.Tests.Filesystems;
using Microsoft.Extensions.Logging;
using NUnit.Framework;

namespace Kayak.IntegrationTests;

/// <summary>
/// Issue 15, K4 with a real producer: on a full disk librdkafka gets KAFKA_STORAGE_ERROR for its produce (before the
/// fix the broker closed the connection and logged nothing, and producers timed out while health checks passed),
/// the broker logs the failure at ERROR with the directory, metadata and reads keep working, and produce resumes
/// when space returns. The disk is a 2 MiB tmpfs mounted for the test (CI runs as root).
/// </summary>
[TestFixture, NonParallelizable]
public sealed class FullDiskTests
{
    [Test]
    [CancelAfter(120_000)]
    public async Task ProduceOnAFullDisk_GetsStorageError_ReadsKeepWorking_AndProduceResumesWhenSpaceReturns()
    {
        using var fs = SmallFilesystem.Mount("2m");
        string mount = fs.Path;
        var logs = new CapturingLoggerProvider();
        {
            using var loggerFactory = LoggerFactory.Create(b => b.AddProvider(logs));
            var options = new KafkaBrokerOptions { Port = 0, DataDir = Path.Combine(mount, "logs"), LoggerFactory = loggerFactory };
            options.Properties["log.segment.bytes"] = "262144";
            await using var broker = new KafkaBroker(options);
            await broker.StartAsync();
            const string topic = "full";
            using (var admin = ConfluentClients.Admin(broker.BootstrapServers))
                await admin.CreateTopicsAsync([new Confluent.Kafka.Admin.TopicSpecification { Name = topic, NumPartitions = 1, ReplicationFactor = 1 }]);
            string ballast = Path.Combine(mount, "ballast");
            File.WriteAllBytes(ballast, new byte[1024 * 1024]);

            using var producer = ConfluentClients.Producer(broker.BootstrapServers, c =>
            {
                c.MessageTimeoutMs = 20_000;
                c.MessageSendMaxRetries = 0; // see the broker's error instead of retrying it until the timeout
                c.LingerMs = 0;
            });
            var value = new byte[2000];
            int acked = 0;
            ProduceException<byte[], byte[]>? failure = null;
            for (int i = 0; i < 2000 && failure is null; i++)
            {
                try
                {
                    var r = await producer.ProduceAsync(topic, new Message<byte[], byte[]> { Key = Encoding.UTF8.GetBytes("k" + i), Value = value });
                    Assert.That(r.Offset.Value, Is.EqualTo(acked), "acknowledged records are contiguous");
                    acked++;
                }
                catch (ProduceException<byte[], byte[]> e) { failure = e; }
            }
            Assert.That(failure, Is.Not.Null, "a 2 MiB filesystem must fill up");
            Assert.That(failure!.Error.Code, Is.EqualTo(ErrorCode.KafkaStorageError), failure.Error.Reason);
            Assert.That(acked, Is.GreaterThan(0));
            Assert.That(logs.Errors, Has.Some.Contain("No space left on device").And.Contain(mount), "the failure is logged with the directory");

            // Metadata and reads keep working; exactly the acknowledged records are there.
            using (var admin = ConfluentClients.Admin(broker.BootstrapServers))
                Assert.That(admin.GetMetadata(topic, TimeSpan.FromSeconds(10)).Topics[0].Error.Code, Is.EqualTo(ErrorCode.NoError));
            Assert.That(await CountAsync(broker.BootstrapServers, topic, acked), Is.EqualTo(acked));

            // Space returns: the next produce is acknowledged right after the others.
            File.Delete(ballast);
            var again = await producer.ProduceAsync(topic, new Message<byte[], byte[]> { Key = Encoding.UTF8.GetBytes("after"), Value = value });
            Assert.That(again.Offset.Value, Is.EqualTo(acked));
            Assert.That(await CountAsync(broker.BootstrapServers, topic, acked + 1), Is.EqualTo(acked + 1));
        }
    }

    private static async Task<int> CountAsync(string bootstrap, string topic, int expected)
    {
        using var consumer = ConfluentClients.Consumer(bootstrap);
        consumer.Assign(new TopicPartitionOffset(topic, 0, Offset.Beginning));
        int n = 0;
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (n < expected && DateTime.UtcNow < deadline)
        {
            var m = consumer.Consume(TimeSpan.FromMilliseconds(500));
            if (m is null) continue;
            Assert.That(m.Offset.Value, Is.EqualTo(n));
            n++;
        }
        // Nothing beyond what was acknowledged.
        await Task.Yield();
        Assert.That(consumer.Consume(TimeSpan.FromSeconds(1)), Is.Null);
        return n;
    }

    private sealed class CapturingLoggerProvider : ILoggerProvider, ILogger
    {
        private readonly List<string> _errors = [];
        public IReadOnlyList<string> Errors { get { lock (_errors) return [.. _errors]; } }
        public ILogger CreateLogger(string categoryName) => this;
        public void Dispose() { }
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;
        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (logLevel >= LogLevel.Error) lock (_errors) _errors.Add(formatter(state, exception) + " " + exception?.Message);
        }
    }
}
