using Kayak.Broker.Cluster;
using Kayak.Broker.Services;
using Kayak.Coordinator.Transactions;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Transactions;

/// <summary>
/// The produce-time transaction check in a cluster (issue 14, KIP-890 part 1), as Kafka's AddPartitionsToTxnManager: a
/// partition leader that coordinates the producer's transactional id asks its own coordinator; otherwise it sends
/// AddPartitionsToTxn v4 with VerifyOnly to the leader of the id's <c>__transaction_state</c> partition and answers
/// with its verdict: PRODUCER_FENCED becomes INVALID_PRODUCER_EPOCH (what the produce path returns, as Kafka), an
/// unknown producer id mapping INVALID_TXN_STATE (as the local check answers it), and a coordinator that is moving,
/// loading or unreachable COORDINATOR_NOT_AVAILABLE / NOT_COORDINATOR / COORDINATOR_LOAD_IN_PROGRESS / NETWORK_EXCEPTION,
/// which the produce path turns into the retriable NOT_ENOUGH_REPLICAS. The caller has taken the partition's
/// verification guard before asking, so a marker that lands between this answer and the append still refuses the batch.
/// One request per verification (Kafka batches them per coordinator): it is asked only for a producer's first batch in
/// a partition per transaction. The call blocks the produce request's thread until the coordinator answers.
/// </summary>
internal sealed class ClusterTransactionVerifier(TransactionCoordinator local, IPartitionLeadership leadership, int nodeId,
    int transactionStatePartitions, InterBrokerClient client) : ITransactionVerifier
{
    private const short VerifyVersion = 4;

    public ErrorCode CheckProduce(string? transactionalId, long producerId, short producerEpoch, string topic, int partition)
    {
        if (string.IsNullOrEmpty(transactionalId)) return local.CheckProduce(producerId, producerEpoch, topic, partition);
        return MapVerdict(Verify(transactionalId, producerId, producerEpoch, topic, partition));
    }

    public ErrorCode Verify(string transactionalId, long producerId, short producerEpoch, string topic, int partition)
    {
        int coordinator = leadership.Describe(TopicService.TransactionStateTopic,
            TransactionCoordinator.PartitionFor(transactionalId, transactionStatePartitions)).Leader;
        if (coordinator == nodeId) return local.CheckProduce(producerId, producerEpoch, topic, partition);
        if (coordinator < 0) return ErrorCode.CoordinatorNotAvailable;
        return Ask(coordinator, transactionalId, producerId, producerEpoch, topic, partition);
    }

    /// <summary>The coordinator's answer as the produce path reports it (Kafka's AddPartitionsToTxnManager / ReplicaManager).</summary>
    internal static ErrorCode MapVerdict(ErrorCode verdict) => verdict switch
    {
        ErrorCode.ProducerFenced => ErrorCode.InvalidProducerEpoch,
        ErrorCode.InvalidProducerIdMapping => ErrorCode.InvalidTxnState,
        _ => verdict,
    };

    private ErrorCode Ask(int coordinator, string transactionalId, long producerId, short producerEpoch, string topic, int partition)
    {
        var request = new AddPartitionsToTxnRequest();
        var txn = new AddPartitionsToTxnRequest.AddPartitionsToTxnTransaction
        {
            TransactionalId = transactionalId, ProducerId = producerId, ProducerEpoch = producerEpoch, VerifyOnly = true,
        };
        txn.Topics.Add(new AddPartitionsToTxnRequest.AddPartitionsToTxnTopic { Name = topic, Partitions = [partition] });
        request.Transactions.Add(txn);
        AddPartitionsToTxnResponse response;
        try
        {
            response = client.SendAsync<AddPartitionsToTxnResponse>(coordinator, request, ApiKey.AddPartitionsToTxn, VerifyVersion)
                .GetAwaiter().GetResult();
        }
        catch (IOException) { return ErrorCode.NetworkException; }
        if (response.Error() != ErrorCode.None) return response.Error();
        foreach (var r in response.ResultsByTransaction)
            foreach (var t in r.TopicResults)
                foreach (var p in t.ResultsByPartition)
                    if (t.Name == topic && p.PartitionIndex == partition) return p.Error();
        return ErrorCode.UnknownServerError;
    }
}
