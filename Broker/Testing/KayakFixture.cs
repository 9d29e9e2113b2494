using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Kayak.Broker;
using Kayak.Broker.Cluster;
using Kayak.Protocol;

namespace Kayak.Testing;

/// <summary>
/// A test fixture around an in-process <see cref="KafkaCluster"/> (issue 14, step 5): free loopback ports chosen up
/// front and kept across broker restarts (so <see cref="BootstrapServers"/> stays valid when a broker is stopped and
/// started again), a temporary data directory deleted at dispose, and the control and fault API of librdkafka's mock
/// cluster: stop/kill/start/pause/resume a broker, inject errors, latency and dropped connections.
/// <code>await using var kafka = await KayakFixture.StartAsync(brokers: 3);</code>
/// </summary>
public sealed class KayakFixture : IAsyncDisposable
{
    private readonly int _basePort;

    private KayakFixture(KafkaCluster cluster, string dataDir, int basePort)
    {
        Cluster = cluster;
        DataDir = dataDir;
        _basePort = basePort;
    }

    /// <summary>The cluster itself, for anything the fixture does not wrap.</summary>
    public KafkaCluster Cluster { get; }

    /// <summary>The temporary cluster root, deleted at dispose.</summary>
    public string DataDir { get; }

    /// <summary>Every broker's host:port, running or not (the ports do not change when a broker restarts).</summary>
    public string BootstrapServers
    {
        get
        {
            var list = new string[Cluster.Options.Brokers];
            for (int i = 0; i < list.Length; i++) list[i] = "127.0.0.1:" + (_basePort + i).ToString(CultureInfo.InvariantCulture);
            return string.Join(",", list);
        }
    }

    /// <summary>Starts <paramref name="brokers"/> brokers (node ids 1..N) on free loopback ports and a fresh temporary directory.</summary>
    /// <param name="configure">Broker properties and options (log.segment.bytes, a fake TimeProvider, ...), applied to every broker.</param>
    public static async Task<KayakFixture> StartAsync(int brokers = 1, Action<KafkaClusterOptions>? configure = null, CancellationToken cancellationToken = default)
    {
        for (int attempt = 1; ; attempt++)
        {
            string dir = Path.Combine(Path.GetTempPath(), "kayak-fixture-" + Guid.NewGuid().ToString("N"));
            int basePort = FreePorts(brokers);
            var options = new KafkaClusterOptions { Brokers = brokers };
            configure?.Invoke(options);
            options.DataDir = dir;
            options.Host = "127.0.0.1";
            options.Port = basePort;
            var cluster = new KafkaCluster(options);
            try
            {
                await cluster.StartAsync(cancellationToken).ConfigureAwait(false);
                return new KayakFixture(cluster, dir, basePort);
            }
            catch (Exception e) when (attempt < 5 && e is SocketException or IOException)
            {
                // Another process took one of the ports between the probe and the bind: try other ones.
                DeleteDir(dir);
            }
            catch
            {
                DeleteDir(dir);
                throw;
            }
        }
    }

    /// <summary>Broker <paramref name="nodeId"/>, or null while stopped.</summary>
    public KafkaBroker? Broker(int nodeId = 1) => Cluster.Broker(nodeId);

    /// <summary>Node <paramref name="nodeId"/>'s fault injection (kept across restarts).</summary>
    public BrokerFaults Faults(int nodeId = 1) => Cluster.Faults(nodeId);

    public Task CreateTopicAsync(string name, int partitions = 1, short replicationFactor = -1, IReadOnlyDictionary<string, string>? configs = null) =>
        Cluster.CreateTopicAsync(name, partitions, replicationFactor, configs);

    /// <summary>Clean shutdown of one broker (rd_kafka_mock_broker_set_down with a clean close).</summary>
    public Task StopBrokerAsync(int nodeId) => Cluster.StopBrokerAsync(nodeId);

    /// <summary>Stops one broker as kill -9 would: no flush, no clean-shutdown marker.</summary>
    public Task KillBrokerAsync(int nodeId) => Cluster.CrashBrokerAsync(nodeId);

    /// <summary>Starts a stopped broker again on its ports and log dirs.</summary>
    public Task StartBrokerAsync(int nodeId) => Cluster.StartBrokerAsync(nodeId);

    /// <summary>The broker keeps accepting connections but answers nothing until resumed.</summary>
    public void PauseBroker(int nodeId) => Cluster.PauseBroker(nodeId);

    public void ResumeBroker(int nodeId) => Cluster.ResumeBroker(nodeId);

    /// <summary>
    /// The next <paramref name="count"/> <paramref name="api"/> requests to <paramref name="broker"/> (0: to each
    /// broker) are answered with <paramref name="error"/> (see <see cref="BrokerFaults.InjectError"/>).
    /// </summary>
    public void InjectError(ApiKey api, ErrorCode error, int count = 1, int broker = 0, string? topic = null, int? partition = null, string? group = null)
    {
        for (int id = 1; id <= Cluster.Options.Brokers; id++)
            if (broker == 0 || broker == id) Faults(id).InjectError(api, error, count, topic, partition, group);
    }

    /// <summary>Every <paramref name="api"/> request (null: every request) to <paramref name="broker"/> (0: each) waits <paramref name="latency"/> first.</summary>
    public void AddLatency(TimeSpan latency, ApiKey? api = null, int broker = 0)
    {
        for (int id = 1; id <= Cluster.Options.Brokers; id++)
            if (broker == 0 || broker == id) Faults(id).AddLatency(api, latency);
    }

    /// <summary>Removes every injected fault, resumes paused brokers and heals network partitions.</summary>
    public void ClearFaults() => Cluster.ClearFaults();

    public async ValueTask DisposeAsync()
    {
        await Cluster.DisposeAsync().ConfigureAwait(false);
        DeleteDir(DataDir);
    }

    /// <summary>A port p with p..p+count-1 free on 127.0.0.1 now (KafkaCluster gives node i port p+i-1).</summary>
    public static int FreePorts(int count)
    {
        for (int attempt = 0; attempt < 100; attempt++)
        {
            int first;
            using (var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
            {
                probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
                first = ((IPEndPoint)probe.LocalEndPoint!).Port;
            }
            if (first + count > 65535) continue;
            bool free = true;
            for (int i = 1; i < count && free; i++)
            {
                using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                try { s.Bind(new IPEndPoint(IPAddress.Loopback, first + i)); }
                catch (SocketException) { free = false; }
            }
            if (free) return first;
        }
        throw new InvalidOperationException($"No {count} consecutive free ports found on 127.0.0.1");
    }

    private static void DeleteDir(string dir)
    {
        try { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
