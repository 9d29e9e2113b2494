// TxnOffsetCommit (key 28), v0-4: offsets committed inside a transaction. The group coordinator appends them
// to the group's __consumer_offsets partition at once, as a transactional batch of the producer (as Kafka's
// GroupMetadataManager.storeOffsets does), and they become the group's committed offsets only after the
// transaction's commit marker lands in that partition (dropped on abort), so consume-transform-produce moves
// the group's position atomically with its output, also across a crash between PrepareCommit and the markers.
// The group's offsets partition must have been added with AddOffsetsToTxn (else INVALID_TXN_STATE).
// v3+ (KIP-447) carries the consumer's generation/member id, checked against the group like an OffsetCommit
// (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID); without them any group state is accepted.
// In a consumer group (KIP-848) the generation field is the member epoch: UNKNOWN_MEMBER_ID for a stranger,
// STALE_MEMBER_EPOCH for another epoch; epoch -1 without a member only while the group has no members.
// Partitions of unknown topics get UNKNOWN_TOPIC_OR_PARTITION.
// PRODUCER_FENCED is INVALID_PRODUCER_EPOCH before v3 (KIP-588).
// In a cluster (issue 14) the group coordinator is often not the transaction's coordinator: it then asks that broker
// whether the group's __consumer_offsets partition is in the producer's ongoing transaction (AddPartitionsToTxn v4
// VerifyOnly, KIP-890 part 1) and stores the offsets pending; a coordinator that is moving or unreachable is answered
// COORDINATOR_NOT_AVAILABLE, which the client retries. Not closed: unlike the local path, which holds the
// transaction's lock across the check and the append, an EndTxn the same producer sends before this answer could
// land its marker between the verdict and the append (clients wait for TxnOffsetCommit before EndTxn).
// ACLs: see HandleAsync.
using Kayak.Broker.Security;
using Kayak.Broker.Services;
using Kayak.Coordinator;
using Kayak.Coordinator.Transactions;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class TxnOffsetCommitHandler(TransactionCoordinator transactions, ITransactionVerifier verifier, GroupCoordinator groups,
    ITopicCatalog catalog, TimeProvider time, IAuthorizer authorizer) : ApiHandler<TxnOffsetCommitRequest>
{
    public override ApiKey Key => ApiKey.TxnOffsetCommit;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, TxnOffsetCommitRequest request)
    {
        long now = time.GetUtcNow().ToUnixTimeMilliseconds();
        // KafkaApis.handleTxnOffsetCommitRequest: WRITE on the transactional id, READ on the group (every partition
        // gets the error), READ on each topic (TOPIC_AUTHORIZATION_FAILED, its offsets not committed).
        ErrorCode? all = !authorizer.TransactionalId(context, AclOperation.Write, request.TransactionalId) ? ErrorCode.TransactionalIdAuthorizationFailed
            : !authorizer.Group(context, AclOperation.Read, request.GroupId) ? ErrorCode.GroupAuthorizationFailed : null;
        var deniedTopics = all is null && authorizer.Acls is not null ? new HashSet<string>(StringComparer.Ordinal) : null;
        if (deniedTopics is not null)
            foreach (var t in request.Topics)
                if (!authorizer.Topic(context, AclOperation.Read, t.Name)) deniedTopics.Add(t.Name);
        var offsets = new List<PendingTxnOffset>();
        foreach (var t in request.Topics)
            foreach (var p in t.Partitions)
                if (PartitionExists(t.Name, p.PartitionIndex) && deniedTopics?.Contains(t.Name) != true)
                    offsets.Add(new PendingTxnOffset(t.Name, p.PartitionIndex, p.CommittedOffset, p.CommittedLeaderEpoch, p.CommittedMetadata, now));
        var error = all ?? groups.ValidateTxnOffsetCommit(request.GroupId,
            context.ApiVersion >= 3 ? request.MemberId : "", context.ApiVersion >= 3 ? request.GenerationId : -1,
            context.ApiVersion >= 3 ? request.GroupInstanceId : null);
        if (error == ErrorCode.None && !(offsets.Count == 0 && deniedTopics is { Count: > 0 }))
        {
            error = transactions.TxnOffsetCommit(request.TransactionalId, request.GroupId, request.ProducerId, request.ProducerEpoch, offsets);
            if (error == ErrorCode.NotCoordinator) error = CommitForRemoteTransaction(request, offsets);
        }
        if (error == ErrorCode.ProducerFenced && context.ApiVersion < 3) error = ErrorCode.InvalidProducerEpoch;
        var response = new TxnOffsetCommitResponse();
        foreach (var t in request.Topics)
        {
            var rt = new TxnOffsetCommitResponse.TxnOffsetCommitResponseTopic { Name = t.Name };
            foreach (var p in t.Partitions)
                rt.Partitions.Add(new TxnOffsetCommitResponse.TxnOffsetCommitResponsePartition
                {
                    PartitionIndex = p.PartitionIndex,
                }.SetError(all ?? (deniedTopics?.Contains(t.Name) == true ? ErrorCode.TopicAuthorizationFailed
                    : PartitionExists(t.Name, p.PartitionIndex) ? error : ErrorCode.UnknownTopicOrPartition)));
            response.Topics.Add(rt);
        }
        return Done(response);
    }

    /// <summary>The transaction is coordinated by another broker: verify the offsets partition is in it there, then store.</summary>
    private ErrorCode CommitForRemoteTransaction(TxnOffsetCommitRequest request, List<PendingTxnOffset> offsets)
    {
        int partition = groups.PartitionFor(request.GroupId);
        var verdict = verifier.Verify(request.TransactionalId, request.ProducerId, request.ProducerEpoch, TopicService.ConsumerOffsetsTopic, partition);
        return verdict switch
        {
            ErrorCode.None => groups.StoreTransactionalOffsets(request.GroupId, request.ProducerId, request.ProducerEpoch, offsets),
            ErrorCode.ProducerFenced or ErrorCode.InvalidProducerEpoch or ErrorCode.InvalidTxnState or ErrorCode.ConcurrentTransactions
                or ErrorCode.TransactionalIdAuthorizationFailed => verdict,
            ErrorCode.InvalidProducerIdMapping => ErrorCode.InvalidTxnState,
            _ => ErrorCode.CoordinatorNotAvailable, // the transaction coordinator is moving, loading or unreachable: retriable
        };
    }

    private bool PartitionExists(string topic, int partition) => catalog.Lookup(topic).InMetadata(partition);
}
