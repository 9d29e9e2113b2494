// OffsetForLeaderEpoch (key 23), v0-4. Clients (KIP-320) use it after a leader change to detect log
// truncation. Kayak's partitions have exactly one leader epoch, 0, starting at offset 0 (Kafka's leader epoch
// cache after a KRaft topic creation), so answers follow LeaderEpochFileCache.endOffsetFor with one entry:
//   requested epoch 0            -> (epoch 0, log end offset)
//   requested epoch < 0 or > 0   -> (-1, -1) with no error (UNDEFINED_EPOCH / UNDEFINED_EPOCH_OFFSET).
// CurrentLeaderEpoch (v2+) is checked as Kafka's Partition checks a client's epoch: -1 skips the check, a
// smaller epoch is FENCED_LEADER_EPOCH and a larger one UNKNOWN_LEADER_EPOCH. The response's LeaderEpoch
// exists from v1 (v0 clients only get the end offset). ReplicaId (v3+) only decides whether a follower is
// asking; every replica is this leader, so it does not change the answer. Unknown topic or partition is
// UNKNOWN_TOPIC_OR_PARTITION. In an in-process cluster (issue 14) a partition this broker does not lead is
// NOT_LEADER_OR_FOLLOWER, and leader epochs move with failovers: the current epoch is the controller's, the leader
// stamps it on every produced batch, and an older requested epoch is answered from the batches' epochs
// (PartitionLog.EndOffsetForLeaderEpoch, Kafka's endOffsetFor); followers truncate by it (KIP-101/279, Cluster/ReplicaFetcher.cs).
// ACLs: CLUSTER_ACTION on the cluster, else DESCRIBE on each topic (TOPIC_AUTHORIZATION_FAILED).
using Kayak.Broker.Security;
using Kayak.Broker.Services;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class OffsetForLeaderEpochHandler(ITopicCatalog catalog, IPartitionLeadership leadership, IAuthorizer authorizer)
    : ApiHandler<OffsetForLeaderEpochRequest>
{
    /// <summary>The only leader epoch a Kayak partition ever has (Metadata reports it too).</summary>
    internal const int CurrentEpoch = 0;
    /// <summary>RecordBatch.NO_PARTITION_LEADER_EPOCH: the client does not know the current epoch.</summary>
    private const int NoEpoch = -1;

    public override ApiKey Key => ApiKey.OffsetForLeaderEpoch;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, OffsetForLeaderEpochRequest request)
    {
        var response = new OffsetForLeaderEpochResponse();
        foreach (var t in request.Topics)
        {
            var rt = new OffsetForLeaderEpochResponse.OffsetForLeaderTopicResult { Topic = t.Topic };
            response.Topics.Add(rt);
            if (!authorizer.Cluster(context, AclOperation.ClusterAction, logIfDenied: false) && !authorizer.Topic(context, AclOperation.Describe, t.Topic))
            {
                foreach (var p in t.Partitions)
                    rt.Partitions.Add(new OffsetForLeaderEpochResponse.EpochEndOffset { Partition = p.Partition }.SetError(ErrorCode.TopicAuthorizationFailed));
                continue;
            }
            catalog.AnswerPartitions(t.Topic, t.Partitions, rt.Partitions, (context.ApiVersion, leadership),
                static (s, topic, p) => EndOffset(s.ApiVersion, s.leadership, topic, p));
        }
        return Done(response);
    }

    private static OffsetForLeaderEpochResponse.EpochEndOffset EndOffset(short version, IPartitionLeadership leadership, TopicLookup topic,
        OffsetForLeaderEpochRequest.OffsetForLeaderPartition p)
    {
        // Defaults are LeaderEpoch -1 / EndOffset -1, Kafka's answer for errors and undefined epochs.
        var rp = new OffsetForLeaderEpochResponse.EpochEndOffset { Partition = p.Partition };
        if (!topic.TryGetPartition(p.Partition, out var log, out var missing)) return rp.SetError(missing);
        // Issue 14: only the leader answers (Kafka's followers answer only replicas, ReplicaId >= 0; none fetch yet).
        if (!leadership.IsLocalLeader(log.TopicName, p.Partition)) return rp.SetError(ErrorCode.NotLeaderOrFollower);
        // CurrentLeaderEpoch is only on the wire from v2; the generated default (-1) skips the check below.
        int current = leadership.Replicated ? leadership.Describe(log.TopicName, p.Partition).LeaderEpoch : CurrentEpoch;
        if (p.CurrentLeaderEpoch != NoEpoch)
        {
            if (p.CurrentLeaderEpoch < current) return rp.SetError(ErrorCode.FencedLeaderEpoch);
            if (p.CurrentLeaderEpoch > current) return rp.SetError(ErrorCode.UnknownLeaderEpoch);
        }
        if (leadership.Replicated)
        {
            var (epoch, end) = log.EndOffsetForLeaderEpoch(p.LeaderEpoch, current);
            rp.EndOffset = end;
            if (version >= 1) rp.LeaderEpoch = epoch;
        }
        else if (p.LeaderEpoch == CurrentEpoch)
        {
            rp.EndOffset = log.LogEndOffset;
            if (version >= 1) rp.LeaderEpoch = CurrentEpoch;
        }
        return rp;
    }
}
