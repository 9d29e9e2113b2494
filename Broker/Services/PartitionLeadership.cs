using Kayak.Broker.Config;

namespace Kayak.Broker.Services;

/// <summary>Leader, leader epoch, replicas and in-sync replicas of one partition, as Metadata answers them.</summary>
internal readonly record struct PartitionReplicas(int Leader, int LeaderEpoch, int[] Replicas, int[] Isr);

/// <summary>
/// Who leads a partition (issue 14). Produce, Fetch, ListOffsets and OffsetForLeaderEpoch ask it before touching the
/// local log and answer NOT_LEADER_OR_FOLLOWER when this broker is not the leader; Metadata, DescribeTopicPartitions
/// and FindCoordinator report its answers. A single broker leads everything (<see cref="SingleNodeLeadership"/>); in a
/// <see cref="Cluster.KafkaCluster"/> the controller's metadata decides.
/// </summary>
internal interface IPartitionLeadership
{
    /// <summary>True when this broker leads the partition. On the produce and fetch paths: allocates nothing.</summary>
    bool IsLocalLeader(string topic, int partition);

    /// <summary>The partition's leader (-1 when it has none, e.g. its leader is stopped), epoch, replicas and ISR.</summary>
    PartitionReplicas Describe(string topic, int partition);

    /// <summary>
    /// Whether acks=all may append: the ISR (its size in <paramref name="isrSize"/>) is at least min.insync.replicas,
    /// else NOT_ENOUGH_REPLICAS (Kafka's Partition.appendRecordsToLeader). Allocates nothing.
    /// </summary>
    bool EnoughInSyncReplicas(string topic, int partition, int minInSync, out int isrSize);

    /// <summary>True in a replicated cluster: follower fetches, a high watermark apart from the log end, acks=all waits.</summary>
    bool Replicated { get; }

    /// <summary>A follower's fetch of a partition led here (Cluster/ReplicaTracker.cs); an error refuses the partition.</summary>
    Kayak.Protocol.ErrorCode FollowerFetched(Kayak.Storage.PartitionLog log, int replicaId, int currentLeaderEpoch, long fetchOffset);

    /// <summary>The leader appended to <paramref name="log"/>: the high watermark may move (ISR of the leader alone).</summary>
    void LeaderAppended(Kayak.Storage.PartitionLog log);

    /// <summary>
    /// Cancelled once this broker no longer leads the partition at <paramref name="leaderEpoch"/> (already cancelled if
    /// it does not now): a wait for the ISR ends then, as Kafka completes its delayed operations on a leader change.
    /// </summary>
    CancellationToken Deposed(Kayak.Storage.PartitionLog log, int leaderEpoch);
}

/// <summary>One broker: it is the leader, the only replica and the whole ISR of every partition, at leader epoch 0.</summary>
internal sealed class SingleNodeLeadership : IPartitionLeadership
{
    private readonly PartitionReplicas _self;

    public SingleNodeLeadership(int nodeId)
    {
        int[] self = [nodeId];
        _self = new PartitionReplicas(nodeId, 0, self, self);
    }

    public bool IsLocalLeader(string topic, int partition) => true;

    public PartitionReplicas Describe(string topic, int partition) => _self;

    /// <summary>
    /// A single broker keeps its behaviour from before the cluster existed: acks=all is never refused for the ISR's
    /// size (Kafka would refuse min.insync.replicas above 1 here).
    /// </summary>
    public bool EnoughInSyncReplicas(string topic, int partition, int minInSync, out int isrSize)
    {
        isrSize = 1;
        return true;
    }

    public bool Replicated => false;

    public Kayak.Protocol.ErrorCode FollowerFetched(Kayak.Storage.PartitionLog log, int replicaId, int currentLeaderEpoch, long fetchOffset) => Kayak.Protocol.ErrorCode.None;

    public void LeaderAppended(Kayak.Storage.PartitionLog log) { }

    public CancellationToken Deposed(Kayak.Storage.PartitionLog log, int leaderEpoch) => CancellationToken.None;
}

/// <summary>A broker as clients are told about it: node id and its advertised endpoint per listener.</summary>
internal sealed record BrokerNode(int NodeId, IReadOnlyList<ListenerEndpoint> Listeners)
{
    /// <summary>The endpoint on the listener a request came in on (Kafka's rule); the first one for an unknown name.</summary>
    public ListenerEndpoint EndpointFor(string? listenerName)
    {
        if (listenerName is not null)
            foreach (var l in Listeners)
                if (l.Name.Equals(listenerName, StringComparison.OrdinalIgnoreCase)) return l;
        return Listeners[0];
    }
}

/// <summary>The live brokers of a cluster, as <see cref="ClusterInfo"/> reports them; null on a single broker.</summary>
internal interface IClusterView
{
    /// <summary>The running brokers, sorted by node id.</summary>
    IReadOnlyList<BrokerNode> LiveBrokers { get; }
}

/// <summary>
/// ElectLeaders in a cluster (KIP-183, KIP-460): the controller moves a partition's leadership. Null on a single broker,
/// which leads every partition and is every partition's preferred replica.
/// </summary>
internal interface IPartitionElection
{
    /// <summary>Elects a leader (preferred, or unclean when <paramref name="unclean"/>); None when one was elected.</summary>
    Kayak.Protocol.KafkaError Elect(string topic, int partition, bool unclean);
}

/// <summary>One partition being reassigned, as ListPartitionReassignments lists it (KIP-455).</summary>
internal sealed record OngoingReassignment(string Topic, int Partition, int[] Replicas, int[] Adding, int[] Removing);

/// <summary>
/// AlterPartitionReassignments / ListPartitionReassignments in a cluster (KIP-455): the controller moves replicas.
/// Null on a single broker, whose only replica cannot move.
/// </summary>
internal interface IPartitionReassignment
{
    /// <summary>Starts a reassignment to <paramref name="replicas"/>, or cancels the ongoing one when null.</summary>
    Kayak.Protocol.KafkaError Reassign(string topic, int partition, int[]? replicas);

    /// <summary>The ongoing reassignments sorted by topic and partition, of the given partitions only when a filter is given.</summary>
    List<OngoingReassignment> Reassignments(IReadOnlyList<(string Topic, IReadOnlyList<int> Partitions)>? filter);
}

/// <summary>Where FindCoordinator sends a client: the node leading the key's partition of an internal topic.</summary>
internal interface ICoordinatorLocator
{
    /// <returns>The coordinator's node id, or -1 when none is available.</returns>
    int CoordinatorFor(string topic, int partitions, string key, Func<string, TopicResult> createInternal);
}

/// <summary>A single broker coordinates every group and transaction.</summary>
internal sealed class SingleNodeCoordinatorLocator(int nodeId) : ICoordinatorLocator
{
    public int CoordinatorFor(string topic, int partitions, string key, Func<string, TopicResult> createInternal) => nodeId;
}

internal static class PartitionLeadershipExtensions
{
    /// <summary>The leader epoch a leader stamps on what it appends (Kafka's appendAsLeader); -1 (left as written) on a single broker.</summary>
    public static int AppendLeaderEpoch(this IPartitionLeadership leadership, string topic, int partition) =>
        leadership.Replicated ? leadership.Describe(topic, partition).LeaderEpoch : -1;

    /// <summary>
    /// The one wait for the ISR (Kafka's DelayedProduce and the coordinators' acks=-1 appends): until the high
    /// watermark passes <paramref name="offset"/>, the <paramref name="timeout"/>, or this broker stops leading the
    /// partition at <paramref name="leaderEpoch"/> — whichever comes first. None when the ISR has the offset and this
    /// broker still leads at that epoch; NOT_LEADER_OR_FOLLOWER once it does not (as Kafka's checkEnoughReplicasReachOffset:
    /// a deposed leader's high watermark may pass the offset after it truncated the record away and followed the new
    /// leader's log); REQUEST_TIMED_OUT at the timeout.
    /// </summary>
    public static async ValueTask<Kayak.Protocol.ErrorCode> WaitForIsrAsync(this IPartitionLeadership leadership,
        Kayak.Storage.PartitionLog log, long offset, int leaderEpoch, CancellationToken timeout)
    {
        if (log.HighWatermark <= offset)
        {
            var deposed = leadership.Deposed(log, leaderEpoch);
            using var either = CancellationTokenSource.CreateLinkedTokenSource(timeout, deposed);
            try { await log.WaitForHighWatermarkAsync(offset, either.Token).ConfigureAwait(false); }
            catch (OperationCanceledException) { }
        }
        var now = leadership.Describe(log.TopicName, log.Partition);
        if (log.IsClosed || !leadership.IsLocalLeader(log.TopicName, log.Partition) || now.LeaderEpoch != leaderEpoch)
            return Kayak.Protocol.ErrorCode.NotLeaderOrFollower;
        return log.HighWatermark > offset ? Kayak.Protocol.ErrorCode.None : Kayak.Protocol.ErrorCode.RequestTimedOut;
    }
}
