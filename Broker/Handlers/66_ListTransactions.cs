// ListTransactions (key 66), v0-1 (KIP-664; v1 adds DurationFilter, KIP-994): transactional ids filtered by
// state names and producer ids. Unknown state names are echoed in UnknownStateFilters, as Kafka does.
// ACLs: only the transactional ids the principal may DESCRIBE are listed.
using Kayak.Broker.Security;
using Kayak.Coordinator.Transactions;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class ListTransactionsHandler(TransactionCoordinator transactions, IAuthorizer authorizer) : ApiHandler<ListTransactionsRequest>
{
    private static readonly HashSet<string> KnownStates = new(StringComparer.Ordinal)
    {
        "Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit", "CompleteAbort", "Dead", "PrepareEpochFence",
    };

    public override ApiKey Key => ApiKey.ListTransactions;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, ListTransactionsRequest request)
    {
        var response = new ListTransactionsResponse();
        var states = new HashSet<string>(StringComparer.Ordinal);
        foreach (var s in request.StateFilters)
        {
            if (KnownStates.Contains(s)) states.Add(s);
            else response.UnknownStateFilters.Add(s);
        }
        // Only unknown states asked for: nothing can match.
        if (request.StateFilters.Count > 0 && states.Count == 0) return Done(response);
        var list = transactions.List(states, new HashSet<long>(request.ProducerIdFilters),
            context.ApiVersion >= 1 ? request.DurationFilter : -1);
        foreach (var d in list)
            if (authorizer.TransactionalId(context, AclOperation.Describe, d.TransactionalId))
                response.TransactionStates.Add(new ListTransactionsResponse.TransactionStateData
            {
                TransactionalId = d.TransactionalId,
                ProducerId = d.ProducerId,
                TransactionState = TransactionMetadata.StateName(d.State),
            });
        return Done(response);
    }
}
