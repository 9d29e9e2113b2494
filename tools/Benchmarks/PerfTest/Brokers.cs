using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Kayak.IntegrationTests.Infrastructure;

namespace Kayak.PerfTest;

public enum BrokerKind { Kayak, Mock }

/// <summary>
/// A broker under test running as its own process, so its CPU time and resident memory can be read from /proc
/// without the client's share. Kayak runs as the host, kayak.dll; the librdkafka mock cluster runs in a child
/// PerfTest process (--serve-mock) that owns it and creates topics on request over stdin.
/// </summary>
internal sealed class BrokerProcess : IDisposable
{
    private readonly Process _process;
    private readonly string? _dataDir;
    private readonly object _lineLock = new();
    private readonly Queue<string> _lines = new();
    private readonly SemaphoreSlim _lineSignal = new(0);

    private BrokerProcess(BrokerKind kind, Process process, string? dataDir)
    {
        Kind = kind;
        _process = process;
        _dataDir = dataDir;
    }

    public BrokerKind Kind { get; }
    public int Pid => _process.Id;
    public string Bootstrap { get; private set; } = "";
    /// <summary>Client settings beside bootstrap.servers for the endpoint in use (e.g. security.protocol=SSL).</summary>
    private IReadOnlyDictionary<string, string> _clientSettings = new Dictionary<string, string>();

    /// <summary>Points the workloads at another listener of the same broker (the TLS comparison).</summary>
    public void UseEndpoint(string bootstrap, IReadOnlyDictionary<string, string> clientSettings)
    {
        Bootstrap = bootstrap;
        _clientSettings = clientSettings;
    }

    /// <summary>bootstrap.servers and the endpoint's other client settings, applied to a client config.</summary>
    public T Client<T>(T config) where T : ClientConfig
    {
        config.BootstrapServers = Bootstrap;
        foreach (var (k, v) in _clientSettings) config.Set(k, v);
        return config;
    }
    /// <summary>Milliseconds from Process.Start until the first Metadata request was answered.</summary>
    public double StartupMs { get; private set; }

    public double CpuSeconds() => ProcStats.CpuSeconds(Pid);
    public double UserCpuSeconds() => ProcStats.CpuSplitSeconds(Pid).User;
    public double RssMb() => ProcStats.RssMb(Pid);

    /// <param name="listeners">Kayak only: the listeners value (PLAINTEXT on a free port when null); the first must be PLAINTEXT (the start probe uses it).</param>
    /// <param name="overrides">Kayak only: more server properties (KEY=VALUE).</param>
    /// <param name="environment">Kayak only: more environment variables for this process.</param>
    public static BrokerProcess Start(BrokerKind kind, RunSettings settings, string? listeners = null, IEnumerable<string>? overrides = null,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        string? dataDir = null;
        int port = 0;
        if (kind == BrokerKind.Kayak)
        {
            dataDir = Directory.CreateTempSubdirectory("kayak-perf-").FullName;
            // A free port chosen up front lets the probe start connecting before the broker prints anything.
            if (listeners is null)
            {
                port = FreePort();
                listeners = $"PLAINTEXT://127.0.0.1:{port}";
            }
            else
            {
                string first = listeners.Split(',')[0];
                if (!first.StartsWith("PLAINTEXT://", StringComparison.Ordinal)) throw new ArgumentException("the first listener must be PLAINTEXT");
                port = int.Parse(first[(first.LastIndexOf(':') + 1)..]);
            }
            psi.ArgumentList.Add(settings.BrokerDll);
            foreach (var (k, v) in settings.KayakEnvironment) psi.Environment[k] = v;
            if (environment is not null) foreach (var (k, v) in environment) psi.Environment[k] = v;
            foreach (var kv in new[]
                     {
                         $"listeners={listeners}", $"log.dirs={dataDir}", "num.partitions=1",
                         "auto.create.topics.enable=true",
                     }.Concat(overrides ?? []))
            {
                psi.ArgumentList.Add("--override");
                psi.ArgumentList.Add(kv);
            }
        }
        else
        {
            psi.ArgumentList.Add(typeof(BrokerProcess).Assembly.Location);
            psi.ArgumentList.Add("--serve-mock");
        }

        long t0 = Stopwatch.GetTimestamp();
        var p = Process.Start(psi) ?? throw new InvalidOperationException("could not start " + kind);
        var bp = new BrokerProcess(kind, p, dataDir);
        p.OutputDataReceived += (_, e) => bp.OnLine(e.Data);
        p.ErrorDataReceived += (_, e) => bp.OnLine(e.Data is null ? null : "stderr: " + e.Data);
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        try
        {
            string host = "127.0.0.1";
            if (kind == BrokerKind.Mock)
            {
                string line = bp.WaitLine(l => l.StartsWith("bootstrap=", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
                var hp = line["bootstrap=".Length..].Split(',')[0];
                int colon = hp.LastIndexOf(':');
                host = hp[..colon];
                port = int.Parse(hp[(colon + 1)..]);
            }
            var (advHost, advPort) = MetadataProbe.WaitForMetadata(host, port, TimeSpan.FromSeconds(60), () => !p.HasExited);
            bp.StartupMs = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
            // The advertised address from the Metadata response is what clients bootstrap from.
            bp.Bootstrap = $"{advHost}:{advPort}";
        }
        catch
        {
            bp.Dispose();
            throw;
        }
        return bp;
    }

    public void CreateTopic(string topic, int partitions)
    {
        if (Kind == BrokerKind.Mock)
        {
            _process.StandardInput.WriteLine($"create {topic} {partitions}");
            _process.StandardInput.Flush();
            string reply = WaitLine(l => l.StartsWith("created ", StringComparison.Ordinal) || l.StartsWith("error ", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
            if (!reply.StartsWith("created ", StringComparison.Ordinal)) throw new InvalidOperationException("mock topic create: " + reply);
        }
        else
        {
            using var admin = new AdminClientBuilder(Client(new AdminClientConfig()))
                .SetLogHandler(static (_, _) => { }).Build();
            admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = partitions, ReplicationFactor = 1 }])
                .GetAwaiter().GetResult();
        }
        WaitForTopic(topic, partitions);
    }

    private void WaitForTopic(string topic, int partitions)
    {
        using var admin = new AdminClientBuilder(Client(new AdminClientConfig()))
            .SetLogHandler(static (_, _) => { }).Build();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            var md = admin.GetMetadata(topic, TimeSpan.FromSeconds(10));
            var t = md.Topics.Find(x => x.Topic == topic);
            if (t is not null && !t.Error.IsError && t.Partitions.Count == partitions && t.Partitions.TrueForAll(x => x.Leader >= 0)) return;
            Thread.Sleep(20);
        }
        throw new TimeoutException($"topic {topic} not ready on {Kind}");
    }

    /// <summary>The last lines the broker printed (diagnostics when a run fails).</summary>
    public string[] Tail(int n)
    {
        lock (_lineLock) return _lines.Skip(Math.Max(0, _lines.Count - n)).ToArray();
    }

    public bool HasExited => _process.HasExited;

    private void OnLine(string? line)
    {
        if (line is null) return;
        lock (_lineLock)
        {
            if (_lines.Count > 1000) _lines.Dequeue();
            _lines.Enqueue(line);
        }
        _lineSignal.Release();
    }

    private string WaitLine(Func<string, bool> match, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            lock (_lineLock)
            {
                while (_lines.Count > 0)
                {
                    var l = _lines.Dequeue();
                    if (match(l)) return l;
                }
            }
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero) throw new TimeoutException($"{Kind}: expected output line not seen");
            if (_process.HasExited) throw new InvalidOperationException($"{Kind} process exited with {_process.ExitCode}");
            _lineSignal.Wait(TimeSpan.FromMilliseconds(Math.Min(200, left.TotalMilliseconds)));
        }
    }

    public static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                if (Kind == BrokerKind.Kayak) ProcStats.Kill(_process.Id, 15); // SIGTERM: clean shutdown
                else _process.StandardInput.Close(); // the mock host exits at end of input
                if (!_process.WaitForExit(15_000)) _process.Kill(entireProcessTree: true);
            }
            _process.WaitForExit();
        }
        catch (InvalidOperationException) { }
        _process.Dispose();
        if (_dataDir is not null)
        {
            try { Directory.Delete(_dataDir, recursive: true); } catch (IOException) { }
        }
    }
}

/// <summary>The --serve-mock child: owns one librdkafka mock cluster until its standard input closes.</summary>
internal static class MockHost
{
    public static int Run()
    {
        NativeKafka.EnsureLoaded();
        var config = new ProducerConfig { BootstrapServers = "" };
        config.Set("test.mock.num.brokers", "1");
        using var owner = new ProducerBuilder<Null, Null>(config).SetLogHandler(static (_, _) => { }).Build();
        IntPtr cluster = MockClusterNative.rd_kafka_handle_mock_cluster(MockClusterNative.RawHandle(owner.Handle).DangerousGetHandle());
        if (cluster == IntPtr.Zero)
        {
            Console.Error.WriteLine("librdkafka did not create a mock cluster");
            return 1;
        }
        Console.Out.WriteLine("bootstrap=" + System.Runtime.InteropServices.Marshal.PtrToStringUTF8(MockClusterNative.rd_kafka_mock_cluster_bootstraps(cluster)));
        Console.Out.Flush();
        string? line;
        while ((line = Console.In.ReadLine()) is not null)
        {
            var parts = line.Split(' ');
            if (parts.Length == 3 && parts[0] == "create")
            {
                int err = MockClusterNative.rd_kafka_mock_topic_create(cluster, parts[1], int.Parse(parts[2]), 1);
                Console.Out.WriteLine(err == 0 ? $"created {parts[1]}" : $"error {err}");
                Console.Out.Flush();
            }
        }
        return 0;
    }
}
