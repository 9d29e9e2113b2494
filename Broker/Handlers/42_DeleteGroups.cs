// DeleteGroups (key 42), v0-2. Deletes empty groups with their offsets (tombstones in
// __consumer_offsets); NON_EMPTY_GROUP for groups with members, GROUP_ID_NOT_FOUND for unknown ones.
// ACLs: DELETE per group (GROUP_AUTHORIZATION_FAILED; the group is not touched).
using Kayak.Broker.Security;
using Kayak.Coordinator;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class DeleteGroupsHandler(GroupCoordinator groups, IAuthorizer authorizer) : ApiHandler<DeleteGroupsRequest>
{
    public override ApiKey Key => ApiKey.DeleteGroups;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, DeleteGroupsRequest request)
    {
        var denied = GroupAuthorization.RemoveDeniedGroups(authorizer, context, request);
        return Done(GroupAuthorization.AddDeniedGroups(groups.DeleteGroups(request), denied));
    }
}
