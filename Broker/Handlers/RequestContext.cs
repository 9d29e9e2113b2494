using System.Net;
using Kayak.Protocol;

namespace Kayak.Broker.Handlers;

/// <summary>
/// What a handler knows about the request beyond its body: request metadata only. Everything a handler works with
/// (topics, groups, transactions, cluster identity, config) it takes in its constructor (issue 10, step 1).
/// </summary>
internal sealed class RequestContext
{
    public required ApiKey ApiKey { get; init; }
    public required short ApiVersion { get; init; }
    public required int CorrelationId { get; init; }
    public string? ClientId { get; init; }
    public EndPoint? ClientAddress { get; init; }
    /// <summary>
    /// The listener the request came in on (listeners=NAME://…): Metadata, FindCoordinator and DescribeCluster answer
    /// with that listener's advertised endpoint, as Kafka's KafkaApis does with request.context.listenerName.
    /// </summary>
    public string? ListenerName { get; init; }
    /// <summary>
    /// Who the client authenticated as, Kafka's KafkaPrincipal string: "User:ANONYMOUS" on PLAINTEXT and on SSL without
    /// a client certificate, "User:" + the mapped X.500 name of the client certificate on mTLS, "User:" + the SASL
    /// user on SASL_PLAINTEXT and SASL_SSL (Kafka's DefaultKafkaPrincipalBuilder; for ACLs later).
    /// </summary>
    public string Principal { get; init; } = "User:ANONYMOUS";
    /// <summary>
    /// The controller_mutation_rate throttle the topic admin handlers recorded (KIP-599; Kafka's ControllerMutationQuota
    /// throttleTime), folded into the response's throttle_time_ms by the connection.
    /// </summary>
    public int ControllerThrottleTimeMs { get; set; }
    /// <summary>Closed when the client's connection goes away; long polls stop waiting.</summary>
    public CancellationToken ConnectionClosed { get; init; }
}
