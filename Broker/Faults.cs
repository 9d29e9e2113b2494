using Kayak.Protocol;

namespace Kayak.Broker;

/// <summary>
/// Fault injection for tests, in the spirit of franz-go kfake's ControlKey: a rule the broker consults for every
/// request (it may be replaced or cleared while the broker runs), and a hook in the transaction coordinator. Set it
/// on <see cref="KafkaBrokerOptions.Faults"/>; <see cref="KafkaBroker.CrashAsync"/> stops a broker as kill -9 would.
/// </summary>
public sealed class BrokerFaults
{
    /// <summary>Consulted before each request is handled; null or <see cref="RequestFault.None"/> lets it through.</summary>
    public Func<FaultRequest, RequestFault>? OnRequest { get; set; }

    /// <summary>
    /// Called after a transaction's PrepareCommit/PrepareAbort is persisted and before any marker is written (tests
    /// hold EndTxn there, then crash the broker). Null in normal operation.
    /// </summary>
    public Kayak.Coordinator.Transactions.ITransactionMarkerHook? BeforeTransactionMarkers { get; set; }
}

/// <summary>What a fault rule sees of a request.</summary>
public readonly record struct FaultRequest(ApiKey ApiKey, short ApiVersion, int CorrelationId, string? ClientId);

/// <summary>What happens to a request (see <see cref="BrokerFaults.OnRequest"/>).</summary>
public readonly record struct RequestFault
{
    private RequestFault(FaultKind kind, TimeSpan delay) { Kind = kind; DelayBy = delay; }

    public FaultKind Kind { get; }
    /// <summary>For <see cref="FaultKind.Delay"/>: how long on the broker's TimeProvider before the handler runs.</summary>
    public TimeSpan DelayBy { get; }

    /// <summary>Handled as usual.</summary>
    public static RequestFault None => default;
    /// <summary>The connection is closed before the request is handled: it takes no effect.</summary>
    public static RequestFault DropConnection => new(FaultKind.DropConnection, TimeSpan.Zero);
    /// <summary>The request is handled (takes effect), then the connection is closed instead of answering — a network cut mid-request.</summary>
    public static RequestFault LoseResponse => new(FaultKind.LoseResponse, TimeSpan.Zero);
    /// <summary>The request is handled after <paramref name="by"/>; later requests of the connection are answered after it, in order.</summary>
    public static RequestFault Delay(TimeSpan by) => new(FaultKind.Delay, by);
}

public enum FaultKind { None, DropConnection, LoseResponse, Delay }
