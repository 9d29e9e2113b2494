using Confluent.Kafka;
using Kayak.IntegrationTests.Infrastructure;
using NUnit.Framework;

namespace Kayak.IntegrationTests.Drivers;

/// <summary>Confluent.Kafka 2.16 on librdkafka.redist 2.16 (Infrastructure/NativeKafka.cs).</summary>
public sealed class ConfluentDriver : IClientDriver
{
    public string Name => "confluent";

    public async Task<IReadOnlyList<ProducedRecord>> ProduceAsync(string bootstrap, string topic, IReadOnlyList<TestRecord> records, ProduceOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new ProduceOptions();
        using var producer = ConfluentClients.Producer(bootstrap, c =>
        {
            c.Acks = options.Acks switch { "all" or "-1" => Acks.All, "0" => Acks.None, _ => Acks.Leader };
            if (options.Compression is not null)
                c.Set("compression.type", options.Compression);
        });
        var pending = new Task<DeliveryResult<byte[], byte[]>>[records.Count];
        for (var i = 0; i < records.Count; i++)
        {
            var r = records[i];
            var headers = new Headers();
            foreach (var h in r.Headers)
                headers.Add(h.Key, ConfluentClients.Utf8(h.Value));
            var message = new Message<byte[], byte[]> { Key = ConfluentClients.Utf8(r.Key)!, Value = ConfluentClients.Utf8(r.Value)!, Headers = headers };
            pending[i] = producer.ProduceAsync(new TopicPartition(topic, r.Partition), message, cancellationToken);
        }
        var results = new List<ProducedRecord>(records.Count);
        try
        {
            foreach (var d in await Task.WhenAll(pending))
                results.Add(new ProducedRecord(d.Partition.Value, d.Offset.Value));
        }
        catch (ProduceException<byte[], byte[]> e)
        {
            Assert.Fail($"confluent produce to {topic} failed: {e.Error} ({e.Error.Code})");
        }
        return results;
    }

    public Task<IReadOnlyList<ConsumedRecord>> ConsumeAllAsync(string bootstrap, string topic, CancellationToken cancellationToken = default) =>
        Task.Run<IReadOnlyList<ConsumedRecord>>(() => ConfluentClients.ConsumeAll(bootstrap, topic, TimeSpan.FromSeconds(60), cancellationToken: cancellationToken), cancellationToken);
}
