// Heartbeat (key 12), v0-4. Keeps a member's session alive; answers REBALANCE_IN_PROGRESS while the
// group is preparing a rebalance (the member must rejoin), ILLEGAL_GENERATION / UNKNOWN_MEMBER_ID /
// FENCED_INSTANCE_ID as Kafka does. Logic: GroupCoordinator.Heartbeat.
using Kayak.Coordinator;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class HeartbeatHandler(GroupCoordinator groups) : ApiHandler<HeartbeatRequest>
{
    public override ApiKey Key => ApiKey.Heartbeat;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, HeartbeatRequest request) =>
        Done(groups.Heartbeat(request));
}
