using Kayak.Protocol;

namespace Kayak.Coordinator.Transactions;

/// <summary>Kafka's TransactionState, with the ids stored in TransactionLogValue.TransactionStatus.</summary>
public enum TransactionState : sbyte
{
    Empty = 0,
    Ongoing = 1,
    PrepareCommit = 2,
    PrepareAbort = 3,
    CompleteCommit = 4,
    CompleteAbort = 5,
    Dead = 6,
    PrepareEpochFence = 7,
}

/// <summary>A topic partition taking part in a transaction.</summary>
public readonly record struct TxnPartition(string Topic, int Partition);

/// <summary>An offset committed inside a transaction, made visible to the group when the transaction commits.</summary>
public readonly record struct PendingTxnOffset(string Topic, int Partition, long Offset, int LeaderEpoch, string? Metadata, long CommitTimestampMs);

/// <summary>
/// One transactional.id as the coordinator knows it (Kafka's TransactionMetadata). Its fields change only by
/// replaying a TransactionLogValue record (<see cref="TransactionCoordinator"/>'s Replay), on the write path once
/// the record is in the log, and at load; the setters are for that replay alone.
/// </summary>
public sealed class TransactionMetadata
{
    public TransactionMetadata(string transactionalId) { TransactionalId = transactionalId; }

    public string TransactionalId { get; }
    public long ProducerId { get; internal set; } = -1;
    /// <summary>The producer id before an epoch-exhaustion rollover (-1 when none).</summary>
    public long PreviousProducerId { get; internal set; } = -1;
    public short ProducerEpoch { get; internal set; } = -1;
    public int TimeoutMs { get; internal set; }
    public TransactionState State { get; internal set; } = TransactionState.Empty;
    public HashSet<TxnPartition> Partitions { get; } = new();
    public long StartTimestampMs { get; internal set; } = -1;
    public long LastUpdateTimestampMs { get; internal set; } = -1;

    /// <summary>
    /// Guards every field above (Kafka's TransactionMetadata.inLock): transactions of different ids never wait for
    /// each other. EndTxn lets go of it while it writes the markers; the Prepare state answers the transaction's
    /// other requests meanwhile (CONCURRENT_TRANSACTIONS), as Kafka's pending state does.
    /// </summary>
    internal object Sync { get; } = new();
    /// <summary>False while created by InitProducerId and not yet persisted (invisible), or once expired and tombstoned (gone).</summary>
    internal bool Live { get; set; }
    /// <summary>
    /// An EndTxn (or the timer) is writing this prepared transaction's markers with the lock let go (Kafka's
    /// pendingState for the Complete transition): the timer's retry of stuck prepared transactions leaves it alone.
    /// </summary>
    internal bool Completing { get; set; }

    /// <summary>Kafka's TransactionState.stateName, as DescribeTransactions and ListTransactions spell it.</summary>
    public static string StateName(TransactionState s) => s switch
    {
        TransactionState.Empty => "Empty",
        TransactionState.Ongoing => "Ongoing",
        TransactionState.PrepareCommit => "PrepareCommit",
        TransactionState.PrepareAbort => "PrepareAbort",
        TransactionState.CompleteCommit => "CompleteCommit",
        TransactionState.CompleteAbort => "CompleteAbort",
        TransactionState.Dead => "Dead",
        _ => "PrepareEpochFence",
    };
}

/// <summary>Answer to InitProducerId.</summary>
public readonly record struct InitProducerIdResult(ErrorCode Error, long ProducerId, short ProducerEpoch);

/// <summary>A read-only view of one transaction (DescribeTransactions / ListTransactions).</summary>
public sealed record TransactionDescription(string TransactionalId, long ProducerId, short ProducerEpoch, TransactionState State,
    int TimeoutMs, long StartTimestampMs, IReadOnlyList<TxnPartition> Partitions);

/// <summary>
/// Where the coordinator keeps its records: the partitions of <c>__transaction_state</c>. The broker
/// implements it over Storage; <see cref="InMemoryTransactionLog"/> serves tests.
/// </summary>
public interface ITransactionLog
{
    /// <summary>
    /// Appends one v2 batch (base offset 0; the log assigns offsets) durably enough to acknowledge. A refused append
    /// throws (IOException, StorageErrorException, ...); the coordinator then changes nothing and answers
    /// COORDINATOR_NOT_AVAILABLE.
    /// </summary>
    void Append(int partition, ReadOnlySpan<byte> batch);
    /// <summary>Calls <paramref name="onBatches"/> with chunks of whole batches, in log order.</summary>
    void Replay(int partition, Action<ReadOnlyMemory<byte>> onBatches);
}

/// <summary>Writes commit/abort markers into data partitions (the leader side of WriteTxnMarkers, one node).</summary>
public interface ITransactionMarkerWriter
{
    /// <summary>
    /// Appends the marker; returns NONE, or an error to log (UNKNOWN_TOPIC_OR_PARTITION for a deleted
    /// partition is ignored, as Kafka drops markers for partitions that no longer exist).
    /// </summary>
    ErrorCode WriteMarker(TxnPartition partition, long producerId, short producerEpoch, int coordinatorEpoch, bool commit);
}

/// <summary>
/// The group coordinator's side of a transaction's offsets (Kafka: GroupMetadataManager.storeOffsets with a
/// producer id, and handleTxnCompletion after the marker of the group's <c>__consumer_offsets</c> partition).
/// </summary>
public interface ITxnOffsetSink
{
    /// <summary>
    /// Appends TxnOffsetCommit offsets to the group's partition now, as a transactional batch of the producer,
    /// pending until the transaction ends. Returns NONE when stored, else Kafka's error for the producer.
    /// </summary>
    ErrorCode StoreTransactionalOffsets(string groupId, long producerId, short producerEpoch, IReadOnlyList<PendingTxnOffset> offsets);

    /// <summary>
    /// Writes the commit/abort marker of <c>__consumer_offsets</c>-<paramref name="offsetsPartition"/> for the
    /// producer, then materializes (commit) or drops (abort) its pending offsets there. Safe to repeat. Throws
    /// <see cref="IOException"/> when the marker cannot be written.
    /// </summary>
    void CompleteTransaction(int offsetsPartition, long producerId, short producerEpoch, bool commit);
}

/// <summary>
/// Test fault hook of the transaction coordinator: called once the PrepareCommit/PrepareAbort state is persisted and
/// before the first marker is written (also when recovery finishes a prepared transaction on load). Integration
/// tests block in it and crash the broker there; an exception thrown here leaves the transaction prepared, for
/// the timer (AbortTimedOutTransactions) or recovery to finish, while EndTxn still answers NONE. Null in a real deployment.
/// </summary>
public interface ITransactionMarkerHook
{
    void BeforeMarkers(string transactionalId, long producerId, short producerEpoch, bool commit);
}

/// <summary>Hands out producer ids that never repeat, also across restarts.</summary>
public interface IProducerIdAllocator
{
    long NextProducerId();
}

/// <summary>Knobs of the transaction coordinator (Kafka's transaction.* broker configs).</summary>
public sealed class TransactionCoordinatorOptions
{
    /// <summary>transaction.state.log.num.partitions.</summary>
    public int NumPartitions { get; init; } = 50;
    /// <summary>offsets.topic.num.partitions: AddOffsetsToTxn adds the group's __consumer_offsets partition.</summary>
    public int OffsetsTopicNumPartitions { get; init; } = 50;
    /// <summary>transaction.max.timeout.ms: larger client timeouts get INVALID_TRANSACTION_TIMEOUT.</summary>
    public int MaxTimeoutMs { get; init; } = 900_000;
    /// <summary>transactional.id.expiration.ms: idle completed transactional ids are forgotten.</summary>
    public long TransactionalIdExpirationMs { get; init; } = 604_800_000;
    public TimeProvider Time { get; init; } = TimeProvider.System;
    /// <summary>Test fault hook, see <see cref="ITransactionMarkerHook"/>; null in a real deployment.</summary>
    public ITransactionMarkerHook? MarkerHook { get; init; }
    /// <summary>Where EndTxn reports markers it could not write after the outcome was decided (left to the timer).</summary>
    public Microsoft.Extensions.Logging.ILogger Logger { get; init; } = Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
}
