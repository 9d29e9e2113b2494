using Kayak.Broker.Handlers;
using Kayak.Protocol;

namespace Kayak.Broker.Security;

/// <summary>
/// Kafka's ConfigHelper / KafkaApis checks for config resources: BROKER and BROKER_LOGGER (and CLIENT_METRICS) need the
/// operation on the CLUSTER (CLUSTER_AUTHORIZATION_FAILED), a TOPIC or GROUP on itself (TOPIC_/GROUP_AUTHORIZATION_FAILED).
/// DescribeConfigs asks DESCRIBE_CONFIGS, AlterConfigs and IncrementalAlterConfigs ALTER_CONFIGS. Other types are
/// left to the handler's own INVALID_REQUEST.
/// </summary>
internal static class ConfigAuthorization
{
    public static KafkaError Check(IAuthorizer a, RequestContext c, sbyte resourceType, string name, AclOperation op) => resourceType switch
    {
        ConfigResourceType.Broker or ConfigResourceType.BrokerLogger or ConfigResourceType.ClientMetrics =>
            a.Cluster(c, op) ? KafkaError.None : ErrorCode.ClusterAuthorizationFailed,
        ConfigResourceType.Topic => a.Topic(c, op, name) ? KafkaError.None : ErrorCode.TopicAuthorizationFailed,
        ConfigResourceType.Group => a.Group(c, op, name) ? KafkaError.None : ErrorCode.GroupAuthorizationFailed,
        _ => KafkaError.None,
    };
}
