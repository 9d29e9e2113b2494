using System.Reflection;
using Kayak.Broker.Config;
using Kayak.Broker.Handlers;
using Kayak.Broker.Network;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Kayak.Broker;

/// <summary>
/// The embeddable broker: the executable, the integration tests and the benchmarks all run this.
/// Port 0 picks a free port; read it back from <see cref="BootstrapServers"/> after <see cref="StartAsync"/>.
/// </summary>
public sealed class KafkaBroker : IAsyncDisposable
{
    private readonly List<Listener> _listeners = new();
    private BrokerState? _state;
    private Timer? _retentionTimer;
    private Timer? _flushTimer;
    private Timer? _txnTimer;
    private Timer? _producerExpiryTimer;
    private int _disposed;

    public KafkaBroker(KafkaBrokerOptions options) { Options = options; }

    public KafkaBrokerOptions Options { get; }

    /// <summary>"host:port" of the first listener, valid after <see cref="StartAsync"/>.</summary>
    public string BootstrapServers { get; private set; } = "";

    /// <summary>The bound listeners, with resolved ports.</summary>
    public IReadOnlyList<ListenerEndpoint> Listeners { get; private set; } = [];

    public BrokerConfig Config => _state?.Config ?? throw new InvalidOperationException("Broker not started");

    internal BrokerState State => _state ?? throw new InvalidOperationException("Broker not started");

    public static string Version { get; } =
        typeof(KafkaBroker).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    public Task StartAsync(CancellationToken cancellationToken = default)
    {
        var config = new BrokerConfig(Options.BuildProperties());
        var loggerFactory = Options.LoggerFactory ?? NullLoggerFactory.Instance;
        var log = loggerFactory.CreateLogger("Kayak.Broker");
        foreach (var key in config.UnknownKeys)
            log.LogWarning("The configuration '{Key}' was supplied but isn't a known config.", key);

        var state = new BrokerState(config, Options.Time ?? TimeProvider.System, loggerFactory)
        {
            DropConnectionBeforeResponse = Options.DropConnectionBeforeResponse,
        };
        _state = state;
        try
        {
            state.Open();
            var bound = new List<ListenerEndpoint>();
            foreach (var endpoint in config.Listeners)
            {
                var listener = new Listener(endpoint, state, loggerFactory.CreateLogger("Kayak.Network"));
                listener.Start();
                _listeners.Add(listener);
                bound.Add(listener.BoundEndpoint);
            }
            Listeners = bound;
            state.SetAdvertisedListeners(config, bound);
            var first = state.AdvertisedEndpoint;
            BootstrapServers = $"{first.Host}:{first.Port}";

            var retention = TimeSpan.FromMilliseconds(config.LogRetentionCheckIntervalMs);
            _retentionTimer = new Timer(_ => state.RunRetention(), null, retention, retention);
            var txnInterval = TimeSpan.FromMilliseconds(config.TransactionAbortTimedOutCleanupIntervalMs);
            _txnTimer = new Timer(_ => state.AbortTimedOutTransactions(), null, txnInterval, txnInterval);
            var expiry = TimeSpan.FromMilliseconds(config.ProducerIdExpirationCheckIntervalMs);
            _producerExpiryTimer = new Timer(_ => state.ExpireProducers(), null, expiry, expiry);
            if (config.LogFlushIntervalMs is > 0 and < int.MaxValue)
            {
                var flush = TimeSpan.FromMilliseconds(config.LogFlushIntervalMs);
                _flushTimer = new Timer(_ => state.FlushAll(), null, flush, flush);
            }
        }
        catch
        {
            DisposeAsync().AsTask().GetAwaiter().GetResult();
            throw;
        }
        log.LogInformation("[KafkaServer id={NodeId}] started (kayak.server.KafkaServer) listeners={Listeners} log.dirs={LogDirs} version={Version}",
            config.NodeId, string.Join(",", Listeners), string.Join(",", config.LogDirs), Version);
        return Task.CompletedTask;
    }

    /// <summary>Clean shutdown: stop accepting, answer in-flight requests, flush and close the logs.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        if (_retentionTimer is not null) await _retentionTimer.DisposeAsync().ConfigureAwait(false);
        if (_flushTimer is not null) await _flushTimer.DisposeAsync().ConfigureAwait(false);
        if (_txnTimer is not null) await _txnTimer.DisposeAsync().ConfigureAwait(false);
        if (_producerExpiryTimer is not null) await _producerExpiryTimer.DisposeAsync().ConfigureAwait(false);
        foreach (var l in _listeners) await l.DisposeAsync().ConfigureAwait(false);
        _listeners.Clear();
        if (_state is not null)
        {
            _state.Dispose();
            _state.LoggerFactory.CreateLogger("Kayak.Broker").LogInformation("[KafkaServer id={NodeId}] shut down completed (kayak.server.KafkaServer)", _state.Config.NodeId);
        }
    }
}

/// <summary>How to run an embedded broker. Explicit properties here win over <see cref="Properties"/>.</summary>
public sealed class KafkaBrokerOptions
{
    /// <summary>Kafka's log.dirs; null keeps the properties' value (default ./data).</summary>
    public string? DataDir { get; set; }
    /// <summary>Listener host; null keeps the properties' listeners (default 127.0.0.1).</summary>
    public string? Host { get; set; }
    /// <summary>Listener port, 0 for any free port; null keeps the properties' listeners (default 9092).</summary>
    public int? Port { get; set; }
    /// <summary>Any server.properties key=value (num.partitions, log.segment.bytes, ...).</summary>
    public Dictionary<string, string> Properties { get; } = new(StringComparer.Ordinal);
    public ILoggerFactory? LoggerFactory { get; set; }
    /// <summary>Clock for retention, timestamps and timeouts; tests pass a fake.</summary>
    public TimeProvider? Time { get; set; }

    /// <summary>
    /// Test fault hook: called with each request's API key once its handler has finished; true drops the
    /// connection instead of sending the response (the request took effect, the client never hears of it).
    /// Integration tests use it to make idempotent producers retry.
    /// </summary>
    internal Func<Kayak.Protocol.ApiKey, bool>? DropConnectionBeforeResponse { get; set; }

    internal Dictionary<string, string> BuildProperties()
    {
        var p = new Dictionary<string, string>(Properties, StringComparer.Ordinal);
        if (DataDir is not null) { p["log.dirs"] = DataDir; }
        if (Host is not null || Port is not null)
        {
            string host = Host ?? "127.0.0.1";
            int port = Port ?? 9092;
            p["listeners"] = $"PLAINTEXT://{(host.Contains(':') ? "[" + host + "]" : host)}:{port}";
            p.Remove("advertised.listeners");
        }
        return p;
    }
}
