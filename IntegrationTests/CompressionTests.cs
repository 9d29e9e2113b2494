using Kayak.IntegrationTests.Drivers;
using Kayak.IntegrationTests.Infrastructure;
using NUnit.Framework;

namespace Kayak.IntegrationTests;

/// <summary>
/// Each codec produced by kcat (-z), Confluent.Kafka (compression.type) and kafka-python (compression_type) is read
/// back exactly by Confluent.Kafka and by kafka-python (its pure-Python decoders are independent of librdkafka's).
/// </summary>
[TestFixture]
public sealed class CompressionTests : BrokerTestBase
{
    private const int Partitions = 3;

    private static IEnumerable<TestCaseData> Cases()
    {
        foreach (var codec in new[] { "gzip", "snappy", "lz4", "zstd" })
        {
            foreach (var producer in new[] { "kcat", "confluent", "kafka-python" })
                yield return new TestCaseData(producer, codec).SetName($"Compressed_{codec}_by_{producer}");
        }
        // kafkajs ships only gzip (other codecs need extra packages).
        yield return new TestCaseData("kafkajs", "gzip").SetName("Compressed_gzip_by_kafkajs");
    }

    [TestCaseSource(nameof(Cases))]
    [CancelAfter(120_000)]
    public async Task CompressedBatchesRoundTrip(string producerName, string codec)
    {
        var broker = await StartBrokerAsync(BrokerMode.InProcess);
        var topic = TopicName("z" + codec);
        await broker.CreateTopicAsync(topic, Partitions, cancellationToken: Token);

        // Repetitive values so every codec actually compresses; several records per batch.
        var records = TestData.Records(producerName + "-" + codec, 60, Partitions);
        var acks = await ClientDrivers.ByName(producerName).ProduceAsync(
            broker.BootstrapServers, topic, records, new ProduceOptions { Compression = codec }, Token);

        var byConfluent = await ClientDrivers.Confluent.ConsumeAllAsync(broker.BootstrapServers, topic, Token);
        TestData.AssertExactlyConsumed(topic, records, acks, byConfluent, $"{codec} by {producerName}, read by confluent");

        var byPython = await ClientDrivers.Python.ConsumeAllAsync(broker.BootstrapServers, topic, Token);
        TestData.AssertExactlyConsumed(topic, records, acks, byPython, $"{codec} by {producerName}, read by kafka-python");
    }
}
