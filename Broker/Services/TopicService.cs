using Kayak.Broker.Config;
using Kayak.Protocol;
using Kayak.Storage;

namespace Kayak.Broker.Services;

/// <summary>Outcome of a topic operation: the topic, or Kafka's error (code and message).</summary>
internal readonly record struct TopicResult(KafkaError Failure, TopicLog? Topic)
{
    public ErrorCode Error => Failure.Code;
    public string? Message => Failure.Message;

    public static TopicResult Ok(TopicLog? t) => new(KafkaError.None, t);
    public static TopicResult Fail(ErrorCode e, string m) => new(new KafkaError(e, m), null);
}

/// <summary>
/// Topic lifecycle with Kafka's rules and error codes (CreateTopics, auto-creation from Metadata,
/// DeleteTopics, CreatePartitions, config changes) on top of Storage's <see cref="LogManager"/>.
/// </summary>
internal sealed class TopicService
{
    public const string ConsumerOffsetsTopic = InternalTopics.ConsumerOffsets;
    public const string TransactionStateTopic = InternalTopics.TransactionState;

    private readonly LogManager _logs;
    private readonly BrokerConfig _config;
    private readonly object _createLock = new();
    // Serializes read-modify-write of one topic's overrides across concurrent (incremental) alters; config
    // changes are rare admin operations, so one lock for all topics is enough.
    private readonly object _configLock = new();

    public TopicService(LogManager logs, BrokerConfig config)
    {
        _logs = logs;
        _config = config;
    }

    public static bool IsInternal(string name) => InternalTopics.IsInternal(name);

    /// <summary>
    /// The in-process cluster's controller (issue 14): topic changes go through it, which places the replicas and
    /// applies the change to every broker's logs (<see cref="CreateLocal"/> and friends). Null on a single broker.
    /// </summary>
    internal Cluster.ClusterController? Controller { get; set; }

    private int RegisteredBrokers => Controller?.RegisteredBrokers ?? 1;

    public bool TryGet(string name, out TopicLog topic) => _logs.TryGetTopic(name, out topic!);

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
        int rf = replicationFactor == -1 ? _config.DefaultReplicationFactor : replicationFactor;
        if (rf <= 0) return TopicResult.Fail(ErrorCode.InvalidReplicationFactor, "Replication factor must be larger than 0, or -1 to use the default value.");
        int brokers = RegisteredBrokers;
        if (rf > brokers)
            return TopicResult.Fail(ErrorCode.InvalidReplicationFactor,
                $"Unable to replicate the partition {rf} time(s): The target replication factor of {rf} cannot be reached because only {brokers} broker(s) are registered.");
        var cfg = configs ?? new Dictionary<string, string>();
        if (Controller is { } controller) return controller.CreateTopic(_config.NodeId, name, partitions, rf, cfg, validateOnly);
        lock (_createLock)
        {
            if (_logs.TryGetTopic(name, out _))
                return TopicResult.Fail(ErrorCode.TopicAlreadyExists, $"Topic '{name}' already exists.");
            try
            {
                foreach (var (k, v) in cfg) TopicConfig.Validate(k, v);
                if (validateOnly) return TopicResult.Ok(null);
                return TopicResult.Ok(_logs.CreateTopic(name, partitions, cfg));
            }
            catch (Kayak.Storage.ConfigException e)
            {
                return new TopicResult(e.KafkaError, null);
            }
        }
    }

    private int DefaultPartitions(string name) => name switch
    {
        ConsumerOffsetsTopic => _config.OffsetsTopicNumPartitions,
        TransactionStateTopic => _config.TransactionStateLogNumPartitions,
        _ => _config.NumPartitions,
    };

    /// <summary>
    /// Auto-creation as Metadata and Produce trigger it (auto.create.topics.enable): existing topics are
    /// returned as they are; otherwise UNKNOWN_TOPIC_OR_PARTITION when disabled or not allowed.
    /// </summary>
    /// <summary>Would <see cref="GetOrAutoCreate"/> create a missing topic (Metadata then asks for CREATE permission first).</summary>
    public bool WouldAutoCreate(bool allowAutoCreate) => allowAutoCreate && _config.AutoCreateTopicsEnable;

    public TopicResult GetOrAutoCreate(string name, bool allowAutoCreate)
    {
        if (_logs.TryGetTopic(name, out var existing)) return TopicResult.Ok(existing);
        if (!allowAutoCreate || !_config.AutoCreateTopicsEnable)
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
        var result = Create(name, -1, InternalReplicationFactor(name), InternalTopicConfigs(name), validateOnly: false);
        if (result.Error == ErrorCode.TopicAlreadyExists && _logs.TryGetTopic(name, out var existing)) return TopicResult.Ok(existing);
        return result;
    }

    /// <summary>
    /// In a cluster, offsets.topic.replication.factor / transaction.state.log.replication.factor for the internal
    /// topics (Kayak's default 1, which <see cref="Cluster.KafkaCluster"/> raises to Kafka's 3 or the cluster size);
    /// otherwise -1 (the default replication factor).
    /// </summary>
    private short InternalReplicationFactor(string name)
    {
        // A single broker ignores both, as it did before the cluster existed (a stock server.properties may say 3).
        if (Controller is null) return -1;
        string? key = name switch
        {
            ConsumerOffsetsTopic => "offsets.topic.replication.factor",
            TransactionStateTopic => "transaction.state.log.replication.factor",
            _ => null,
        };
        return key is not null && short.TryParse(_config.GetString(key), System.Globalization.NumberStyles.Integer,
            System.Globalization.CultureInfo.InvariantCulture, out short rf) ? rf : (short)-1;
    }

    /// <summary>Internal topics are compacted, as in Kafka (offsets.topic.segment.bytes for __consumer_offsets).</summary>
    private Dictionary<string, string>? InternalTopicConfigs(string name) => name switch
    {
        ConsumerOffsetsTopic => InternalTopics.ConsumerOffsetsConfigs(_config.OffsetsTopicSegmentBytes),
        TransactionStateTopic => InternalTopics.TransactionStateConfigs(),
        _ => null,
    };

    /// <summary>CreatePartitions: grow a topic to <paramref name="count"/> partitions on this node.</summary>
    public KafkaError AddPartitions(string name, int count, IReadOnlyList<Protocol.Messages.CreatePartitionsRequest.CreatePartitionsAssignment>? assignments, bool validateOnly)
    {
        if (Controller is not null) return AddPartitionsInCluster(name, count, assignments, validateOnly);
        lock (_createLock)
        {
            if (CheckNewPartitionCount(name, count, out int current) is { IsError: true } bad) return bad;
            if (assignments is not null)
            {
                if (assignments.Count != count - current)
                    return new(ErrorCode.InvalidReplicaAssignment, $"Attempted to add {count - current} additional partition(s), but only {assignments.Count} assignment(s) were specified.");
                foreach (var a in assignments)
                    foreach (int id in a.BrokerIds)
                        if (id != _config.NodeId)
                            return new(ErrorCode.InvalidReplicaAssignment, $"The manual partition assignment includes broker {id}, but no such broker is registered.");
            }
            if (!validateOnly) _logs.AddPartitions(name, count);
            return KafkaError.None;
        }
    }

    public TopicResult Delete(string name)
    {
        if (!_config.DeleteTopicEnable)
            return TopicResult.Fail(ErrorCode.TopicDeletionDisabled, "Topic deletion is disabled.");
        if (Controller is { } controller) return controller.DeleteTopic(_config.NodeId, name);
        if (!_logs.TryGetTopic(name, out var topic))
            return TopicResult.Fail(ErrorCode.UnknownTopicOrPartition, "This server does not host this topic-partition.");
        _logs.DeleteTopic(name);
        return TopicResult.Ok(topic);
    }

    /// <summary>CreatePartitions' first checks, as Kafka's: the topic exists and the count grows it.</summary>
    private KafkaError CheckNewPartitionCount(string name, int count, out int current)
    {
        current = 0;
        if (!_logs.TryGetTopic(name, out var topic))
            return new(ErrorCode.UnknownTopicOrPartition, "This server does not host this topic-partition.");
        current = topic.Partitions.Count;
        if (count < current)
            return new(ErrorCode.InvalidPartitions, $"Topic currently has {current} partitions, which is higher than the requested {count}.");
        if (count == current)
            return new(ErrorCode.InvalidPartitions, $"Topic already has {current} partitions.");
        return KafkaError.None;
    }

    /// <summary>CreatePartitions in a cluster: Kafka's checks here, the placement by the controller.</summary>
    private KafkaError AddPartitionsInCluster(string name, int count, IReadOnlyList<Protocol.Messages.CreatePartitionsRequest.CreatePartitionsAssignment>? assignments, bool validateOnly)
    {
        if (CheckNewPartitionCount(name, count, out _) is { IsError: true } bad) return bad;
        if (assignments is not null)
            return new(ErrorCode.InvalidReplicaAssignment, "Manual partition assignments are not supported by the in-process cluster yet.");
        return Controller!.AddPartitions(_config.NodeId, name, count, validateOnly);
    }

    // The controller's hands on this broker's logs (issue 14): the change is already decided and recorded; only
    // Storage's own checks remain.

    // hosted[i]: this broker is a replica of partition i and holds its log (Kafka: logs only for the replicas here).
    internal TopicResult CreateLocal(string name, int partitions, IReadOnlyDictionary<string, string> configs, Uuid topicId, bool[]? hosted = null)
    {
        lock (_createLock)
        {
            try { return TopicResult.Ok(_logs.CreateTopic(name, partitions, configs, topicId, hosted)); }
            catch (KafkaException e) { return new TopicResult(e.KafkaError, null); }
        }
    }

    internal void DeleteLocal(string name)
    {
        lock (_createLock)
            if (_logs.TryGetTopic(name, out _)) _logs.DeleteTopic(name);
    }

    internal void AddPartitionsLocal(string name, int count, bool[]? hosted = null)
    {
        lock (_createLock)
            if (_logs.TryGetTopic(name, out var t) && t.Partitions.Count < count) _logs.AddPartitions(name, count, hosted);
    }

    /// <summary>A replica assigned to this broker (reassignment, or missed while stopped): its log is created.</summary>
    internal void CreateReplicaLocal(string name, int partition, int total)
    {
        lock (_createLock)
            if (_logs.TryGetTopic(name, out _)) _logs.CreateReplica(name, partition, total);
    }

    /// <summary>A replica no longer assigned to this broker: its log is deleted (Kafka's LogManager.asyncDelete).</summary>
    internal void DeleteReplicaLocal(string name, int partition)
    {
        lock (_createLock) _logs.DeleteReplica(name, partition);
    }

    internal List<string> LocalTopicNames()
    {
        var names = new List<string>();
        foreach (var t in _logs.Topics) names.Add(t.Name);
        return names;
    }

    /// <summary>
    /// AlterConfigs / IncrementalAlterConfigs: computes the topic's new complete override set from its current one,
    /// validates every entry and stores it unless <paramref name="validateOnly"/>. <paramref name="update"/> returns the
    /// new set, or throws <see cref="KafkaException"/> for a request-level problem.
    /// </summary>
    public KafkaError AlterConfig(string name, Func<IReadOnlyDictionary<string, string>, IReadOnlyDictionary<string, string>> update, bool validateOnly)
    {
        var invalid = ValidateName(name);
        if (invalid is not null) return new(ErrorCode.InvalidTopicException, invalid);
        lock (_configLock)
        {
            if (!_logs.TryGetTopic(name, out var topic))
                return new(ErrorCode.UnknownTopicOrPartition, $"The topic '{name}' does not exist.");
            try
            {
                var overrides = update(topic.Config.Overrides);
                foreach (var (k, v) in overrides) TopicConfig.Validate(k, v);
                if (!validateOnly) _logs.AlterTopicConfig(name, overrides);
                return KafkaError.None;
            }
            catch (StorageErrorException e) when (e.Code == ErrorCode.UnknownTopicOrPartition)
            {
                return new(ErrorCode.UnknownTopicOrPartition, $"The topic '{name}' does not exist.");
            }
            // ConfigException (INVALID_CONFIG) and the updates' own request-level errors.
            catch (KafkaException e) { return e.KafkaError; }
        }
    }
}
