// InitProducerId (key 22), v0-5. Without a transactional id: a new producer id at epoch 0 (the idempotent
// producer, the Java client's default since Kafka 3.0). With one: the transaction coordinator's id/epoch for
// the transactional.id, bumping the epoch to fence older instances (an open transaction is aborted first).
// v3+ (KIP-360) may name the current id/epoch; a stale pair is PRODUCER_FENCED. Versions before 4 (KIP-588)
// get INVALID_PRODUCER_EPOCH instead of PRODUCER_FENCED, as Kafka's KafkaApis maps it. A refused __transaction_state append answers Kafka's
// coordinator error (COORDINATOR_NOT_AVAILABLE; NOT_COORDINATOR for a storage error); nothing changes, the client retries.
using Kayak.Coordinator.Transactions;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class InitProducerIdHandler(TransactionCoordinator transactions) : ApiHandler<InitProducerIdRequest>
{
    public override ApiKey Key => ApiKey.InitProducerId;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, InitProducerIdRequest request)
    {
        var r = transactions.InitProducerId(request.TransactionalId, request.TransactionTimeoutMs,
            context.ApiVersion >= 3 ? request.ProducerId : -1, context.ApiVersion >= 3 ? request.ProducerEpoch : (short)-1);
        var error = r.Error;
        if (error == ErrorCode.ProducerFenced && context.ApiVersion < 4) error = ErrorCode.InvalidProducerEpoch;
        return Done(new InitProducerIdResponse { ErrorCode = (short)error, ProducerId = r.ProducerId, ProducerEpoch = r.ProducerEpoch });
    }
}
