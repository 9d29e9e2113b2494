// OffsetDelete (key 47), v0 (KIP-496). An empty group may delete any committed offsets; an active
// consumer group only those of topics no member subscribes to (GROUP_SUBSCRIBED_TO_TOPIC otherwise,
// subscriptions parsed from ConsumerProtocolSubscription); other active groups get NON_EMPTY_GROUP.
using Kayak.Coordinator;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class OffsetDeleteHandler(GroupCoordinator groups) : ApiHandler<OffsetDeleteRequest>
{
    public override ApiKey Key => ApiKey.OffsetDelete;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, OffsetDeleteRequest request) =>
        Done(groups.DeleteOffsets(request));
}
