// DescribeTopicPartitions (key 75), v0 (KIP-966): topic and partition metadata with pagination.
// An empty topic list means every topic. Topics are answered in name order, starting at the cursor
// (topic name, partition index) when one is given; at most min(ResponsePartitionLimit, 2000) partitions are
// returned (Kafka's max.request.partition.size.limit default), and NextCursor names the first partition
// left out, or is null when everything was returned. A cursor topic missing from an explicit list, or a
// negative cursor partition, is INVALID_REQUEST on every requested topic (Kafka's error response shape).
// Unknown topics in an explicit list answer UNKNOWN_TOPIC_OR_PARTITION (INVALID_TOPIC_EXCEPTION for an
// illegal name) and use no partition budget.
// Each partition: leader, leader epoch, replicas and ISR from IPartitionLeadership (a single node: itself, epoch 0;
// an in-process cluster: the controller's assignment, issue 14), stopped replicas as offline replicas, and empty
// eligible leader replicas / last known ELR (ELR, KIP-966, is not implemented: there is no ELR election). TopicAuthorizedOperations: all TOPIC operations, as Kafka reports without an
// authorizer. A limit below 1 is treated as 1 so a client paging through always makes progress.
// ACLs: DESCRIBE per topic: others are left out of an all-topics answer, TOPIC_AUTHORIZATION_FAILED when named;
// authorized operations from the ACLs.
using Kayak.Broker.Security;
using Kayak.Broker.Services;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using Kayak.Storage;

namespace Kayak.Broker.Handlers;

internal sealed class DescribeTopicPartitionsHandler(ITopicCatalog catalog, ClusterInfo cluster, IPartitionLeadership leadership, IAuthorizer authorizer)
    : ApiHandler<DescribeTopicPartitionsRequest>
{
    /// <summary>Kafka's max.request.partition.size.limit default.</summary>
    private const int MaxPartitionLimit = 2000;

    public override ApiKey Key => ApiKey.DescribeTopicPartitions;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, DescribeTopicPartitionsRequest request)
    {
        var response = new DescribeTopicPartitionsResponse();
        bool all = request.Topics.Count == 0;
        var cursor = request.Cursor;

        var names = new SortedSet<string>(StringComparer.Ordinal);
        if (all) foreach (var t in catalog.All) names.Add(t.Name);
        else foreach (var t in request.Topics) names.Add(t.Name);

        if (cursor is not null)
        {
            string? problem = cursor.PartitionIndex < 0 ? "Cursor partition index must be non-negative"
                : !all && !names.Contains(cursor.TopicName) ? $"DescribeTopicPartitionsRequest topic list should contain the cursor topic: {cursor.TopicName}"
                : null;
            if (problem is not null)
            {
                foreach (var t in request.Topics)
                    response.Topics.Add(new DescribeTopicPartitionsResponse.DescribeTopicPartitionsResponseTopic { Name = t.Name }
                        .SetError(ErrorCode.InvalidRequest));
                return Done(response);
            }
        }

        int remaining = Math.Clamp(request.ResponsePartitionLimit, 1, MaxPartitionLimit);
        foreach (var name in names)
        {
            int start = 0;
            if (cursor is not null)
            {
                int cmp = string.CompareOrdinal(name, cursor.TopicName);
                if (cmp < 0) continue;
                if (cmp == 0) start = cursor.PartitionIndex;
            }
            if (remaining == 0)
            {
                // Kafka's cursor points at the next topic in order, whether or not it exists.
                response.NextCursor = new DescribeTopicPartitionsResponse.Cursor { TopicName = name, PartitionIndex = start };
                break;
            }
            if (!authorizer.Topic(context, AclOperation.Describe, name))
            {
                // Not told whether it exists; left out of an all-topics answer.
                if (!all)
                    response.Topics.Add(new DescribeTopicPartitionsResponse.DescribeTopicPartitionsResponseTopic { Name = name }
                        .SetError(ErrorCode.TopicAuthorizationFailed));
                continue;
            }
            if (!catalog.TryGet(name, out var topic))
            {
                if (!all)
                    response.Topics.Add(new DescribeTopicPartitionsResponse.DescribeTopicPartitionsResponseTopic
                    {
                        Name = name,
                        IsInternal = TopicService.IsInternal(name),
                        TopicAuthorizedOperations = authorizer.AuthorizedOperations(context, AclResourceType.Topic, name),
                    }.SetError(TopicService.ValidateName(name) is null ? ErrorCode.UnknownTopicOrPartition : ErrorCode.InvalidTopicException));
                continue;
            }
            var partitions = topic.Partitions;
            int end = (int)Math.Min(partitions.Count, (long)start + remaining);
            response.Topics.Add(Describe(topic, start, end, authorizer.AuthorizedOperations(context, AclResourceType.Topic, name)));
            if (end > start) remaining -= end - start;
            if (end < partitions.Count)
            {
                response.NextCursor = new DescribeTopicPartitionsResponse.Cursor { TopicName = name, PartitionIndex = end };
                break;
            }
        }
        return Done(response);
    }

    private DescribeTopicPartitionsResponse.DescribeTopicPartitionsResponseTopic Describe(TopicLog topic, int start, int end, int operations)
    {
        var rt = new DescribeTopicPartitionsResponse.DescribeTopicPartitionsResponseTopic
        {
            Name = topic.Name,
            TopicId = topic.TopicId,
            IsInternal = TopicService.IsInternal(topic.Name),
            TopicAuthorizedOperations = operations,
        };
        for (int p = start; p < end; p++)
        {
            var replicas = leadership.Describe(topic.Name, p);
            var rp = new DescribeTopicPartitionsResponse.DescribeTopicPartitionsResponsePartition
            {
                PartitionIndex = p,
                LeaderId = replicas.Leader,
                LeaderEpoch = replicas.LeaderEpoch,
                ReplicaNodes = [.. replicas.Replicas],
                IsrNodes = [.. replicas.Isr],
                EligibleLeaderReplicas = [],
                LastKnownElr = [],
                OfflineReplicas = [],
            };
            // As Metadata: a stopped replica is offline; a partition without a live leader is LEADER_NOT_AVAILABLE.
            foreach (int r in replicas.Replicas)
                if (cluster.Broker(r) is null) rp.OfflineReplicas.Add(r);
            if (replicas.Leader < 0) rp.SetError(ErrorCode.LeaderNotAvailable);
            rt.Partitions.Add(rp);
        }
        return rt;
    }
}
