// ConsumerGroupDescribe (key 69), v0 (KIP-848). Group epoch, assignment epoch, assignor and every member with its
// epoch, subscription, current and target assignment. A classic group answers GROUP_ID_NOT_FOUND, as in Kafka (the
// admin client then uses DescribeGroups). Authorized operations (KIP-430) are all group operations, as without an
// authorizer. Logic: GroupCoordinator.ConsumerGroupDescribe.
using Kayak.Coordinator;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class ConsumerGroupDescribeHandler(GroupCoordinator groups) : ApiHandler<ConsumerGroupDescribeRequest>
{
    public override ApiKey Key => ApiKey.ConsumerGroupDescribe;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, ConsumerGroupDescribeRequest request)
    {
        var response = groups.ConsumerGroupDescribe(request);
        foreach (var g in response.Groups)
            g.AuthorizedOperations = request.IncludeAuthorizedOperations && g.ErrorCode == (short)ErrorCode.None ? AuthorizedOperations.Group : int.MinValue;
        return Done(response);
    }
}
