// IncrementalAlterConfigs (key 44), v0-1 (KIP-339). Per-key operations on a TOPIC's overrides, as Kafka's
// KRaft ConfigAdminManager.preprocess and ConfigurationControlManager apply them:
//   SET (0) sets the override; DELETE (1) removes it (reverting to the default; deleting a key that is not
//   overridden changes nothing); APPEND (2) / SUBTRACT (3) add missing / remove items of a comma-separated
//   LIST config, starting from the value in force (the default when not overridden).
// Request-level checks first, INVALID_REQUEST: the same key twice ("Error due to duplicate config keys"), a
// null value outside DELETE ("Null value not supported for : k"), an unknown operation ("Unknown operations
// type n"). APPEND/SUBTRACT on a non-list (or unknown) key is INVALID_CONFIG "Can't APPEND to key k because its
// type is not LIST."; unknown keys and bad values are INVALID_CONFIG. A resource is applied whole or not at
// all. ValidateOnly checks and changes nothing. Unknown topic: UNKNOWN_TOPIC_OR_PARTITION.
// BROKER (KIP-226): the same operations on this broker's dynamic configs (name = node id) or the cluster
// default (name ""), starting from the resource's current dynamic set; APPEND/SUBTRACT on a non-LIST key is
// INVALID_CONFIG "Config value append is not allowed for config key: k" (Kafka's ConfigAdminManager). The
// resulting set is validated as DynamicBrokerConfig.validateConfigs does (static keys: INVALID_REQUEST "Cannot
// update these configs dynamically: [k]"), then stored and applied (BrokerConfigChanges). BROKER_LOGGER
// (changing log4j levels) and other resource types are INVALID_REQUEST: not implemented.
// ACLs: ALTER_CONFIGS on the CLUSTER for BROKER/BROKER_LOGGER (CLUSTER_AUTHORIZATION_FAILED), on the topic for TOPIC.
using Kayak.Broker.Security;
using Kayak.Broker.Services;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using Kayak.Storage;

namespace Kayak.Broker.Handlers;

internal sealed class IncrementalAlterConfigsHandler(TopicService topics, ITopicCatalog catalog, ClusterInfo cluster,
    Config.DynamicBrokerConfig dynamic, IAuthorizer authorizer)
    : ApiHandler<IncrementalAlterConfigsRequest>
{
    private const sbyte OpSet = 0, OpDelete = 1, OpAppend = 2, OpSubtract = 3;

    public override ApiKey Key => ApiKey.IncrementalAlterConfigs;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, IncrementalAlterConfigsRequest request)
    {
        var response = new IncrementalAlterConfigsResponse();
        foreach (var resource in request.Resources)
            response.Responses.Add(new IncrementalAlterConfigsResponse.AlterConfigsResourceResponse
            {
                ResourceType = resource.ResourceType,
                ResourceName = resource.ResourceName,
            }.SetError(ConfigAuthorization.Check(authorizer, context, resource.ResourceType, resource.ResourceName, AclOperation.AlterConfigs) is { IsError: true } denied
                ? denied : Alter(resource, request.ValidateOnly)));
        return Done(response);
    }

    private KafkaError Alter(IncrementalAlterConfigsRequest.AlterConfigsResource resource, bool validateOnly)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var c in resource.Configs)
            if (!seen.Add(c.Name)) return new(ErrorCode.InvalidRequest, "Error due to duplicate config keys");
        List<string>? nullUpdates = null;
        foreach (var c in resource.Configs)
            if (c.Value is null && c.ConfigOperation != OpDelete) (nullUpdates ??= []).Add(c.Name);
        if (nullUpdates is not null) return new(ErrorCode.InvalidRequest, $"Null value not supported for : {string.Join(", ", nullUpdates)}");
        foreach (var c in resource.Configs)
            if (c.ConfigOperation is < OpSet or > OpSubtract) return new(ErrorCode.InvalidRequest, $"Unknown operations type {c.ConfigOperation}");
        switch (resource.ResourceType)
        {
            case ConfigResourceType.Topic:
                return topics.AlterConfig(resource.ResourceName, current => Apply(current, resource.Configs), validateOnly);
            case ConfigResourceType.Broker:
                return BrokerConfigChanges.Alter(cluster, dynamic, resource.ResourceName,
                    current => ApplyBroker(current, resource.Configs), validateOnly);
            case ConfigResourceType.BrokerLogger:
                return new(ErrorCode.InvalidRequest, "Kayak does not support changing broker log levels (BROKER_LOGGER)");
            default:
                return new(ErrorCode.InvalidRequest, $"Unsupported resource type: {resource.ResourceType}");
        }
    }

    private Dictionary<string, string> Apply(IReadOnlyDictionary<string, string> current,
        List<IncrementalAlterConfigsRequest.AlterableConfig> ops)
    {
        var result = new Dictionary<string, string>(current, StringComparer.Ordinal);
        TopicConfig? effective = null;
        foreach (var op in ops)
        {
            string name = op.Name;
            switch (op.ConfigOperation)
            {
                case OpSet:
                    result[name] = op.Value!; // null values were refused up front
                    break;
                case OpDelete:
                    result.Remove(name);
                    break;
                default:
                {
                    bool append = op.ConfigOperation == OpAppend;
                    if (FindDefinition(name) is not { Type: ConfigType.List })
                        throw new KafkaException(ErrorCode.InvalidConfig,
                            $"Can't {(append ? "APPEND" : "SUBTRACT")} to key {name} because its type is not LIST.");
                    effective ??= new TopicConfig(current, catalog.Defaults);
                    string? baseValue = result.TryGetValue(name, out var v) ? v : effective.GetValue(name);
                    var items = Config.BrokerConfig.SplitList(baseValue ?? "");
                    foreach (var item in op.Value!.Split(','))
                    {
                        if (append) { if (!items.Contains(item)) items.Add(item); }
                        else items.Remove(item);
                    }
                    result[name] = string.Join(",", items);
                    break;
                }
            }
        }
        return result;
    }

    private Dictionary<string, string> ApplyBroker(IReadOnlyDictionary<string, string> current,
        List<IncrementalAlterConfigsRequest.AlterableConfig> ops)
    {
        var result = new Dictionary<string, string>(current, StringComparer.Ordinal);
        foreach (var op in ops)
        {
            string name = op.Name;
            if (op.ConfigOperation == OpSet) result[name] = op.Value!;
            else if (op.ConfigOperation == OpDelete) result.Remove(name);
            else
            {
                if (Config.BrokerConfigDefinitions.Find(Config.DynamicBrokerConfigs.BaseName(name)) is not { Type: ConfigType.List })
                    throw new KafkaException(ErrorCode.InvalidConfig, $"Config value append is not allowed for config key: {name}");
                string? baseValue = result.TryGetValue(name, out var v) ? v : dynamic.Current.GetString(name);
                result[name] = string.Join(",", AppendOrSubtract(Config.BrokerConfig.SplitList(baseValue ?? ""), op));
            }
        }
        return result;
    }

    private static List<string> AppendOrSubtract(List<string> items, IncrementalAlterConfigsRequest.AlterableConfig op)
    {
        foreach (var item in op.Value!.Split(','))
        {
            if (op.ConfigOperation == OpAppend) { if (!items.Contains(item)) items.Add(item); }
            else items.Remove(item);
        }
        return items;
    }

    private static TopicConfigDefinition? FindDefinition(string name)
    {
        foreach (var def in TopicConfig.Definitions)
            if (def.Name == name) return def;
        return null;
    }
}
