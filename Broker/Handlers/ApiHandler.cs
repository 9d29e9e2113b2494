using Kayak.Broker.Network;
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
    ValueTask<HandlerResult> HandleAsync(RequestContext context, IApiMessage request);
}

/// <summary>
/// What a handler hands the connection: the response (null: none is sent), and the segments of memory the response
/// references and owns — fetched log slices the transport may send without a copy (sendfile or straight from the
/// mapping) and must release once the response was written (issue 10, step 2: zero copy is explicit, not found by
/// matching addresses or response types).
/// </summary>
internal readonly record struct HandlerResult(IApiMessage? Message, ResponseSegments? Segments = null);

/// <summary>Typed base: casts the decoded request once. Handlers whose responses own no memory derive from this.</summary>
internal abstract class ApiHandler<TRequest> : IApiHandler where TRequest : class, IApiMessage
{
    public abstract ApiKey Key { get; }

    public ValueTask<HandlerResult> HandleAsync(RequestContext context, IApiMessage request)
    {
        var task = HandleAsync(context, (TRequest)request);
        return task.IsCompletedSuccessfully ? new(new HandlerResult(task.Result)) : Await(task);
    }

    private static async ValueTask<HandlerResult> Await(ValueTask<IApiMessage?> task) => new(await task.ConfigureAwait(false));

    protected abstract ValueTask<IApiMessage?> HandleAsync(RequestContext context, TRequest request);

    protected static ValueTask<IApiMessage?> Done(IApiMessage? response) => new(response);
}
