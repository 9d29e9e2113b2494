// DescribeConfigs (key 32), v0-4. Resource types as Kafka's ConfigHelper.describeConfigs answers them:
//   TOPIC (2): every topic config Kayak knows with its value in force. Source and synonyms follow Kafka's
//     ConfigHelper: an override is DYNAMIC_TOPIC_CONFIG, then the broker synonym chain (log.retention.ms /
//     .minutes / .hours ...) as STATIC_BROKER_CONFIG entries for keys set in server.properties, then
//     DEFAULT_CONFIG entries; the first entry gives the source. Unknown topic: UNKNOWN_TOPIC_OR_PARTITION;
//     an illegal name: INVALID_TOPIC_EXCEPTION. Not read-only (AlterConfigs can change them).
//   BROKER (4): name must be this node id, or empty for the cluster-wide default resource; anything else is
//     INVALID_REQUEST ("Unexpected broker id ..."). Lists BrokerConfigDefinitions.All with the values in force
//     (node.id and broker.id both give the node's id, as Kafka's populateSynonyms makes them); type, read-only
//     (the definition's update mode), sensitive (PASSWORD), synonyms and documentation all come from the
//     definition (issue 10). The empty (cluster default) resource lists the dynamic cluster defaults only.
//   BROKER_LOGGER (8): name must be this node id; answers no entries (Kafka lists log4j loggers; not implemented).
//   Others (CLIENT_METRICS, GROUP, UNKNOWN): INVALID_REQUEST "Unsupported resource type".
// Null or empty ConfigurationKeys means all keys; unknown keys are left out silently as in Kafka.
// Version notes: v0 has IsDefault instead of ConfigSource; synonyms from v1 (only when IncludeSynonyms);
// ConfigType and Documentation from v3 (documentation only when IncludeDocumentation). Sensitive values are
// never sent. Broker entries carry their definition's Doc (null when it has none).
// ACLs: DESCRIBE_CONFIGS on the CLUSTER for BROKER/BROKER_LOGGER (CLUSTER_AUTHORIZATION_FAILED), on the topic for TOPIC.
using Kayak.Broker.Security;
using System.Globalization;
using Kayak.Broker.Config;
using Kayak.Broker.Services;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using Kayak.Storage;

namespace Kayak.Broker.Handlers;

/// <summary>ConfigResource.Type ids shared by DescribeConfigs, AlterConfigs and IncrementalAlterConfigs.</summary>
internal static class ConfigResourceType
{
    public const sbyte Unknown = 0, Topic = 2, Broker = 4, BrokerLogger = 8, ClientMetrics = 16, Group = 32;

    /// <summary>
    /// Kafka's check of a BROKER / BROKER_LOGGER resource name: an integer equal to this node's id, or (for
    /// BROKER) empty meaning the cluster default. Returns the INVALID_REQUEST message, or null when fine.
    /// </summary>
    public static string? CheckBrokerName(ClusterInfo cluster, string name, bool allowEmpty)
    {
        if (name.Length == 0) return allowEmpty ? null : "Broker id must not be empty";
        if (!int.TryParse(name, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int id))
            return $"Broker id must be an integer, but it is: {name}";
        if (id != cluster.NodeId)
            return allowEmpty ? $"Unexpected broker id, expected {cluster.NodeId} or empty string, but received {name}"
                : $"Unexpected broker id, expected {cluster.NodeId} but received {name}";
        return null;
    }
}

internal sealed class DescribeConfigsHandler(ITopicCatalog catalog, DynamicBrokerConfig dynamic, ClusterInfo cluster, TopicConfigDescriber describer, IAuthorizer authorizer)
    : ApiHandler<DescribeConfigsRequest>
{
    public override ApiKey Key => ApiKey.DescribeConfigs;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, DescribeConfigsRequest request)
    {
        short version = context.ApiVersion;
        var options = new EntryOptions(version, version >= 1 && request.IncludeSynonyms, version >= 3 && request.IncludeDocumentation);
        var response = new DescribeConfigsResponse();
        foreach (var resource in request.Resources)
        {
            var result = new DescribeConfigsResponse.DescribeConfigsResult
            {
                ResourceType = resource.ResourceType,
                ResourceName = resource.ResourceName,
                ErrorMessage = null,
            };
            response.Results.Add(result);
            var keys = resource.ConfigurationKeys is { Count: > 0 } k ? new HashSet<string>(k, StringComparer.Ordinal) : null;
            var denied = ConfigAuthorization.Check(authorizer, context, resource.ResourceType, resource.ResourceName, AclOperation.DescribeConfigs);
            if (denied.IsError) { Fail(result, denied); continue; }
            switch (resource.ResourceType)
            {
                case ConfigResourceType.Topic:
                    DescribeTopic(resource.ResourceName, keys, options, result);
                    break;
                case ConfigResourceType.Broker:
                {
                    var bad = ConfigResourceType.CheckBrokerName(cluster, resource.ResourceName, allowEmpty: true);
                    if (bad is not null) Fail(result, new(ErrorCode.InvalidRequest, bad));
                    else DescribeBroker(resource.ResourceName, keys, options, result);
                    break;
                }
                case ConfigResourceType.BrokerLogger:
                {
                    var bad = ConfigResourceType.CheckBrokerName(cluster, resource.ResourceName, allowEmpty: false);
                    if (bad is not null) Fail(result, new(ErrorCode.InvalidRequest, bad));
                    break;
                }
                default:
                    Fail(result, new(ErrorCode.InvalidRequest, $"Unsupported resource type: {resource.ResourceType}"));
                    break;
            }
        }
        return Done(response);
    }

    private readonly record struct EntryOptions(short Version, bool IncludeSynonyms, bool IncludeDocumentation);

    private static void Fail(DescribeConfigsResponse.DescribeConfigsResult result, KafkaError error)
    {
        result.SetError(error);
        result.Configs.Clear();
    }

    private void DescribeTopic(string name, HashSet<string>? keys, EntryOptions options,
        DescribeConfigsResponse.DescribeConfigsResult result)
    {
        var invalid = TopicService.ValidateName(name);
        if (invalid is not null) { Fail(result, new(ErrorCode.InvalidTopicException, invalid)); return; }
        if (!catalog.TryGet(name, out var topic))
        {
            Fail(result, new(ErrorCode.UnknownTopicOrPartition, $"Topic '{name}' does not exist."));
            return;
        }
        foreach (var c in describer.DescribeTopic(topic.Config.Overrides))
        {
            if (keys is not null && !keys.Contains(c.Name)) continue;
            result.Configs.Add(Entry(options, c.Name, c.Value, c.Source, readOnly: false, (sbyte)c.Type, c.Documentation, Synonyms(c.Synonyms)));
        }
    }

    private static List<DescribeConfigsResponse.DescribeConfigsSynonym> Synonyms(List<ConfigSynonym> synonyms)
    {
        var list = new List<DescribeConfigsResponse.DescribeConfigsSynonym>(synonyms.Count);
        foreach (var s in synonyms) list.Add(new() { Name = s.Name, Value = s.Value, Source = (sbyte)s.Source });
        return list;
    }

    private void DescribeBroker(string resourceName, HashSet<string>? keys, EntryOptions options,
        DescribeConfigsResponse.DescribeConfigsResult result)
    {
        // The empty name is the cluster-wide default resource: Kafka lists only the dynamic cluster defaults there.
        if (resourceName.Length == 0)
        {
            foreach (var (name, _) in dynamic.ClusterDefault.OrderBy(p => p.Key, StringComparer.Ordinal))
                if (keys is null || keys.Contains(name)) AddBrokerEntry(name, options, result, perBroker: false);
            return;
        }
        var config = dynamic.Current;
        foreach (var def in BrokerConfigDefinitions.All)
        {
            if (keys is not null && !keys.Contains(def.Name)) continue;
            if (def.Name is "node.id" or "broker.id")
            {
                var synonyms = new List<ConfigSynonym>(2);
                string value = NodeIdSynonyms(def, synonyms);
                result.Configs.Add(Entry(options, def.Name, value, synonyms[0].Source, readOnly: true, (sbyte)def.Type, null, Synonyms(synonyms)));
            }
            else AddBrokerEntry(def.Name, options, result, perBroker: true, config.GetString(def.Name));
        }
        // Dynamic keys Kayak has no definition for (listener-prefixed, security, custom): Kafka lists them too.
        foreach (var name in dynamic.PerBroker.Keys.Concat(dynamic.ClusterDefault.Keys).Distinct().Order(StringComparer.Ordinal))
            if (BrokerConfigDefinitions.Find(name) is null && (keys is null || keys.Contains(name)))
                AddBrokerEntry(name, options, result, perBroker: true);
    }

    /// <summary>Kafka's ConfigHelper.createBrokerConfigEntry: value, source from the first synonym, read-only unless dynamic.</summary>
    private void AddBrokerEntry(string name, EntryOptions options, DescribeConfigsResponse.DescribeConfigsResult result, bool perBroker,
        string? value = null)
    {
        var synonyms = new List<ConfigSynonym>(4);
        describer.AddBrokerSynonyms(name, synonyms, perBroker);
        var def = BrokerConfigDefinitions.Find(DynamicBrokerConfigs.BaseName(name));
        if (value is null && synonyms.Count > 0) value = synonyms[0].Value;
        // PASSWORD values, and values of keys of unknown type, are never sent (Kafka's KafkaConfig.maybeSensitive).
        bool sensitive = def is null ? !DynamicBrokerConfigs.IsDynamic(name) || name.Contains("password", StringComparison.Ordinal)
            : def.IsSensitive;
        if (sensitive)
        {
            value = null;
            for (int i = 0; i < synonyms.Count; i++) synonyms[i] = synonyms[i] with { Value = null };
        }
        var source = synonyms.Count > 0 ? synonyms[0].Source : ConfigSource.DefaultConfig;
        var entry = Entry(options, name, value, source, readOnly: !DynamicBrokerConfigs.IsDynamic(name),
            def is null ? (sbyte)0 : (sbyte)def.Type, def?.Doc, Synonyms(synonyms));
        entry.IsSensitive = sensitive;
        result.Configs.Add(entry);
    }

    /// <summary>
    /// node.id and broker.id both report the id this node runs with: Kafka's KafkaConfig.populateSynonyms copies
    /// whichever of the two server.properties sets into the other before the config is built, so both are
    /// STATIC_BROKER_CONFIG with the same value when either is set (and the default when neither is).
    /// </summary>
    private string NodeIdSynonyms(Config.ConfigDefinition def, List<ConfigSynonym> synonyms)
    {
        string id = cluster.NodeId.ToString(CultureInfo.InvariantCulture);
        if (dynamic.Static.Has("node.id") || dynamic.Static.Has("broker.id"))
            synonyms.Add(new ConfigSynonym(def.Name, id, ConfigSource.StaticBrokerConfig));
        synonyms.Add(new ConfigSynonym(def.Name, def.Default, ConfigSource.DefaultConfig));
        return id;
    }

    private static DescribeConfigsResponse.DescribeConfigsResourceResult Entry(EntryOptions options, string name, string? value,
        ConfigSource source, bool readOnly, sbyte type, string? documentation, List<DescribeConfigsResponse.DescribeConfigsSynonym> synonyms,
        bool sensitive = false)
    {
        var entry = new DescribeConfigsResponse.DescribeConfigsResourceResult
        {
            Name = name,
            Value = value,
            ReadOnly = readOnly,
            IsSensitive = sensitive,
            Documentation = null,
        };
        if (options.Version == 0) entry.IsDefault = source == ConfigSource.DefaultConfig;
        else entry.ConfigSource = (sbyte)source;
        if (options.IncludeSynonyms) entry.Synonyms = synonyms;
        if (options.Version >= 3)
        {
            entry.ConfigType = type;
            if (options.IncludeDocumentation) entry.Documentation = documentation;
        }
        return entry;
    }
}
