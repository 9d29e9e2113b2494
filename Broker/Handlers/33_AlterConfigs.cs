// AlterConfigs (key 33), v0-2: the legacy, full-replacement API (KIP-339 deprecated it). For a TOPIC the
// request's entries become the topic's complete set of overrides: keys left out revert to their defaults,
// as Kafka's legacyAlterConfigs does. Every value is validated first (INVALID_CONFIG with Kafka's
// "Invalid value ... for configuration ..." / "Unknown topic config name" messages; null values are
// INVALID_CONFIG "Null value not supported for topic configs"); nothing changes unless all are valid.
// ValidateOnly checks and changes nothing. Unknown topic: UNKNOWN_TOPIC_OR_PARTITION.
// BROKER resources (KIP-226): the entries become the complete dynamic set of this broker (name = node id) or of
// the cluster default (name ""), validated as Kafka's DynamicBrokerConfig.validateConfigs does (a static key is
// INVALID_REQUEST "Cannot update these configs dynamically: [k]"); see BrokerConfigChanges. A name other than
// this node id or empty is INVALID_REQUEST. BROKER_LOGGER is refused as Kafka's legacy API refuses it.
// Other resource types: INVALID_REQUEST.
// ACLs: ALTER_CONFIGS on the CLUSTER for BROKER/BROKER_LOGGER (CLUSTER_AUTHORIZATION_FAILED), on the topic for TOPIC.
using Kayak.Broker.Security;
using Kayak.Broker.Config;
using Kayak.Broker.Services;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class AlterConfigsHandler(TopicService topics, ClusterInfo cluster, DynamicBrokerConfig dynamic, IAuthorizer authorizer) : ApiHandler<AlterConfigsRequest>
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
            }.SetError(ConfigAuthorization.Check(authorizer, context, resource.ResourceType, resource.ResourceName, AclOperation.AlterConfigs) is { IsError: true } denied
                ? denied : Alter(resource, request.ValidateOnly)));
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
                var configs = new Dictionary<string, string>(StringComparer.Ordinal);
                foreach (var c in resource.Configs)
                {
                    if (c.Value is null) return new(ErrorCode.InvalidRequest, $"Null value not supported for : {c.Name}");
                    configs[c.Name] = c.Value;
                }
                return BrokerConfigChanges.Alter(cluster, dynamic, resource.ResourceName, _ => configs, validateOnly);
            }
            case ConfigResourceType.BrokerLogger:
                return new(ErrorCode.InvalidRequest, "AlterConfigs is deprecated and does not support the resource type BROKER_LOGGER");
            default:
                return new(ErrorCode.InvalidRequest, $"Unsupported resource type: {resource.ResourceType}");
        }
    }
}

/// <summary>
/// A BROKER resource change (KIP-226), shared by AlterConfigs and IncrementalAlterConfigs: the resource name picks
/// this broker's dynamic set (node id) or the cluster default (""); Kafka's ConfigAdminManager answers a failed
/// validation with INVALID_REQUEST carrying the ConfigException's message (KAFKA-13609 keeps it so).
/// </summary>
internal static class BrokerConfigChanges
{
    public static KafkaError Alter(ClusterInfo cluster, DynamicBrokerConfig dynamic, string resourceName,
        Func<IReadOnlyDictionary<string, string>, Dictionary<string, string>> update, bool validateOnly)
    {
        var bad = ConfigResourceType.CheckBrokerName(cluster, resourceName, allowEmpty: true);
        if (bad is not null) return new(ErrorCode.InvalidRequest, bad);
        try
        {
            var problem = dynamic.Alter(perBroker: resourceName.Length > 0, update, validateOnly);
            return problem is null ? KafkaError.None : new(ErrorCode.InvalidRequest, problem);
        }
        catch (KafkaException e)
        {
            return e.KafkaError;
        }
    }
}
