using Kayak.Coordinator;
using Kayak.Protocol;
using Kayak.Storage;

namespace Kayak.Broker.Services;

/// <summary>
/// Issue 14: the coordinators append their records as Kafka's CoordinatorRuntime / TransactionStateManager do, with
/// acks=-1: an append returns only once the internal partition's high watermark passes it, so an ISR member that
/// takes over after a crash has every acknowledged group, offset and transaction record. It sits under every
/// coordinator write (<see cref="ReplicatedGroupLog"/> for __consumer_offsets: group metadata of Join/Sync, offset
/// and transactional offset commits, KIP-848 records, markers; TransactionStateLog for __transaction_state). On a
/// timeout (offsets.commit.timeout.ms, 5000) or a lost leadership (at once, not at the timeout) it throws <see cref="CoordinatorAppendException"/>,
/// and the coordinator leaves its in-memory state as it was and answers the mapped error (COORDINATOR_NOT_AVAILABLE /
/// NOT_COORDINATOR). A single broker does not wait (its high watermark is its log end).
/// The wait blocks the writing thread (the coordinators' write paths are synchronous under the group's or the
/// transaction's lock); the high watermark is moved by the followers' fetches on other threads.
/// </summary>
internal sealed class CoordinatorReplication(ITopicCatalog catalog, Func<IPartitionLeadership?> leadership, TimeProvider time)
{
    /// <summary>Kafka's offsets.commit.timeout.ms default: how long a coordinator write waits for the ISR.</summary>
    public const int CommitTimeoutMs = 5000;

    /// <summary>The leader epoch a coordinator stamps on what it appends (-1 on a single broker), as every leader append.</summary>
    public int LeaderEpoch(string topic, int partition) => leadership() is { } lead ? lead.AppendLeaderEpoch(topic, partition) : -1;

    /// <summary>
    /// Returns once every record appended so far to <paramref name="partition"/> of <paramref name="topic"/> is in the
    /// ISR; throws <see cref="CoordinatorAppendException"/> at the timeout or when this broker no longer leads it.
    /// </summary>
    public void WaitForIsr(string topic, int partition)
    {
        if (leadership() is not { Replicated: true } lead) return;
        if (catalog.Lookup(topic).Topic?.GetPartition(partition) is not { } log) return;
        long last = log.LogEndOffset - 1;
        if (last < 0) return;
        lead.LeaderAppended(log); // the ISR may be the leader alone
        if (log.HighWatermark > last) return;
        using var timeout = new CancellationTokenSource(TimeSpan.FromMilliseconds(CommitTimeoutMs), time);
        // Synchronous: the coordinators' write paths hold the group's or the transaction's lock.
        var error = lead.WaitForIsrAsync(log, last, lead.AppendLeaderEpoch(topic, partition), timeout.Token).AsTask().GetAwaiter().GetResult();
        if (error == ErrorCode.NotLeaderOrFollower)
            throw new CoordinatorAppendException(error, $"{topic}-{partition} is no longer led here.");
        if (error != ErrorCode.None)
            throw new CoordinatorAppendException(error, $"{topic}-{partition}: the ISR did not reach offset {last} within {CommitTimeoutMs} ms.");
    }
}

/// <summary>The group coordinator's log in a cluster: <see cref="StorageGroupLog"/>, each append waiting for the ISR.</summary>
internal sealed class ReplicatedGroupLog(IGroupLog inner, CoordinatorReplication replication) : IGroupLog
{
    public long Append(int partition, ReadOnlySpan<byte> batch)
    {
        long baseOffset = inner.Append(partition, batch);
        replication.WaitForIsr(InternalTopics.ConsumerOffsets, partition);
        return baseOffset;
    }

    public long AppendEndTxnMarker(int partition, long producerId, short producerEpoch, int coordinatorEpoch, bool commit)
    {
        long offset = inner.AppendEndTxnMarker(partition, producerId, producerEpoch, coordinatorEpoch, commit);
        replication.WaitForIsr(InternalTopics.ConsumerOffsets, partition);
        return offset;
    }

    public void Replay(int partition, Action<ReadOnlyMemory<byte>> onBatches) => inner.Replay(partition, onBatches);

    public bool IsEmpty => inner.IsEmpty;
}
