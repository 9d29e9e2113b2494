namespace Kayak.Broker.Security;

// The codes are Kafka's wire codes (org.apache.kafka.common.resource.ResourceType, PatternType,
// org.apache.kafka.common.acl.AclOperation, AclPermissionType); Unknown (0) is what Kafka's fromCode gives any
// byte it does not know.

internal enum AclResourceType : byte { Unknown = 0, Any = 1, Topic = 2, Group = 3, Cluster = 4, TransactionalId = 5, DelegationToken = 6, User = 7 }

internal enum AclPatternType : byte { Unknown = 0, Any = 1, Match = 2, Literal = 3, Prefixed = 4 }

internal enum AclOperation : byte
{
    Unknown = 0, Any = 1, All = 2, Read = 3, Write = 4, Create = 5, Delete = 6, Alter = 7, Describe = 8,
    ClusterAction = 9, DescribeConfigs = 10, AlterConfigs = 11, IdempotentWrite = 12, CreateTokens = 13, DescribeTokens = 14,
}

internal enum AclPermissionType : byte { Unknown = 0, Any = 1, Deny = 2, Allow = 3 }

internal static class AclCodes
{
    /// <summary>Kafka's fromCode: a code it has no value for is UNKNOWN.</summary>
    public static AclResourceType ResourceType(sbyte code) => code is >= 0 and <= 7 ? (AclResourceType)code : AclResourceType.Unknown;
    public static AclPatternType PatternType(sbyte code) => code is >= 0 and <= 4 ? (AclPatternType)code : AclPatternType.Unknown;
    public static AclOperation Operation(sbyte code) => code is >= 0 and <= 14 ? (AclOperation)code : AclOperation.Unknown;
    public static AclPermissionType Permission(sbyte code) => code is >= 0 and <= 3 ? (AclPermissionType)code : AclPermissionType.Unknown;

    /// <summary>Kafka's enum names (SecurityUtils/AclOperation.toString), as kafka-acls.sh prints and the ACL file stores them.</summary>
    public static string Name(AclResourceType t) => t switch
    {
        AclResourceType.TransactionalId => "TRANSACTIONAL_ID",
        AclResourceType.DelegationToken => "DELEGATION_TOKEN",
        _ => t.ToString().ToUpperInvariant(),
    };
    public static string Name(AclPatternType t) => t.ToString().ToUpperInvariant();
    public static string Name(AclPermissionType t) => t.ToString().ToUpperInvariant();
    public static string Name(AclOperation op) => op switch
    {
        AclOperation.ClusterAction => "CLUSTER_ACTION",
        AclOperation.DescribeConfigs => "DESCRIBE_CONFIGS",
        AclOperation.AlterConfigs => "ALTER_CONFIGS",
        AclOperation.IdempotentWrite => "IDEMPOTENT_WRITE",
        AclOperation.CreateTokens => "CREATE_TOKENS",
        AclOperation.DescribeTokens => "DESCRIBE_TOKENS",
        _ => op.ToString().ToUpperInvariant(),
    };

    public static T Parse<T>(string name, Func<T, string> nameOf) where T : struct, Enum
    {
        foreach (var v in Enum.GetValues<T>())
            if (nameOf(v) == name) return v;
        throw new FormatException($"unknown value {name}");
    }

    /// <summary>
    /// Kafka's AclEntry.supportedOperations: what KIP-430 authorized operations report per resource type (Kafka 4.0
    /// adds DESCRIBE_CONFIGS and ALTER_CONFIGS on GROUP for KIP-848 group configs).
    /// </summary>
    public static readonly AclOperation[] TopicOperations =
        [AclOperation.Read, AclOperation.Write, AclOperation.Create, AclOperation.Describe, AclOperation.Delete, AclOperation.Alter, AclOperation.DescribeConfigs, AclOperation.AlterConfigs];
    public static readonly AclOperation[] GroupOperations =
        [AclOperation.Read, AclOperation.Describe, AclOperation.Delete, AclOperation.DescribeConfigs, AclOperation.AlterConfigs];
    public static readonly AclOperation[] ClusterOperations =
        [AclOperation.Create, AclOperation.ClusterAction, AclOperation.DescribeConfigs, AclOperation.AlterConfigs, AclOperation.IdempotentWrite, AclOperation.Alter, AclOperation.Describe];
    public static readonly AclOperation[] TransactionalIdOperations = [AclOperation.Describe, AclOperation.Write];
    public static readonly AclOperation[] DelegationTokenOperations = [AclOperation.Describe];
    public static readonly AclOperation[] UserOperations = [AclOperation.CreateTokens, AclOperation.DescribeTokens];

    public static AclOperation[] SupportedOperations(AclResourceType t) => t switch
    {
        AclResourceType.Topic => TopicOperations,
        AclResourceType.Group => GroupOperations,
        AclResourceType.Cluster => ClusterOperations,
        AclResourceType.TransactionalId => TransactionalIdOperations,
        AclResourceType.DelegationToken => DelegationTokenOperations,
        AclResourceType.User => UserOperations,
        _ => [],
    };
}

/// <summary>One ACL: Kafka's AclBinding (ResourcePattern + AccessControlEntry). Value equality dedupes creates, as Kafka's set does.</summary>
internal sealed record AclBinding(AclResourceType ResourceType, string Name, AclPatternType PatternType,
    string Principal, string Host, AclOperation Operation, AclPermissionType Permission)
{
    public override string ToString() =>
        $"(pattern=ResourcePattern(resourceType={AclCodes.Name(ResourceType)}, name={Name}, patternType={AclCodes.Name(PatternType)}), " +
        $"entry=(principal={Principal}, host={Host}, operation={AclCodes.Name(Operation)}, permissionType={AclCodes.Name(Permission)}))";
}

/// <summary>
/// Kafka's AclBindingFilter: ResourcePatternFilter (ANY type, null name = any, ANY/MATCH pattern types) and
/// AccessControlEntryFilter (null principal/host = any, ANY operation/permission).
/// </summary>
internal sealed record AclBindingFilter(AclResourceType ResourceType, string? Name, AclPatternType PatternType,
    string? Principal, string? Host, AclOperation Operation, AclPermissionType Permission)
{
    /// <summary>Kafka's AclBindingFilter.isUnknown: any part UNKNOWN.</summary>
    public bool IsUnknown => ResourceType == AclResourceType.Unknown || PatternType == AclPatternType.Unknown
        || Operation == AclOperation.Unknown || Permission == AclPermissionType.Unknown;

    public bool Matches(AclBinding b) => MatchesPattern(b) && MatchesEntry(b);

    /// <summary>ResourcePatternFilter.matches: MATCH finds the LITERAL, wildcard "*" and PREFIXED ACLs that apply to the name.</summary>
    private bool MatchesPattern(AclBinding b)
    {
        if (ResourceType != AclResourceType.Any && ResourceType != b.ResourceType) return false;
        if (PatternType != AclPatternType.Any && PatternType != AclPatternType.Match && PatternType != b.PatternType) return false;
        if (Name is null) return true;
        if (PatternType == AclPatternType.Any || PatternType == b.PatternType) return Name == b.Name;
        return b.PatternType switch
        {
            AclPatternType.Literal => Name == b.Name || b.Name == StandardAuthorizer.Wildcard,
            AclPatternType.Prefixed => Name.StartsWith(b.Name, StringComparison.Ordinal),
            _ => false,
        };
    }

    private bool MatchesEntry(AclBinding b) =>
        (Principal is null || Principal == b.Principal)
        && (Host is null || Host == b.Host)
        && (Operation == AclOperation.Any || Operation == b.Operation)
        && (Permission == AclPermissionType.Any || Permission == b.Permission);
}
