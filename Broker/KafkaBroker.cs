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
    private readonly List<ITimer> _timers = new();
    private int _disposed;

    public KafkaBroker(KafkaBrokerOptions options) { Options = options; }

    public KafkaBrokerOptions Options { get; }

    /// <summary>"host:port" of the first listener, valid after <see cref="StartAsync"/>.</summary>
    public string BootstrapServers { get; private set; } = "";

    /// <summary>The bound listeners, with resolved ports.</summary>
    public IReadOnlyList<ListenerEndpoint> Listeners { get; private set; } = [];

    /// <summary>
    /// This broker's fault injection (<see cref="BrokerFaults"/>): injected errors, latency, dropped connections,
    /// pause/resume. <see cref="KafkaBrokerOptions.Faults"/> when set, else the broker's own.
    /// </summary>
    public BrokerFaults Faults => Options.Faults ??= new BrokerFaults();

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

        // Every SSL listener's stores are loaded before anything is opened or bound: a bad keystore password or a JKS
        // file stops the start-up with a ConfigException naming the key and leaves the log dirs untouched.
        var ssl = new Dictionary<string, Network.Tls.SslFactory>(StringComparer.OrdinalIgnoreCase);
        foreach (var endpoint in config.Listeners)
            if (config.ListenerSecurityProtocols[endpoint.Name] is ListenerSecurity.Ssl or ListenerSecurity.SaslSsl)
                ssl[endpoint.Name] = Network.Tls.SslFactory.Create(config, endpoint.Name, Options.TlsHandshakeTimeout);
        // SASL listeners likewise: mechanisms and JAAS entries checked, SCRAM credentials salted, before anything opens.
        // A cluster member authenticates against the cluster's credentials (seeded through KafkaClusterOptions).
        if (Options.Controller is not null && Options.ScramCredentials.Count > 0)
            throw new ArgumentException("A cluster member's SCRAM credentials are the cluster's: pass --add-scram seeds in KafkaClusterOptions.ScramCredentials", nameof(Options));
        var scram = Options.Controller?.Scram ?? new Network.Sasl.ScramCredentialStore();
        scram.AddSeeds(Options.ScramCredentials);
        var sasl = new Dictionary<string, Network.Sasl.SaslListenerConfig>(StringComparer.OrdinalIgnoreCase);
        foreach (var endpoint in config.Listeners)
            if (config.ListenerSecurityProtocols[endpoint.Name] is ListenerSecurity.SaslPlaintext or ListenerSecurity.SaslSsl)
                sasl[endpoint.Name] = Network.Sasl.SaslListenerConfig.Create(config, endpoint.Name, scram);

        // A cluster member's connections to the others (issue 14): the listener and credentials checked before anything
        // opens; an SSL or SASL_SSL inter-broker listener's factory above is also its client side (its keystore and truststore).
        var interBroker = Options.Controller is null ? null : Cluster.InterBrokerSecurity.Create(config, sasl, ssl);

        var state = new BrokerState(config, Options.Time ?? TimeProvider.System, loggerFactory, Options.Controller)
        {
            Faults = Faults,
            Scram = scram,
            InterBrokerSecurity = interBroker ?? Cluster.InterBrokerSecurity.Plaintext,
        };
        _state = state;
        try
        {
            state.Open();
            var bound = new List<ListenerEndpoint>();
            foreach (var endpoint in config.Listeners)
            {
                var listener = new Listener(endpoint, state, loggerFactory.CreateLogger("Kayak.Network"),
                    ssl.GetValueOrDefault(endpoint.Name), sasl.GetValueOrDefault(endpoint.Name));
                listener.Start();
                _listeners.Add(listener);
                bound.Add(listener.BoundEndpoint);
            }
            Listeners = bound;
            state.SetAdvertisedListeners(config, bound);
            var first = state.AdvertisedEndpoint;
            BootstrapServers = $"{first.Host}:{first.Port}";
            // A cluster member is listed to clients once it listens (Kafka: registered and unfenced).
            state.Controller?.SetLive(config.NodeId, state.AdvertisedListeners);
            // Replication (issue 14): fetch what this broker follows; as leader, expire followers that fell behind
            // (Kafka's isr-expiration task, every replica.lag.time.max.ms / 2; at most 1 s here so a partition whose
            // ISR became the leader alone exposes its records soon).
            if (state.ReplicaTracker is { } tracker)
            {
                state.ReplicaFetchers!.Start();
                Every(Math.Min(config.ReplicaLagTimeMaxMs / 2, 1_000), () => tracker.ShrinkIsrs(state.LocalLog), state, "ISR expiration");
            }

            // Kafka's background schedules: retention (log.retention.check.interval.ms), the log cleaner
            // (log.cleaner.backoff.ms, 15 s), the flusher for flush.ms (log.flush.scheduler.interval.ms, checked
            // every second here since topics may set flush.ms) and recovery-point checkpoints
            // (log.flush.offset.checkpoint.interval.ms, 60 s: what a crash has to recover).
            Every(config.LogRetentionCheckIntervalMs, () => state.Logs.RunRetention(), state, "Retention");
            Every(15_000, () => state.Logs.RunCompaction(), state, "Log cleaner");
            Every(Math.Min(1_000, config.LogFlushIntervalMs), () => state.Logs.RunScheduledFlush(), state, "Scheduled flush");
            Every(config.LogFlushOffsetCheckpointIntervalMs, state.Logs.CheckpointRecoveryPoints, state, "Recovery-point checkpoint");
            // Transactions: abort timed-out transactions (transaction.abort.timed.out.transaction.cleanup.interval.ms)
            // and forget idle producer ids (producer.id.expiration.check.interval.ms).
            Every(config.TransactionAbortTimedOutCleanupIntervalMs, () => state.Transactions.AbortTimedOutTransactions(), state, "Transaction timeout");
            Every(config.ProducerIdExpirationCheckIntervalMs, state.ExpireProducers, state, "Producer id expiration");
            // Memory back to the OS once the broker goes idle after load (issue 15; RequestMemory.ShouldTrimIdle).
            Every(10_000, () =>
            {
                if (state.RequestMemory.ShouldTrimIdle())
                    GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
            }, state, "Idle memory trim");
        }
        catch
        {
            DisposeAsync().AsTask().GetAwaiter().GetResult();
            throw;
        }
        // Guarded: the arguments (Version reads an assembly attribute by reflection) cost a cold start even when the
        // embedding test passes no logger.
        if (log.IsEnabled(LogLevel.Information))
            log.LogInformation("[KafkaServer id={NodeId}] started (kayak.server.KafkaServer) listeners={Listeners} log.dirs={LogDirs} version={Version}",
                config.NodeId, string.Join(",", Listeners), string.Join(",", config.LogDirs), Version);
        return Task.CompletedTask;
    }

    private void Every(long periodMs, Action work, BrokerState state, string name)
    {
        var period = TimeSpan.FromMilliseconds(Math.Clamp(periodMs, 1, int.MaxValue - 1));
        var log = state.LoggerFactory.CreateLogger("Kayak.Broker");
        int running = 0;
        // On the broker's TimeProvider (issue 10, step 6): a test's fake clock drives retention, the cleaner, flushes,
        // checkpoints, transaction timeouts and producer-id expiry instead of waiting for wall-clock time.
        _timers.Add(state.Time.CreateTimer(_ =>
        {
            // A slow pass (a large compaction) must not overlap the next tick.
            if (Interlocked.Exchange(ref running, 1) != 0) return;
            try { work(); }
            catch (Exception e) { log.LogError(e, "{Task} failed", name); }
            finally { Volatile.Write(ref running, 0); }
        }, null, period, period));
    }

    /// <summary>
    /// Creates a topic as CreateTopics does (Kafka's name rules, configs validated, replication factor 1). Throws
    /// <see cref="Kayak.Protocol.KafkaException"/> with Kafka's error code (TOPIC_ALREADY_EXISTS, INVALID_CONFIG, ...).
    /// </summary>
    public Task CreateTopicAsync(string name, int partitions = 1, IReadOnlyDictionary<string, string>? configs = null)
    {
        var result = State.Topics.Create(name, partitions, 1, configs ?? new Dictionary<string, string>(), validateOnly: false);
        if (result.Topic is null) throw new Kayak.Protocol.KafkaException(result.Error, result.Message ?? result.Error.ToString());
        return Task.CompletedTask;
    }

    /// <summary>The first steps of any stop, once: no more scheduled work, no more connections. False if already stopped.</summary>
    private async ValueTask<bool> StopServingAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return false;
        // Out of the cluster first: no client is sent here and no topic change reaches these logs any more.
        // Fetchers first: a fetch after the fence would put this broker back into an ISR.
        if (_state?.ReplicaFetchers is { } fetchers) await fetchers.DisposeAsync().ConfigureAwait(false);
        if (_state is { Controller: { } controller } s) controller.Detach(s.Config.NodeId);
        // After the fence, whose publish ended this broker's waits for the ISR; later changes are not its business.
        _state?.ReplicaTracker?.Dispose();
        foreach (var t in _timers) await t.DisposeAsync().ConfigureAwait(false);
        _timers.Clear();
        foreach (var l in _listeners) await l.DisposeAsync().ConfigureAwait(false);
        _listeners.Clear();
        return true;
    }

    /// <summary>
    /// Fault injection: stops the way kill -9 leaves the data directory. Timers and listeners stop, the logs are
    /// unmapped without a flush, trim or checkpoint, and no clean-shutdown marker is written, so the next broker on the
    /// directory recovers its logs; the log dirs' locks are released as a dead process's are. A later
    /// <see cref="DisposeAsync"/> does nothing.
    /// </summary>
    public async ValueTask CrashAsync()
    {
        if (!await StopServingAsync().ConfigureAwait(false)) return;
        _state?.Groups.Dispose();
        _state?.LeaveSharedStores();
        _state?.Logs.SimulateCrash(); // no flush, no checkpoint, no marker; the dir locks go as a dead process's do
    }

    /// <summary>Clean shutdown: stop accepting, answer in-flight requests, flush and close the logs.</summary>
    public async ValueTask DisposeAsync()
    {
        if (!await StopServingAsync().ConfigureAwait(false)) return;
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
    /// Fault injection for tests (<see cref="BrokerFaults"/>): a rule per request — drop the connection, lose the
    /// response, delay — and a hook before transaction markers. Its members may be changed while the broker runs.
    /// </summary>
    public BrokerFaults? Faults { get; set; }

    /// <summary>
    /// SCRAM credentials to seed at start-up, in kafka-storage format --add-scram syntax:
    /// "SCRAM-SHA-256=[name=alice,password=alice-secret]" (optional iterations=N, salt=base64). Only the salted
    /// credential (Kafka's ScramCredential) is kept. A malformed entry fails StartAsync with an ArgumentException.
    /// </summary>
    public List<string> ScramCredentials { get; } = new();

    /// <summary>Set by <see cref="Cluster.KafkaCluster"/>: the in-process controller this broker is a member of.</summary>
    internal Cluster.ClusterController? Controller { get; set; }

    /// <summary>Test hook: the TLS handshake timeout of SSL listeners (default <see cref="Network.Tls.SslFactory.DefaultHandshakeTimeout"/>).</summary>
    internal TimeSpan? TlsHandshakeTimeout { get; set; }

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
