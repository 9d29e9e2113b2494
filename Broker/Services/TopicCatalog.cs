using System.Diagnostics.CodeAnalysis;
using Kayak.Protocol;
using Kayak.Storage;

namespace Kayak.Broker.Services;

/// <summary>
/// The topics and partitions this node hosts, as handlers look them up: by name or topic id, and the one place that
/// decides which error a missing topic or partition is answered with. Read-only; lifecycle changes go through
/// <see cref="TopicService"/>.
/// </summary>
internal interface ITopicCatalog
{
    IReadOnlyCollection<TopicLog> All { get; }

    /// <summary>The broker-wide topic config defaults (what a topic without overrides runs with).</summary>
    LogOptions Defaults { get; }

    bool TryGet(string name, [NotNullWhen(true)] out TopicLog? topic);

    TopicLog? Find(Uuid topicId);

    /// <summary>A topic by name; its missing partitions (or all, when it does not exist) are UNKNOWN_TOPIC_OR_PARTITION.</summary>
    TopicLookup Lookup(string name);

    /// <summary>
    /// By name when <paramref name="name"/> is given, else by id (Fetch v13+, which names no topic): an unknown id is
    /// UNKNOWN_TOPIC_ID, a missing partition of a known topic UNKNOWN_TOPIC_OR_PARTITION.
    /// </summary>
    TopicLookup Lookup(string? name, Uuid topicId);
}

/// <summary>The result of one topic lookup; a struct so per-partition loops on the produce and fetch paths allocate nothing.</summary>
internal readonly struct TopicLookup
{
    private readonly ErrorCode _missingTopic;

    public TopicLookup(TopicLog? topic, ErrorCode missingTopic)
    {
        Topic = topic;
        _missingTopic = missingTopic;
    }

    public TopicLog? Topic { get; }

    /// <summary>The partition, or false with the error Kafka answers for it (no message: Kafka sends none here).</summary>
    public bool TryGetPartition(int index, [NotNullWhen(true)] out PartitionLog? log, out KafkaError error)
    {
        log = Topic?.GetPartition(index);
        error = log is not null ? KafkaError.None
            : Topic is null ? new KafkaError(_missingTopic)
            // A partition of the topic that this cluster member is not a replica of (issue 14): Kafka's
            // ReplicaManager.getPartitionOrError answers NOT_LEADER_OR_FOLLOWER for a partition the metadata has but
            // the broker does not host.
            : (uint)index < (uint)Topic.PartitionCount ? new KafkaError(ErrorCode.NotLeaderOrFollower)
            : new KafkaError(ErrorCode.UnknownTopicOrPartition);
        return log is not null;
    }

    public bool Exists(int index) => Topic?.GetPartition(index) is not null;

    /// <summary>
    /// The partition is in the topic's metadata, hosted here or not (issue 14): what the transaction coordinator and the
    /// group coordinator check partitions of a transaction against, as Kafka's coordinators read the metadata cache.
    /// </summary>
    public bool InMetadata(int index) => Topic is not null && (uint)index < (uint)Topic.PartitionCount;
}

/// <summary>The per-partition answer loop every "topics → partitions" handler shares.</summary>
internal static class TopicCatalogExtensions
{
    /// <summary>
    /// Looks <paramref name="topic"/> up once and adds <paramref name="answer"/>'s result for each requested partition
    /// to <paramref name="into"/>; the answer gets the lookup, so a missing topic or partition is answered the same way
    /// everywhere (<see cref="TopicLookup.TryGetPartition"/>). Pass a static method or lambda: state travels in
    /// <paramref name="state"/>, so no closure is allocated.
    /// </summary>
    public static void AnswerPartitions<TState, TPartition, TResult>(this ITopicCatalog catalog, string topic, List<TPartition> partitions,
        List<TResult> into, TState state, Func<TState, TopicLookup, TPartition, TResult> answer)
    {
        var lookup = catalog.Lookup(topic);
        foreach (var p in partitions) into.Add(answer(state, lookup, p));
    }
}

/// <summary><see cref="ITopicCatalog"/> over Storage's <see cref="LogManager"/>.</summary>
internal sealed class TopicCatalog : ITopicCatalog
{
    private readonly LogManager _logs;

    public TopicCatalog(LogManager logs) { _logs = logs; }

    public IReadOnlyCollection<TopicLog> All => _logs.Topics;
    public LogOptions Defaults => _logs.Options;

    public bool TryGet(string name, [NotNullWhen(true)] out TopicLog? topic)
    {
        bool found = _logs.TryGetTopic(name, out var t);
        topic = found ? t : null;
        return found;
    }

    public TopicLog? Find(Uuid topicId) => _logs.GetTopic(topicId);

    public TopicLookup Lookup(string name)
    {
        TryGet(name, out var topic);
        return new TopicLookup(topic, ErrorCode.UnknownTopicOrPartition);
    }

    public TopicLookup Lookup(string? name, Uuid topicId) =>
        name is not null ? Lookup(name) : new TopicLookup(_logs.GetTopic(topicId), ErrorCode.UnknownTopicId);
}
