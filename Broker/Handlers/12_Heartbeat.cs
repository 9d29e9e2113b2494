// Heartbeat (key 12), v0-4. Keeps a member's session alive; answers REBALANCE_IN_PROGRESS while the
// group is preparing a rebalance (the member must rejoin), ILLEGAL_GENERATION / UNKNOWN_MEMBER_ID /
// FENCED_INSTANCE_ID as Kafka does; for a classic member of a KIP-848 consumer group (online migration)
// REBALANCE_IN_PROGRESS when its assignment changed and it must rejoin. Logic: GroupCoordinator.Heartbeat.
// ACLs: READ on the group, else GROUP_AUTHORIZATION_FAILED (KafkaApis).
using Kayak.Broker.Security;
using Kayak.Coordinator;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class HeartbeatHandler(GroupCoordinator groups, IAuthorizer authorizer) : ApiHandler<HeartbeatRequest>
{
    public override ApiKey Key => ApiKey.Heartbeat;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, HeartbeatRequest request) =>
        !authorizer.Group(context, AclOperation.Read, request.GroupId) ? Done(GroupAuthorization.HeartbeatDenied())
            : Done(groups.Heartbeat(request));
}
