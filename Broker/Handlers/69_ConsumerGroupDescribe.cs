// ConsumerGroupDescribe (key 69), v0 (KIP-848). Group epoch, assignment epoch, assignor and every member with its
// epoch, subscription, current and target assignment. A classic group answers GROUP_ID_NOT_FOUND, as in Kafka (the
// admin client then uses DescribeGroups). Authorized operations (KIP-430) are all group operations, as without an
// authorizer. Logic: GroupCoordinator.ConsumerGroupDescribe.
// ACLs: DESCRIBE per group (GROUP_AUTHORIZATION_FAILED); authorized operations from the ACLs. Not yet: Kafka 4.0's
// TOPIC_AUTHORIZATION_FAILED for a group whose members use topics the principal may not DESCRIBE.
using Kayak.Broker.Security;
using Kayak.Coordinator;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class ConsumerGroupDescribeHandler(GroupCoordinator groups, IAuthorizer authorizer) : ApiHandler<ConsumerGroupDescribeRequest>
{
    public override ApiKey Key => ApiKey.ConsumerGroupDescribe;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, ConsumerGroupDescribeRequest request)
    {
        var response = groups.ConsumerGroupDescribe(request);
        for (int i = 0; i < response.Groups.Count; i++)
        {
            var g = response.Groups[i];
            if (!authorizer.Group(context, AclOperation.Describe, g.GroupId))
            {
                response.Groups[i] = new ConsumerGroupDescribeResponse.DescribedGroup
                {
                    GroupId = g.GroupId, ErrorCode = (short)ErrorCode.GroupAuthorizationFailed, ErrorMessage = null,
                };
                continue;
            }
            g.AuthorizedOperations = request.IncludeAuthorizedOperations && g.ErrorCode == (short)ErrorCode.None
                ? authorizer.AuthorizedOperations(context, AclResourceType.Group, g.GroupId) : int.MinValue;
        }
        return Done(response);
    }
}
