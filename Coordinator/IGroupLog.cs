namespace Kayak.Coordinator;

/// <summary>
/// Where the coordinator keeps its records: the partitions of <c>__consumer_offsets</c>. The broker
/// implements it over Storage; <see cref="InMemoryGroupLog"/> serves tests.
/// </summary>
public interface IGroupLog
{
    /// <summary>
    /// Appends one magic v2 record batch (written with base offset 0; the log assigns real offsets)
    /// to the partition, durably enough that a commit may be acknowledged. Returns the base offset.
    /// </summary>
    long Append(int partition, ReadOnlySpan<byte> batch);

    /// <summary>
    /// Appends a transaction's commit/abort marker (control batch) for <paramref name="producerId"/>, as the
    /// transaction coordinator's WriteTxnMarkers does for the group's partition: after it, replay resolves the
    /// producer's pending TxnOffsetCommit records. Returns the marker's offset.
    /// </summary>
    long AppendEndTxnMarker(int partition, long producerId, short producerEpoch, int coordinatorEpoch, bool commit);

    /// <summary>
    /// Replays the partition from its start: calls <paramref name="onBatches"/> with chunks that
    /// hold one or more whole record batches, in log order.
    /// </summary>
    void Replay(int partition, Action<ReadOnlyMemory<byte>> onBatches);

    /// <summary>True when nothing was ever written, so loading can skip replaying every partition.</summary>
    bool IsEmpty => false;
}

/// <summary>A list of batches per partition, for tests and for brokers without durable storage.</summary>
public sealed class InMemoryGroupLog : IGroupLog
{
    private readonly Dictionary<int, List<byte[]>> _partitions = new();
    private readonly Dictionary<int, long> _nextOffset = new();
    private readonly Lock _lock = new();

    public long Append(int partition, ReadOnlySpan<byte> batch)
    {
        lock (_lock)
        {
            var copy = batch.ToArray();
            _nextOffset.TryGetValue(partition, out long baseOffset);
            // Stamp the base offset as a log would; the CRC does not cover it.
            System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(copy, baseOffset);
            int count = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(copy.AsSpan(Kayak.Protocol.Records.RecordBatchHeader.RecordsCountOffset));
            _nextOffset[partition] = baseOffset + count;
            if (!_partitions.TryGetValue(partition, out var list)) _partitions[partition] = list = new List<byte[]>();
            list.Add(copy);
            return baseOffset;
        }
    }

    public long AppendEndTxnMarker(int partition, long producerId, short producerEpoch, int coordinatorEpoch, bool commit) =>
        Append(partition, CoordinatorBatch.EncodeEndTxnMarker(producerId, producerEpoch, coordinatorEpoch, commit, 0));

    public void Replay(int partition, Action<ReadOnlyMemory<byte>> onBatches)
    {
        byte[][] batches;
        lock (_lock)
        {
            if (!_partitions.TryGetValue(partition, out var list)) return;
            batches = list.ToArray();
        }
        foreach (var b in batches) onBatches(b);
    }

    /// <summary>Batches of one partition, in order (tests decode them).</summary>
    public IReadOnlyList<byte[]> Batches(int partition)
    {
        lock (_lock) return _partitions.TryGetValue(partition, out var list) ? list.ToArray() : [];
    }

    /// <summary>Partitions that have records.</summary>
    public IReadOnlyCollection<int> Partitions
    {
        get { lock (_lock) return _partitions.Keys.ToArray(); }
    }
}

/// <summary>
/// A coordinator log refused to acknowledge an append after writing it (issue 14): in a cluster the records must reach
/// the partition's ISR before the coordinator applies them, as Kafka's CoordinatorRuntime appends with acks=-1 and
/// answers only at the high watermark. <see cref="KafkaException.Code"/> is the produce-path error (REQUEST_TIMED_OUT
/// when the ISR did not catch up in offsets.commit.timeout.ms, NOT_LEADER_OR_FOLLOWER when leadership moved away);
/// the coordinators map it as Kafka's GroupCoordinatorService / TransactionStateManager do. The records may still be
/// in the leader's log (and be replicated later, as in Kafka); what the coordinator holds in memory does not change.
/// </summary>
public sealed class CoordinatorAppendException(Kayak.Protocol.ErrorCode code, string message) : Kayak.Protocol.KafkaException(code, message);
