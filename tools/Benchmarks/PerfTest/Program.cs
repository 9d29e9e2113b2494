using System.Diagnostics;
using System.Globalization;
using System.Text;
using Confluent.Kafka;
using Kayak.Broker;
using Kayak.IntegrationTests.Infrastructure;
using Kayak.PerfTest;

// Kafka-style perf test of Kayak against librdkafka's mock cluster (issue 6). Usage:
//   dotnet run -c Release --project tools/Benchmarks/PerfTest -- [--quick] [--rounds N] [--records N] [--out FILE] [--broker-dll PATH]
if (args.Length > 0 && args[0] == "--serve-mock") return MockHost.Run();
if (args.Length > 0 && args[0] == "--startup-trace") return StartupTrace.Run(args);
if (args.Length > 0 && args[0] == "--cluster-start") return ClusterStart.Run(args);
if (args.Length > 0 && args[0] is "--tls" or "--zero-byte-reads") return TransportCompare.Run(args);
if (args.Length > 0 && args[0] == "--group-stabilise") { NativeKafka.EnsureLoaded(); return GroupStabilise.Run(args); }

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
RunSettings settings;
try { settings = RunSettings.Parse(args); }
catch (ArgumentException e) { Console.Error.WriteLine(e.Message); return 2; }
NativeKafka.EnsureLoaded();
if (settings.ManyPartitions is { } mp) return ManyPartitions.Run(settings, mp.Topics, mp.Partitions);
return new PerfRun(settings).Run();

public sealed class RunSettings
{
    public bool Quick { get; private set; }
    public int Rounds { get; private set; } = 3;
    public int Records { get; private set; } = 2_000_000;
    public int RecordSize { get; private set; } = 100;
    public int LatencyRate { get; private set; } = 20_000;
    public TimeSpan LatencyDuration { get; private set; } = TimeSpan.FromSeconds(10);
    public int StartupSamples { get; private set; } = 10;
    public string BrokerDll { get; private set; } = "";
    public string? OutFile { get; private set; }
    /// <summary>--many-partitions TxP: the 10,000-partition check instead of the comparison.</summary>
    public (int Topics, int Partitions)? ManyPartitions { get; private set; }
    /// <summary>Run only this broker (profiling sessions); null runs both, alternating.</summary>
    public BrokerKind? Only { get; private set; }
    /// <summary>Extra environment for the Kayak broker process (e.g. DOTNET_PerfMapEnabled=1 for perf).</summary>
    public Dictionary<string, string> KayakEnvironment { get; } = new();

    public static RunSettings Parse(string[] args)
    {
        var s = new RunSettings();
        for (int i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--quick":
                    s.Quick = true; s.Rounds = 1; s.Records = 200_000; s.LatencyDuration = TimeSpan.FromSeconds(3); s.StartupSamples = 3;
                    break;
                case "--rounds": s.Rounds = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--records": s.Records = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--latency-seconds": s.LatencyDuration = TimeSpan.FromSeconds(double.Parse(Next(), CultureInfo.InvariantCulture)); break;
                case "--startup-samples": s.StartupSamples = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--broker-dll": s.BrokerDll = Next(); break;
                case "--out": s.OutFile = Next(); break;
                case "--many-partitions":
                    var tp = Next().Split('x');
                    s.ManyPartitions = (int.Parse(tp[0], CultureInfo.InvariantCulture), int.Parse(tp[1], CultureInfo.InvariantCulture));
                    break;
                case "--only": s.Only = Enum.Parse<BrokerKind>(Next(), ignoreCase: true); break;
                case "--kayak-env":
                    var kv = Next();
                    int eq = kv.IndexOf('=');
                    if (eq <= 0) throw new ArgumentException("--kayak-env expects KEY=VALUE");
                    s.KayakEnvironment[kv[..eq]] = kv[(eq + 1)..];
                    break;
                default: throw new ArgumentException($"unknown option {args[i]}; usage: [--quick] [--many-partitions 100x100] [--only kayak|mock] [--kayak-env K=V] [--rounds N] [--records N] [--latency-seconds S] [--startup-samples N] [--out FILE] [--broker-dll PATH]");
            }
        }
        if (s.BrokerDll.Length == 0)
        {
            // The ProjectReference copies the host, kayak.dll (with its runtimeconfig), next to this program.
            s.BrokerDll = Path.Combine(AppContext.BaseDirectory, "kayak.dll");
        }
        if (!File.Exists(s.BrokerDll)) throw new ArgumentException($"broker not found at {s.BrokerDll}");
        return s;
    }
}

/// <summary>One figure of the table: values per broker over the rounds, and how the target is judged.</summary>
internal sealed class Figure(string name, string unit, string target, Func<double, double, bool?>? met)
{
    public string Name { get; } = name;
    public string Unit { get; } = unit;
    public string Target { get; } = target;
    public List<double> Kayak { get; } = new();
    public List<double> Mock { get; } = new();
    public List<double> Of(BrokerKind k) => k == BrokerKind.Kayak ? Kayak : Mock;
    /// <summary>(kayak median, mock median) → met? null when the figure has no target.</summary>
    public Func<double, double, bool?>? Met { get; } = met;
}

internal sealed class PerfRun(RunSettings s)
{
    private static readonly ProduceCase[] Cases =
    [
        new("acks=1 none", Acks.Leader, CompressionType.None),
        new("acks=all none", Acks.All, CompressionType.None),
        new("acks=1 lz4", Acks.Leader, CompressionType.Lz4),
        new("acks=all lz4", Acks.All, CompressionType.Lz4),
    ];

    private readonly List<Figure> _figures = new();
    private int _disposeErrors;
    private readonly Dictionary<string, Figure> _byName = new();

    private Figure F(string name, string unit, string target = "", Func<double, double, bool?>? met = null)
    {
        if (_byName.TryGetValue(name, out var f)) return f;
        f = new Figure(name, unit, target, met);
        _figures.Add(f);
        _byName[name] = f;
        return f;
    }

    private static Func<double, double, bool?> RatioAtLeast(double r) => (k, m) => k / m >= r;
    private static Func<double, double, bool?> AtMost(double v) => (k, _) => k <= v;

    public int Run()
    {
        var started = DateTime.UtcNow;
        Log($"PerfTest: {(s.Quick ? "quick" : "full")} mode, {s.Rounds} round(s), {s.Records:N0} records x {s.RecordSize} B, librdkafka {Library.VersionString} from {NativeKafka.LoadedFrom}");
        Log($"Broker: dotnet {s.BrokerDll}");
        DeclareFigures();
        if (s.Only is null or BrokerKind.Kayak) MeasureInProcessStart();
        for (int round = 1; round <= s.Rounds; round++)
        {
            foreach (var kind in new[] { BrokerKind.Kayak, BrokerKind.Mock })
            {
                if (s.Only is { } only && only != kind) continue;
                Log($"--- round {round}: {kind}");
                RunBroker(kind, round);
            }
        }
        string report = Report(DateTime.UtcNow - started);
        Console.WriteLine(report);
        if (s.OutFile is not null) File.WriteAllText(s.OutFile, report);
        return 0;
    }

    private void DeclareFigures()
    {
        // Declared up front so the table has a fixed order.
        foreach (var c in Cases)
        {
            F($"produce {c.Name} records/s", "rec/s", "≥ 1.0× mock", RatioAtLeast(1.0));
            F($"produce {c.Name} MB/s", "MB/s");
            F($"produce {c.Name} broker CPU", "s/GB", "≤ 0.5", AtMost(0.5));
            F($"produce {c.Name} broker CPU, user mode", "s/GB");
        }
        F("page-cache floor: pwrite to a new file", "s/GB");
        foreach (var c in new[] { "none", "lz4" })
        {
            F($"consume {c} records/s", "rec/s", "≥ 1.0× mock", RatioAtLeast(1.0));
            F($"consume {c} MB/s", "MB/s");
            F($"consume {c} broker CPU", "s/GB", "≤ 0.3", AtMost(0.3));
            F($"consume {c} broker CPU, user mode", "s/GB");
        }
        F("e2e latency p50", "ms", "≤ 1", AtMost(1));
        F("e2e latency p99", "ms", "≤ 5", AtMost(5));
        F("e2e latency p99.9", "ms");
        F("startup to first Metadata (process)", "ms", "< 150", (k, _) => k < 150);
        F("startup in-process, first (cold JIT)", "ms", "< 20", (k, _) => k < 20);
        F("startup in-process, median of rest", "ms", "< 20", (k, _) => k < 20);
        F("idle RSS", "MB", "< 60", (k, _) => k < 60);
        F("RSS after produce run", "MB", "< 300", (k, _) => k < 300);
        F("peak RSS (VmHWM) after produce run", "MB");
        F("  of which anonymous (RssAnon)", "MB");
        F("  of which file-backed (RssFile, mapped segments)", "MB");
    }

    private void MeasureInProcessStart()
    {
        int n = s.StartupSamples;
        var times = new List<double>();
        for (int i = 0; i < n; i++)
        {
            var dir = Directory.CreateTempSubdirectory("kayak-perf-inproc-").FullName;
            try
            {
                long jitMethods0 = System.Runtime.JitInfo.GetCompiledMethodCount();
                var jitTime0 = System.Runtime.JitInfo.GetCompilationTime();
                long t0 = Stopwatch.GetTimestamp();
                var broker = new KafkaBroker(new KafkaBrokerOptions { Port = 0, DataDir = dir });
                broker.StartAsync().GetAwaiter().GetResult();
                double startedMs = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
                var ep = broker.Listeners[0];
                string bs = broker.BootstrapServers;
                int colon = bs.LastIndexOf(':');
                MetadataProbe.WaitForMetadata(bs[..colon], int.Parse(bs[(colon + 1)..], CultureInfo.InvariantCulture), TimeSpan.FromSeconds(30));
                times.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                // Where the first start's time goes: how much of it is the JIT (this process's JIT counters also
                // include the probe's own first use of sockets, which a real embedding application pays too).
                if (i == 0)
                    Log($"in-process first start: StartAsync {startedMs:F1} ms, first Metadata answered at {times[0]:F1} ms; " +
                        $"JIT compiled {System.Runtime.JitInfo.GetCompiledMethodCount() - jitMethods0} methods in " +
                        $"{(System.Runtime.JitInfo.GetCompilationTime() - jitTime0).TotalMilliseconds:F1} ms");
                _ = ep;
                try
                {
                    broker.DisposeAsync().AsTask().GetAwaiter().GetResult();
                }
                catch (ObjectDisposedException e)
                {
                    // Broker bug seen here (reported to the lead): Listener.DisposeAsync calls Connection.Close on a
                    // connection whose CancellationTokenSource was already disposed when the client had just closed it.
                    _disposeErrors++;
                    Log($"in-process broker DisposeAsync threw {e.GetType().Name}: {e.Message}");
                }
            }
            finally
            {
                try { Directory.Delete(dir, true); } catch (IOException) { }
            }
        }
        _byName["startup in-process, first (cold JIT)"].Kayak.Add(times[0]);
        foreach (var t in times.Skip(1)) _byName["startup in-process, median of rest"].Kayak.Add(t);
        Log($"in-process start: first {times[0]:F1} ms, then {string.Join(", ", times.Skip(1).Select(t => t.ToString("F1")))} ms");
    }

    private void RunBroker(BrokerKind kind, int round)
    {
        var startup = _byName["startup to first Metadata (process)"].Of(kind);
        for (int i = 0; i < s.StartupSamples - 1; i++)
        {
            using var b = BrokerProcess.Start(kind, s);
            startup.Add(b.StartupMs);
        }
        using var broker = BrokerProcess.Start(kind, s);
        startup.Add(broker.StartupMs);
        Log($"{kind}: pid {broker.Pid} at {broker.Bootstrap}, startup samples {string.Join(", ", startup.TakeLast(s.StartupSamples).Select(t => t.ToString("F0")))} ms");
        Thread.Sleep(1000);
        double idle = broker.RssMb();
        _byName["idle RSS"].Of(kind).Add(idle);
        Log($"{kind}: idle RSS {idle:F1} MB");

        string tag = $"{round}-{Guid.NewGuid().ToString("N")[..6]}";
        var topics = new Dictionary<string, string>();
        foreach (var c in Cases)
        {
            string topic = $"perf-{c.Name.Replace(' ', '-').Replace('=', '-')}-{tag}";
            topics[c.Name] = topic;
            broker.CreateTopic(topic, 1);
            var t = Workloads.Produce(broker, topic, c, s.Records, s.RecordSize);
            if (t.Errors > 0) Log($"{kind}: WARNING {t.Errors} delivery errors in produce {c.Name}");
            _byName[$"produce {c.Name} records/s"].Of(kind).Add(t.RecordsPerSecond);
            _byName[$"produce {c.Name} MB/s"].Of(kind).Add(t.MbPerSecond);
            _byName[$"produce {c.Name} broker CPU"].Of(kind).Add(t.CpuSecondsPerGb);
            _byName[$"produce {c.Name} broker CPU, user mode"].Of(kind).Add(t.UserCpuSecondsPerGb);
            Log($"{kind}: produce {c.Name}: {t.RecordsPerSecond:N0} rec/s, {t.MbPerSecond:F1} MB/s, broker CPU {t.BrokerCpuSeconds:F2} s ({t.CpuSecondsPerGb:F2} s/GB, user {t.UserCpuSecondsPerGb:F2}), {t.Seconds:F2} s");
        }
        double rss = broker.RssMb();
        _byName["RSS after produce run"].Of(kind).Add(rss);
        _byName["peak RSS (VmHWM) after produce run"].Of(kind).Add(ProcStats.PeakRssMb(broker.Pid));
        var (anon, file) = ProcStats.RssSplitMb(broker.Pid);
        _byName["  of which anonymous (RssAnon)"].Of(kind).Add(anon);
        _byName["  of which file-backed (RssFile, mapped segments)"].Of(kind).Add(file);
        Log($"{kind}: RSS after produce {rss:F1} MB (anon {anon:F1}, file {file:F1})");

        foreach (var (c, topic) in new[] { ("none", topics["acks=1 none"]), ("lz4", topics["acks=1 lz4"]) })
        {
            var t = Workloads.Consume(broker, topic, s.Records, s.RecordSize);
            _byName[$"consume {c} records/s"].Of(kind).Add(t.RecordsPerSecond);
            _byName[$"consume {c} MB/s"].Of(kind).Add(t.MbPerSecond);
            _byName[$"consume {c} broker CPU"].Of(kind).Add(t.CpuSecondsPerGb);
            _byName[$"consume {c} broker CPU, user mode"].Of(kind).Add(t.UserCpuSecondsPerGb);
            Log($"{kind}: consume {c}: {t.RecordsPerSecond:N0} rec/s, {t.MbPerSecond:F1} MB/s, broker CPU {t.BrokerCpuSeconds:F2} s ({t.CpuSecondsPerGb:F2} s/GB, user {t.UserCpuSecondsPerGb:F2}), {t.Retained:N0} records retained, {t.Passes} pass(es)");
        }

        if (kind == BrokerKind.Kayak)
        {
            // Measured after the broker's produce and consume so its freed pages cannot make the broker's own
            // appends cheaper; the mock round that follows does not use the page cache.
            double floor = PageCacheFloor.MeasureSecondsPerGb(Path.GetTempPath(), Math.Max((long)s.Records * s.RecordSize, 256L << 20));
            _byName["page-cache floor: pwrite to a new file"].Kayak.Add(floor);
            Log($"{kind}: page-cache floor {floor:F2} s/GB");
        }

        string latTopic = $"perf-latency-{tag}";
        broker.CreateTopic(latTopic, 1);
        var lat = Workloads.EndToEnd(broker, latTopic, s.LatencyRate, s.LatencyDuration, s.RecordSize);
        _byName["e2e latency p50"].Of(kind).Add(lat.P50Ms);
        _byName["e2e latency p99"].Of(kind).Add(lat.P99Ms);
        _byName["e2e latency p99.9"].Of(kind).Add(lat.P999Ms);
        Log($"{kind}: latency p50 {lat.P50Ms:F2} ms, p99 {lat.P99Ms:F2} ms, p99.9 {lat.P999Ms:F2} ms over {lat.Samples:N0} samples{(lat.Lost > 0 ? $", {lat.Lost} LOST" : "")}");
    }

    private string Report(TimeSpan elapsed)
    {
        var sb = new StringBuilder();
        sb.AppendLine();
        sb.AppendLine($"## Kayak vs librdkafka mock cluster — {(s.Quick ? "quick" : "full")} run, {s.Rounds} round(s) A B alternating, medians");
        sb.AppendLine();
        sb.AppendLine($"{s.Records:N0} records × {s.RecordSize} B per produce case (linger.ms=5, batch.size=1 MiB), 1 partition; latency at {s.LatencyRate:N0} rec/s for {s.LatencyDuration.TotalSeconds:F0} s (first second excluded); startup median of {s.StartupSamples}×{s.Rounds}. MB = 2^20 B, GB = 2^30 B. Run took {elapsed.TotalSeconds:F0} s.");
        sb.AppendLine();
        sb.AppendLine("| Figure | Unit | Kayak | Mock | Kayak/Mock | Target | Met |");
        sb.AppendLine("|---|---|---:|---:|---:|---|---|");
        foreach (var f in _figures)
        {
            double k = Median(f.Kayak), m = Median(f.Mock);
            string ratio = double.IsNaN(k) || double.IsNaN(m) || m == 0 ? "" : $"{k / m:F2}";
            bool? met = f.Met is null || double.IsNaN(k) ? null : f.Met(k, m);
            if (met is not null && f.Target.Contains("mock") && double.IsNaN(m)) met = null;
            sb.AppendLine($"| {f.Name} | {f.Unit} | {Fmt(k)} | {Fmt(m)} | {ratio} | {f.Target} | {(met is null ? "" : met.Value ? "yes" : "**no**")} |");
        }
        if (_disposeErrors > 0) sb.AppendLine($"\nIn-process KafkaBroker.DisposeAsync threw ObjectDisposedException {_disposeErrors} time(s) of {s.StartupSamples}.");
        sb.AppendLine();
        sb.AppendLine("Per-round values (Kayak / Mock):");
        sb.AppendLine();
        foreach (var f in _figures)
            sb.AppendLine($"- {f.Name}: {string.Join(" ", f.Kayak.Select(Fmt))} / {string.Join(" ", f.Mock.Select(Fmt))}");
        return sb.ToString();
    }

    private static string Fmt(double v) =>
        double.IsNaN(v) ? "–" : Math.Abs(v) >= 10_000 ? v.ToString("N0") : Math.Abs(v) >= 100 ? v.ToString("F0") : v.ToString("F2");

    /// <summary>The median (mean of the middle two for an even count); NaN for no values. Every PerfTest mode's.</summary>
    internal static double Median(List<double> v)
    {
        if (v.Count == 0) return double.NaN;
        var a = v.ToArray();
        Array.Sort(a);
        return a.Length % 2 == 1 ? a[a.Length / 2] : (a[a.Length / 2 - 1] + a[a.Length / 2]) / 2;
    }

    private static void Log(string line) => Console.Error.WriteLine($"[{DateTime.Now:HH:mm:ss}] {line}");
}
