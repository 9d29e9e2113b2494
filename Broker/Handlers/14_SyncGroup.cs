// SyncGroup (key 14), v0-5. The leader sends the assignments, followers wait for them; in a Stable
// group the stored assignment is returned at once. v5+ checks ProtocolType/ProtocolName against the
// group (INCONSISTENT_GROUP_PROTOCOL). Members that do not sync within the rebalance timeout are
// removed (Kafka 3.x pending-sync). A classic member of a KIP-848 consumer group (online migration) gets the
// partitions the server-side assignor gave it. Logic: GroupCoordinator.SyncGroupAsync.
// ACLs: READ on the group, else GROUP_AUTHORIZATION_FAILED (KafkaApis).
using Kayak.Broker.Security;
using Kayak.Coordinator;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class SyncGroupHandler(GroupCoordinator groups, IAuthorizer authorizer) : ApiHandler<SyncGroupRequest>
{
    public override ApiKey Key => ApiKey.SyncGroup;

    protected override async ValueTask<IApiMessage?> HandleAsync(RequestContext context, SyncGroupRequest request) =>
        !authorizer.Group(context, AclOperation.Read, request.GroupId) ? GroupAuthorization.SyncDenied()
            : await groups.SyncGroupAsync(request, context.ApiVersion).ConfigureAwait(false);
}
