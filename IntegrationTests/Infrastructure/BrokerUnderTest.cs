using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Kayak.Broker;
using NUnit.Framework;

namespace Kayak.IntegrationTests.Infrastructure;

/// <summary>How the broker under test runs.</summary>
public enum BrokerMode
{
    /// <summary>Kayak's <see cref="KafkaBroker"/> hosted inside the test process.</summary>
    InProcess,

    /// <summary>The built host, kayak.dll, run with `dotnet` as its own process (SIGTERM / kill -9 / restart).</summary>
    Process,

    /// <summary>librdkafka's mock cluster: not Kayak; validates the harness and compares behaviour (KAYAK_TEST_BROKER=mock).</summary>
    Mock,
}

/// <summary>Per-broker settings for a test.</summary>
public sealed class BrokerSettings
{
    /// <summary>server.properties keys (num.partitions, auto.create.topics.enable, log.segment.bytes, ...).</summary>
    public Dictionary<string, string> Properties { get; } = new();

    /// <summary>Budget for one start (process mode includes the runtime's startup).</summary>
    public TimeSpan StartTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Budget for a clean (SIGTERM) stop before it counts as hung.</summary>
    public TimeSpan StopTimeout { get; set; } = TimeSpan.FromSeconds(30);
}

/// <summary>
/// The broker a test talks to, on its own temporary data directory. Dispose always stops it and removes the directory
/// (set KAYAK_KEEP_DATA=1 to keep it). Started processes are tracked by PID and killed at the latest when the test
/// host exits.
/// </summary>
public abstract class BrokerUnderTest : IAsyncDisposable
{
    private static readonly string TempRoot = Path.Combine(Path.GetTempPath(), "kayak-itest");

    protected BrokerUnderTest(BrokerMode mode, BrokerSettings settings, string dataDir)
    {
        Mode = mode;
        Settings = settings;
        DataDir = dataDir;
    }

    /// <summary>True when KAYAK_TEST_BROKER=mock: every test runs against librdkafka's mock cluster instead of Kayak.</summary>
    public static bool UsingMock =>
        string.Equals(Environment.GetEnvironmentVariable("KAYAK_TEST_BROKER"), "mock", StringComparison.OrdinalIgnoreCase);

    public BrokerMode Mode { get; }

    public BrokerSettings Settings { get; }

    /// <summary>"host:port" for clients; may change across a restart.</summary>
    public string BootstrapServers { get; protected set; } = "";

    /// <summary>The broker's log.dirs, unique to this test.</summary>
    public string DataDir { get; }

    public virtual bool CanRestart => true;

    public virtual bool CanKill => false;

    /// <summary>Whether it serves the admin APIs (CreateTopics, DescribeConfigs, ...).</summary>
    public virtual bool HasAdminApi => true;

    /// <summary>Starts a broker of the requested mode (or the mock cluster when KAYAK_TEST_BROKER=mock).</summary>
    public static async Task<BrokerUnderTest> StartAsync(BrokerMode requested, BrokerSettings? settings = null, CancellationToken cancellationToken = default)
    {
        NativeKafka.EnsureLoaded();
        settings ??= new BrokerSettings();
        var mode = UsingMock ? BrokerMode.Mock : requested;
        var dataDir = NewDataDir(mode);
        BrokerUnderTest broker = mode switch
        {
            BrokerMode.InProcess => new InProcessBroker(settings, dataDir),
            BrokerMode.Process => new ProcessBroker(settings, dataDir),
            _ => new MockClusterBroker(settings, dataDir),
        };
        try
        {
            await broker.StartFirstAsync(cancellationToken);
        }
        catch
        {
            var log = broker.Describe();
            await broker.DisposeAsync();
            TestContext.Out.WriteLine(log);
            throw;
        }
        return broker;
    }

    protected abstract Task StartFirstAsync(CancellationToken cancellationToken);

    /// <summary>Clean shutdown (SIGTERM for a process); returns the exit code where there is one.</summary>
    public abstract Task<int?> StopAsync(CancellationToken cancellationToken = default);

    /// <summary>Starts again on the same data directory after <see cref="StopAsync"/> or <see cref="KillAsync"/>.</summary>
    public abstract Task StartAgainAsync(CancellationToken cancellationToken = default);

    /// <summary>Clean stop followed by a start on the same data directory.</summary>
    public async Task RestartAsync(CancellationToken cancellationToken = default)
    {
        await StopAsync(cancellationToken);
        await StartAgainAsync(cancellationToken);
    }

    /// <summary>kill -9: no shutdown hooks, no flush.</summary>
    public virtual Task KillAsync() => throw new NotSupportedException($"{Mode} broker cannot be killed");

    /// <summary>Creates a topic and waits until every partition has a leader.</summary>
    public virtual async Task CreateTopicAsync(string topic, int partitions, IReadOnlyDictionary<string, string>? configs = null, CancellationToken cancellationToken = default)
    {
        using var admin = ConfluentClients.Admin(BootstrapServers);
        var spec = new TopicSpecification { Name = topic, NumPartitions = partitions, ReplicationFactor = 1 };
        if (configs is not null)
            spec.Configs = configs.ToDictionary(kv => kv.Key, kv => kv.Value);
        await admin.CreateTopicsAsync([spec], new CreateTopicsOptions { OperationTimeout = TimeSpan.FromSeconds(10), RequestTimeout = TimeSpan.FromSeconds(15) });
        await WaitForTopicAsync(topic, partitions, cancellationToken);
    }

    /// <summary>Polls metadata until the topic shows the partition count with leaders.</summary>
    public async Task WaitForTopicAsync(string topic, int partitions, CancellationToken cancellationToken = default)
    {
        using var admin = ConfluentClients.Admin(BootstrapServers);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        string last = "no metadata";
        while (DateTime.UtcNow < deadline)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var metadata = admin.GetMetadata(topic, TimeSpan.FromSeconds(5));
            var t = metadata.Topics.FirstOrDefault(x => x.Topic == topic);
            if (t is not null && t.Error.Code == ErrorCode.NoError && t.Partitions.Count == partitions && t.Partitions.All(p => p.Leader >= 0))
                return;
            last = t is null ? "topic absent" : $"error {t.Error.Code}, {t.Partitions.Count} partitions";
            await Task.Delay(100, cancellationToken);
        }
        Assert.Fail($"topic {topic} not ready with {partitions} partitions: {last}\n{Describe()}");
    }

    /// <summary>Mode, address, data directory and the tail of the broker's output, for failure messages.</summary>
    public virtual string Describe() => $"broker mode={Mode} bootstrap={BootstrapServers} dataDir={DataDir}";

    public async ValueTask DisposeAsync()
    {
        try
        {
            await DisposeCoreAsync();
        }
        finally
        {
            GC.SuppressFinalize(this);
            if (Environment.GetEnvironmentVariable("KAYAK_KEEP_DATA") != "1")
            {
                try
                {
                    if (Directory.Exists(DataDir))
                        Directory.Delete(DataDir, recursive: true);
                }
                catch (IOException)
                {
                    // Best effort: a leftover temp dir must not fail the test.
                }
                catch (UnauthorizedAccessException)
                {
                }
            }
        }
    }

    protected abstract ValueTask DisposeCoreAsync();

    private static string NewDataDir(BrokerMode mode)
    {
        var name = TestContext.CurrentContext?.Test?.Name ?? "test";
        var safe = new StringBuilder();
        foreach (var c in name)
            safe.Append(char.IsLetterOrDigit(c) || c == '-' ? c : '_');
        if (safe.Length > 60)
            safe.Length = 60;
        var dir = Path.Combine(TempRoot, $"{safe}-{mode}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        return dir;
    }
}

/// <summary>Kayak's broker hosted in the test process.</summary>
internal sealed class InProcessBroker(BrokerSettings settings, string dataDir) : BrokerUnderTest(BrokerMode.InProcess, settings, dataDir)
{
    private KafkaBroker? broker;
    private int port;

    /// <summary>The running broker (null while stopped): tests read its internal state, e.g. the group coordinator.</summary>
    internal KafkaBroker? Instance => broker;

    protected override Task StartFirstAsync(CancellationToken cancellationToken) => StartOnPortAsync(0, cancellationToken);

    public override async Task StartAgainAsync(CancellationToken cancellationToken = default)
    {
        if (broker is not null)
            throw new InvalidOperationException("already running");
        await StartOnPortAsync(port, cancellationToken);
    }

    private async Task StartOnPortAsync(int listenPort, CancellationToken cancellationToken)
    {
        var options = new KafkaBrokerOptions { Port = listenPort, DataDir = DataDir };
        foreach (var (key, value) in Settings.Properties)
            options.Properties[key] = value;
        var instance = new KafkaBroker(options);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(Settings.StartTimeout);
        try
        {
            await instance.StartAsync(timeout.Token);
        }
        catch
        {
            await instance.DisposeAsync();
            throw;
        }
        broker = instance;
        BootstrapServers = instance.BootstrapServers;
        port = int.Parse(BootstrapServers[(BootstrapServers.LastIndexOf(':') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
    }

    public override async Task<int?> StopAsync(CancellationToken cancellationToken = default)
    {
        var instance = broker;
        broker = null;
        if (instance is not null)
        {
            var dispose = instance.DisposeAsync().AsTask();
            if (await Task.WhenAny(dispose, Task.Delay(Settings.StopTimeout, cancellationToken)) != dispose)
                Assert.Fail($"in-process broker did not stop within {Settings.StopTimeout}\n{Describe()}");
            await dispose;
        }
        return null;
    }

    protected override async ValueTask DisposeCoreAsync()
    {
        var instance = broker;
        broker = null;
        if (instance is not null)
            await instance.DisposeAsync();
    }
}

/// <summary>The host (kayak.dll) as its own OS process: stdout parsed for readiness, SIGTERM to stop, SIGKILL to crash.</summary>
internal sealed partial class ProcessBroker(BrokerSettings settings, string dataDir) : BrokerUnderTest(BrokerMode.Process, settings, dataDir)
{
    private const string ReadyMarker = "started (kayak.server.KafkaServer)";
    private const int SigKill = 9;
    private const int SigTerm = 15;

    /// <summary>Every broker process the harness started and has not seen exit, by PID: killed when the test host exits.</summary>
    private static readonly ConcurrentDictionary<int, Process> Live = new();

    private readonly object logGate = new();
    private readonly StringBuilder log = new();
    private Process? process;
    private int port;

    static ProcessBroker()
    {
        AppDomain.CurrentDomain.ProcessExit += (_, _) => KillAllStarted();
    }

    public override bool CanKill => true;

    /// <summary>Kills the broker processes this harness started that are still running (by PID).</summary>
    internal static void KillAllStarted()
    {
        foreach (var (pid, p) in Live)
        {
            ProcessRunner.KillTree(p);
            Live.TryRemove(pid, out _);
        }
    }

    protected override Task StartFirstAsync(CancellationToken cancellationToken) => StartProcessAsync(0, cancellationToken);

    public override async Task StartAgainAsync(CancellationToken cancellationToken = default)
    {
        if (process is not null)
            throw new InvalidOperationException("already running");
        try
        {
            // Same port first, like a real broker with a fixed listener, so clients' bootstrap stays valid.
            await StartProcessAsync(port, cancellationToken);
        }
        catch (AssertionException) when (port != 0 && !cancellationToken.IsCancellationRequested)
        {
            AppendLog($"[harness] restart on port {port} failed; retrying on a free port");
            await StartProcessAsync(0, cancellationToken);
        }
    }

    private async Task StartProcessAsync(int listenPort, CancellationToken cancellationToken)
    {
        var dll = RepoPaths.BrokerDll;
        if (!File.Exists(dll))
            Assert.Fail($"{dll} not found: build Host/Host.csproj ({RepoPaths.Configuration}) or set KAYAK_BROKER_DLL");

        var psi = new ProcessStartInfo(DotnetHost())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = DataDir,
        };
        psi.ArgumentList.Add(dll);
        void Override(string key, string value)
        {
            psi.ArgumentList.Add("--override");
            psi.ArgumentList.Add($"{key}={value}");
        }
        Override("listeners", $"PLAINTEXT://127.0.0.1:{listenPort}");
        Override("log.dirs", DataDir);
        foreach (var (key, value) in Settings.Properties)
            Override(key, value);

        var ready = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var seenPort = 0;
        var p = new Process { StartInfo = psi, EnableRaisingEvents = true };
        p.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
                return;
            AppendLog(e.Data);
            var m = ListenerRegex().Match(e.Data);
            if (m.Success && int.TryParse(m.Groups[1].Value, out var parsed) && parsed != 0)
                seenPort = parsed;
            if (e.Data.Contains(ReadyMarker, StringComparison.Ordinal))
            {
                if (seenPort != 0)
                    ready.TrySetResult(seenPort);
                else
                    ready.TrySetException(new InvalidOperationException($"ready line without a listener port: {e.Data}"));
            }
        };
        p.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
                AppendLog("[stderr] " + e.Data);
        };
        p.Exited += (_, _) => ready.TrySetException(new InvalidOperationException("broker process exited before it was ready"));

        AppendLog($"[harness] {psi.FileName} {string.Join(' ', psi.ArgumentList)}");
        p.Start();
        Live[p.Id] = p;
        process = p;
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(Settings.StartTimeout);
        try
        {
            port = await ready.Task.WaitAsync(timeout.Token);
        }
        catch (Exception e)
        {
            ProcessRunner.KillTree(p);
            await p.WaitForExitAsync(CancellationToken.None);
            Forget(p);
            Assert.Fail($"broker process did not become ready: {(e is OperationCanceledException ? $"timeout {Settings.StartTimeout}" : e.Message)}\n{Describe()}");
        }
        BootstrapServers = $"127.0.0.1:{port}";
    }

    public override async Task<int?> StopAsync(CancellationToken cancellationToken = default)
    {
        var p = process;
        if (p is null)
            return null;
        AppendLog("[harness] SIGTERM");
        Signal(p, SigTerm);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(Settings.StopTimeout);
        try
        {
            await p.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            ProcessRunner.KillTree(p);
            await p.WaitForExitAsync(CancellationToken.None);
            Forget(p);
            Assert.Fail($"broker did not exit within {Settings.StopTimeout} of SIGTERM\n{Describe()}");
        }
        var code = p.ExitCode;
        AppendLog($"[harness] exited with {code}");
        Forget(p);
        return code;
    }

    public override async Task KillAsync()
    {
        var p = process ?? throw new InvalidOperationException("not running");
        AppendLog("[harness] SIGKILL");
        Signal(p, SigKill);
        await p.WaitForExitAsync(CancellationToken.None);
        Forget(p);
    }

    public override string Describe()
    {
        string text;
        lock (logGate)
            text = log.ToString();
        if (text.Length > 12000)
            text = "..." + text[^12000..];
        return base.Describe() + $" pid={process?.Id.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "-"}\n--- broker output ---\n{text}";
    }

    protected override async ValueTask DisposeCoreAsync()
    {
        var p = process;
        if (p is null)
            return;
        if (!p.HasExited)
        {
            Signal(p, SigTerm);
            using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            try
            {
                await p.WaitForExitAsync(grace.Token);
            }
            catch (OperationCanceledException)
            {
                ProcessRunner.KillTree(p);
                await p.WaitForExitAsync(CancellationToken.None);
            }
        }
        Forget(p);
    }

    private void Forget(Process p)
    {
        Live.TryRemove(p.Id, out _);
        if (ReferenceEquals(process, p))
            process = null;
        p.Dispose();
    }

    private void AppendLog(string line)
    {
        lock (logGate)
            log.AppendLine(line);
    }

    private static void Signal(Process p, int signal)
    {
        if (p.HasExited)
            return;
        if (Kill(p.Id, signal) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (!p.HasExited)
                throw new InvalidOperationException($"kill({p.Id}, {signal}) failed with errno {errno}");
        }
    }

    /// <summary>The dotnet host that runs this test host (set by the SDK), else `dotnet` from PATH.</summary>
    private static string DotnetHost()
    {
        var host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        if (!string.IsNullOrEmpty(host) && File.Exists(host))
            return host;
        var self = Environment.ProcessPath;
        if (self is not null && Path.GetFileNameWithoutExtension(self) == "dotnet")
            return self;
        return "dotnet";
    }

    [LibraryImport("libc.so.6", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    [GeneratedRegex(@"listeners=PLAINTEXT://(?:[^\s:,/]+|\[[^\]]+\]):(\d+)")]
    private static partial Regex ListenerRegex();
}

/// <summary>librdkafka's in-process mock cluster (one broker), owned by an otherwise idle producer handle.</summary>
internal sealed class MockClusterBroker(BrokerSettings settings, string dataDir) : BrokerUnderTest(BrokerMode.Mock, settings, dataDir)
{
    private IProducer<Null, Null>? owner;
    private IntPtr cluster;

    public override bool CanRestart => false;

    public override bool HasAdminApi => false;

    protected override Task StartFirstAsync(CancellationToken cancellationToken)
    {
        var config = new ProducerConfig { BootstrapServers = "" };
        config.Set("test.mock.num.brokers", "1");
        owner = new ProducerBuilder<Null, Null>(config).SetLogHandler((_, _) => { }).Build();
        var raw = MockClusterNative.RawHandle(owner.Handle);
        cluster = MockClusterNative.rd_kafka_handle_mock_cluster(raw.DangerousGetHandle());
        if (cluster == IntPtr.Zero)
            throw new InvalidOperationException("librdkafka did not create a mock cluster");
        BootstrapServers = Marshal.PtrToStringUTF8(MockClusterNative.rd_kafka_mock_cluster_bootstraps(cluster)) ?? "";
        return Task.CompletedTask;
    }

    public override async Task CreateTopicAsync(string topic, int partitions, IReadOnlyDictionary<string, string>? configs = null, CancellationToken cancellationToken = default)
    {
        var err = MockClusterNative.rd_kafka_mock_topic_create(cluster, topic, partitions, 1);
        if (err != 0)
            Assert.Fail($"mock topic create {topic}: error {err}");
        await WaitForTopicAsync(topic, partitions, cancellationToken);
    }

    public override Task<int?> StopAsync(CancellationToken cancellationToken = default) =>
        throw new NotSupportedException("the mock cluster cannot restart");

    public override Task StartAgainAsync(CancellationToken cancellationToken = default) =>
        throw new NotSupportedException("the mock cluster cannot restart");

    protected override ValueTask DisposeCoreAsync()
    {
        owner?.Dispose();
        owner = null;
        cluster = IntPtr.Zero;
        return ValueTask.CompletedTask;
    }
}
