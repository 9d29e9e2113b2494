using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Kayak.Broker;
using Kayak.Broker.Cluster;
using Kayak.Protocol;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Kayak.Host;

/// <summary>
/// The HTTP control endpoint (issue 14; kayak.control.listener, off by default), after librdkafka's mock cluster and
/// franz-go kfake's control API, for driving fault-injection tests from any language:
/// GET /v1/cluster; POST /v1/brokers/{id}/stop|kill|start|pause|resume|isolate|heal; POST /v1/faults
/// {"broker":1,"api":"PRODUCE","error":"NOT_LEADER_OR_FOLLOWER","count":3,"topic":"t","partition":0,"group":"g",
/// "latencyMs":500,"drop":"before|after"}; DELETE /v1/faults. Errors are answered as {"error": "..."} with 400
/// (bad input), 404 (no such broker) or 409 (the broker is not in a state for that). A single broker
/// (kayak.cluster.size=1) supports faults, pause and resume; stop/kill/start need a cluster (the process would
/// have nothing left to serve).
/// </summary>
internal static class ControlEndpoint
{
    public static async Task<WebApplication> StartAsync(string url, KafkaCluster? cluster, KafkaBroker? single, ILoggerFactory loggerFactory)
    {
        var uri = new Uri(url);
        if (!uri.IsLoopback)
            loggerFactory.CreateLogger("Kayak.Control").LogWarning("The control endpoint {Url} is not on loopback; it has no authentication", url);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls(url);
        var app = builder.Build();
        var target = new Target(cluster, single);

        app.MapGet("/v1/cluster", () => Results.Json(target.Describe()));
        app.MapPost("/v1/brokers/{id:int}/{action}", async (int id, string action) => await Run(() => target.BrokerActionAsync(id, action)));
        app.MapPost("/v1/faults", async (HttpRequest request) =>
        {
            JsonNode? body;
            try { body = await JsonNode.ParseAsync(request.Body); }
            catch (JsonException e) { return Error(400, "Invalid JSON: " + e.Message); }
            return await Run(() => Task.FromResult(target.InjectFaults(body as JsonObject ?? throw new ArgumentException("Expected a JSON object"))));
        });
        app.MapDelete("/v1/faults", () => { target.ClearFaults(); return Results.Json(new { cleared = true }); });
        await app.StartAsync();
        loggerFactory.CreateLogger("Kayak.Control").LogInformation("Control endpoint listening on {Url}", string.Join(",", app.Urls));
        return app;
    }

    private static async Task<IResult> Run(Func<Task<object>> action)
    {
        try { return Results.Json(await action()); }
        catch (KeyNotFoundException e) { return Error(404, e.Message); }
        catch (ArgumentException e) { return Error(400, e.Message); }
        catch (InvalidOperationException e) { return Error(409, e.Message); }
        catch (KafkaException e) { return Error(400, $"{ErrorCodes.KafkaName(e.Code)}: {e.Message}"); }
    }

    private static IResult Error(int status, string message) => Results.Json(new { error = message }, statusCode: status);

    private sealed class Target(KafkaCluster? cluster, KafkaBroker? single)
    {
        private int Size => cluster?.Options.Brokers ?? 1;
        // KafkaCluster's start/stop are not meant to race each other; HTTP requests arrive concurrently.
        private readonly SemaphoreSlim _serial = new(1, 1);

        public object Describe()
        {
            if (cluster is null)
            {
                var b = single!;
                return new
                {
                    brokers = new[] { new { id = b.Config.NodeId, state = b.Faults.IsPaused ? "paused" : "running", bootstrap = (string?)b.BootstrapServers } },
                    topics = Array.Empty<object>(),
                };
            }
            var brokers = cluster.Nodes().Select(n => new { id = n.NodeId, state = n.State.ToString().ToLowerInvariant(), bootstrap = n.BootstrapServers }).ToArray();
            var topics = cluster.TopicNames().Select(t => new
            {
                name = t,
                partitions = Enumerable.Range(0, cluster.PartitionCount(t)).Select(p =>
                {
                    var (leader, epoch, replicas, isr) = cluster.Partition(t, p);
                    return new { partition = p, leader, leaderEpoch = epoch, replicas, isr };
                }).ToArray(),
            }).ToArray();
            var partitioned = cluster.Network.Cuts().Select(c => new { from = c.From, to = c.To }).ToArray();
            return new { clusterId = cluster.ClusterId, bootstrap = cluster.BootstrapServers, brokers, topics, partitioned };
        }

        public async Task<object> BrokerActionAsync(int id, string action)
        {
            if (id < 1 || id > Size) throw new KeyNotFoundException($"No broker {id}; node ids are 1..{Size}");
            action = action.ToLowerInvariant();
            if (action is "pause" or "resume")
            {
                var faults = cluster?.Faults(id) ?? single!.Faults;
                if (action == "pause") faults.Pause(); else faults.Resume();
                return new { broker = id, state = faults.IsPaused ? "paused" : "running" };
            }
            await _serial.WaitAsync();
            try { return await ClusterActionAsync(id, action); }
            finally { _serial.Release(); }
        }

        private async Task<object> ClusterActionAsync(int id, string action)
        {
            if (cluster is null) throw new InvalidOperationException($"'{action}' needs kayak.cluster.size > 1 (a single broker's process would have nothing left to serve)");
            switch (action)
            {
                case "stop": await cluster.StopBrokerAsync(id); break;
                case "kill": await cluster.CrashBrokerAsync(id); break;
                case "start": await cluster.StartBrokerAsync(id); break;
                case "isolate": cluster.Network.Isolate(id, Enumerable.Range(1, Size)); break;
                case "heal": cluster.Network.Heal(id); break;
                default: throw new ArgumentException($"Unknown action '{action}': stop, kill, start, pause, resume, isolate or heal");
            }
            var node = cluster.Nodes()[id - 1];
            return new { broker = id, state = node.State.ToString().ToLowerInvariant(), bootstrap = node.BootstrapServers };
        }

        public object InjectFaults(JsonObject body)
        {
            int broker = Int(body, "broker") ?? 0;
            if (broker < 0 || broker > Size) throw new KeyNotFoundException($"No broker {broker}; node ids are 1..{Size} (0 or absent: every broker)");
            ApiKey? api = null;
            if (Str(body, "api") is { } apiText)
                api = FaultNames.TryParseApiKey(apiText, out var a) ? a : throw new ArgumentException($"Unknown API '{apiText}'");
            int count = Int(body, "count") ?? (Str(body, "error") is null && Str(body, "drop") is null ? -1 : 1);
            string? topic = Str(body, "topic");
            int? partition = Int(body, "partition");
            string? group = Str(body, "group");
            int? latencyMs = Int(body, "latencyMs");
            string? drop = Str(body, "drop");
            string? errorText = Str(body, "error");
            if (errorText is null && latencyMs is null && drop is null) throw new ArgumentException("Give an error, latencyMs or drop");

            var targets = new List<BrokerFaults>();
            for (int id = 1; id <= Size; id++)
                if (broker == 0 || broker == id) targets.Add(cluster?.Faults(id) ?? single!.Faults);
            if (errorText is not null)
            {
                if (api is null) throw new ArgumentException("An error needs an api");
                if (!FaultNames.TryParseErrorCode(errorText, out var code)) throw new ArgumentException($"Unknown error '{errorText}'");
                foreach (var f in targets) f.InjectError(api.Value, code, count, topic, partition, group);
            }
            if (latencyMs is { } ms)
            {
                if (ms < 0) throw new ArgumentException("latencyMs must be >= 0");
                foreach (var f in targets) f.AddLatency(api, TimeSpan.FromMilliseconds(ms), count);
            }
            if (drop is not null)
            {
                bool after = drop.ToLowerInvariant() switch
                {
                    "before" => false,
                    "after" => true,
                    _ => throw new ArgumentException("drop is 'before' (no effect) or 'after' (the request took effect)"),
                };
                foreach (var f in targets) f.DropConnections(api, after, count);
            }
            return new { injected = targets.Count, broker, api = api?.ToString(), error = errorText, count, latencyMs, drop };
        }

        public void ClearFaults()
        {
            if (cluster is not null) cluster.ClearFaults();
            else single!.Faults.Clear();
        }

        private static string? Str(JsonObject o, string name) => o[name] switch
        {
            null => null,
            JsonValue v when v.TryGetValue(out string? s) => s,
            JsonValue v when v.TryGetValue(out int i) => i.ToString(System.Globalization.CultureInfo.InvariantCulture),
            var other => throw new ArgumentException($"'{name}' must be a string, not {other.ToJsonString()}"),
        };

        private static int? Int(JsonObject o, string name) => o[name] switch
        {
            null => null,
            JsonValue v when v.TryGetValue(out int i) => i,
            var other => throw new ArgumentException($"'{name}' must be an integer, not {other.ToJsonString()}"),
        };
    }
}
