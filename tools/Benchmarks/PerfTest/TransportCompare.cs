using System.Buffers.Binary;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Confluent.Kafka;
using Kayak.IntegrationTests.Infrastructure;
using Kayak.Tests.Tls;

namespace Kayak.PerfTest;

/// <summary>
/// Two A/B comparisons of Kayak against itself, on the same produce and consume workloads as the main run:
/// <list type="bullet">
/// <item><c>--tls</c> (issue 12): one broker with a PLAINTEXT and an SSL listener (certificates generated now with
/// CertificateRequest, as the tests do), each round runs the workloads over both, alternating which goes first.</item>
/// <item><c>--zero-byte-reads</c> (issue 15): a broker per round and variant, with zero-byte reads on (the default)
/// and off (<c>KAYAK_ZERO_BYTE_READS=0</c>, the benchmark-only knob), alternating; plus a fresh broker per variant
/// holding N idle connections (each answered one Metadata request first, as a client's would) for the RSS they cost.</item>
/// </list>
/// Usage: <c>--tls|--zero-byte-reads [--rounds 3] [--records 1000000] [--idle-connections 2000] [--out FILE]</c>.
/// </summary>
internal static class TransportCompare
{
    private static readonly ProduceCase[] ProduceCases =
    [
        new("acks=1 none", Acks.Leader, CompressionType.None),
        new("acks=1 lz4", Acks.Leader, CompressionType.Lz4),
    ];

    public static int Run(string[] args)
    {
        CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
        CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
        string mode = args[0];
        int rounds = 3, records = 1_000_000, idle = 2000;
        string? outFile = null;
        for (int i = 1; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--rounds": rounds = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--records": records = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--idle-connections": idle = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--out": outFile = Next(); break;
                default:
                    Console.Error.WriteLine($"unknown option {args[i]}; usage: {mode} [--rounds N] [--records N] [--idle-connections N] [--out FILE]");
                    return 2;
            }
        }
        NativeKafka.EnsureLoaded();
        var settings = RunSettings.Parse([]);
        var table = new Table(mode == "--tls" ? ["PLAINTEXT", "SSL"] : ["zero-byte reads on", "zero-byte reads off"]);
        var started = DateTime.UtcNow;
        Log($"{mode}: {rounds} round(s), {records:N0} records x 100 B, librdkafka {Library.VersionString}");
        if (mode == "--tls") RunTls(settings, rounds, records, table);
        else RunZeroByteReads(settings, rounds, records, idle, table);
        string title = mode == "--tls"
            ? "Kayak over PLAINTEXT vs SSL (one broker, both listeners)"
            : $"Kayak with zero-byte reads on vs off (KAYAK_ZERO_BYTE_READS=0); idle RSS with {idle:N0} connections";
        string report = table.Render(title, $"{records:N0} records × 100 B per case, 1 partition, linger.ms=5, batch.size=1 MiB; {rounds} rounds, A/B order alternating per round; medians. Run took {(DateTime.UtcNow - started).TotalSeconds:F0} s.");
        Console.WriteLine(report);
        if (outFile is not null) File.WriteAllText(outFile, report);
        return 0;
    }

    private static void RunTls(RunSettings settings, int rounds, int records, Table table)
    {
        using var certs = TestCertificates.Create();
        int plainPort = BrokerProcess.FreePort(), sslPort = BrokerProcess.FreePort();
        var overrides = certs.Pkcs12Keystore("listener.name.ssl.").Select(kv => $"{kv.Key}={kv.Value}").ToArray();
        using var broker = BrokerProcess.Start(BrokerKind.Kayak, settings, $"PLAINTEXT://127.0.0.1:{plainPort},SSL://127.0.0.1:{sslPort}", overrides);
        string plainBootstrap = broker.Bootstrap;
        var plain = new Dictionary<string, string>();
        // The client verifies the broker's certificate (127.0.0.1 is in its subject alternative names) against the CA.
        var ssl = new Dictionary<string, string> { ["security.protocol"] = "SSL", ["ssl.ca.location"] = certs.CaPem };
        Log($"Kayak pid {broker.Pid}: PLAINTEXT {plainBootstrap}, SSL 127.0.0.1:{sslPort}");
        for (int round = 1; round <= rounds; round++)
        {
            int[] order = round % 2 == 1 ? [0, 1] : [1, 0];
            foreach (int v in order)
            {
                if (v == 0) broker.UseEndpoint(plainBootstrap, plain);
                else broker.UseEndpoint($"127.0.0.1:{sslPort}", ssl);
                RunWorkloads(broker, table, v, round, records);
            }
        }
    }

    private static void RunZeroByteReads(RunSettings settings, int rounds, int records, int idle, Table table)
    {
        var variants = new[]
        {
            new Dictionary<string, string>(),
            new Dictionary<string, string> { ["KAYAK_ZERO_BYTE_READS"] = "0" },
        };
        for (int round = 1; round <= rounds; round++)
        {
            int[] order = round % 2 == 1 ? [0, 1] : [1, 0];
            foreach (int v in order)
            {
                using (var broker = BrokerProcess.Start(BrokerKind.Kayak, settings, environment: variants[v]))
                    RunWorkloads(broker, table, v, round, records);
                using (var broker = BrokerProcess.Start(BrokerKind.Kayak, settings, environment: variants[v]))
                    MeasureIdle(broker, table, v, idle);
            }
        }
    }

    private static void RunWorkloads(BrokerProcess broker, Table table, int variant, int round, int records)
    {
        string name = table.Variants[variant];
        string tag = $"{round}-{variant}-{Guid.NewGuid().ToString("N")[..6]}";
        var topics = new Dictionary<string, string>();
        foreach (var c in ProduceCases)
        {
            string topic = $"perf-{c.Compression.ToString().ToLowerInvariant()}-{tag}";
            topics[c.Name] = topic;
            broker.CreateTopic(topic, 1);
            var t = Workloads.Produce(broker, topic, c, records, 100);
            if (t.Errors > 0) Log($"{name}: WARNING {t.Errors} delivery errors in produce {c.Name}");
            table.Add($"produce {c.Name}", "MB/s", variant, t.MbPerSecond);
            table.Add($"produce {c.Name} broker CPU", "s/GB", variant, t.CpuSecondsPerGb);
            Log($"round {round} {name}: produce {c.Name} {t.MbPerSecond:F1} MB/s, broker CPU {t.CpuSecondsPerGb:F2} s/GB (user {t.UserCpuSecondsPerGb:F2})");
        }
        foreach (var c in ProduceCases)
        {
            var t = Workloads.Consume(broker, topics[c.Name], records, 100);
            string label = c.Compression == CompressionType.None ? "none" : "lz4";
            table.Add($"consume {label}", "MB/s", variant, t.MbPerSecond);
            table.Add($"consume {label} broker CPU", "s/GB", variant, t.CpuSecondsPerGb);
            Log($"round {round} {name}: consume {label} {t.MbPerSecond:F1} MB/s, broker CPU {t.CpuSecondsPerGb:F2} s/GB (user {t.UserCpuSecondsPerGb:F2})");
        }
    }

    /// <summary>RSS of a fresh broker before and after <paramref name="count"/> connections that each got one Metadata answer and then sit idle.</summary>
    private static void MeasureIdle(BrokerProcess broker, Table table, int variant, int count)
    {
        Thread.Sleep(1000);
        double before = broker.RssMb();
        var (host, port) = SplitHostPort(broker.Bootstrap);
        var sockets = new List<Socket>(count);
        try
        {
            for (int i = 0; i < count; i++) sockets.Add(OpenAnswered(host, port));
            Thread.Sleep(2000);
            double after = broker.RssMb();
            table.Add("idle broker RSS", "MB", variant, before);
            table.Add($"RSS with {count:N0} idle connections", "MB", variant, after);
            table.Add("RSS per idle connection", "KB", variant, (after - before) * 1024 / count);
            Log($"{table.Variants[variant]}: RSS {before:F1} MB idle, {after:F1} MB with {count:N0} idle connections ({(after - before) * 1024 / count:F1} KB each)");
        }
        finally
        {
            foreach (var s in sockets) s.Dispose();
        }
    }

    private static (string Host, int Port) SplitHostPort(string hostPort)
    {
        int colon = hostPort.LastIndexOf(':');
        return (hostPort[..colon], int.Parse(hostPort[(colon + 1)..], CultureInfo.InvariantCulture));
    }

    /// <summary>Connects and exchanges one ApiVersions v0 request (what every client sends first), then leaves the socket open.</summary>
    private static Socket OpenAnswered(string host, int port)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true, ReceiveTimeout = 10_000 };
        try
        {
            socket.Connect(host, port);
            byte[] clientId = Encoding.ASCII.GetBytes("idle");
            int bodyLen = 2 + 2 + 4 + 2 + clientId.Length;
            var req = new byte[4 + bodyLen];
            BinaryPrimitives.WriteInt32BigEndian(req, bodyLen);
            BinaryPrimitives.WriteInt16BigEndian(req.AsSpan(4), 18); // ApiVersions
            BinaryPrimitives.WriteInt16BigEndian(req.AsSpan(6), 0);
            BinaryPrimitives.WriteInt32BigEndian(req.AsSpan(8), 7);
            BinaryPrimitives.WriteInt16BigEndian(req.AsSpan(12), (short)clientId.Length);
            clientId.CopyTo(req, 14);
            socket.Send(req);
            var size = new byte[4];
            MetadataProbe.ReadExactly(socket, size);
            int n = BinaryPrimitives.ReadInt32BigEndian(size);
            if (n < 6 || n > 1 << 20) throw new InvalidDataException($"bad ApiVersions response size {n}");
            var body = new byte[n];
            MetadataProbe.ReadExactly(socket, body);
            if (BinaryPrimitives.ReadInt32BigEndian(body) != 7 || BinaryPrimitives.ReadInt16BigEndian(body.AsSpan(4)) != 0)
                throw new InvalidDataException("ApiVersions v0 not answered with correlation id 7 and no error");
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static void Log(string line) => Console.Error.WriteLine($"[{DateTime.Now:HH:mm:ss}] {line}");

    /// <summary>Figures in first-seen order, values per variant over the rounds; medians and the B/A ratio.</summary>
    private sealed class Table(string[] variants)
    {
        private readonly List<(string Name, string Unit)> _order = new();
        private readonly Dictionary<string, List<double>[]> _values = new();
        public string[] Variants { get; } = variants;

        public void Add(string name, string unit, int variant, double value)
        {
            if (!_values.TryGetValue(name, out var perVariant))
            {
                perVariant = [new List<double>(), new List<double>()];
                _values[name] = perVariant;
                _order.Add((name, unit));
            }
            perVariant[variant].Add(value);
        }

        public string Render(string title, string description)
        {
            var sb = new StringBuilder();
            sb.AppendLine().AppendLine($"## {title}").AppendLine().AppendLine(description).AppendLine();
            sb.AppendLine($"| Figure | Unit | {Variants[0]} | {Variants[1]} | {Variants[1]} / {Variants[0]} |");
            sb.AppendLine("|---|---|---:|---:|---:|");
            foreach (var (name, unit) in _order)
            {
                var v = _values[name];
                double a = PerfRun.Median(v[0]), b = PerfRun.Median(v[1]);
                sb.AppendLine($"| {name} | {unit} | {Fmt(a)} | {Fmt(b)} | {(a == 0 || double.IsNaN(a) ? "" : (b / a).ToString("F2"))} |");
            }
            sb.AppendLine().AppendLine($"Per-round values ({Variants[0]} / {Variants[1]}):").AppendLine();
            foreach (var (name, _) in _order)
                sb.AppendLine($"- {name}: {string.Join(" ", _values[name][0].Select(Fmt))} / {string.Join(" ", _values[name][1].Select(Fmt))}");
            return sb.ToString();
        }

        private static string Fmt(double v) => double.IsNaN(v) ? "–" : Math.Abs(v) >= 100 ? v.ToString("F0") : v.ToString("F2");

    }
}
