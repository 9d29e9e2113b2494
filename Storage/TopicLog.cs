using Kayak.Protocol;

namespace Kayak.Storage;

/// <summary>A topic: its id, config and partitions (partition i at index i).</summary>
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

    /// <summary>Partition by index, or null when out of range.</summary>
    public PartitionLog? GetPartition(int partition)
    {
        var p = Volatile.Read(ref _partitions);
        return (uint)partition < (uint)p.Length ? p[partition] : null;
    }
}
