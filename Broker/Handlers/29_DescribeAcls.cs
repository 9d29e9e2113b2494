// DescribeAcls (key 29), v0-3: the ACLs matching one filter (resource type or ANY, name or null, pattern type
// LITERAL/PREFIXED/ANY/MATCH, principal/host or null, operation/permission or ANY), grouped per resource pattern as
// Kafka's DescribeAclsResponse.aclsResources does. Needs DESCRIBE on CLUSTER (CLUSTER_AUTHORIZATION_FAILED); without an
// authorizer SECURITY_DISABLED. A filter with an UNKNOWN part closes the connection, as Kafka's request parsing fails;
// v0 (no pattern field) reads as LITERAL, and ANY sent at v0 means LITERAL (DescribeAclsRequest.normalizeAndValidate).
using Kayak.Broker.Security;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class DescribeAclsHandler(IAuthorizer authorizer) : ApiHandler<DescribeAclsRequest>
{
    public override ApiKey Key => ApiKey.DescribeAcls;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, DescribeAclsRequest request)
    {
        var filter = AclRequests.Filter(request.ResourceTypeFilter, request.ResourceNameFilter, request.PatternTypeFilter,
            request.PrincipalFilter, request.HostFilter, request.Operation, request.PermissionType, context.ApiVersion);
        var response = new DescribeAclsResponse { ErrorMessage = null };
        if (!authorizer.Authorize(context, AclOperation.Describe, AclResourceType.Cluster, StandardAuthorizer.ClusterName))
            return Done(Fail(response, AclRequests.ClusterDenied));
        if (authorizer.Acls is not { } acls)
            return Done(Fail(response, new KafkaError(ErrorCode.SecurityDisabled, "No Authorizer is configured on the broker")));
        var byPattern = new Dictionary<(AclResourceType, string, AclPatternType), DescribeAclsResponse.DescribeAclsResource>();
        foreach (var acl in acls.Describe(filter))
        {
            if (!byPattern.TryGetValue((acl.ResourceType, acl.Name, acl.PatternType), out var resource))
            {
                resource = new DescribeAclsResponse.DescribeAclsResource
                {
                    ResourceType = (sbyte)acl.ResourceType, ResourceName = acl.Name, PatternType = (sbyte)acl.PatternType,
                };
                byPattern.Add((acl.ResourceType, acl.Name, acl.PatternType), resource);
                response.Resources.Add(resource);
            }
            resource.Acls.Add(new DescribeAclsResponse.AclDescription
            {
                Principal = acl.Principal, Host = acl.Host, Operation = (sbyte)acl.Operation, PermissionType = (sbyte)acl.Permission,
            });
        }
        return Done(response);
    }

    private static DescribeAclsResponse Fail(DescribeAclsResponse r, KafkaError e) => r.SetError(e);
}

/// <summary>What the three ACL APIs share: request validation as Kafka's request classes do it, and the cluster error.</summary>
internal static class AclRequests
{
    public static readonly KafkaError ClusterDenied = new(ErrorCode.ClusterAuthorizationFailed, "Cluster authorization failed.");

    /// <summary>
    /// Would Kafka's request parsing (the request classes' validate) refuse this ACL request: an UNKNOWN code anywhere,
    /// or a v0 pattern type other than LITERAL (ANY for filters). The handlers then close the connection.
    /// </summary>
    public static bool FailsKafkaParse(IApiMessage request, short version)
    {
        try
        {
            switch (request)
            {
                case DescribeAclsRequest d:
                    Filter(d.ResourceTypeFilter, d.ResourceNameFilter, d.PatternTypeFilter, d.PrincipalFilter, d.HostFilter, d.Operation, d.PermissionType, version);
                    break;
                case DeleteAclsRequest del:
                    foreach (var f in del.Filters)
                        Filter(f.ResourceTypeFilter, f.ResourceNameFilter, f.PatternTypeFilter, f.PrincipalFilter, f.HostFilter, f.Operation, f.PermissionType, version);
                    break;
                case CreateAclsRequest c:
                    foreach (var x in c.Creations) Binding(x, version);
                    break;
            }
            return false;
        }
        catch (ProtocolException)
        {
            return true;
        }
    }

    /// <summary>A creation as Kafka's CreateAclsRequest.validate accepts it, else ProtocolException (the connection closes).</summary>
    public static AclBinding Binding(CreateAclsRequest.AclCreation c, short version)
    {
        var b = new AclBinding(AclCodes.ResourceType(c.ResourceType), c.ResourceName, AclCodes.PatternType(c.ResourcePatternType),
            c.Principal, c.Host, AclCodes.Operation(c.Operation), AclCodes.Permission(c.PermissionType));
        if (version == 0 && b.PatternType != AclPatternType.Literal)
            throw new ProtocolException("Version 0 only supports literal resource pattern types");
        if (b.ResourceType == AclResourceType.Unknown || b.PatternType == AclPatternType.Unknown
            || b.Operation == AclOperation.Unknown || b.Permission == AclPermissionType.Unknown)
            throw new ProtocolException("CreatableAcls contain unknown elements: " + b);
        return b;
    }

    public static AclBindingFilter Filter(sbyte resourceType, string? name, sbyte patternType, string? principal, string? host,
        sbyte operation, sbyte permission, short version)
    {
        var pattern = AclCodes.PatternType(patternType);
        if (version == 0)
        {
            // Old brokers only had LITERAL; ANY asks for the same thing there.
            if (pattern == AclPatternType.Any) pattern = AclPatternType.Literal;
            else if (pattern != AclPatternType.Literal)
                throw new ProtocolException($"Version 0 does not support pattern type {AclCodes.Name(pattern)} (only LITERAL and ANY are supported)");
        }
        var filter = new AclBindingFilter(AclCodes.ResourceType(resourceType), name, pattern, principal, host,
            AclCodes.Operation(operation), AclCodes.Permission(permission));
        if (filter.IsUnknown) throw new ProtocolException("ACL filter contains UNKNOWN elements: " + filter);
        return filter;
    }
}
