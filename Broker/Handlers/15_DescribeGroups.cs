// DescribeGroups (key 15), v0-5. State, protocol and members; member metadata and assignments only
// when the group is Stable, as in Kafka. Unknown groups are reported Dead with no error.
// v3+ authorized operations are not computed (no ACLs): left at Kafka's "not requested" value.
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

public sealed class DescribeGroupsHandler : ApiHandler<DescribeGroupsRequest>
{
    public override ApiKey Key => ApiKey.DescribeGroups;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, DescribeGroupsRequest request) =>
        Done(context.Broker.Groups.DescribeGroups(request));
}
