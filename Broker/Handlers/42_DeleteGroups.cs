// DeleteGroups (key 42), v0-2. Deletes empty groups with their offsets (tombstones in
// __consumer_offsets); NON_EMPTY_GROUP for groups with members, GROUP_ID_NOT_FOUND for unknown ones.
using Kayak.Coordinator;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class DeleteGroupsHandler(GroupCoordinator groups) : ApiHandler<DeleteGroupsRequest>
{
    public override ApiKey Key => ApiKey.DeleteGroups;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, DeleteGroupsRequest request) =>
        Done(groups.DeleteGroups(request));
}
