// OffsetFetch (key 9), v0-9. v0-7 one group (null topics from v2 = all committed partitions), v8+
// several groups at once. Partitions without a commit answer offset -1. RequireStable (v7+) is
// accepted; there are no pending transactional offsets to make an answer unstable yet.
// Not implemented: KIP-848 member id/epoch validation (v9).
using Kayak.Coordinator;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class OffsetFetchHandler(GroupCoordinator groups) : ApiHandler<OffsetFetchRequest>
{
    public override ApiKey Key => ApiKey.OffsetFetch;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, OffsetFetchRequest request) =>
        Done(groups.FetchOffsets(request, context.ApiVersion));
}
