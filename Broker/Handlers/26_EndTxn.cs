// EndTxn (key 26), v0-4: commit or abort. The coordinator persists PrepareCommit/PrepareAbort, writes the
// markers into every partition of the transaction (the group coordinator writes the one of a group's
// __consumer_offsets partition and then materializes or drops the transaction's offsets) and persists CompleteCommit/CompleteAbort before answering, so a read_committed consumer never
// blocks on a transaction the producer saw complete. PRODUCER_FENCED is INVALID_PRODUCER_EPOCH before v2.
// Kafka's coordinator error (COORDINATOR_NOT_AVAILABLE, ...) when __transaction_state refuses the Prepare record (the transaction stays Ongoing); a
// marker that cannot be written, or a refused Complete record, still answers NONE (decided once Prepare is in the log,
// as Kafka completes markers asynchronously); the transaction stays prepared and the timeout timer finishes it.
// ACLs: WRITE on the transactional id (TRANSACTIONAL_ID_AUTHORIZATION_FAILED).
using Kayak.Broker.Security;
using Kayak.Coordinator.Transactions;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class EndTxnHandler(TransactionCoordinator transactions, IAuthorizer authorizer) : ApiHandler<EndTxnRequest>
{
    public override ApiKey Key => ApiKey.EndTxn;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, EndTxnRequest request)
    {
        if (!authorizer.TransactionalId(context, AclOperation.Write, request.TransactionalId))
            return Done(new EndTxnResponse().SetError(ErrorCode.TransactionalIdAuthorizationFailed));
        var error = transactions.EndTxn(request.TransactionalId, request.ProducerId, request.ProducerEpoch, request.Committed);
        if (error == ErrorCode.ProducerFenced && context.ApiVersion < 2) error = ErrorCode.InvalidProducerEpoch;
        return Done(new EndTxnResponse().SetError(error));
    }
}
