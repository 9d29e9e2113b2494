using Kayak.Broker.Services;
using Kayak.Protocol;

namespace Kayak.Broker.Cluster;

/// <summary>
/// AlterPartitionReassignments / ListPartitionReassignments in the controller (KIP-455, issue 14), as Kafka 4.0's
/// ReplicationControlManager and PartitionReassignmentReplicas do it: the target replicas not yet assigned become
/// adding replicas, the assigned ones not in the target removing replicas, and the partition's replicas are the target
/// followed by the removing ones. The adding replicas replicate with the ordinary replica fetcher (they are replicas
/// now) and join the ISR through the leader's AlterPartition (<see cref="ChangeIsr"/>); once every target replica is
/// in the ISR the reassignment completes: the removing replicas leave the replicas and the ISR, and a leader that is
/// removed hands over to the first target replica in the ISR, at the next leader epoch (which also fences the removed
/// followers). The in-progress state is part of the persisted metadata, so a restarted cluster carries on with it.
/// </summary>
internal sealed partial class ClusterController : IPartitionReassignment
{
    // Brokers that ever registered with this controller (Kafka keeps a stopped broker registered, only fenced): a
    // reassignment may name a broker that is down and will catch up when it comes back.
    private readonly SortedSet<int> _registered = new();

    private void Register(int nodeId) => _registered.Add(nodeId);

    /// <summary>
    /// Starts (<paramref name="target"/> non-null) or cancels (null) the reassignment of one partition. Errors as
    /// Kafka's controller: UNKNOWN_TOPIC_OR_PARTITION, INVALID_REPLICA_ASSIGNMENT (empty, duplicated or unregistered
    /// brokers; a cancellation that would need an unclean election), NO_REASSIGNMENT_IN_PROGRESS for a cancellation.
    /// </summary>
    public KafkaError Reassign(string topic, int partition, int[]? target)
    {
        lock (_lock)
        {
            if (!_metadata.Topics.TryGetValue(topic, out var t))
                return new(ErrorCode.UnknownTopicOrPartition, $"Unable to find a topic named {topic}.");
            if ((uint)partition >= (uint)t.Partitions.Length)
                return new(ErrorCode.UnknownTopicOrPartition, $"Unable to find partition {topic}:{partition}.");
            var p = t.Partitions[partition];
            PartitionAssignment next;
            if (target is null)
            {
                if (!p.Reassigning) return new(ErrorCode.NoReassignmentInProgress, "No partition reassignment is in progress.");
                // Kafka's PartitionReassignmentRevert: back to the replicas before, the adding ones out of the ISR.
                var original = Without(p.Replicas, p.Adding);
                var isr = Without(p.Isr, p.Adding);
                if (isr.Length == 0)
                    return new(ErrorCode.InvalidReplicaAssignment,
                        $"Unable to revert partition assignment for {topic}:{partition} because it would require an unclean leader election.");
                next = WithLeaderIn(p with { Replicas = original, Isr = isr, Adding = [], Removing = [] }, p);
            }
            else
            {
                var invalid = Validate(target);
                if (invalid.Code != ErrorCode.None) return invalid;
                // As Kafka: against the partition's current replicas (those of an earlier, unfinished reassignment included).
                var adding = Without(target, p.Replicas);
                var removing = Without(p.Replicas, target);
                next = p with { Replicas = [.. target, .. removing], Adding = adding, Removing = removing };
                next = CompleteReassignment(next);
            }
            if (!SameAssignment(p, next))
            {
                var parts = (PartitionAssignment[])t.Partitions.Clone();
                parts[partition] = next;
                Publish(_metadata.With(t with { Partitions = parts }));
            }
            return KafkaError.None;
        }
    }

    /// <summary>The partitions being reassigned, by topic and partition; only those of <paramref name="filter"/> when given.</summary>
    public List<OngoingReassignment> Reassignments(IReadOnlyList<(string Topic, IReadOnlyList<int> Partitions)>? filter)
    {
        var md = _metadata;
        var list = new List<OngoingReassignment>();
        if (filter is null)
        {
            foreach (var t in md.Topics.Values)
                for (int i = 0; i < t.Partitions.Length; i++)
                    if (t.Partitions[i].Reassigning) list.Add(Ongoing(t.Name, i, t.Partitions[i]));
            return [.. list.OrderBy(r => r.Topic, StringComparer.Ordinal).ThenBy(r => r.Partition)];
        }
        // Kafka skips unknown topics and partitions here: the response has no error per partition.
        foreach (var (topic, partitions) in filter)
        {
            if (!md.Topics.TryGetValue(topic, out var t)) continue;
            foreach (int i in partitions)
                if ((uint)i < (uint)t.Partitions.Length && t.Partitions[i].Reassigning) list.Add(Ongoing(topic, i, t.Partitions[i]));
        }
        return list;
    }

    private static OngoingReassignment Ongoing(string topic, int partition, PartitionAssignment p) => new(topic, partition, p.Replicas, p.Adding, p.Removing);

    /// <summary>Kafka's validateManualPartitionAssignment, its messages and its order (brokers sorted).</summary>
    private KafkaError Validate(int[] target)
    {
        if (target.Length == 0)
            return new(ErrorCode.InvalidReplicaAssignment, "The manual partition assignment includes an empty replica list.");
        var sorted = (int[])target.Clone();
        Array.Sort(sorted);
        for (int i = 0; i < sorted.Length; i++)
        {
            if (!_registered.Contains(sorted[i]))
                return new(ErrorCode.InvalidReplicaAssignment, $"The manual partition assignment includes broker {sorted[i]}, but no such broker is registered.");
            if (i > 0 && sorted[i] == sorted[i - 1])
                return new(ErrorCode.InvalidReplicaAssignment, $"The manual partition assignment includes the broker {sorted[i]} more than once.");
        }
        return KafkaError.None;
    }

    /// <summary>
    /// Kafka's maybeCompleteReassignment: when every adding replica is in the ISR, the removing replicas go (from the
    /// ISR too, which must not become empty). Unchanged otherwise, or when nothing is being reassigned.
    /// </summary>
    private PartitionAssignment CompleteReassignment(PartitionAssignment p)
    {
        if (!p.Reassigning) return p;
        foreach (int r in p.Adding)
            if (Array.IndexOf(p.Isr, r) < 0) return p;
        var isr = Without(p.Isr, p.Removing);
        if (isr.Length == 0) return p;
        return WithLeaderIn(p with { Replicas = Without(p.Replicas, p.Removing), Isr = isr, Adding = [], Removing = [] }, p);
    }

    /// <summary>
    /// The leader of <paramref name="next"/>: the same one while it stays in the ISR, else the first replica in the ISR
    /// that is running (-1 without one). The leader epoch goes up when the leader changes or the ISR lost members, so
    /// the replicas that left are fenced (KIP-320's FENCED_LEADER_EPOCH on their fetches).
    /// </summary>
    private PartitionAssignment WithLeaderIn(PartitionAssignment next, PartitionAssignment before)
    {
        int leader = before.Leader;
        if (Array.IndexOf(next.Isr, leader) < 0)
        {
            leader = -1;
            foreach (int r in next.Replicas)
                if (Array.IndexOf(next.Isr, r) >= 0 && _live.ContainsKey(r)) { leader = r; break; }
        }
        bool bump = leader != before.Leader || next.Isr.Length < before.Isr.Length;
        return next with { Leader = leader, LeaderEpoch = bump ? before.LeaderEpoch + 1 : before.LeaderEpoch };
    }

    private static bool SameAssignment(PartitionAssignment a, PartitionAssignment b) =>
        a.Leader == b.Leader && a.LeaderEpoch == b.LeaderEpoch && a.Replicas.AsSpan().SequenceEqual(b.Replicas)
        && a.Isr.AsSpan().SequenceEqual(b.Isr) && a.Adding.AsSpan().SequenceEqual(b.Adding) && a.Removing.AsSpan().SequenceEqual(b.Removing);

    private static int[] Without(int[] from, int[] remove)
    {
        if (remove.Length == 0) return from;
        return Array.FindAll(from, r => Array.IndexOf(remove, r) < 0);
    }
}
