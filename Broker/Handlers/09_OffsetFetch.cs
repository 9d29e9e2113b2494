// OffsetFetch (key 9), v0-9. v0-7 one group (null topics from v2 = all committed partitions), v8+
// several groups at once. Partitions without a commit answer offset -1. RequireStable (v7+) is
// accepted; there are no pending transactional offsets to make an answer unstable yet.
// Not implemented: KIP-848 member id/epoch validation (v9).
// ACLs: DESCRIBE on the group (GROUP_AUTHORIZATION_FAILED; per group at v8+); topics the principal may not DESCRIBE
// are left out of an all-topics answer and TOPIC_AUTHORIZATION_FAILED (offset -1) when asked for by name.
using Kayak.Broker.Security;
using Kayak.Coordinator;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class OffsetFetchHandler(GroupCoordinator groups, IAuthorizer authorizer) : ApiHandler<OffsetFetchRequest>
{
    public override ApiKey Key => ApiKey.OffsetFetch;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, OffsetFetchRequest request)
    {
        if (context.ApiVersion < 8 && !authorizer.Group(context, AclOperation.Describe, request.GroupId))
            return Done(GroupAuthorization.FetchDenied(request, context.ApiVersion));
        return Done(GroupAuthorization.FilterFetch(authorizer, context, request, groups.FetchOffsets(request, context.ApiVersion)));
    }
}
