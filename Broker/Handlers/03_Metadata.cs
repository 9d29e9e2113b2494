// Metadata (key 3), v0-12. One broker that leads every partition (leader epoch 0, replicas = ISR =
// [this node]). Null topics (v1+) or an empty list at v0 mean "all topics". Unknown topics are created
// when auto.create.topics.enable and the request's AllowAutoTopicCreation (v4+, implied before) allow it;
// creation is synchronous, so the reply already lists the new partitions (Kafka answers
// LEADER_NOT_AVAILABLE first and the client retries; both are valid for clients). v10+ lookups by topic id
// answer UNKNOWN_TOPIC_ID when absent. Authorized operations (KIP-430, v8+): when asked for, every topic answered
// by name (also with an error) gets all TOPIC operations and (v8-10) the cluster all CLUSTER operations, as Kafka
// answers without an authorizer; topics looked up by an unknown id keep int.MinValue, as in Kafka.
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using Kayak.Storage;

namespace Kayak.Broker.Handlers;

public sealed class MetadataHandler : ApiHandler<MetadataRequest>
{
    public override ApiKey Key => ApiKey.Metadata;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, MetadataRequest request)
    {
        var response = Answer(context, request);
        // KafkaApis.handleTopicMetadataRequest: the cluster field only exists in v8-10 (KIP-700 moved it to
        // DescribeCluster); topics carry theirs from v8.
        if (context.ApiVersion >= 8)
        {
            if (context.ApiVersion <= 10 && request.IncludeClusterAuthorizedOperations)
                response.ClusterAuthorizedOperations = AuthorizedOperations.Cluster;
            if (request.IncludeTopicAuthorizedOperations)
                foreach (var t in response.Topics)
                    if (t.Name is not null && t.ErrorCode != (short)ErrorCode.UnknownTopicId && t.ErrorCode != (short)ErrorCode.InvalidRequest)
                        t.TopicAuthorizedOperations = AuthorizedOperations.Topic;
        }
        return Done(response);
    }

    private static MetadataResponse Answer(RequestContext context, MetadataRequest request)
    {
        var broker = context.Broker;
        var response = new MetadataResponse
        {
            ClusterId = broker.ClusterId,
            ControllerId = broker.NodeId,
        };
        // One node; with several listeners the first advertised one is the endpoint clients are told about.
        var endpoint = broker.AdvertisedEndpoint;
        response.Brokers.Add(new MetadataResponse.MetadataResponseBroker { NodeId = broker.NodeId, Host = endpoint.Host, Port = endpoint.Port });

        bool allTopics = request.Topics is null || (context.ApiVersion == 0 && request.Topics.Count == 0);
        if (allTopics)
        {
            foreach (var topic in broker.Logs.Topics) response.Topics.Add(Describe(broker, topic));
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
                var byId = broker.Logs.GetTopic(t.TopicId);
                response.Topics.Add(byId is not null
                    ? Describe(broker, byId)
                    : new MetadataResponse.MetadataResponseTopic { Name = null, TopicId = t.TopicId, ErrorCode = (short)ErrorCode.UnknownTopicId });
                continue;
            }
            var result = broker.Topics.GetOrAutoCreate(t.Name, allowAutoCreate);
            response.Topics.Add(result.Topic is not null
                ? Describe(broker, result.Topic)
                : new MetadataResponse.MetadataResponseTopic { Name = t.Name, ErrorCode = (short)result.Error });
        }
        return response;
    }

    /// <summary>Kafka's MetadataRequest.getErrorResponse: every requested topic with the error, a null name as "".</summary>
    private static MetadataResponse InvalidRequest(MetadataResponse response, List<MetadataRequest.MetadataRequestTopic> topics)
    {
        foreach (var t in topics)
            response.Topics.Add(new MetadataResponse.MetadataResponseTopic { Name = t.Name ?? "", TopicId = t.TopicId, ErrorCode = (short)ErrorCode.InvalidRequest });
        return response;
    }

    internal static MetadataResponse.MetadataResponseTopic Describe(BrokerState broker, TopicLog topic)
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
            rt.Partitions.Add(new MetadataResponse.MetadataResponsePartition
            {
                PartitionIndex = p,
                LeaderId = broker.NodeId,
                LeaderEpoch = 0,
                ReplicaNodes = [broker.NodeId],
                IsrNodes = [broker.NodeId],
            });
        }
        return rt;
    }
}
