// AlterConfigs (key 33), v0-2: the legacy, full-replacement API (KIP-339 deprecated it). For a TOPIC the
// request's entries become the topic's complete set of overrides: keys left out revert to their defaults,
// as Kafka's legacyAlterConfigs does. Every value is validated first (INVALID_CONFIG with Kafka's
// "Invalid value ... for configuration ..." / "Unknown topic config name" messages; null values are
// INVALID_CONFIG "Null value not supported for topic configs"); nothing changes unless all are valid.
// ValidateOnly checks and changes nothing. Unknown topic: UNKNOWN_TOPIC_OR_PARTITION.
// BROKER resources: Kayak has only static broker configs, so any entry is refused with INVALID_REQUEST
// "... Cannot update these configs dynamically" (an empty set succeeds, changing nothing); a name other
// than this node id or empty is INVALID_REQUEST. BROKER_LOGGER is refused as Kafka's legacy API refuses it.
// Other resource types: INVALID_REQUEST.
using Kayak.Broker.Services;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class AlterConfigsHandler(TopicService topics, ClusterInfo cluster) : ApiHandler<AlterConfigsRequest>
{
    public override ApiKey Key => ApiKey.AlterConfigs;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, AlterConfigsRequest request)
    {
        var response = new AlterConfigsResponse();
        foreach (var resource in request.Resources)
            response.Responses.Add(new AlterConfigsResponse.AlterConfigsResourceResponse
            {
                ResourceType = resource.ResourceType,
                ResourceName = resource.ResourceName,
            }.SetError(Alter(resource, request.ValidateOnly)));
        return Done(response);
    }

    private KafkaError Alter(AlterConfigsRequest.AlterConfigsResource resource, bool validateOnly)
    {
        switch (resource.ResourceType)
        {
            case ConfigResourceType.Topic:
            {
                var overrides = new Dictionary<string, string>(StringComparer.Ordinal);
                foreach (var c in resource.Configs)
                {
                    if (c.Value is null) return new(ErrorCode.InvalidConfig, $"Null value not supported for topic configs: {c.Name}");
                    overrides[c.Name] = c.Value;
                }
                return topics.AlterConfig(resource.ResourceName, _ => overrides, validateOnly);
            }
            case ConfigResourceType.Broker:
            {
                var keys = new List<string>(resource.Configs.Count);
                foreach (var c in resource.Configs) keys.Add(c.Name);
                return BrokerConfigChanges.Refuse(cluster, resource.ResourceName, keys);
            }
            case ConfigResourceType.BrokerLogger:
                return new(ErrorCode.InvalidRequest, "AlterConfigs is deprecated and does not support the resource type BROKER_LOGGER");
            default:
                return new(ErrorCode.InvalidRequest, $"Unsupported resource type: {resource.ResourceType}");
        }
    }
}

/// <summary>Topic config changes shared by AlterConfigs and IncrementalAlterConfigs.</summary>
/// <summary>
/// A BROKER resource change on a broker whose configs are all static (read-only in DescribeConfigs):
/// Kafka refuses such keys with "Cannot update these configs dynamically".
/// </summary>
internal static class BrokerConfigChanges
{
    public static KafkaError Refuse(ClusterInfo cluster, string resourceName, List<string> keys)
    {
        var bad = ConfigResourceType.CheckBrokerName(cluster, resourceName, allowEmpty: true);
        if (bad is not null) return new(ErrorCode.InvalidRequest, bad);
        if (keys.Count == 0) return KafkaError.None;
        // Kafka 4.x formats the key set as a Java set ("[a, b]"); 3.x and older printed Scala's "Set(a, b)".
        return new(ErrorCode.InvalidRequest, $"Cannot update these configs dynamically: [{string.Join(", ", keys)}]");
    }
}
