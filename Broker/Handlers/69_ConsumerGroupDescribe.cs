// ConsumerGroupDescribe (key 69), v0 (KIP-848). Group epoch, assignment epoch, assignor and every member with its
// epoch, subscription, current and target assignment. A classic group answers GROUP_ID_NOT_FOUND, as in Kafka (the
// admin client then uses DescribeGroups). Authorized operations (KIP-430) are all group operations, as without an
// authorizer. Logic: GroupCoordinator.ConsumerGroupDescribe.
// ACLs: DESCRIBE per group (GROUP_AUTHORIZATION_FAILED); authorized operations from the ACLs; a group with a member whose
// current or target assignment holds a topic the principal may not DESCRIBE answers TOPIC_AUTHORIZATION_FAILED with no
// members, as Kafka 4.0's KafkaApis.handleConsumerGroupDescribe ("clients are not allowed to see topics that are not
// authorized for Describe"). Subscribed names and regexes are not checked, as in Kafka.
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
                response.Groups[i] = new ConsumerGroupDescribeResponse.DescribedGroup { GroupId = g.GroupId }
                    .SetError(ErrorCode.GroupAuthorizationFailed);
                continue;
            }
            g.AuthorizedOperations = request.IncludeAuthorizedOperations && g.Error() == ErrorCode.None
                ? authorizer.AuthorizedOperations(context, AclResourceType.Group, g.GroupId) : int.MinValue;
        }
        if (authorizer.Acls is not null) HideGroupsWithUndescribableTopics(context, response);
        return Done(response);
    }

    internal const string TopicDeniedMessage = "The group has described topic(s) that the client is not authorized to describe.";

    /// <summary>Every assigned topic of the answered groups asked once (filterByAuthorized), then each group checked.</summary>
    private void HideGroupsWithUndescribableTopics(RequestContext context, ConsumerGroupDescribeResponse response)
    {
        var decided = new Dictionary<string, bool>(StringComparer.Ordinal);
        for (int i = 0; i < response.Groups.Count; i++)
        {
            var g = response.Groups[i];
            bool denied = false;
            foreach (var m in g.Members)
                denied |= AnyDenied(context, m.Assignment, decided) | AnyDenied(context, m.TargetAssignment, decided);
            if (denied)
                response.Groups[i] = new ConsumerGroupDescribeResponse.DescribedGroup { GroupId = g.GroupId }
                    .SetError(new(ErrorCode.TopicAuthorizationFailed, TopicDeniedMessage));
        }
    }

    private bool AnyDenied(RequestContext context, ConsumerGroupDescribeResponse.Assignment assignment, Dictionary<string, bool> decided)
    {
        bool denied = false;
        foreach (var tp in assignment.TopicPartitions)
        {
            if (!decided.TryGetValue(tp.TopicName, out bool allowed))
                decided[tp.TopicName] = allowed = authorizer.Topic(context, AclOperation.Describe, tp.TopicName);
            denied |= !allowed;
        }
        return denied;
    }
}
