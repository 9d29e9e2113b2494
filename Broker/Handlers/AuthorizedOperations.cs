namespace Kayak.Broker.Handlers;

/// <summary>
/// KIP-430 authorized operations: the bit field (bit n = AclOperation code n) Kafka returns when a client asks.
/// Without an authorizer Kafka's AuthHelper.authorizedOperations answers every operation AclEntry.supportedOperations
/// lists for the resource type: these sets (also Security.AllowAllAuthorizer's answer). With StandardAuthorizer the
/// handlers ask IAuthorizer.AuthorizedOperations instead. Not asked for, the field keeps the schema default int.MinValue.
/// </summary>
internal static class AuthorizedOperations
{
    // AclOperation codes (org.apache.kafka.common.acl.AclOperation).
    private const int Read = 3, Write = 4, Create = 5, Delete = 6, Alter = 7, Describe = 8, ClusterAction = 9,
        DescribeConfigs = 10, AlterConfigs = 11, IdempotentWrite = 12;

    public const int NotRequested = int.MinValue;

    /// <summary>TOPIC: READ, WRITE, CREATE, DESCRIBE, DELETE, ALTER, DESCRIBE_CONFIGS, ALTER_CONFIGS.</summary>
    public const int Topic = 1 << Read | 1 << Write | 1 << Create | 1 << Describe | 1 << Delete | 1 << Alter |
        1 << DescribeConfigs | 1 << AlterConfigs;

    /// <summary>GROUP: READ, DESCRIBE, DELETE, and (Kafka 4.0, KIP-848 group configs) DESCRIBE_CONFIGS, ALTER_CONFIGS.</summary>
    public const int Group = 1 << Read | 1 << Describe | 1 << Delete | 1 << DescribeConfigs | 1 << AlterConfigs;

    /// <summary>CLUSTER: CREATE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE, ALTER, DESCRIBE.</summary>
    public const int Cluster = 1 << Create | 1 << ClusterAction | 1 << DescribeConfigs | 1 << AlterConfigs |
        1 << IdempotentWrite | 1 << Alter | 1 << Describe;
}
