using System.Text.Json;
using System.Text.Json.Nodes;
using Kayak.IntegrationTests.Infrastructure;
using NUnit.Framework;

namespace Kayak.IntegrationTests.Drivers;

/// <summary>
/// Shared plumbing for the script-based clients: the request goes to the script as one JSON object on stdin, the
/// script prints one JSON object on stdout; stderr is kept for the failure message.
/// </summary>
public abstract class JsonScriptDriver : IClientDriver
{
    public abstract string Name { get; }

    protected abstract ProcessSpec Spec(string script, string stdin, TimeSpan timeout);

    /// <summary>Runs script with the request and returns how it ended (a refused authentication exits non-zero).</summary>
    public Task<ProcessResult> TryRunAsync(string script, JsonObject request, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        ProcessRunner.RunAsync(Spec(script, request.ToJsonString(), timeout), cancellationToken);

    /// <summary>Runs script (e.g. "produce") with the request; fails the test unless it exits 0 with JSON output.</summary>
    public async Task<JsonNode> RunAsync(string script, JsonObject request, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var result = await ProcessRunner.RunAsync(Spec(script, request.ToJsonString(), timeout ?? TimeSpan.FromSeconds(90)), cancellationToken);
        return LastJsonLine(result, $"{Name} {script}");
    }

    /// <summary>Runs the admin script with {"bootstrap", "op", ...}; see python/admin.py and js/admin.js for the operations.</summary>
    public Task<JsonNode> AdminAsync(string bootstrap, string op, JsonObject? arguments = null, CancellationToken cancellationToken = default)
    {
        var request = arguments ?? new JsonObject();
        request["bootstrap"] = bootstrap;
        request["op"] = op;
        return RunAsync("admin", request, cancellationToken: cancellationToken);
    }

    /// <summary>Records as the drivers' produce command takes them: key, value, partition, headers as [key, value] pairs.</summary>
    internal static JsonArray RecordsJson(IReadOnlyList<TestRecord> records)
    {
        var list = new JsonArray();
        foreach (var r in records)
        {
            var headers = new JsonArray();
            foreach (var h in r.Headers)
                headers.Add(new JsonArray(h.Key, h.Value));
            list.Add(new JsonObject { ["key"] = r.Key, ["value"] = r.Value, ["partition"] = r.Partition, ["headers"] = headers });
        }
        return list;
    }

    /// <summary>The driver's answer: it must exit 0 and print one JSON document as its last line of output.</summary>
    internal static JsonNode LastJsonLine(ProcessResult result, string what)
    {
        result.EnsureSuccess();
        try
        {
            var lastLine = result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault() ?? "";
            return JsonNode.Parse(lastLine) ?? throw new JsonException("null");
        }
        catch (JsonException e)
        {
            Assert.Fail($"{what}: output is not JSON ({e.Message})\n{result.Describe()}");
            throw;
        }
    }

    public async Task<IReadOnlyList<ProducedRecord>> ProduceAsync(string bootstrap, string topic, IReadOnlyList<TestRecord> records, ProduceOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new ProduceOptions();
        var list = RecordsJson(records);
        var request = new JsonObject
        {
            ["bootstrap"] = bootstrap,
            ["topic"] = topic,
            ["acks"] = options.Acks,
            ["compression"] = options.Compression,
            ["records"] = list,
        };
        var response = await RunAsync("produce", request, cancellationToken: cancellationToken);
        return ParseAcks(response["acks"]!.AsArray());
    }

    /// <summary>Deliveries as the drivers' produce command prints them: [{partition, offset}, ...], one per record.</summary>
    internal static List<ProducedRecord> ParseAcks(JsonArray array)
    {
        var acks = new List<ProducedRecord>(array.Count);
        foreach (var a in array)
            acks.Add(new ProducedRecord(a!["partition"]!.GetValue<int>(), a["offset"]!.GetValue<long>()));
        return acks;
    }

    public async Task<IReadOnlyList<ConsumedRecord>> ConsumeAllAsync(string bootstrap, string topic, CancellationToken cancellationToken = default)
    {
        var response = await RunAsync("consume", new JsonObject { ["bootstrap"] = bootstrap, ["topic"] = topic, ["timeout_ms"] = 60_000 }, cancellationToken: cancellationToken);
        return ParseRecords(response["records"]!.AsArray());
    }

    /// <summary>Records as the scripts print them: {topic, partition, offset, key, value, headers: [[k, v], ...], timestamp}.</summary>
    public static List<ConsumedRecord> ParseRecords(JsonArray array)
    {
        var records = new List<ConsumedRecord>(array.Count);
        foreach (var node in array)
        {
            var r = node!.AsObject();
            var headers = new List<TestHeader>();
            foreach (var h in r["headers"]?.AsArray() ?? [])
                headers.Add(new TestHeader(h![0]!.GetValue<string>(), h[1]?.GetValue<string>() ?? ""));
            records.Add(new ConsumedRecord(
                r["topic"]!.GetValue<string>(),
                r["partition"]!.GetValue<int>(),
                r["offset"]!.GetValue<long>(),
                r["key"]?.GetValue<string>(),
                r["value"]?.GetValue<string>(),
                headers,
                r["timestamp"]?.GetValue<long>() ?? -1));
        }
        return records;
    }
}

/// <summary>kafka-python (Debian's python3-kafka) via IntegrationTests/python/*.py run by /usr/bin/python3.</summary>
public sealed class PythonKafka : JsonScriptDriver
{
    public override string Name => "kafka-python";

    /// <summary>$KAYAK_PYTHON, else /usr/bin/python3 (Debian's, which sees python3-kafka; not a pyenv shim).</summary>
    public static string Interpreter => Environment.GetEnvironmentVariable("KAYAK_PYTHON") is { Length: > 0 } p ? p : "/usr/bin/python3";

    protected override ProcessSpec Spec(string script, string stdin, TimeSpan timeout) => new()
    {
        FileName = Interpreter,
        Arguments = [Path.Combine(RepoPaths.PythonScripts, script + ".py")],
        StandardInput = stdin,
        Timeout = timeout,
        Environment = { ["PYTHONDONTWRITEBYTECODE"] = "1", ["PYTHONUNBUFFERED"] = "1" },
    };
}

/// <summary>kafkajs 2.x via IntegrationTests/js/*.js run by node (npm ci in tools/setup.sh).</summary>
public sealed class KafkaJs : JsonScriptDriver
{
    public override string Name => "kafkajs";

    public static string Node => Environment.GetEnvironmentVariable("KAYAK_NODE") is { Length: > 0 } n ? n : "node";

    protected override ProcessSpec Spec(string script, string stdin, TimeSpan timeout) => new()
    {
        FileName = Node,
        Arguments = [Path.Combine(RepoPaths.JsScripts, script + ".js")],
        StandardInput = stdin,
        Timeout = timeout,
        WorkingDirectory = RepoPaths.JsScripts,
        Environment = { ["KAFKAJS_NO_PARTITIONER_WARNING"] = "1" },
    };
}
