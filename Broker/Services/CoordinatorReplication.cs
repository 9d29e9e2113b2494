using Kayak.Storage;

namespace Kayak.Broker.Services;

/// <summary>
/// Issue 14: the group coordinator appends its records (offset commits) as Kafka does, with acks=-1, and answers only
/// once the __consumer_offsets partition's high watermark passes them, so an ISR member that takes over after a crash
/// has every acknowledged commit. Reuses the acks=all wait (PartitionLog.WaitForHighWatermarkAsync, woken by the ISR's
/// fetches), async. A single broker does not wait (its high watermark is its log end).
/// Not done: the write is already applied in memory when the wait times out (Kafka reverts its snapshot).
/// </summary>
internal sealed class CoordinatorReplication(ITopicCatalog catalog, IPartitionLeadership leadership, TimeProvider time)
{
    /// <summary>Kafka's offsets.commit.timeout.ms default: how long a commit waits for the ISR.</summary>
    public const int CommitTimeoutMs = 5000;

    public bool Replicated => leadership.Replicated;

    /// <summary>
    /// True once every record appended so far to <paramref name="partition"/> of __consumer_offsets is in the ISR;
    /// false at the timeout or when this broker stopped leading it (the caller answers COORDINATOR_NOT_AVAILABLE).
    /// </summary>
    public async ValueTask<bool> WaitForIsrAsync(int partition)
    {
        if (!leadership.Replicated) return true;
        if (catalog.Lookup(InternalTopics.ConsumerOffsets).Topic?.GetPartition(partition) is not { } log) return true;
        long last = log.LogEndOffset - 1;
        if (last < 0) return true;
        leadership.LeaderAppended(log); // the ISR may be the leader alone
        if (log.HighWatermark > last) return true;
        using var timeout = new CancellationTokenSource(TimeSpan.FromMilliseconds(CommitTimeoutMs), time);
        try
        {
            await log.WaitForHighWatermarkAsync(last, timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        return log.HighWatermark > last;
    }
}
