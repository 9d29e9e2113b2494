using Kayak.IntegrationTests.Infrastructure;

namespace Kayak.IntegrationTests.Drivers;

/// <summary>Producer settings every driver maps onto its own client's names.</summary>
public sealed class ProduceOptions
{
    /// <summary>none, gzip, snappy, lz4 or zstd (null: the client's default, i.e. none).</summary>
    public string? Compression { get; init; }

    /// <summary>"all", "1" or "0".</summary>
    public string Acks { get; init; } = "all";
}

/// <summary>A Kafka client the tests drive the same way: produce to explicit partitions, consume everything back.</summary>
public interface IClientDriver
{
    string Name { get; }

    /// <summary>Produces the records in order (to their explicit partitions) and returns one delivery per record.</summary>
    Task<IReadOnlyList<ProducedRecord>> ProduceAsync(string bootstrap, string topic, IReadOnlyList<TestRecord> records, ProduceOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>Reads every partition of the topic from the beginning up to the high watermark seen at the start.</summary>
    Task<IReadOnlyList<ConsumedRecord>> ConsumeAllAsync(string bootstrap, string topic, CancellationToken cancellationToken = default);
}

public static class ClientDrivers
{
    public static IClientDriver Confluent { get; } = new ConfluentDriver();
    public static IClientDriver Kcat { get; } = new Kcat();
    public static IClientDriver Python { get; } = new PythonKafka();
    public static IClientDriver KafkaJs { get; } = new KafkaJs();

    /// <summary>Every client, by name: "confluent", "kcat", "kafka-python", "kafkajs".</summary>
    public static IClientDriver ByName(string name) => name switch
    {
        "confluent" => Confluent,
        "kcat" => Kcat,
        "kafka-python" => Python,
        "kafkajs" => KafkaJs,
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, "unknown client"),
    };

    public static readonly string[] Names = ["confluent", "kcat", "kafka-python", "kafkajs"];
}
