// ListGroups (key 16), v0-5. Every live group; v4+ filters by state (case-insensitive, KIP-518),
// v5+ by type (all groups here are "classic"; KIP-848 consumer groups are not implemented).
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

public sealed class ListGroupsHandler : ApiHandler<ListGroupsRequest>
{
    public override ApiKey Key => ApiKey.ListGroups;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, ListGroupsRequest request) =>
        Done(context.Broker.Groups.ListGroups(request, context.ApiVersion));
}
