// DescribeGroups (key 15), v0-5. State, protocol and members; member metadata and assignments only
// when the group is Stable, as in Kafka. Unknown groups are reported Dead with no error; a KIP-848 consumer group
// answers GROUP_ID_NOT_FOUND (it is not a classic group; librdkafka describes it with ConsumerGroupDescribe).
// v3+ authorized operations (KIP-430): when asked for, every group answered without error (a Dead unknown one
// too) gets all GROUP operations, as Kafka answers without an authorizer; otherwise int.MinValue.
// ACLs: DESCRIBE per group (GROUP_AUTHORIZATION_FAILED, nothing else told); authorized operations from the ACLs.
using Kayak.Broker.Security;
using Kayak.Coordinator;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class DescribeGroupsHandler(GroupCoordinator groups, IAuthorizer authorizer) : ApiHandler<DescribeGroupsRequest>
{
    public override ApiKey Key => ApiKey.DescribeGroups;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, DescribeGroupsRequest request)
    {
        var response = groups.DescribeGroups(request);
        GroupAuthorization.FilterDescribe(authorizer, context, response);
        if (context.ApiVersion >= 3 && request.IncludeAuthorizedOperations)
            foreach (var g in response.Groups)
                if (g.Error() == ErrorCode.None) g.AuthorizedOperations = authorizer.AuthorizedOperations(context, AclResourceType.Group, g.GroupId);
        return Done(response);
    }
}
