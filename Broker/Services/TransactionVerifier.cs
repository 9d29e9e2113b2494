using Kayak.Coordinator.Transactions;
using Kayak.Protocol;

namespace Kayak.Broker.Services;

/// <summary>
/// What Produce asks the transaction coordinator (KIP-890 part 1): is this partition in the producer's ongoing
/// transaction? Narrow so the produce path depends on one question, not on the whole coordinator.
/// </summary>
internal interface ITransactionVerifier
{
    /// <param name="transactionalId">The Produce request's (v3+): in a cluster it names the coordinator to ask.</param>
    ErrorCode CheckProduce(string? transactionalId, long producerId, short producerEpoch, string topic, int partition);

    /// <summary>
    /// The coordinator's own verdict (PRODUCER_FENCED, INVALID_TXN_STATE, CONCURRENT_TRANSACTIONS, ...) without the
    /// produce path's mapping: a group coordinator verifying a TxnOffsetCommit for a transaction coordinated elsewhere.
    /// </summary>
    ErrorCode Verify(string transactionalId, long producerId, short producerEpoch, string topic, int partition);
}

/// <summary>A single broker: it is every transaction's coordinator and asks it in process.</summary>
internal sealed class CoordinatorTransactionVerifier(TransactionCoordinator transactions) : ITransactionVerifier
{
    public ErrorCode CheckProduce(string? transactionalId, long producerId, short producerEpoch, string topic, int partition) =>
        transactions.CheckProduce(producerId, producerEpoch, topic, partition);

    public ErrorCode Verify(string transactionalId, long producerId, short producerEpoch, string topic, int partition) =>
        transactions.CheckProduce(producerId, producerEpoch, topic, partition);
}
