// AddPartitionsToTxn (key 24), v0-4. v0-3: one transaction from the producer; v4+ (KIP-890) the batched
// form brokers use, with VerifyOnly to ask whether partitions are already in the transaction. Unknown
// partitions get UNKNOWN_TOPIC_OR_PARTITION and the rest OPERATION_NOT_ATTEMPTED; coordinator errors apply
// to every partition (Kafka's behaviour). PRODUCER_FENCED is INVALID_PRODUCER_EPOCH before v2 (KIP-588).
// A refused __transaction_state append answers Kafka's coordinator error (COORDINATOR_NOT_AVAILABLE; NOT_COORDINATOR
// for a storage error) and leaves the transaction unchanged.
// ACLs: below v4 WRITE on the transactional id (every partition TRANSACTIONAL_ID_AUTHORIZATION_FAILED) and on each
// topic (TOPIC_AUTHORIZATION_FAILED, the others OPERATION_NOT_ATTEMPTED); v4+ CLUSTER_ACTION on the cluster.
using Kayak.Broker.Security;
using Kayak.Broker.Services;
using Kayak.Coordinator.Transactions;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class AddPartitionsToTxnHandler(TransactionCoordinator transactions, ITopicCatalog catalog, IAuthorizer authorizer) : ApiHandler<AddPartitionsToTxnRequest>
{
    public override ApiKey Key => ApiKey.AddPartitionsToTxn;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, AddPartitionsToTxnRequest request)
    {
        var response = new AddPartitionsToTxnResponse();
        if (context.ApiVersion < 4)
        {
            response.ResultsByTopicV3AndBelow = Handle(context, request.V3AndBelowTransactionalId, request.V3AndBelowProducerId,
                request.V3AndBelowProducerEpoch, false, request.V3AndBelowTopics);
            return Done(response);
        }
        // v4+ comes from brokers verifying transactions (KIP-890): CLUSTER_ACTION on the cluster.
        if (!authorizer.Cluster(context, AclOperation.ClusterAction))
        {
            response.SetError(ErrorCode.ClusterAuthorizationFailed);
            return Done(response);
        }
        foreach (var t in request.Transactions)
            response.ResultsByTransaction.Add(new AddPartitionsToTxnResponse.AddPartitionsToTxnResult
            {
                TransactionalId = t.TransactionalId,
                TopicResults = Handle(context, t.TransactionalId, t.ProducerId, t.ProducerEpoch, t.VerifyOnly, t.Topics),
            });
        return Done(response);
    }

    private List<AddPartitionsToTxnResponse.AddPartitionsToTxnTopicResult> Handle(RequestContext context, string transactionalId,
        long producerId, short producerEpoch, bool verifyOnly, List<AddPartitionsToTxnRequest.AddPartitionsToTxnTopic> topics)
    {
        var partitions = new List<TxnPartition>();
        bool unknown = false;
        // Versions below 4 come from clients: WRITE on the transactional id and on each topic (internal ones never).
        bool txnDenied = context.ApiVersion < 4 && !authorizer.TransactionalId(context, AclOperation.Write, transactionalId);
        HashSet<string>? deniedTopics = null;
        foreach (var t in topics)
        {
            var topic = catalog.Lookup(t.Name);
            if (context.ApiVersion < 4 && authorizer.Acls is not null && (Services.TopicService.IsInternal(t.Name) || !authorizer.Topic(context, AclOperation.Write, t.Name)))
                (deniedTopics ??= new(StringComparer.Ordinal)).Add(t.Name);
            foreach (int p in t.Partitions)
            {
                if (!topic.InMetadata(p) || txnDenied || deniedTopics?.Contains(t.Name) == true) unknown = true;
                partitions.Add(new TxnPartition(t.Name, p));
            }
        }
        ErrorCode error = ErrorCode.None;
        if (!unknown)
        {
            error = verifyOnly
                ? transactions.VerifyPartitions(transactionalId, producerId, producerEpoch, partitions)
                : transactions.AddPartitions(transactionalId, producerId, producerEpoch, partitions);
            if (error == ErrorCode.ProducerFenced && context.ApiVersion < 2) error = ErrorCode.InvalidProducerEpoch;
        }
        var results = new List<AddPartitionsToTxnResponse.AddPartitionsToTxnTopicResult>();
        foreach (var t in topics)
        {
            var topic = catalog.Lookup(t.Name);
            var rt = new AddPartitionsToTxnResponse.AddPartitionsToTxnTopicResult { Name = t.Name };
            foreach (int p in t.Partitions)
            {
                var e = error;
                if (txnDenied) e = ErrorCode.TransactionalIdAuthorizationFailed;
                else if (deniedTopics?.Contains(t.Name) == true) e = ErrorCode.TopicAuthorizationFailed;
                else if (unknown) e = topic.InMetadata(p) ? ErrorCode.OperationNotAttempted : ErrorCode.UnknownTopicOrPartition;
                rt.ResultsByPartition.Add(new AddPartitionsToTxnResponse.AddPartitionsToTxnPartitionResult { PartitionIndex = p }.SetError(e));
            }
            results.Add(rt);
        }
        return results;
    }
}
