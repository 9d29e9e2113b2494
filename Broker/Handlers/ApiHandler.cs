using Kayak.Protocol;

namespace Kayak.Broker.Handlers;

/// <summary>
/// One API's behaviour. A handler returns the response body, or null when Kafka sends none
/// (Produce with acks=0). Handlers run on the connection's read loop until their first await,
/// so synchronous work (most of them) costs no task switch; responses still leave in request order.
/// </summary>
internal interface IApiHandler
{
    ApiKey Key { get; }
    ValueTask<IApiMessage?> HandleAsync(RequestContext context, IApiMessage request);
}

/// <summary>Typed base: casts the decoded request once.</summary>
internal abstract class ApiHandler<TRequest> : IApiHandler where TRequest : class, IApiMessage
{
    public abstract ApiKey Key { get; }

    public ValueTask<IApiMessage?> HandleAsync(RequestContext context, IApiMessage request) =>
        HandleAsync(context, (TRequest)request);

    protected abstract ValueTask<IApiMessage?> HandleAsync(RequestContext context, TRequest request);

    protected static ValueTask<IApiMessage?> Done(IApiMessage? response) => new(response);
}
