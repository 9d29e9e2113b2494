// InitProducerId (key 22), v0-5. Without a transactional id: a new producer id at epoch 0 (the idempotent
// producer, the Java client's default since Kafka 3.0). With one: the transaction coordinator's id/epoch for
// the transactional.id, bumping the epoch to fence older instances (an open transaction is aborted first).
// v3+ (KIP-360) may name the current id/epoch; a stale pair is PRODUCER_FENCED. Versions before 4 (KIP-588)
// get INVALID_PRODUCER_EPOCH instead of PRODUCER_FENCED, as Kafka's KafkaApis maps it. A refused __transaction_state append answers Kafka's
// coordinator error (COORDINATOR_NOT_AVAILABLE; NOT_COORDINATOR for a storage error); nothing changes, the client retries.
// ACLs: see HandleAsync (TRANSACTIONAL_ID_AUTHORIZATION_FAILED / CLUSTER_AUTHORIZATION_FAILED).
using Kayak.Broker.Security;
using Kayak.Coordinator.Transactions;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class InitProducerIdHandler(TransactionCoordinator transactions, IAuthorizer authorizer) : ApiHandler<InitProducerIdRequest>
{
    public override ApiKey Key => ApiKey.InitProducerId;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, InitProducerIdRequest request)
    {
        // KafkaApis.handleInitProducerIdRequest: WRITE on the transactional id; an idempotent producer needs
        // IDEMPOTENT_WRITE on the cluster or WRITE on some topic (Kafka 3.0+, KIP-679).
        if (request.TransactionalId is { } txnId ? !authorizer.TransactionalId(context, AclOperation.Write, txnId)
            : !authorizer.Cluster(context, AclOperation.IdempotentWrite, logIfDenied: false) && !authorizer.AuthorizeByResourceType(context, AclOperation.Write, AclResourceType.Topic))
            return Done(new InitProducerIdResponse { ProducerId = -1, ProducerEpoch = -1 }
                .SetError(request.TransactionalId is null ? ErrorCode.ClusterAuthorizationFailed : ErrorCode.TransactionalIdAuthorizationFailed));
        var r = transactions.InitProducerId(request.TransactionalId, request.TransactionTimeoutMs,
            context.ApiVersion >= 3 ? request.ProducerId : -1, context.ApiVersion >= 3 ? request.ProducerEpoch : (short)-1);
        var error = r.Error;
        if (error == ErrorCode.ProducerFenced && context.ApiVersion < 4) error = ErrorCode.InvalidProducerEpoch;
        return Done(new InitProducerIdResponse { ProducerId = r.ProducerId, ProducerEpoch = r.ProducerEpoch }.SetError(error));
    }
}
