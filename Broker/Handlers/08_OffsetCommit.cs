// OffsetCommit (key 8), v0-9. Members commit with their generation; simple consumers (assign()) with
// generation -1 and no member id, accepted while the group has no members. v1 carries per-partition
// commit timestamps, v2-4 a retention time (an explicit expire timestamp), metadata longer than
// offset.metadata.max.bytes gets OFFSET_METADATA_TOO_LARGE, partitions of unknown topics
// UNKNOWN_TOPIC_OR_PARTITION (KafkaApis checks the metadata cache first). Logic:
// GroupCoordinator.CommitOffsets. Not implemented: KIP-848 member epochs (v9 with a consumer-protocol group).
// In a cluster the coordinator's append waits until the ISR has the commit (acks=-1, issue 14,
// Services/CoordinatorReplication); at offsets.commit.timeout.ms (5000, not configurable here) every partition gets
// COORDINATOR_NOT_AVAILABLE, as Kafka maps REQUEST_TIMED_OUT / NOT_ENOUGH_REPLICAS, and the offsets are not kept.
// ACLs: READ on the group (else every partition GROUP_AUTHORIZATION_FAILED) and on each topic (TOPIC_AUTHORIZATION_FAILED).
using Kayak.Broker.Security;
using Kayak.Broker.Services;
using Kayak.Coordinator;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class OffsetCommitHandler : ApiHandler<OffsetCommitRequest>
{
    private readonly GroupCoordinator _groups;
    private readonly ITopicCatalog _topics;
    // Made once: the coordinator asks it per committed partition.
    private readonly Func<string, int, bool> _partitionExists;
    private readonly IAuthorizer _authorizer;

    public OffsetCommitHandler(GroupCoordinator groups, ITopicCatalog topics, IAuthorizer authorizer)
    {
        _authorizer = authorizer;
        _groups = groups;
        _topics = topics;
        _partitionExists = PartitionExists;
    }

    public override ApiKey Key => ApiKey.OffsetCommit;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, OffsetCommitRequest request)
    {
        if (!_authorizer.Group(context, AclOperation.Read, request.GroupId)) return Done(GroupAuthorization.CommitDenied(request));
        var denied = GroupAuthorization.RemoveDeniedTopics(_authorizer, context, request);
        var response = GroupAuthorization.AddDeniedTopics(_groups.CommitOffsets(request, context.ApiVersion, _partitionExists), denied);
        return Done(response);
    }

    private bool PartitionExists(string topic, int partition) => _topics.Lookup(topic).InMetadata(partition);
}
