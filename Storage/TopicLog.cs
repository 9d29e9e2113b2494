using Kayak.Protocol;

namespace Kayak.Storage;

/// <summary>
/// A topic: its id, config and partitions (partition i at index i; <see cref="Partitions"/>.Count is the topic's
/// partition count). On a member of a replicated cluster (<see cref="LogOptions.Replicated"/>) the broker holds logs
/// only for the partitions it is a replica of, as Kafka's LogManager does: the entry of any other partition is null
/// (use <see cref="GetPartition"/>, or skip nulls when iterating). A single broker hosts them all.
/// </summary>
public sealed class TopicLog
{
    private TopicConfig _config;
    private PartitionLog[] _partitions = [];

    public string Name { get; }
    public Uuid TopicId { get; }
    public TopicConfig Config => Volatile.Read(ref _config);
    public IReadOnlyList<PartitionLog> Partitions => Volatile.Read(ref _partitions);

    internal TopicLog(string name, Uuid topicId, TopicConfig config)
    {
        Name = name;
        TopicId = topicId;
        _config = config;
    }

    internal void SetConfig(TopicConfig config) => Volatile.Write(ref _config, config);
    internal void SetPartitions(PartitionLog[] partitions) => Volatile.Write(ref _partitions, partitions);
    internal PartitionLog[] PartitionArray => Volatile.Read(ref _partitions);

    /// <summary>Number of partitions of the topic (hosted here or not).</summary>
    public int PartitionCount => Volatile.Read(ref _partitions).Length;

    /// <summary>Partition by index, or null when out of range or not hosted by this broker.</summary>
    public PartitionLog? GetPartition(int partition)
    {
        var p = Volatile.Read(ref _partitions);
        return (uint)partition < (uint)p.Length ? p[partition] : null;
    }
}
