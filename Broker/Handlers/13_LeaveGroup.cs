// LeaveGroup (key 13), v0-5. v0-2 one member with a top-level error; v3+ a batch of members, by
// member id and/or group.instance.id (KIP-345: an admin can remove a static member by instance id).
// A leaving member triggers a rebalance of the rest. v5 reason is ignored. Logic: GroupCoordinator.LeaveGroup.
// ACLs: READ on the group, else GROUP_AUTHORIZATION_FAILED (KafkaApis).
using Kayak.Broker.Security;
using Kayak.Coordinator;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class LeaveGroupHandler(GroupCoordinator groups, IAuthorizer authorizer) : ApiHandler<LeaveGroupRequest>
{
    public override ApiKey Key => ApiKey.LeaveGroup;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, LeaveGroupRequest request) =>
        !authorizer.Group(context, AclOperation.Read, request.GroupId) ? Done(GroupAuthorization.LeaveDenied())
            : Done(groups.LeaveGroup(request, context.ApiVersion));
}
