using System.Text.Json.Nodes;
using Kayak.IntegrationTests.Drivers;
using Kayak.IntegrationTests.Infrastructure;
using NUnit.Framework;

namespace Kayak.IntegrationTests;

/// <summary>
/// Older librdkafka clients: Debian's librdkafka 2.0.2 under kcat (its tests elsewhere) and under
/// confluent-kafka-python 1.7.0 (python3-confluent-kafka) here, while the .NET tests run librdkafka 2.16.
/// </summary>
[TestFixture]
public sealed class OlderClientsTests : BrokerTestBase
{
    private sealed class ConfluentPython : JsonScriptDriver
    {
        public override string Name => "confluent-kafka-python";

        protected override ProcessSpec Spec(string script, string stdin, TimeSpan timeout) => new()
        {
            FileName = PythonKafka.Interpreter,
            Arguments = [Path.Combine(RepoPaths.PythonScripts, script + ".py")],
            StandardInput = stdin,
            Timeout = timeout,
            Environment = { ["PYTHONDONTWRITEBYTECODE"] = "1", ["PYTHONUNBUFFERED"] = "1" },
        };
    }

    [TestCase(BrokerMode.InProcess)]
    [TestCase(BrokerMode.Process)]
    [CancelAfter(120_000)]
    public async Task ConfluentKafkaPythonOnLibrdkafka202RoundTrip(BrokerMode mode)
    {
        var broker = await StartBrokerAsync(mode);
        var topic = TopicName("py");
        await broker.CreateTopicAsync(topic, 3, cancellationToken: Token);
        var group = "py-" + Guid.NewGuid().ToString("N");
        const int count = 30;

        var reply = await new ConfluentPython().RunAsync("confluent_roundtrip", new JsonObject
        {
            ["bootstrap"] = broker.BootstrapServers, ["topic"] = topic, ["partitions"] = 3, ["count"] = count, ["group"] = group,
        }, cancellationToken: Token);
        Assert.That((string?)reply["libversion"], Is.EqualTo("2.0.2"), "Debian's librdkafka, not the tests' 2.16");

        // Its idempotent producer's acks match where its consumer and librdkafka 2.16 find each record.
        var produced = reply["produced"]!.AsArray().Select(p => ((int)p!["partition"]!, (long)p["offset"]!)).ToList();
        var expected = Enumerable.Range(0, count).Select(i => (Partition: i % 3, Key: $"k{i}", Value: $"v{i}", Header: i.ToString())).ToList();
        Assert.That(produced.Select(p => p.Item1), Is.EqualTo(expected.Select(e => e.Partition)));
        foreach (var p in Enumerable.Range(0, 3))
            Assert.That(produced.Where(x => x.Item1 == p).Select(x => x.Item2), Is.EqualTo(Enumerable.Range(0, count / 3).Select(i => (long)i)), $"partition {p} offsets");

        var consumed = reply["consumed"]!.AsArray()
            .Select(c => ((int)c!["partition"]!, (long)c["offset"]!, (string?)c["key"], (string?)c["value"], (string?)c["headers"]![0]![1]))
            .ToList();
        var byAck = expected.Select((e, i) => (produced[i].Item1, produced[i].Item2, (string?)e.Key, (string?)e.Value, (string?)e.Header)).ToList();
        Assert.That(consumed, Is.EquivalentTo(byAck), "confluent-kafka-python reads back what it wrote");
        var dotnet = ConfluentClients.ConsumeAll(broker.BootstrapServers, topic, TimeSpan.FromSeconds(30), cancellationToken: Token);
        Assert.That(dotnet.Select(c => (c.Partition, c.Offset, c.Key, c.Value, (string?)c.Headers.Single().Value)), Is.EquivalentTo(byAck), "Confluent.Kafka 2.16 reads the same records");
        Assert.That(ConfluentClients.Committed(broker.BootstrapServers, topic, group, 3), Is.EquivalentTo(new Dictionary<int, long> { [0] = 10, [1] = 10, [2] = 10 }), "its group's commits as librdkafka 2.16 fetches them");
    }
}
