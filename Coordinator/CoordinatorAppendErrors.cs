using Kayak.Protocol;

namespace Kayak.Coordinator;

/// <summary>
/// How the coordinators answer a refused append of their records, one table for both: Kafka's group coordinator
/// (GroupCoordinatorService.normalizeException over the CoordinatorRuntime's append) and transaction coordinator
/// (TransactionStateManager.appendTransactionToLog) map the log's errors the same way.
/// </summary>
public static class CoordinatorAppendErrors
{
    /// <summary>
    /// How a coordinator log refuses an append: an I/O or storage error, a closed or missing log, a wait for the ISR
    /// that timed out or lost the leadership (<see cref="CoordinatorAppendException"/>).
    /// </summary>
    public static bool IsAppendFailure(Exception e) =>
        e is IOException or InvalidOperationException or ObjectDisposedException or Kayak.Storage.StorageErrorException
            or CoordinatorAppendException;

    /// <summary>
    /// The coordinator's answer for <paramref name="e"/>: a missing partition (here also an internal topic that cannot
    /// be created, a closed log, an I/O error outside Storage's own reporting), too few replicas or an ISR wait that
    /// timed out is COORDINATOR_NOT_AVAILABLE; a lost leadership or a storage error NOT_COORDINATOR (the client looks
    /// the coordinator up again); a batch over max.message.bytes UNKNOWN_SERVER_ERROR; anything else its own code.
    /// </summary>
    public static ErrorCode Map(Exception e) => e is not KafkaException k ? ErrorCode.CoordinatorNotAvailable : k.Code switch
    {
        ErrorCode.UnknownTopicOrPartition or ErrorCode.NotEnoughReplicas or ErrorCode.NotEnoughReplicasAfterAppend or ErrorCode.RequestTimedOut
            => ErrorCode.CoordinatorNotAvailable,
        ErrorCode.NotLeaderOrFollower or ErrorCode.KafkaStorageError => ErrorCode.NotCoordinator,
        ErrorCode.MessageTooLarge or ErrorCode.RecordListTooLarge or ErrorCode.InvalidFetchSize => ErrorCode.UnknownServerError,
        var other => other,
    };
}
