using Kayak.Storage;

namespace Kayak.Coordinator;

/// <summary>
/// <see cref="IGroupLog"/> over Storage: the compacted internal topic <c>__consumer_offsets</c>, created on the
/// first write (as Kafka creates it on first use), so a broker that never sees a group starts without 50
/// partitions. The broker passes its own creator (offsets.topic.segment.bytes, Kafka's internal-topic configs);
/// the default here uses Kafka's settings for it (cleanup.policy=compact, 100 MiB segments, compression.type=producer).
/// </summary>
public sealed class StorageGroupLog : IGroupLog
{
    public const string TopicName = InternalTopics.ConsumerOffsets;
    private const int ReplayChunkBytes = 1 << 20;
    private readonly LogManager _logs;
    private readonly int _numPartitions;
    private readonly Func<TopicLog> _create;
    private readonly Func<int, int>? _leaderEpoch;
    private readonly Lock _lock = new();
    private TopicLog? _topic;

    /// <param name="leaderEpoch">
    /// In a cluster, the leader epoch of a partition, stamped on every batch appended to it as Kafka's appendAsLeader
    /// does, so a follower that becomes leader truncates a deposed leader's unreplicated records by OffsetForLeaderEpoch
    /// as in any other topic (issue 14). Null on a single broker: batches keep the -1 they are written with.
    /// </param>
    public StorageGroupLog(LogManager logs, int numPartitions, Func<TopicLog>? createTopic = null, Func<int, int>? leaderEpoch = null)
    {
        _logs = logs;
        _numPartitions = numPartitions;
        _leaderEpoch = leaderEpoch;
        _create = createTopic ?? (() => logs.CreateTopic(TopicName, numPartitions, InternalTopics.ConsumerOffsetsConfigs()));
        if (logs.TryGetTopic(TopicName, out var existing)) _topic = Checked(existing);
    }

    private TopicLog Checked(TopicLog topic) => topic.Partitions.Count >= _numPartitions ? topic
        : throw new InvalidOperationException(
            $"{TopicName} has {topic.Partitions.Count} partitions but offsets.topic.num.partitions is {_numPartitions}; groups would move partitions.");

    /// <summary>The topic, created now if it does not exist yet.</summary>
    public TopicLog Topic
    {
        get
        {
            if (_topic is { } t) return t;
            lock (_lock)
                return _topic ??= Checked(_logs.TryGetTopic(TopicName, out var existing) ? existing : _create());
        }
    }

    public long Append(int partition, ReadOnlySpan<byte> batch) =>
        Partition(partition).Append(batch, 1, LeaderEpoch(partition)).BaseOffset;

    public long AppendEndTxnMarker(int partition, long producerId, short producerEpoch, int coordinatorEpoch, bool commit) =>
        Partition(partition).AppendEndTxnMarker(producerId, producerEpoch, coordinatorEpoch, commit, LeaderEpoch(partition)).BaseOffset;

    private int LeaderEpoch(int partition) => _leaderEpoch?.Invoke(partition) ?? -1;

    /// <summary>The topic does not exist yet: it is created on the first write.</summary>
    public bool IsEmpty => _topic is null && !_logs.TryGetTopic(TopicName, out _);

    public void Replay(int partition, Action<ReadOnlyMemory<byte>> onBatches)
    {
        if (IsEmpty) return; // nothing written yet
        // A cluster member holds only the partitions it replicates (issue 14): nothing to load for the others.
        if (Topic.GetPartition(partition) is not { } log) return;
        log.Replay(onBatches, ReplayChunkBytes);
    }

    private PartitionLog Partition(int partition) =>
        Topic.GetPartition(partition) ?? throw new InvalidOperationException($"{TopicName} has no partition {partition}.");
}
