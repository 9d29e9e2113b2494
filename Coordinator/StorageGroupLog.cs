using Kayak.Protocol.Records;
using Kayak.Storage;

namespace Kayak.Coordinator;

/// <summary>
/// <see cref="IGroupLog"/> over Storage: the compacted internal topic <c>__consumer_offsets</c>,
/// created on first use with Kafka's settings for it (cleanup.policy=compact, 100 MiB segments,
/// compression.type=producer), so clients reading it see Kafka's own layout.
/// </summary>
public sealed class StorageGroupLog : IGroupLog
{
    public const string TopicName = "__consumer_offsets";
    private const int ReplayChunkBytes = 1 << 20;
    private readonly TopicLog _topic;

    public StorageGroupLog(LogManager logs, int numPartitions)
    {
        if (!logs.TryGetTopic(TopicName, out var topic))
        {
            topic = logs.CreateTopic(TopicName, numPartitions, new Dictionary<string, string>
            {
                [TopicConfig.CleanupPolicyConfig] = "compact",
                [TopicConfig.SegmentBytesConfig] = "104857600",
                [TopicConfig.CompressionTypeConfig] = "producer",
            });
        }
        if (topic.Partitions.Count < numPartitions)
            throw new InvalidOperationException(
                $"{TopicName} has {topic.Partitions.Count} partitions but offsets.topic.num.partitions is {numPartitions}; groups would move partitions.");
        _topic = topic;
    }

    public TopicLog Topic => _topic;

    public long Append(int partition, ReadOnlySpan<byte> batch) =>
        Partition(partition).Append(batch, 1).BaseOffset;

    public void Replay(int partition, Action<ReadOnlyMemory<byte>> onBatches)
    {
        var log = Partition(partition);
        long offset = log.LogStartOffset;
        while (offset < log.LogEndOffset)
        {
            using var slice = log.Read(offset, ReplayChunkBytes);
            if (slice.IsEmpty) break;
            onBatches(slice.Data);
            long next = NextOffset(slice.Data.Span);
            // Compaction can leave gaps; a slice always starts at or after the requested offset.
            if (next <= offset) break;
            offset = next;
        }
    }

    /// <summary>One past the last offset of the last whole batch in the chunk.</summary>
    private static long NextOffset(ReadOnlySpan<byte> data)
    {
        long next = -1;
        while (RecordBatchHeader.TryRead(data, out var h) && h.TotalSize <= data.Length)
        {
            next = h.LastOffset + 1;
            data = data[h.TotalSize..];
        }
        return next;
    }

    private PartitionLog Partition(int partition) =>
        _topic.GetPartition(partition) ?? throw new InvalidOperationException($"{TopicName} has no partition {partition}.");
}
