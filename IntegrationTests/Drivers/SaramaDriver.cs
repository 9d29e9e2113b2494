using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Kayak.IntegrationTests.Infrastructure;
using NUnit.Framework;

namespace Kayak.IntegrationTests.Drivers;

/// <summary>What a sarama producer run reported: one ack per record when it succeeded, else sarama's per-record errors.</summary>
public sealed record SaramaProduceResult(IReadOnlyList<ProducedRecord> Acks, IReadOnlyList<string> Errors);

/// <summary>Producer settings for <see cref="SaramaDriver.TryProduceAsync"/> beyond the common ones.</summary>
public sealed class SaramaProduceOptions
{
    /// <summary>none, gzip, snappy, lz4 or zstd.</summary>
    public string? Compression { get; init; }

    /// <summary>"all", "1" or "0".</summary>
    public string Acks { get; init; } = "all";

    /// <summary>sarama's Producer.Idempotent (needs Kafka version 0.11+; the driver sets acks=all, one in-flight request).</summary>
    public bool Idempotent { get; init; }
}

/// <summary>
/// Shopify/sarama, Debian's golang-github-shopify-sarama-dev 1.22.1 on Go 1.19, through the Go program
/// IntegrationTests/go/sarama-driver (same JSON-on-stdin protocol as the python/js scripts). The program is built
/// once per test run, offline in GOPATH mode against /usr/share/gocode, into IntegrationTests/obj/go.
/// <see cref="KafkaVersion"/> is sarama's Config.Version: sarama 1.22 never asks the broker (no ApiVersions), so this
/// alone picks its request versions and record format.
/// </summary>
public sealed class SaramaDriver : IClientDriver
{
    /// <summary>sarama 1.22's MaxVersion: magic-2 batches with headers, Produce v3, Fetch v4, Metadata v5, JoinGroup v1.</summary>
    public const string Latest = "2.2.0";

    private static readonly Lazy<string> Binary = new(Build, LazyThreadSafetyMode.ExecutionAndPublication);

    public SaramaDriver(string kafkaVersion = Latest)
    {
        KafkaVersion = kafkaVersion;
    }

    /// <summary>
    /// TLS and SASL settings sent with every request (go/sarama-driver/security.go): tls_ca (a PEM file),
    /// sasl_mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER), username, password, token. Null: PLAINTEXT.
    /// </summary>
    public JsonObject? Security { get; init; }

    /// <summary>The Kafka version sarama is configured for ("2.2.0", "0.10.2.0", "0.9.0.0").</summary>
    public string KafkaVersion { get; }

    public string Name => KafkaVersion == Latest ? "sarama" : $"sarama@{KafkaVersion}";

    /// <summary>Headers need magic 2, i.e. Kafka 0.11+; sarama drops them silently below that (the driver does not send them).</summary>
    public bool SupportsHeaders => !KafkaVersion.StartsWith("0.", StringComparison.Ordinal) || KafkaVersion.StartsWith("0.11", StringComparison.Ordinal);

    /// <summary>Go toolchain: $KAYAK_GO, else go on PATH (Debian's golang-go, installed by tools/setup.sh).</summary>
    public static string Go => Environment.GetEnvironmentVariable("KAYAK_GO") is { Length: > 0 } g ? g : "go";

    /// <summary>The built driver program (built on first use in this test run).</summary>
    public static string BinaryPath => Binary.Value;

    /// <summary>Starts a long-running sarama group member (see <see cref="ScriptGroupMember"/>): build first, then start.</summary>
    public ScriptGroupMember StartMember(string name, JsonObject request)
    {
        request["version"] = KafkaVersion;
        return ScriptGroupMember.Start("sarama", name, request);
    }

    /// <summary>The process ScriptGroupMember runs for a "sarama" member.</summary>
    internal static ProcessStartInfo MemberStartInfo() => new(BinaryPath) { ArgumentList = { "group_member" } };

    public async Task<IReadOnlyList<ProducedRecord>> ProduceAsync(string bootstrap, string topic, IReadOnlyList<TestRecord> records, ProduceOptions? options = null, CancellationToken cancellationToken = default)
    {
        var result = await TryProduceAsync(bootstrap, topic, records, new SaramaProduceOptions { Compression = options?.Compression, Acks = options?.Acks ?? "all" }, cancellationToken);
        if (result.Errors.Count > 0)
            Assert.Fail($"{Name} produce to {topic} failed:\n{string.Join("\n", result.Errors.Take(10))}");
        return result.Acks;
    }

    /// <summary>Produces with sarama's SyncProducer.SendMessages (manual partitioner) and returns what it reported, errors included.</summary>
    public async Task<SaramaProduceResult> TryProduceAsync(string bootstrap, string topic, IReadOnlyList<TestRecord> records, SaramaProduceOptions options, CancellationToken cancellationToken = default)
    {
        var list = JsonScriptDriver.RecordsJson(records);
        var response = await RunAsync("produce", new JsonObject
        {
            ["bootstrap"] = bootstrap,
            ["topic"] = topic,
            ["acks"] = options.Acks,
            ["compression"] = options.Compression,
            ["idempotent"] = options.Idempotent,
            ["records"] = list,
        }, cancellationToken);
        var acks = JsonScriptDriver.ParseAcks(response["acks"]!.AsArray());
        var errors = response["errors"]!.AsArray().Select(e => e!.GetValue<string>()).ToList();
        return new SaramaProduceResult(acks, errors);
    }

    public async Task<IReadOnlyList<ConsumedRecord>> ConsumeAllAsync(string bootstrap, string topic, CancellationToken cancellationToken = default)
    {
        var response = await RunAsync("consume", new JsonObject { ["bootstrap"] = bootstrap, ["topic"] = topic, ["timeout_ms"] = 60_000 }, cancellationToken);
        return JsonScriptDriver.ParseRecords(response["records"]!.AsArray());
    }

    /// <summary>
    /// Joins the group with sarama's NewConsumerGroup, consumes and marks exactly count records, then closes (the
    /// session's release commits the marked offsets, Close sends LeaveGroup). Returns the records and each session's claims.
    /// </summary>
    public async Task<(IReadOnlyList<ConsumedRecord> Records, IReadOnlyList<int[]> Assignments)> GroupConsumeAsync(string bootstrap, string topic, string group, int count, CancellationToken cancellationToken = default)
    {
        var response = await RunAsync("group", new JsonObject
        {
            ["bootstrap"] = bootstrap,
            ["topic"] = topic,
            ["group"] = group,
            ["count"] = count,
            ["timeout_ms"] = 60_000,
            ["session_timeout_ms"] = 6000,
            ["heartbeat_interval_ms"] = 500,
        }, cancellationToken);
        var assignments = response["assignments"]!.AsArray().Select(a => a!.AsArray().Select(p => p!.GetValue<int>()).ToArray()).ToList();
        return (JsonScriptDriver.ParseRecords(response["records"]!.AsArray()), assignments);
    }

    /// <summary>Runs sarama's ClusterAdmin: op create_topic|delete_topic|describe_topic|list_topics.</summary>
    public Task<JsonNode> AdminAsync(string bootstrap, string op, JsonObject? arguments = null, CancellationToken cancellationToken = default)
    {
        var request = arguments ?? new JsonObject();
        request["bootstrap"] = bootstrap;
        request["op"] = op;
        return RunAsync("admin", request, cancellationToken);
    }

    /// <summary>Runs one operation; fails the test unless the program exits 0 with a JSON line.</summary>
    public async Task<JsonNode> RunAsync(string operation, JsonObject request, CancellationToken cancellationToken = default) =>
        JsonScriptDriver.LastJsonLine(await TryRunAsync(operation, request, TimeSpan.FromSeconds(90), cancellationToken), $"{Name} {operation}");

    /// <summary>Runs one operation and returns how the program ended (a refused authentication exits non-zero).</summary>
    public Task<ProcessResult> TryRunAsync(string operation, JsonObject request, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        request["version"] = KafkaVersion;
        if (Security is not null) request["security"] = Security.DeepClone();
        return ProcessRunner.RunAsync(new ProcessSpec
        {
            FileName = BinaryPath,
            Arguments = [operation],
            StandardInput = request.ToJsonString(),
            Timeout = timeout,
        }, cancellationToken);
    }

    /// <summary>
    /// go build in GOPATH mode, offline: Debian ships sarama and its dependencies as sources under /usr/share/gocode.
    /// GOCACHE lives under obj/ so later runs only relink when the sources are unchanged.
    /// </summary>
    private static string Build()
    {
        var source = Path.Combine(RepoPaths.Root, "IntegrationTests", "go", "sarama-driver");
        var buildDir = Path.Combine(RepoPaths.Root, "IntegrationTests", "obj", "go");
        Directory.CreateDirectory(buildDir);
        var output = Path.Combine(buildDir, "sarama-driver");
        var gopath = Path.Combine(buildDir, "gopath");
        const string DebianGoCode = "/usr/share/gocode";
        if (!Directory.Exists(Path.Combine(DebianGoCode, "src", "github.com", "Shopify", "sarama")))
            Assert.Fail($"sarama sources not found under {DebianGoCode}: install golang-github-shopify-sarama-dev (tools/setup.sh)");
        var spec = new ProcessSpec
        {
            FileName = Go,
            Arguments = ["build", "-o", output, "."],
            WorkingDirectory = source,
            Timeout = TimeSpan.FromMinutes(5),
            Environment =
            {
                ["GO111MODULE"] = "off",
                ["GOPATH"] = gopath + ":" + DebianGoCode,
                ["GOCACHE"] = Path.Combine(buildDir, "cache"),
                ["GOFLAGS"] = "",
                ["GOPROXY"] = "off",
                ["CGO_ENABLED"] = "1",
            },
        };
        var stopwatch = Stopwatch.StartNew();
        ProcessResult result;
        try
        {
            result = ProcessRunner.RunAsync(spec).GetAwaiter().GetResult();
        }
        catch (AssertionException e)
        {
            Assert.Fail($"cannot build the sarama driver: is Go installed (golang-go, tools/setup.sh; or set KAYAK_GO)? {e.Message}");
            throw;
        }
        if (result.ExitCode != 0 || result.TimedOut || !File.Exists(output))
            Assert.Fail($"go build of the sarama driver failed\n{result.Describe()}");
        TestContext.Progress.WriteLine($"sarama driver built in {stopwatch.Elapsed.TotalSeconds:F1} s: {output}");
        return output;
    }
}
