namespace Kayak.Broker;

/// <summary>
/// The embeddable broker: the executable, the integration tests and the benchmarks all run this.
/// Port 0 in <see cref="KafkaBrokerOptions"/> picks a free port; read it back from <see cref="BootstrapServers"/>.
/// </summary>
public sealed partial class KafkaBroker : IAsyncDisposable
{
    public KafkaBroker(KafkaBrokerOptions options) { Options = options; }

    public KafkaBrokerOptions Options { get; }

    /// <summary>"host:port" of the first listener, valid after <see cref="StartAsync"/>.</summary>
    public string BootstrapServers { get; private set; } = "";

    public Task StartAsync(CancellationToken cancellationToken = default) => throw new NotImplementedException();

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

/// <summary>Broker settings; <see cref="FromProperties"/> maps Kafka's server.properties keys.</summary>
public sealed class KafkaBrokerOptions
{
    public int NodeId { get; set; } = 1;
    /// <summary>Kafka's log.dirs.</summary>
    public string DataDir { get; set; } = "./data";
    public string Host { get; set; } = "127.0.0.1";
    /// <summary>0 picks a free port.</summary>
    public int Port { get; set; } = 9092;
    /// <summary>Any other server.properties key=value (num.partitions, log.segment.bytes, ...).</summary>
    public Dictionary<string, string> Properties { get; } = new();
}
