using Kayak.Protocol;
using Kayak.Storage;

namespace Kayak.Broker;

/// <summary>Outcome of a topic operation, in Kafka's error code and message.</summary>
public readonly record struct TopicResult(ErrorCode Error, string? Message, TopicLog? Topic)
{
    public static TopicResult Ok(TopicLog t) => new(ErrorCode.None, null, t);
    public static TopicResult Fail(ErrorCode e, string m) => new(e, m, null);
}

/// <summary>
/// Topic lifecycle with Kafka's rules and error codes (CreateTopics, auto-creation from Metadata and
/// Produce, DeleteTopics, CreatePartitions) on top of Storage's <see cref="LogManager"/>.
/// </summary>
public sealed class TopicService
{
    public const string ConsumerOffsetsTopic = "__consumer_offsets";
    public const string TransactionStateTopic = "__transaction_state";

    private readonly BrokerState _broker;
    private readonly object _createLock = new();

    public TopicService(BrokerState broker) { _broker = broker; }

    public static bool IsInternal(string name) => name is ConsumerOffsetsTopic or TransactionStateTopic;

    public bool TryGet(string name, out TopicLog topic) => _broker.Logs.TryGetTopic(name, out topic!);

    /// <summary>
    /// Validates a topic name as Kafka's Topic.validate does: 1..249 chars of [a-zA-Z0-9._-], not "." or "..".
    /// Returns null when valid, else the message for INVALID_TOPIC_EXCEPTION.
    /// </summary>
    public static string? ValidateName(string? name)
    {
        if (string.IsNullOrEmpty(name)) return "Topic name is illegal, it can't be empty";
        if (name is "." or "..") return "Topic name cannot be \".\" or \"..\"";
        if (name.Length > 249) return $"Topic name is illegal, it can't be longer than 249 characters, topic name: {name}";
        foreach (char c in name)
            if (!(c is >= 'a' and <= 'z' or >= 'A' and <= 'Z' or >= '0' and <= '9' or '.' or '_' or '-'))
                return $"Topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'";
        return null;
    }

    /// <summary>CreateTopics semantics: -1 partitions/replication mean the broker defaults.</summary>
    public TopicResult Create(string name, int numPartitions, short replicationFactor,
        IReadOnlyDictionary<string, string>? configs, bool validateOnly)
    {
        var invalid = ValidateName(name);
        if (invalid is not null) return TopicResult.Fail(ErrorCode.InvalidTopicException, invalid);
        int partitions = numPartitions == -1 ? DefaultPartitions(name) : numPartitions;
        if (partitions <= 0) return TopicResult.Fail(ErrorCode.InvalidPartitions, "Number of partitions must be larger than 0.");
        int rf = replicationFactor == -1 ? _broker.Config.DefaultReplicationFactor : replicationFactor;
        if (rf <= 0) return TopicResult.Fail(ErrorCode.InvalidReplicationFactor, "Replication factor must be larger than 0, or -1 to use the default value.");
        if (rf > 1)
            return TopicResult.Fail(ErrorCode.InvalidReplicationFactor,
                $"Unable to replicate the partition {rf} time(s): The target replication factor of {rf} cannot be reached because only 1 broker(s) are registered.");
        var cfg = configs ?? new Dictionary<string, string>();
        lock (_createLock)
        {
            if (_broker.Logs.TryGetTopic(name, out _))
                return TopicResult.Fail(ErrorCode.TopicAlreadyExists, $"Topic '{name}' already exists.");
            try
            {
                foreach (var (k, v) in cfg) TopicConfig.Validate(k, v);
                if (validateOnly) return new TopicResult(ErrorCode.None, null, null);
                return TopicResult.Ok(_broker.Logs.CreateTopic(name, partitions, cfg));
            }
            catch (Kayak.Storage.ConfigException e)
            {
                return TopicResult.Fail(ErrorCode.InvalidConfig, e.Message);
            }
        }
    }

    private int DefaultPartitions(string name) => name switch
    {
        ConsumerOffsetsTopic => _broker.Config.OffsetsTopicNumPartitions,
        TransactionStateTopic => _broker.Config.TransactionStateLogNumPartitions,
        _ => _broker.Config.NumPartitions,
    };

    /// <summary>
    /// Auto-creation as Metadata and Produce trigger it (auto.create.topics.enable): existing topics are
    /// returned as they are; otherwise UNKNOWN_TOPIC_OR_PARTITION when disabled or not allowed.
    /// </summary>
    public TopicResult GetOrAutoCreate(string name, bool allowAutoCreate)
    {
        if (_broker.Logs.TryGetTopic(name, out var existing)) return TopicResult.Ok(existing);
        if (!allowAutoCreate || !_broker.Config.AutoCreateTopicsEnable)
            return TopicResult.Fail(ErrorCode.UnknownTopicOrPartition, "This server does not host this topic-partition.");
        return CreateWithDefaults(name);
    }

    /// <summary>
    /// The coordinators' internal topics (__consumer_offsets, __transaction_state), created on first use
    /// whatever auto.create.topics.enable says, with Kafka's partition counts and compacted configs.
    /// </summary>
    public TopicResult CreateInternal(string name) =>
        IsInternal(name) ? CreateWithDefaults(name) : throw new ArgumentException($"{name} is not an internal topic", nameof(name));

    private TopicResult CreateWithDefaults(string name)
    {
        var result = Create(name, -1, -1, InternalTopicConfigs(name), validateOnly: false);
        if (result.Error == ErrorCode.TopicAlreadyExists && _broker.Logs.TryGetTopic(name, out var existing)) return TopicResult.Ok(existing);
        return result;
    }

    /// <summary>Internal topics are compacted, as in Kafka (offsets.topic.segment.bytes for __consumer_offsets).</summary>
    private IReadOnlyDictionary<string, string>? InternalTopicConfigs(string name) => name switch
    {
        ConsumerOffsetsTopic => new Dictionary<string, string>
        {
            ["cleanup.policy"] = "compact",
            ["compression.type"] = "producer",
            ["segment.bytes"] = _broker.Config.OffsetsTopicSegmentBytes.ToString(System.Globalization.CultureInfo.InvariantCulture),
        },
        TransactionStateTopic => new Dictionary<string, string>
        {
            ["cleanup.policy"] = "compact",
            ["compression.type"] = "uncompressed",
            ["segment.bytes"] = "104857600",
        },
        _ => null,
    };

    /// <summary>CreatePartitions: grow a topic to <paramref name="count"/> partitions on this node.</summary>
    public (ErrorCode Error, string? Message) AddPartitions(string name, int count, IReadOnlyList<Protocol.Messages.CreatePartitionsRequest.CreatePartitionsAssignment>? assignments, bool validateOnly)
    {
        lock (_createLock)
        {
            if (!_broker.Logs.TryGetTopic(name, out var topic))
                return (ErrorCode.UnknownTopicOrPartition, "This server does not host this topic-partition.");
            int current = topic.Partitions.Count;
            if (count < current)
                return (ErrorCode.InvalidPartitions, $"Topic currently has {current} partitions, which is higher than the requested {count}.");
            if (count == current)
                return (ErrorCode.InvalidPartitions, $"Topic already has {current} partitions.");
            if (assignments is not null)
            {
                if (assignments.Count != count - current)
                    return (ErrorCode.InvalidReplicaAssignment, $"Attempted to add {count - current} additional partition(s), but only {assignments.Count} assignment(s) were specified.");
                foreach (var a in assignments)
                    foreach (int id in a.BrokerIds)
                        if (id != _broker.NodeId)
                            return (ErrorCode.InvalidReplicaAssignment, $"The manual partition assignment includes broker {id}, but no such broker is registered.");
            }
            if (!validateOnly) _broker.Logs.AddPartitions(name, count);
            return (ErrorCode.None, null);
        }
    }

    public TopicResult Delete(string name)
    {
        if (!_broker.Config.DeleteTopicEnable)
            return TopicResult.Fail(ErrorCode.TopicDeletionDisabled, "Topic deletion is disabled.");
        if (!_broker.Logs.TryGetTopic(name, out var topic))
            return TopicResult.Fail(ErrorCode.UnknownTopicOrPartition, "This server does not host this topic-partition.");
        _broker.Logs.DeleteTopic(name);
        return TopicResult.Ok(topic);
    }
}
