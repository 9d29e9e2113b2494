// ListGroups (key 16), v0-5. Every live group; v4+ filters by state (case-insensitive, KIP-518),
// v5+ by type (case-insensitive): "classic", or "consumer" for KIP-848 groups, which report their own states
// (Empty/Assigning/Reconciling/Stable) and protocol type "consumer".
// ACLs: without DESCRIBE on the CLUSTER, only the groups the principal may DESCRIBE are listed.
using Kayak.Broker.Security;
using Kayak.Coordinator;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class ListGroupsHandler(GroupCoordinator groups, IAuthorizer authorizer) : ApiHandler<ListGroupsRequest>
{
    public override ApiKey Key => ApiKey.ListGroups;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, ListGroupsRequest request) =>
        Done(GroupAuthorization.FilterList(authorizer, context, groups.ListGroups(request, context.ApiVersion)));
}
