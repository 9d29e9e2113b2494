// OffsetDelete (key 47), v0 (KIP-496). An empty group may delete any committed offsets; an active
// consumer group only those of topics no member subscribes to (GROUP_SUBSCRIBED_TO_TOPIC otherwise,
// subscriptions parsed from ConsumerProtocolSubscription); other active groups get NON_EMPTY_GROUP.
// ACLs: DELETE on the group (GROUP_AUTHORIZATION_FAILED), READ on each topic (TOPIC_AUTHORIZATION_FAILED).
using Kayak.Broker.Security;
using Kayak.Coordinator;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class OffsetDeleteHandler(GroupCoordinator groups, IAuthorizer authorizer) : ApiHandler<OffsetDeleteRequest>
{
    public override ApiKey Key => ApiKey.OffsetDelete;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, OffsetDeleteRequest request)
    {
        if (!authorizer.Group(context, AclOperation.Delete, request.GroupId)) return Done(GroupAuthorization.OffsetDeleteDenied());
        var denied = GroupAuthorization.RemoveDeniedTopics(authorizer, context, request);
        return Done(GroupAuthorization.AddDeniedTopics(groups.DeleteOffsets(request), denied));
    }
}
