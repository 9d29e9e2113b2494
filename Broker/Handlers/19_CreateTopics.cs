// CreateTopics (key 19), v0-7. -1 partitions / replication factor take the broker defaults (KIP-464,
// v4+). A replication factor above the number of registered brokers (1, or the size of an in-process cluster,
// issue 14) and replica assignments naming another broker are refused with Kafka's errors (manual assignments
// are not supported in a cluster yet). validateOnly (v1+) checks everything and creates nothing. Duplicate names
// in one request get INVALID_REQUEST. v5+ answers with partitions, replication factor and the topic's
// resulting configs (value and source, as DescribeConfigs reports them); v7+ with the topic id.
// timeoutMs is not needed: creation is synchronous. Like Kafka's controller, one request may create at most
// MaxRecordsPerUserOp metadata records (a topic, its partitions, its configs); beyond that every topic gets
// POLICY_VIOLATION "Unable to perform excessively large batch operation." (QuorumController's bounded record
// list), so a request claiming two billion partitions is refused instead of allocating for them.
// ACLs (KafkaApis.handleCreateTopicsRequest): CREATE on the CLUSTER or on the topic, else TOPIC_AUTHORIZATION_FAILED;
// without DESCRIBE_CONFIGS on the topic the configs are withheld (TopicConfigErrorCode TOPIC_AUTHORIZATION_FAILED).
// controller_mutation_rate (KIP-599): each created topic takes its partitions from the client's token bucket; from v6 a
// topic arriving while the bucket is empty gets THROTTLING_QUOTA_EXCEEDED, older versions are created and throttled.
using Kayak.Broker.Security;
using Kayak.Broker.Config;
using Kayak.Broker.Quotas;
using Kayak.Broker.Services;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class CreateTopicsHandler(TopicService topics, BrokerConfig config, ClusterInfo cluster, TopicConfigDescriber describer,
    IControllerMutationQuotas quotas, IAuthorizer? authorizer = null)
    : ApiHandler<CreateTopicsRequest>
{
    // Optional so unit tests that build the handler alone run it without ACLs.
    private readonly IAuthorizer _authorizer = authorizer ?? AllowAllAuthorizer.Instance;

    public override ApiKey Key => ApiKey.CreateTopics;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, CreateTopicsRequest request)
    {
        var response = new CreateTopicsResponse();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var duplicates = new HashSet<string>(StringComparer.Ordinal);
        foreach (var t in request.Topics)
            if (!seen.Add(t.Name)) duplicates.Add(t.Name);

        if (RecordsNeeded(request) > MaxRecordsPerUserOp)
        {
            foreach (var t in request.Topics)
            {
                response.Topics.Add(Failed(t.Name, new(ErrorCode.PolicyViolation, ExcessiveBatchMessage)));
            }
            return Done(response);
        }

        // As KafkaApis: the cluster CREATE and the DESCRIBE_CONFIGS probes are not audit-logged when denied (the topic
        // CREATE check decides).
        bool clusterCreate = _authorizer.Cluster(context, AclOperation.Create, logIfDenied: false);
        foreach (var t in request.Topics)
        {
            var error = duplicates.Contains(t.Name)
                ? new KafkaError(ErrorCode.InvalidRequest, $"Create topics request from client `{context.ClientId}` contains multiple entries for the following topics: {t.Name}")
                : !clusterCreate && !_authorizer.Topic(context, AclOperation.Create, t.Name)
                    ? new KafkaError(ErrorCode.TopicAuthorizationFailed, "Authorization failed.")
                    : KafkaError.None;
            response.Topics.Add(error.IsError ? Failed(t.Name, error)
                : Create(context, t, request.ValidateOnly, _authorizer.Topic(context, AclOperation.DescribeConfigs, t.Name, logIfDenied: false)));
        }
        return Done(response);
    }

    private CreateTopicsResponse.CreatableTopicResult Create(RequestContext context, CreateTopicsRequest.CreatableTopic t, bool validateOnly, bool describeConfigs)
    {
        short version = context.ApiVersion;
        var result = new CreateTopicsResponse.CreatableTopicResult { Name = t.Name };
        int partitions = t.NumPartitions;
        short rf = t.ReplicationFactor;
        if (t.Assignments.Count > 0)
        {
            if (partitions != -1 || rf != -1)
                return Failed(t.Name, new(ErrorCode.InvalidRequest, "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time."));
            string? bad = CheckAssignments(t);
            if (bad is not null) return Failed(t.Name, new(ErrorCode.InvalidReplicaAssignment, bad));
            partitions = t.Assignments.Count;
            rf = 1;
        }
        var configs = new Dictionary<string, string>(StringComparer.Ordinal);
        string? nullConfig = null;
        foreach (var c in t.Configs)
        {
            if (c.Value is null) { nullConfig = c.Name; break; }
            configs[c.Name] = c.Value;
        }
        if (nullConfig is not null) return Failed(t.Name, new(ErrorCode.InvalidConfig, $"Null value not supported for topic configs: {nullConfig}"));
        if (!validateOnly)
        {
            // Kafka's controller checks the quota after the topic passed validation (ReplicationControlManager.createTopic).
            var check = topics.Create(t.Name, partitions, rf, configs, validateOnly: true);
            if (check.Failure.IsError) return Failed(t.Name, check.Failure);
            if (!quotas.TryRecordMutation(context, partitions == -1 ? config.NumPartitions : partitions))
                return Failed(t.Name, new(ErrorCode.ThrottlingQuotaExceeded, ThrottledMessage));
        }
        var created = topics.Create(t.Name, partitions, rf, configs, validateOnly);
        if (created.Failure.IsError) return Failed(t.Name, created.Failure);
        result.NumPartitions = partitions == -1 ? config.NumPartitions : partitions;
        result.ReplicationFactor = rf == -1 ? (short)config.DefaultReplicationFactor : rf;
        if (created.Topic is { } topic)
        {
            result.TopicId = topic.TopicId;
            result.NumPartitions = topic.Partitions.Count;
        }
        if (version >= 5 && !describeConfigs)
            result.TopicConfigErrorCode = (short)ErrorCode.TopicAuthorizationFailed; // KafkaApis: no configs without DESCRIBE_CONFIGS
        else if (version >= 5)
        {
            result.Configs = new();
            foreach (var entry in describer.DescribeTopic(configs))
                result.Configs.Add(new CreateTopicsResponse.CreatableTopicConfigs
                {
                    Name = entry.Name,
                    Value = entry.Value,
                    ReadOnly = false,
                    ConfigSource = (sbyte)entry.Source,
                    IsSensitive = false,
                });
        }
        return result;
    }

    /// <summary>Kafka's QuorumController.MAX_RECORDS_PER_USER_OP: the most records one admin operation may produce.</summary>
    internal const int MaxRecordsPerUserOp = 10_000;
    internal const string ExcessiveBatchMessage = "Unable to perform excessively large batch operation.";
    /// <summary>Errors.THROTTLING_QUOTA_EXCEEDED's message (KIP-599).</summary>
    internal const string ThrottledMessage = "The throttling quota has been exceeded.";

    /// <summary>
    /// The metadata records Kafka's controller would write for this request: one per topic, per partition and per
    /// config. Topics whose partition count is invalid count only themselves (they fail before their partitions).
    /// </summary>
    private long RecordsNeeded(CreateTopicsRequest request)
    {
        long records = 0;
        foreach (var t in request.Topics)
        {
            long partitions = t.Assignments.Count > 0 ? t.Assignments.Count : t.NumPartitions == -1 ? config.NumPartitions : t.NumPartitions;
            records += 1 + Math.Max(0, partitions) + t.Configs.Count;
        }
        return records;
    }

    private string? CheckAssignments(CreateTopicsRequest.CreatableTopic t)
    {
        for (int i = 0; i < t.Assignments.Count; i++)
        {
            var a = t.Assignments[i];
            if (a.PartitionIndex != i) return "Partitions should be a consecutive 0-based integer sequence";
            if (a.BrokerIds.Count == 0) return $"The manual partition assignment includes an empty replica list.";
            foreach (int id in a.BrokerIds)
                if (id != cluster.NodeId) return $"The manual partition assignment includes broker {id}, but no such broker is registered.";
            if (a.BrokerIds.Count > 1) return "The manual partition assignment includes a partition with 2 or more replicas, but only 1 broker is registered.";
        }
        return null;
    }

    /// <summary>A refused topic: Kafka answers -1 partitions and replication factor and no configs.</summary>
    private static CreateTopicsResponse.CreatableTopicResult Failed(string name, KafkaError error) =>
        new CreateTopicsResponse.CreatableTopicResult { Name = name, NumPartitions = -1, ReplicationFactor = -1, Configs = null }.SetError(error);
}
