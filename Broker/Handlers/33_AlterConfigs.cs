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
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using Kayak.Storage;

namespace Kayak.Broker.Handlers;

public sealed class AlterConfigsHandler : ApiHandler<AlterConfigsRequest>
{
    public override ApiKey Key => ApiKey.AlterConfigs;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, AlterConfigsRequest request)
    {
        var broker = context.Broker;
        var response = new AlterConfigsResponse();
        foreach (var resource in request.Resources)
        {
            var (error, message) = Alter(broker, resource, request.ValidateOnly);
            response.Responses.Add(new AlterConfigsResponse.AlterConfigsResourceResponse
            {
                ErrorCode = (short)error,
                ErrorMessage = message,
                ResourceType = resource.ResourceType,
                ResourceName = resource.ResourceName,
            });
        }
        return Done(response);
    }

    private static (ErrorCode, string?) Alter(BrokerState broker, AlterConfigsRequest.AlterConfigsResource resource, bool validateOnly)
    {
        switch (resource.ResourceType)
        {
            case ConfigResourceType.Topic:
            {
                var overrides = new Dictionary<string, string>(StringComparer.Ordinal);
                foreach (var c in resource.Configs)
                {
                    if (c.Value is null) return (ErrorCode.InvalidConfig, $"Null value not supported for topic configs: {c.Name}");
                    overrides[c.Name] = c.Value;
                }
                return TopicConfigUpdates.Replace(broker, resource.ResourceName, _ => overrides, validateOnly);
            }
            case ConfigResourceType.Broker:
            {
                var keys = new List<string>(resource.Configs.Count);
                foreach (var c in resource.Configs) keys.Add(c.Name);
                return TopicConfigUpdates.RefuseBrokerChange(broker, resource.ResourceName, keys);
            }
            case ConfigResourceType.BrokerLogger:
                return (ErrorCode.InvalidRequest, "AlterConfigs is deprecated and does not support the resource type BROKER_LOGGER");
            default:
                return (ErrorCode.InvalidRequest, $"Unsupported resource type: {resource.ResourceType}");
        }
    }
}

/// <summary>Topic config changes shared by AlterConfigs and IncrementalAlterConfigs.</summary>
internal static class TopicConfigUpdates
{
    // Serializes read-modify-write of one topic's overrides across concurrent (incremental) alters; config
    // changes are rare admin operations, so one lock for all topics is enough.
    private static readonly object Gate = new();

    /// <summary>
    /// Computes the topic's new complete override set from its current one, validates every entry and
    /// stores it unless <paramref name="validateOnly"/>. <paramref name="update"/> returns the new set, or
    /// throws <see cref="ConfigUpdateException"/> for a request-level problem.
    /// </summary>
    public static (ErrorCode, string?) Replace(BrokerState broker, string name,
        Func<IReadOnlyDictionary<string, string>, IReadOnlyDictionary<string, string>> update, bool validateOnly)
    {
        var invalid = TopicService.ValidateName(name);
        if (invalid is not null) return (ErrorCode.InvalidTopicException, invalid);
        lock (Gate)
        {
            if (!broker.Logs.TryGetTopic(name, out var topic))
                return (ErrorCode.UnknownTopicOrPartition, $"The topic '{name}' does not exist.");
            try
            {
                var overrides = update(topic.Config.Overrides);
                foreach (var (k, v) in overrides) TopicConfig.Validate(k, v);
                if (!validateOnly) broker.Logs.AlterTopicConfig(name, overrides);
                return (ErrorCode.None, null);
            }
            catch (ConfigUpdateException e) { return (e.Error, e.Message); }
            catch (Kayak.Storage.ConfigException e) { return (ErrorCode.InvalidConfig, e.Message); }
            catch (StorageErrorException e) when (e.Error == StorageError.UnknownTopicOrPartition)
            {
                return (ErrorCode.UnknownTopicOrPartition, $"The topic '{name}' does not exist.");
            }
        }
    }

    /// <summary>
    /// A BROKER resource change on a broker whose configs are all static (read-only in DescribeConfigs):
    /// Kafka refuses such keys with "Cannot update these configs dynamically".
    /// </summary>
    public static (ErrorCode, string?) RefuseBrokerChange(BrokerState broker, string resourceName, List<string> keys)
    {
        var bad = ConfigResourceType.CheckBrokerName(broker, resourceName, allowEmpty: true);
        if (bad is not null) return (ErrorCode.InvalidRequest, bad);
        if (keys.Count == 0) return (ErrorCode.None, null);
        // Kafka 4.x formats the key set as a Java set ("[a, b]"); 3.x and older printed Scala's "Set(a, b)".
        return (ErrorCode.InvalidRequest, $"Cannot update these configs dynamically: [{string.Join(", ", keys)}]");
    }
}

/// <summary>A request-level problem found while computing new overrides (bad operation, duplicate key).</summary>
internal sealed class ConfigUpdateException(ErrorCode error, string message) : Exception(message)
{
    public ErrorCode Error { get; } = error;
}
