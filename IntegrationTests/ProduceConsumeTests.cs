using Kayak.IntegrationTests.Drivers;
using Kayak.IntegrationTests.Infrastructure;
using NUnit.Framework;

namespace Kayak.IntegrationTests;

/// <summary>
/// Every client produces keyed records with headers to a 3-partition topic and every client reads them back: exact
/// partition, offset, key, value and header checks, same client and across clients.
/// </summary>
[TestFixture]
public sealed class ProduceConsumeTests : BrokerTestBase
{
    private const int Partitions = 3;
    private const int RecordCount = 30;

    private static IEnumerable<TestCaseData> SameClient()
    {
        foreach (var mode in new[] { BrokerMode.InProcess, BrokerMode.Process })
        {
            foreach (var client in ClientDrivers.Names)
                yield return new TestCaseData(client, mode).SetName($"RoundTrip_{client}_{mode}");
        }
    }

    private static IEnumerable<TestCaseData> CrossClient()
    {
        foreach (var producer in ClientDrivers.Names)
        {
            foreach (var consumer in ClientDrivers.Names)
            {
                if (producer != consumer)
                    yield return new TestCaseData(producer, consumer).SetName($"Cross_{producer}_to_{consumer}");
            }
        }
    }

    [TestCaseSource(nameof(SameClient))]
    [CancelAfter(120_000)]
    public Task ProducedRecordsAreConsumedBySameClient(string client, BrokerMode mode) =>
        RoundTripAsync(client, client, mode);

    [TestCaseSource(nameof(CrossClient))]
    [CancelAfter(120_000)]
    public Task ProducedRecordsAreConsumedByOtherClient(string producer, string consumer) =>
        RoundTripAsync(producer, consumer, BrokerMode.InProcess);

    private async Task RoundTripAsync(string producerName, string consumerName, BrokerMode mode)
    {
        var broker = await StartBrokerAsync(mode);
        var topic = TopicName("pc");
        await broker.CreateTopicAsync(topic, Partitions, cancellationToken: Token);

        var producer = ClientDrivers.ByName(producerName);
        var consumer = ClientDrivers.ByName(consumerName);
        var records = TestData.Records(producerName, RecordCount, Partitions);

        var acks = await producer.ProduceAsync(broker.BootstrapServers, topic, records, cancellationToken: Token);
        var consumed = await consumer.ConsumeAllAsync(broker.BootstrapServers, topic, Token);

        TestData.AssertExactlyConsumed(topic, records, acks, consumed, $"{producerName} -> {consumerName} ({broker.Mode})");
    }
}
