// AddOffsetsToTxn (key 25), v0-4: adds the group's __consumer_offsets partition to the transaction so a
// following TxnOffsetCommit is committed or dropped with it. PRODUCER_FENCED is INVALID_PRODUCER_EPOCH before v2.
using Kayak.Coordinator.Transactions;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class AddOffsetsToTxnHandler(TransactionCoordinator transactions) : ApiHandler<AddOffsetsToTxnRequest>
{
    public override ApiKey Key => ApiKey.AddOffsetsToTxn;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, AddOffsetsToTxnRequest request)
    {
        var error = transactions.AddOffsets(request.TransactionalId, request.ProducerId, request.ProducerEpoch, request.GroupId);
        if (error == ErrorCode.ProducerFenced && context.ApiVersion < 2) error = ErrorCode.InvalidProducerEpoch;
        return Done(new AddOffsetsToTxnResponse { ErrorCode = (short)error });
    }
}
