using Microsoft.Extensions.Logging;
using Kayak.Protocol;

namespace Kayak.Storage;

/// <summary>
/// Replica logs of a cluster member (issue 14): a broker holds logs only for the partitions it is a replica of, as
/// Kafka's LogManager does. A partition reassigned here gets a log (<see cref="CreateReplica"/>); one reassigned away
/// loses it (<see cref="DeleteReplica"/>), the way Kafka's LogManager.asyncDelete removes a stray or removed replica.
/// </summary>
public sealed partial class LogManager
{
    /// <summary>
    /// Creates the empty log of partition <paramref name="partition"/> of <paramref name="name"/> on this broker (a
    /// replica assigned here); the topic must exist and the partition must not be hosted yet. Grows the topic to
    /// <paramref name="total"/> partitions first when it has fewer (a broker that missed a CreatePartitions).
    /// </summary>
    public PartitionLog CreateReplica(string name, int partition, int total)
    {
        lock (_lock)
        {
            EnsureOpen();
            if (!_byName.TryGetValue(name, out var topic))
                throw new StorageErrorException(ErrorCode.UnknownTopicOrPartition, $"Topic '{name}' does not exist.");
            var parts = Grow(topic, total);
            if ((uint)partition >= (uint)parts.Length)
                throw new StorageErrorException(ErrorCode.UnknownTopicOrPartition, $"Topic '{name}' has no partition {partition}.");
            if (parts[partition] is { } existing) return existing;
            CreatePartitions(topic, parts, partition, partition + 1, null);
            // The topic file records the partition count: the new partition must not make a restart shrink the topic.
            if (partition + 1 < parts.Length)
                TopicMetadataFiles.WriteTopicFile(parts[partition].Dir, name, topic.TopicId, topic.Config.Overrides, parts.Length);
            TryWriteCheckpoints();
            return parts[partition];
        }
    }

    /// <summary>
    /// Grows a topic's partition array to <paramref name="total"/> without creating logs (the new partitions are
    /// replicated by other brokers). No-op when it has as many already.
    /// </summary>
    public void ExtendPartitions(string name, int total)
    {
        lock (_lock)
        {
            EnsureOpen();
            if (_byName.TryGetValue(name, out var topic)) Grow(topic, total);
        }
    }

    /// <summary>The topic's partition array, grown to <paramref name="total"/> (no logs for the new entries) when shorter. Under the lock.</summary>
    private static PartitionLog[] Grow(TopicLog topic, int total)
    {
        var parts = topic.PartitionArray;
        if (parts.Length >= total) return parts;
        var grown = new PartitionLog[total];
        Array.Copy(parts, grown, parts.Length);
        topic.SetPartitions(grown);
        return grown;
    }

    /// <summary>
    /// Removes this broker's log of one partition (a reassignment moved the replica away; a stray log at start), as
    /// Kafka's LogManager.asyncDelete: the partition stops accepting appends and leaves the topic at once, its directory
    /// is renamed <c>&lt;topic&gt;-&lt;p&gt;.&lt;uuid&gt;-delete</c> and removed after <see cref="LogOptions.FileDeleteDelayMs"/>
    /// (a restart meanwhile removes it at load). False when the partition was not hosted here.
    /// </summary>
    public bool DeleteReplica(string name, int partition)
    {
        lock (_lock)
        {
            EnsureOpen();
            if (!_byName.TryGetValue(name, out var topic)) return false;
            var parts = topic.PartitionArray;
            if ((uint)partition >= (uint)parts.Length || parts[partition] is not { } log) return false;
            // A new array: readers that took the old one keep a consistent view (the log is closed for appends).
            var next = (PartitionLog[])parts.Clone();
            next[partition] = null!;
            topic.SetPartitions(next);
            string target = Retire(log);
            TryWriteCheckpoints();
            long delay = _options.FileDeleteDelayMs;
            if (delay <= 0) TryDeleteDirectory(target);
            else _ = DeleteLater(target, TimeSpan.FromMilliseconds(delay), _options.Time);
            _log.LogInformation("Deleted the log of {Topic}-{Partition}: renamed to {Target}, removed after {Delay} ms", name, partition, target, delay);
            return true;
        }
    }

    private static async Task DeleteLater(string dir, TimeSpan delay, TimeProvider time)
    {
        await Task.Delay(delay, time).ConfigureAwait(false);
        TryDeleteDirectory(dir);
    }
}
