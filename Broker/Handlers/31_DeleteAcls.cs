// DeleteAcls (key 31), v0-3: removes the ACLs each filter matches and lists them per filter (Kafka's
// AclControlManager.deleteAcls: every filter sees the ACLs as they were before the request, so one ACL matching two
// filters is listed under both). Filters as DescribeAcls (ANY at v0 means LITERAL; an UNKNOWN part closes the
// connection). Needs ALTER on CLUSTER (every filter CLUSTER_AUTHORIZATION_FAILED); without an authorizer every filter
// is SECURITY_DISABLED. The change is on disk (kayak-acls.json) before the answer.
using Kayak.Broker.Security;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class DeleteAclsHandler(IAuthorizer authorizer) : ApiHandler<DeleteAclsRequest>
{
    public override ApiKey Key => ApiKey.DeleteAcls;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, DeleteAclsRequest request)
    {
        var filters = new List<AclBindingFilter>(request.Filters.Count);
        foreach (var f in request.Filters)
            filters.Add(AclRequests.Filter(f.ResourceTypeFilter, f.ResourceNameFilter, f.PatternTypeFilter, f.PrincipalFilter,
                f.HostFilter, f.Operation, f.PermissionType, context.ApiVersion));
        var response = new DeleteAclsResponse();
        KafkaError? all = !authorizer.Authorize(context, AclOperation.Alter, AclResourceType.Cluster, StandardAuthorizer.ClusterName)
            ? AclRequests.ClusterDenied
            : authorizer.Acls is null ? new KafkaError(ErrorCode.SecurityDisabled, "No Authorizer is configured.") : null;
        if (all is { } error)
        {
            foreach (var _ in filters) response.FilterResults.Add(new DeleteAclsResponse.DeleteAclsFilterResult().SetError(error));
            return Done(response);
        }
        foreach (var (filterError, deleted) in authorizer.Acls!.Delete(filters))
        {
            var result = new DeleteAclsResponse.DeleteAclsFilterResult().SetError(filterError);
            foreach (var acl in deleted)
                result.MatchingAcls.Add(new DeleteAclsResponse.DeleteAclsMatchingAcl
                {
                    ErrorMessage = null, ResourceType = (sbyte)acl.ResourceType, ResourceName = acl.Name, PatternType = (sbyte)acl.PatternType,
                    Principal = acl.Principal, Host = acl.Host, Operation = (sbyte)acl.Operation, PermissionType = (sbyte)acl.Permission,
                });
            response.FilterResults.Add(result);
        }
        return Done(response);
    }
}
