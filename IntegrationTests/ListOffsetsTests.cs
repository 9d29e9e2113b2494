using Confluent.Kafka;
using Kayak.IntegrationTests.Infrastructure;
using NUnit.Framework;

namespace Kayak.IntegrationTests;

/// <summary>ListOffsets: earliest/latest (watermarks) and by timestamp (Confluent OffsetsForTimes, KIP-79 semantics).</summary>
[TestFixture]
public sealed class ListOffsetsTests : BrokerTestBase
{
    [TestCase(BrokerMode.InProcess)]
    [TestCase(BrokerMode.Process)]
    [CancelAfter(90_000)]
    public async Task OffsetsForTimesFindsFirstRecordAtOrAfterTimestamp(BrokerMode mode)
    {
        var broker = await StartBrokerAsync(mode);
        var topic = TopicName("lo");
        await broker.CreateTopicAsync(topic, 2, cancellationToken: Token);

        // CreateTime timestamps one second apart, in the past so none collides with "now".
        var t0 = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000 * 1000 - 3_600_000;
        const int count = 10;
        using (var producer = ConfluentClients.Producer(broker.BootstrapServers))
        {
            for (var i = 0; i < count; i++)
            {
                var message = new Message<byte[], byte[]>
                {
                    Key = ConfluentClients.Utf8($"k{i}")!,
                    Value = ConfluentClients.Utf8($"v{i}")!,
                    Timestamp = new Timestamp(t0 + i * 1000L, TimestampType.CreateTime),
                };
                var d = await producer.ProduceAsync(new TopicPartition(topic, 0), message, Token);
                Assert.That(d.Offset.Value, Is.EqualTo(i), "offset assigned to record " + i);
            }
        }

        using var consumer = ConfluentClients.Consumer(broker.BootstrapServers);
        var tp = new TopicPartition(topic, 0);
        var watermarks = consumer.QueryWatermarkOffsets(tp, TimeSpan.FromSeconds(10));
        Assert.That((watermarks.Low.Value, watermarks.High.Value), Is.EqualTo((0L, (long)count)), "watermarks of partition 0");
        var empty = consumer.QueryWatermarkOffsets(new TopicPartition(topic, 1), TimeSpan.FromSeconds(10));
        Assert.That((empty.Low.Value, empty.High.Value), Is.EqualTo((0L, 0L)), "watermarks of the empty partition 1");

        // librdkafka 2.0.2's mock cluster answers every timestamp lookup with -1; only Kayak is checked below.
        RequireKayak("timestamp lookup");

        long Lookup(long timestamp)
        {
            var result = consumer.OffsetsForTimes([new TopicPartitionTimestamp(tp, new Timestamp(timestamp, TimestampType.CreateTime))], TimeSpan.FromSeconds(10));
            Assert.That(result, Has.Count.EqualTo(1));
            return result[0].Offset.Value;
        }

        Assert.Multiple(() =>
        {
            Assert.That(Lookup(t0 - 60_000), Is.EqualTo(0), "before the first record: the first offset");
            Assert.That(Lookup(t0), Is.EqualTo(0), "exactly the first timestamp");
            Assert.That(Lookup(t0 + 2500), Is.EqualTo(3), "between records: the next one");
            Assert.That(Lookup(t0 + 7000), Is.EqualTo(7), "exact match");
            Assert.That(Lookup(t0 + 9000), Is.EqualTo(9), "the last record");
            // No record at or after the timestamp: Kafka answers offset -1 (librdkafka: Offset.End).
            Assert.That(Lookup(t0 + 60_000), Is.EqualTo(Offset.End.Value), "after the last record");
        });
    }
}
