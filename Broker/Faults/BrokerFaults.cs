using Kayak.Protocol;

namespace Kayak.Broker;

/// <summary>
/// Fault injection for tests, modelled on librdkafka's mock cluster (rd_kafka_mock_push_request_errors,
/// rd_kafka_mock_broker_set_rtt, rd_kafka_mock_broker_set_down) and franz-go kfake's ControlKey. Every broker has one
/// (<see cref="KafkaBroker.Faults"/>; a <see cref="Cluster.KafkaCluster"/> keeps one per node id across restarts);
/// rules may be added or cleared while the broker runs and are consulted for every request:
/// <list type="bullet">
/// <item>an error code for the next K requests of an API, optionally only for a topic/partition or a group, answered
/// in the API's own error fields without the request taking effect (<see cref="InjectError"/>);</item>
/// <item>latency on an API (<see cref="AddLatency"/>), on the broker's TimeProvider;</item>
/// <item>the connection dropped before the request takes effect or after it did (<see cref="DropConnections"/>);</item>
/// <item>a paused broker: it accepts connections and reads requests but answers nothing until resumed, then handles
/// them in order (<see cref="Pause"/>, <see cref="Resume"/>);</item>
/// <item><see cref="OnRequest"/>: a free-form rule, consulted first.</item>
/// </list>
/// When no rule is set the cost on the request path is one field read.
/// </summary>
public sealed class BrokerFaults
{
    private readonly Lock _lock = new();
    private readonly List<ErrorInjection> _errors = new();
    private readonly List<LatencyInjection> _latencies = new();
    private readonly List<DropInjection> _drops = new();
    private Func<FaultRequest, RequestFault>? _onRequest;
    private TaskCompletionSource? _paused;
    private volatile bool _active;

    /// <summary>Consulted before each request is handled, before the other rules; null or <see cref="RequestFault.None"/> lets it through.</summary>
    public Func<FaultRequest, RequestFault>? OnRequest
    {
        get => _onRequest;
        set { lock (_lock) { _onRequest = value; Refresh(); } }
    }

    /// <summary>
    /// Called after a transaction's PrepareCommit/PrepareAbort is persisted and before any marker is written (tests
    /// hold EndTxn there, then crash the broker). Null in normal operation.
    /// </summary>
    public Kayak.Coordinator.Transactions.ITransactionMarkerHook? BeforeTransactionMarkers { get; set; }

    /// <summary>
    /// The next <paramref name="count"/> requests of <paramref name="api"/> (-1: every one until cleared) are answered
    /// with <paramref name="error"/> in the API's own error fields and take no effect, as the mock cluster's
    /// request errors do. With <paramref name="topic"/> (and <paramref name="partition"/>) only requests naming that
    /// partition count, and every partition of such a request carries the error; with <paramref name="group"/> only
    /// requests for that group (or FindCoordinator for that key). Rules for one API apply in the order added.
    /// Throws <see cref="ArgumentException"/> for an API whose error response Kayak cannot build (see <see cref="ErrorResponses"/>).
    /// </summary>
    public void InjectError(ApiKey api, ErrorCode error, int count = 1, string? topic = null, int? partition = null, string? group = null)
    {
        if (count == 0 || count < -1) throw new ArgumentOutOfRangeException(nameof(count), count, "count is a positive number of requests, or -1 for all");
        if (partition is not null && topic is null) throw new ArgumentException("A partition needs its topic", nameof(partition));
        if (!ErrorResponses.Supports(api)) throw new ArgumentException($"Injecting errors into {api} responses is not supported", nameof(api));
        if (topic is not null && !ErrorResponses.HasPartitions(api)) throw new ArgumentException($"{api} names no topic partitions", nameof(topic));
        if (group is not null && !ErrorResponses.HasGroup(api)) throw new ArgumentException($"{api} names no group", nameof(group));
        lock (_lock) { _errors.Add(new ErrorInjection(api, error, count, topic, partition, group)); Refresh(); }
    }

    /// <summary>Every request of <paramref name="api"/> (null: of every API) waits <paramref name="latency"/> before it is handled, for the next <paramref name="count"/> requests (-1: until cleared).</summary>
    public void AddLatency(ApiKey? api, TimeSpan latency, int count = -1)
    {
        if (latency < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(latency));
        if (count == 0 || count < -1) throw new ArgumentOutOfRangeException(nameof(count));
        lock (_lock) { _latencies.Add(new LatencyInjection(api, latency, count)); Refresh(); }
    }

    /// <summary>
    /// The next <paramref name="count"/> requests of <paramref name="api"/> (null: any API) close their connection:
    /// before the request takes effect, or with <paramref name="afterRequest"/> once it took effect, instead of the response.
    /// </summary>
    public void DropConnections(ApiKey? api, bool afterRequest = false, int count = 1)
    {
        if (count == 0 || count < -1) throw new ArgumentOutOfRangeException(nameof(count));
        lock (_lock) { _drops.Add(new DropInjection(api, afterRequest, count)); Refresh(); }
    }

    /// <summary>The broker keeps accepting connections and reading requests but answers none until <see cref="Resume"/>.</summary>
    public void Pause()
    {
        lock (_lock) { _paused ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously); Refresh(); }
    }

    /// <summary>Ends a <see cref="Pause"/>: the requests held are handled in order, then answered.</summary>
    public void Resume()
    {
        TaskCompletionSource? paused;
        lock (_lock) { paused = _paused; _paused = null; Refresh(); }
        paused?.TrySetResult();
    }

    public bool IsPaused => Volatile.Read(ref _paused) is not null;

    /// <summary>Injected errors not yet used up (count -1 rules count once).</summary>
    public int PendingErrors { get { lock (_lock) return _errors.Count; } }

    /// <summary>Removes the injected errors, latencies and drops and resumes a paused broker; <see cref="OnRequest"/> and the hooks stay.</summary>
    public void Clear()
    {
        lock (_lock) { _errors.Clear(); _latencies.Clear(); _drops.Clear(); }
        Resume();
    }

    /// <summary>What the connection does with a request; <see cref="RequestFault.None"/> almost always.</summary>
    internal RequestFault Evaluate(in FaultRequest request, IApiMessage message)
    {
        if (!_active) return RequestFault.None;
        var rule = _onRequest;
        if (rule is not null && rule(request) is { Kind: not FaultKind.None } custom) return custom;
        lock (_lock)
        {
            if (_paused is { } paused) return RequestFault.HeldUntil(paused.Task);
            for (int i = 0; i < _drops.Count; i++)
            {
                var d = _drops[i];
                if (d.Api is { } a && a != request.ApiKey) continue;
                Consume(_drops, i, d.Count, d with { Count = d.Count - 1 });
                return d.AfterRequest ? RequestFault.LoseResponse : RequestFault.DropConnection;
            }
            for (int i = 0; i < _errors.Count; i++)
            {
                var e = _errors[i];
                if (e.Api != request.ApiKey || !ErrorResponses.Matches(message, request.ApiVersion, e)) continue;
                Consume(_errors, i, e.Count, e with { Count = e.Count - 1 });
                if (ErrorResponses.RewritesResponse(e.Api))
                {
                    ErrorResponses.PrepareRewrite(message);
                    return RequestFault.Rewrite(e);
                }
                // An error this version of the API has no field for (UnsupportedVersionException when encoding)
                // cannot be answered: the connection is dropped instead, as a broker failing the request would.
                return ErrorResponses.Build(request.ApiKey, message, request.ApiVersion, e.Error) is { } answer
                    ? RequestFault.Answer(answer)
                    : RequestFault.DropConnection;
            }
            for (int i = 0; i < _latencies.Count; i++)
            {
                var l = _latencies[i];
                if (l.Api is { } a && a != request.ApiKey) continue;
                Consume(_latencies, i, l.Count, l with { Count = l.Count - 1 });
                return RequestFault.Delay(l.Latency);
            }
        }
        return RequestFault.None;
    }

    private void Consume<T>(List<T> list, int index, int count, T decremented)
    {
        if (count == -1) return;
        if (count == 1) list.RemoveAt(index);
        else list[index] = decremented;
        Refresh();
    }

    private void Refresh() =>
        _active = _onRequest is not null || _paused is not null || _errors.Count > 0 || _latencies.Count > 0 || _drops.Count > 0;
}

/// <summary>One injected error (see <see cref="BrokerFaults.InjectError"/>).</summary>
public readonly record struct ErrorInjection(ApiKey Api, ErrorCode Error, int Count, string? Topic, int? Partition, string? Group);

internal readonly record struct LatencyInjection(ApiKey? Api, TimeSpan Latency, int Count);

internal readonly record struct DropInjection(ApiKey? Api, bool AfterRequest, int Count);

/// <summary>What a fault rule sees of a request.</summary>
public readonly record struct FaultRequest(ApiKey ApiKey, short ApiVersion, int CorrelationId, string? ClientId);

/// <summary>What happens to a request (see <see cref="BrokerFaults.OnRequest"/>).</summary>
public readonly record struct RequestFault
{
    private RequestFault(FaultKind kind, TimeSpan delay, IApiMessage? response = null, Task? until = null, ErrorInjection error = default)
    {
        Kind = kind; DelayBy = delay; Response = response; Until = until; Error = error;
    }

    public FaultKind Kind { get; }
    /// <summary>For <see cref="FaultKind.Delay"/>: how long on the broker's TimeProvider before the handler runs.</summary>
    public TimeSpan DelayBy { get; }
    /// <summary>For <see cref="FaultKind.Answer"/>: the response sent instead of handling the request.</summary>
    public IApiMessage? Response { get; }
    /// <summary>For <see cref="FaultKind.Hold"/>: the request is handled once this completes.</summary>
    public Task? Until { get; }
    /// <summary>For <see cref="FaultKind.Rewrite"/>: the error put into the handler's response.</summary>
    public ErrorInjection Error { get; }

    /// <summary>Handled as usual.</summary>
    public static RequestFault None => default;
    /// <summary>The connection is closed before the request is handled: it takes no effect.</summary>
    public static RequestFault DropConnection => new(FaultKind.DropConnection, TimeSpan.Zero);
    /// <summary>The request is handled (takes effect), then the connection is closed instead of answering — a network cut mid-request.</summary>
    public static RequestFault LoseResponse => new(FaultKind.LoseResponse, TimeSpan.Zero);
    /// <summary>The request is handled after <paramref name="by"/>; later requests of the connection are answered after it, in order.</summary>
    public static RequestFault Delay(TimeSpan by) => new(FaultKind.Delay, by);
    /// <summary>The request is not handled; <paramref name="response"/> (of the request's API) is sent instead.</summary>
    public static RequestFault Answer(IApiMessage response) => new(FaultKind.Answer, TimeSpan.Zero, response);
    /// <summary>The request is handled once <paramref name="until"/> completes (a paused broker).</summary>
    public static RequestFault HeldUntil(Task until) => new(FaultKind.Hold, TimeSpan.Zero, until: until);
    /// <summary>The request is handled and <paramref name="error"/> is put into its response (Metadata).</summary>
    internal static RequestFault Rewrite(ErrorInjection error) => new(FaultKind.Rewrite, TimeSpan.Zero, error: error);
}

public enum FaultKind { None, DropConnection, LoseResponse, Delay, Answer, Hold, Rewrite }
