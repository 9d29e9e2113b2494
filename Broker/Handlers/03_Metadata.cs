// Metadata (key 3), v0-12. The live brokers (one, or every running broker of an in-process cluster, issue 14)
// and each partition's leader, leader epoch, replicas and ISR as IPartitionLeadership reports them (a single broker
// leads every partition at epoch 0); a partition whose leader is stopped is LEADER_NOT_AVAILABLE with leader -1 and
// that replica in OfflineReplicas (v5+), as in Kafka. Null topics (v1+) or an empty list at v0 mean "all topics". Unknown topics are created
// when auto.create.topics.enable and the request's AllowAutoTopicCreation (v4+, implied before) allow it;
// creation is synchronous, so the reply already lists the new partitions (Kafka answers
// LEADER_NOT_AVAILABLE first and the client retries; both are valid for clients). v10+ lookups by topic id
// answer UNKNOWN_TOPIC_ID when absent. Authorized operations (KIP-430, v8+): when asked for, every topic answered
// by name (also with an error) gets all TOPIC operations and (v8-10) the cluster all CLUSTER operations, as Kafka
// answers without an authorizer; topics looked up by an unknown id keep int.MinValue, as in Kafka.
// ACLs (KafkaApis.handleTopicMetadataRequest): an all-topics request lists only the topics the principal may DESCRIBE;
// a named one it may not is TOPIC_AUTHORIZATION_FAILED without telling whether it exists (by id: the id is kept, the
// name not given); auto-creation needs CREATE on the CLUSTER or the topic (else TOPIC_AUTHORIZATION_FAILED). With an
// authorizer the operations are the ones the ACLs allow, and the cluster's are 0 without DESCRIBE on it.
using Kayak.Broker.Security;
using Kayak.Broker.Services;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using Kayak.Storage;

namespace Kayak.Broker.Handlers;

internal sealed class MetadataHandler(ITopicCatalog catalog, TopicService topics, ClusterInfo cluster, IPartitionLeadership leadership,
    IAuthorizer? authorizer = null) : ApiHandler<MetadataRequest>
{
    // Optional so unit tests that build the handler alone run it without ACLs.
    private readonly IAuthorizer _authorizer = authorizer ?? AllowAllAuthorizer.Instance;

    public override ApiKey Key => ApiKey.Metadata;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, MetadataRequest request)
    {
        var response = Answer(context, request);
        // KafkaApis.handleTopicMetadataRequest: the cluster field only exists in v8-10 (KIP-700 moved it to
        // DescribeCluster); topics carry theirs from v8.
        if (context.ApiVersion >= 8)
        {
            if (context.ApiVersion <= 10 && request.IncludeClusterAuthorizedOperations)
                response.ClusterAuthorizedOperations = _authorizer.Cluster(context, AclOperation.Describe)
                    ? _authorizer.AuthorizedOperations(context, AclResourceType.Cluster, StandardAuthorizer.ClusterName) : 0;
            if (request.IncludeTopicAuthorizedOperations)
                foreach (var t in response.Topics)
                    if (t.Name is not null && t.Error() is not (ErrorCode.UnknownTopicId or ErrorCode.InvalidRequest or ErrorCode.TopicAuthorizationFailed))
                        t.TopicAuthorizedOperations = _authorizer.AuthorizedOperations(context, AclResourceType.Topic, t.Name);
        }
        return Done(response);
    }

    private MetadataResponse Answer(RequestContext context, MetadataRequest request)
    {
        var response = new MetadataResponse
        {
            ClusterId = cluster.ClusterId,
            ControllerId = cluster.ControllerId,
        };
        foreach (var broker in cluster.Brokers)
        {
            var endpoint = broker.EndpointFor(context.ListenerName);
            response.Brokers.Add(new MetadataResponse.MetadataResponseBroker { NodeId = broker.NodeId, Host = endpoint.Host, Port = endpoint.Port });
        }

        bool allTopics = request.Topics is null || (context.ApiVersion == 0 && request.Topics.Count == 0);
        if (allTopics)
        {
            foreach (var topic in catalog.All)
                // An all-topics request does not name the topics it cannot see: no audit line for them (logIfDenied = false).
                if (_authorizer.Topic(context, AclOperation.Describe, topic.Name, logIfDenied: false)) response.Topics.Add(Describe(topic));
            return response;
        }

        // Kafka's KafkaApis refuses null names and topic ids below v12 (v10-11 carry the fields but do not support
        // them) with INVALID_REQUEST for every topic; answering a null name at v10-11 would not even encode.
        if (context.ApiVersion < 12)
        {
            foreach (var t in request.Topics!)
                if (t.Name is null || !t.TopicId.IsZero)
                    return InvalidRequest(response, request.Topics);
        }

        bool allowAutoCreate = context.ApiVersion < 4 || request.AllowAutoTopicCreation;
        foreach (var t in request.Topics!)
        {
            if (t.Name is null)
            {
                var byId = catalog.Find(t.TopicId);
                response.Topics.Add(byId is null
                    ? new MetadataResponse.MetadataResponseTopic { Name = null, TopicId = t.TopicId }.SetError(ErrorCode.UnknownTopicId)
                    : !_authorizer.Topic(context, AclOperation.Describe, byId.Name)
                        ? new MetadataResponse.MetadataResponseTopic { Name = null, TopicId = t.TopicId }.SetError(ErrorCode.TopicAuthorizationFailed)
                        : Describe(byId));
                continue;
            }
            bool describe = _authorizer.Topic(context, AclOperation.Describe, t.Name);
            if (!describe
                || (topics.WouldAutoCreate(allowAutoCreate) && !catalog.TryGet(t.Name, out _)
                    && !_authorizer.Cluster(context, AclOperation.Create, logIfDenied: false) && !_authorizer.Topic(context, AclOperation.Create, t.Name)))
            {
                response.Topics.Add(new MetadataResponse.MetadataResponseTopic { Name = t.Name, IsInternal = describe && TopicService.IsInternal(t.Name) }
                    .SetError(ErrorCode.TopicAuthorizationFailed));
                continue;
            }
            var result = topics.GetOrAutoCreate(t.Name, allowAutoCreate);
            response.Topics.Add(result.Topic is not null
                ? Describe(result.Topic)
                : new MetadataResponse.MetadataResponseTopic { Name = t.Name }.SetError(result.Failure));
        }
        return response;
    }

    /// <summary>Kafka's MetadataRequest.getErrorResponse: every requested topic with the error, a null name as "".</summary>
    private static MetadataResponse InvalidRequest(MetadataResponse response, List<MetadataRequest.MetadataRequestTopic> topics)
    {
        foreach (var t in topics)
            response.Topics.Add(new MetadataResponse.MetadataResponseTopic { Name = t.Name ?? "", TopicId = t.TopicId }.SetError(ErrorCode.InvalidRequest));
        return response;
    }

    private MetadataResponse.MetadataResponseTopic Describe(TopicLog topic)
    {
        var rt = new MetadataResponse.MetadataResponseTopic
        {
            Name = topic.Name,
            TopicId = topic.TopicId,
            IsInternal = TopicService.IsInternal(topic.Name),
        };
        int count = topic.Partitions.Count;
        for (int p = 0; p < count; p++)
        {
            var replicas = leadership.Describe(topic.Name, p);
            var rp = new MetadataResponse.MetadataResponsePartition
            {
                PartitionIndex = p,
                LeaderId = replicas.Leader,
                LeaderEpoch = replicas.LeaderEpoch,
                ReplicaNodes = [.. replicas.Replicas],
                IsrNodes = [.. replicas.Isr],
            };
            if (replicas.Leader < 0)
            {
                rp.SetError(ErrorCode.LeaderNotAvailable);
                foreach (int r in replicas.Replicas)
                    if (cluster.Broker(r) is null) rp.OfflineReplicas.Add(r);
            }
            rt.Partitions.Add(rp);
        }
        return rt;
    }
}
