using Kayak.Coordinator.Transactions;
using Kayak.Protocol;

namespace Kayak.Broker.Services;

/// <summary>
/// What Produce asks the transaction coordinator (KIP-890 part 1): is this partition in the producer's ongoing
/// transaction? Narrow so the produce path depends on one question, not on the whole coordinator.
/// </summary>
internal interface ITransactionVerifier
{
    ErrorCode CheckProduce(long producerId, short producerEpoch, string topic, int partition);
}

internal sealed class CoordinatorTransactionVerifier(TransactionCoordinator transactions) : ITransactionVerifier
{
    public ErrorCode CheckProduce(long producerId, short producerEpoch, string topic, int partition) =>
        transactions.CheckProduce(producerId, producerEpoch, topic, partition);
}
