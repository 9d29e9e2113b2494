// AddOffsetsToTxn (key 25), v0-4: adds the group's __consumer_offsets partition to the transaction so a
// following TxnOffsetCommit is committed or dropped with it. PRODUCER_FENCED is INVALID_PRODUCER_EPOCH before v2.
// ACLs: WRITE on the transactional id, READ on the group (TRANSACTIONAL_ID_/GROUP_AUTHORIZATION_FAILED).
using Kayak.Broker.Security;
using Kayak.Coordinator.Transactions;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class AddOffsetsToTxnHandler(TransactionCoordinator transactions, IAuthorizer authorizer) : ApiHandler<AddOffsetsToTxnRequest>
{
    public override ApiKey Key => ApiKey.AddOffsetsToTxn;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, AddOffsetsToTxnRequest request)
    {
        if (!authorizer.TransactionalId(context, AclOperation.Write, request.TransactionalId))
            return Done(new AddOffsetsToTxnResponse().SetError(ErrorCode.TransactionalIdAuthorizationFailed));
        if (!authorizer.Group(context, AclOperation.Read, request.GroupId))
            return Done(new AddOffsetsToTxnResponse().SetError(ErrorCode.GroupAuthorizationFailed));
        var error = transactions.AddOffsets(request.TransactionalId, request.ProducerId, request.ProducerEpoch, request.GroupId);
        if (error == ErrorCode.ProducerFenced && context.ApiVersion < 2) error = ErrorCode.InvalidProducerEpoch;
        return Done(new AddOffsetsToTxnResponse().SetError(error));
    }
}
