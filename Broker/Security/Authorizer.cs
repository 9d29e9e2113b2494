using System.Net;
using Kayak.Broker.Handlers;
using Kayak.Protocol;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Kayak.Broker.Security;

/// <summary>
/// What handlers ask before they act, as KafkaApis asks Kafka's Authorizer through AuthHelper. Without an authorizer
/// (authorizer.class.name empty, the default) every check passes and <see cref="Acls"/> is null: the ACL APIs answer
/// SECURITY_DISABLED.
/// </summary>
internal interface IAuthorizer
{
    /// <summary>
    /// Kafka's Authorizer.authorize for one Action. logIfAllowed/logIfDenied say whether the decision is an explicit
    /// access (audit-logged) or a filter (topics hidden from an all-topics Metadata, ListGroups without cluster
    /// DESCRIBE, KIP-430 authorized operations): those are logged at TRACE only. refCount is how often the request
    /// names the resource (Action.resourceReferenceCount), shown in the audit line.
    /// </summary>
    bool Authorize(RequestContext context, AclOperation operation, AclResourceType type, string name,
        bool logIfAllowed = true, bool logIfDenied = true, int refCount = 1);

    /// <summary>Kafka's Authorizer.authorizeByResourceType: may the principal do the operation on some resource of the type.</summary>
    bool AuthorizeByResourceType(RequestContext context, AclOperation operation, AclResourceType type);

    /// <summary>KIP-430: the bit field (bit n = operation code n) of the type's supported operations the principal may do.</summary>
    int AuthorizedOperations(RequestContext context, AclResourceType type, string name);

    /// <summary>The ACL store, null when no authorizer is configured.</summary>
    StandardAuthorizer? Acls { get; }
}

/// <summary>No authorizer configured: Kafka's KafkaApis with authorizer = None allows everything.</summary>
internal sealed class AllowAllAuthorizer : IAuthorizer
{
    public static readonly AllowAllAuthorizer Instance = new();
    public bool Authorize(RequestContext context, AclOperation operation, AclResourceType type, string name,
        bool logIfAllowed = true, bool logIfDenied = true, int refCount = 1) => true;
    public bool AuthorizeByResourceType(RequestContext context, AclOperation operation, AclResourceType type) => true;
    public int AuthorizedOperations(RequestContext context, AclResourceType type, string name) => AllBits(type);
    public StandardAuthorizer? Acls => null;

    internal static int AllBits(AclResourceType type)
    {
        int bits = 0;
        foreach (var op in AclCodes.SupportedOperations(type)) bits |= 1 << (int)op;
        return bits;
    }
}

/// <summary>
/// Kafka's StandardAuthorizer (org.apache.kafka.metadata.authorizer, KRaft): super.users may do anything; otherwise
/// the ACLs whose pattern covers the resource (LITERAL equal, LITERAL "*", PREFIXED a prefix of the name) and whose
/// principal ("User:*" for everyone) and host ("*" or the client's IP) match decide: any DENY denies, else any ALLOW
/// allows (ALLOW of READ/WRITE/DELETE/ALTER implies DESCRIBE, ALTER_CONFIGS implies DESCRIBE_CONFIGS, ALL is every
/// operation), else a resource with no ACL at all gets allow.everyone.if.no.acl.found and one with ACLs is denied
/// (StandardAuthorizerData.findAclRule / findResult). ACLs live in kayak-acls.json in the first log dir
/// (<see cref="AclFile"/>) instead of Kafka's metadata log. Every decision goes to the audit logger
/// "kafka.authorizer.logger" as StandardAuthorizerData.logAuditMessage writes it (<see cref="AuditMessage"/>).
/// </summary>
internal sealed class StandardAuthorizer : IAuthorizer
{
    public const string ClassName = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";
    public const string Wildcard = "*";
    public const string WildcardPrincipal = "User:*";
    public const string ClusterName = "kafka-cluster";

    private readonly HashSet<string> _superUsers;
    private readonly bool _allowIfNoAcl;
    private readonly ILogger _audit;

    /// <summary>Kafka's audit logger name (StandardAuthorizerData.auditLogger), so log configs written for Kafka apply.</summary>
    public const string AuditLoggerName = "kafka.authorizer.logger";

    public StandardAuthorizer(IEnumerable<string> superUsers, bool allowEveryoneIfNoAclFound, AclFile? file, ILogger? auditLog = null)
        : this(superUsers, allowEveryoneIfNoAclFound, new AclStore(file), auditLog) { }

    /// <param name="store">The ACLs: a single node's own, or in a cluster the controller's, shared by every member
    /// (Kafka's brokers all replay the same AccessControlEntryRecords), while super.users and
    /// allow.everyone.if.no.acl.found stay each broker's own config as in Kafka.</param>
    public StandardAuthorizer(IEnumerable<string> superUsers, bool allowEveryoneIfNoAclFound, AclStore store, ILogger? auditLog = null)
    {
        _superUsers = new HashSet<string>(superUsers, StringComparer.Ordinal);
        _allowIfNoAcl = allowEveryoneIfNoAclFound;
        Store = store;
        _audit = auditLog ?? NullLogger.Instance;
    }

    /// <summary>The ACLs this authorizer decides with.</summary>
    public AclStore Store { get; }

    public StandardAuthorizer? Acls => this;

    /// <summary>Loads the stored ACLs; a file that cannot be read stops the start (ConfigException naming it).</summary>
    public void Load() => Store.Load();

    public int Count => Store.Current.Length;

    public bool Authorize(RequestContext context, AclOperation operation, AclResourceType type, string name,
        bool logIfAllowed = true, bool logIfDenied = true, int refCount = 1)
    {
        bool superUser = _superUsers.Contains(context.Principal);
        AclBinding? denyAcl = null, allowAcl = null;
        bool hasResourceAcls = false;
        if (!superUser)
        {
            string? host = null;
            foreach (var acl in Store.Current)
            {
                if (acl.ResourceType != type || !Covers(acl, name)) continue;
                hasResourceAcls = true;
                var result = Result(acl, context, operation, ref host);
                if (result == AclPermissionType.Deny) { denyAcl = acl; break; }
                if (result == AclPermissionType.Allow) allowAcl = acl;
            }
        }
        bool allowed = superUser || (denyAcl is null && (allowAcl is not null || (!hasResourceAcls && _allowIfNoAcl)));
        // StandardAuthorizerData.logAuditMessage: an explicit access is logged at DEBUG when allowed and INFO when
        // denied; a filter or an authorized-operations probe only at TRACE. The line is built only when it is written.
        var level = allowed ? (logIfAllowed ? LogLevel.Debug : LogLevel.Trace) : (logIfDenied ? LogLevel.Information : LogLevel.Trace);
        if (_audit.IsEnabled(level))
        {
            string rule = superUser ? "SuperUser"
                : denyAcl is not null ? MatchingAcl(denyAcl)
                : allowAcl is not null ? MatchingAcl(allowAcl)
                : allowed ? "DefaultAllow" : "DefaultDeny";
            _audit.Log(level, default, AuditMessage(context, allowed, operation, type, name, refCount, rule), null, static (m, _) => m);
        }
        return allowed;
    }

    /// <summary>
    /// StandardAuthorizerData.buildAuditMessage: "Principal = User:bob is Denied operation = READ from host = 10.0.0.5
    /// on resource = Topic:LITERAL:orders for request = Fetch with resourceRefCount = 1 based on rule DefaultDeny".
    /// </summary>
    internal static string AuditMessage(RequestContext context, bool allowed, AclOperation operation, AclResourceType type,
        string name, int refCount, string rule) =>
        $"Principal = {context.Principal} is {(allowed ? "Allowed" : "Denied")} operation = {AclCodes.Name(operation)} " +
        $"from host = {ClientHost(context)} on resource = {ResourceTypeName(type)}:LITERAL:{name} for request = {context.ApiKey} " +
        $"with resourceRefCount = {refCount} based on rule {rule}";

    /// <summary>SecurityUtils.resourceTypeName: the enum name in PascalCase (Topic, TransactionalId).</summary>
    private static string ResourceTypeName(AclResourceType type) => type.ToString();

    /// <summary>MatchingAclRule.toString with StandardAcl.toString.</summary>
    private static string MatchingAcl(AclBinding acl) =>
        $"MatchingAcl(acl=StandardAcl(resourceType={AclCodes.Name(acl.ResourceType)}, resourceName={acl.Name}, " +
        $"patternType={AclCodes.Name(acl.PatternType)}, principal={acl.Principal}, host={acl.Host}, " +
        $"operation={AclCodes.Name(acl.Operation)}, permissionType={AclCodes.Name(acl.Permission)}))";

    /// <summary>Does the ACL's resource pattern apply to the literal resource name.</summary>
    private static bool Covers(AclBinding acl, string name) => acl.PatternType == AclPatternType.Prefixed
        ? name.StartsWith(acl.Name, StringComparison.Ordinal)
        : acl.Name == name || acl.Name == Wildcard;

    /// <summary>StandardAuthorizerData.findResult: Unknown when the ACL does not apply to this principal, host and operation.</summary>
    private static AclPermissionType Result(AclBinding acl, RequestContext context, AclOperation op, ref string? host)
    {
        if (acl.Principal != context.Principal && acl.Principal != WildcardPrincipal) return AclPermissionType.Unknown;
        if (acl.Host != Wildcard && acl.Host != (host ??= ClientHost(context))) return AclPermissionType.Unknown;
        if (acl.Operation != AclOperation.All)
        {
            // Implied operations apply to ALLOW only: a DENY of READ does not deny DESCRIBE.
            bool applies = acl.Permission == AclPermissionType.Allow
                ? op switch
                {
                    AclOperation.Describe => acl.Operation is AclOperation.Describe or AclOperation.Read or AclOperation.Write or AclOperation.Delete or AclOperation.Alter,
                    AclOperation.DescribeConfigs => acl.Operation is AclOperation.DescribeConfigs or AclOperation.AlterConfigs,
                    _ => acl.Operation == op,
                }
                : acl.Operation == op;
            if (!applies) return AclPermissionType.Unknown;
        }
        return acl.Permission;
    }

    /// <summary>The client's IP as InetAddress.getHostAddress writes it (an IPv4-mapped IPv6 address as IPv4).</summary>
    internal static string ClientHost(RequestContext context)
    {
        if (context.ClientAddress is not IPEndPoint ip) return "";
        var address = ip.Address.IsIPv4MappedToIPv6 ? ip.Address.MapToIPv4() : ip.Address;
        return address.ToString();
    }

    public bool AuthorizeByResourceType(RequestContext context, AclOperation op, AclResourceType type)
    {
        // Authorizer.authorizeByResourceType: a hard-coded name first, so super users (and allow.everyone.if.no.acl.found
        // with no ACL on that name) pass whatever DENY ACLs exist.
        if (Authorize(context, op, type, "hardcode", logIfAllowed: true, logIfDenied: false, refCount: 0)) return true;
        var denyLiteral = new HashSet<string>(StringComparer.Ordinal);
        var denyPrefixed = new HashSet<string>(StringComparer.Ordinal);
        var allows = new List<AclBinding>();
        string host = ClientHost(context);
        foreach (var acl in Store.Current)
        {
            if (acl.ResourceType != type) continue;
            if (acl.Host != Wildcard && acl.Host != host) continue;
            if (acl.Principal != context.Principal && acl.Principal != WildcardPrincipal) continue;
            if (acl.Operation != op && acl.Operation != AclOperation.All) continue;
            if (acl.Permission == AclPermissionType.Deny)
            {
                if (acl.PatternType == AclPatternType.Literal)
                {
                    if (acl.Name == Wildcard) return false;
                    denyLiteral.Add(acl.Name);
                }
                else denyPrefixed.Add(acl.Name);
                continue;
            }
            if (acl.PatternType == AclPatternType.Literal && acl.Name == Wildcard) return true;
            allows.Add(acl);
        }
        // An ALLOW counts unless a DENY dominates it: the same literal name, or a prefixed DENY on a prefix of its name.
        foreach (var allow in allows)
        {
            if (allow.PatternType == AclPatternType.Literal && denyLiteral.Contains(allow.Name)) continue;
            bool dominated = false;
            for (int i = 1; i <= allow.Name.Length && !dominated; i++) dominated = denyPrefixed.Contains(allow.Name[..i]);
            if (!dominated) return true;
        }
        return false;
    }

    public int AuthorizedOperations(RequestContext context, AclResourceType type, string name)
    {
        int bits = 0;
        foreach (var op in AclCodes.SupportedOperations(type))
            if (Authorize(context, op, type, name, logIfAllowed: false, logIfDenied: false)) bits |= 1 << (int)op;
        return bits;
    }

    /// <summary>Kafka's Authorizer.acls(filter).</summary>
    public List<AclBinding> Describe(AclBindingFilter filter) => Store.Describe(filter);

    /// <inheritdoc cref="AclStore.Create"/>
    public KafkaError[] Create(IReadOnlyList<AclBinding> bindings) => Store.Create(bindings);

    /// <inheritdoc cref="AclStore.Delete"/>
    public (KafkaError Error, List<AclBinding> Deleted)[] Delete(IReadOnlyList<AclBindingFilter> filters) => Store.Delete(filters);

    /// <summary>AclControlManager.validateNewAcl plus AclApis' checks (cluster name, empty name) and a principal of the form Type:name.</summary>
    internal static KafkaError Validate(AclBinding b)
    {
        if (b.ResourceType is AclResourceType.Unknown or AclResourceType.Any)
            return new(ErrorCode.InvalidRequest, "Invalid resourceType " + AclCodes.Name(b.ResourceType));
        if (b.PatternType is not (AclPatternType.Literal or AclPatternType.Prefixed))
            return new(ErrorCode.InvalidRequest, "Invalid patternType " + AclCodes.Name(b.PatternType));
        if (b.Operation is AclOperation.Unknown or AclOperation.Any)
            return new(ErrorCode.InvalidRequest, "Invalid operation " + AclCodes.Name(b.Operation));
        if (b.Permission is not (AclPermissionType.Allow or AclPermissionType.Deny))
            return new(ErrorCode.InvalidRequest, "Invalid permissionType " + AclCodes.Name(b.Permission));
        if (b.ResourceType == AclResourceType.Cluster && b.Name != ClusterName)
            return new(ErrorCode.InvalidRequest, "The only valid name for the CLUSTER resource is " + ClusterName);
        if (b.Name.Length == 0) return new(ErrorCode.InvalidRequest, "Invalid empty resource name");
        int colon = b.Principal.IndexOf(':');
        if (colon <= 0)
            return new(ErrorCode.InvalidRequest, $"Could not parse principal from `{b.Principal}` (no colon is present separating the principal type from the principal name)");
        return KafkaError.None;
    }
}
