using Kayak.Protocol;

namespace Kayak.Coordinator.ConsumerGroups;

/// <summary>One member as the server-side assignor sees it: its subscription by topic id (and instance id, which the
/// range assignor orders by).</summary>
internal readonly record struct AssignorMember(string MemberId, IReadOnlyCollection<Uuid> Subscribed, string? InstanceId = null);

/// <summary>
/// KIP-848's default server-side assignor, "uniform" (Kafka's UniformAssignor): every subscribed partition goes to a
/// member subscribed to its topic, members differ by at most one partition where their subscriptions allow it, and
/// a partition stays with its previous target owner whenever balance permits (sticky across epochs, so a rebalance
/// moves as few partitions as it can). Not Kafka's code: a deterministic greedy fill then rebalancing moves; with
/// identical subscriptions it gives each member ⌊P/N⌋ or ⌈P/N⌉ partitions, keeping up to that many of its previous ones.
/// </summary>
internal static class UniformAssignor
{
    public const string Name = "uniform";

    /// <param name="members">Every member of the group, in any order (sorted here for determinism).</param>
    /// <param name="partitionCounts">Partitions of each subscribed topic that exists.</param>
    /// <param name="previous">The current target assignment, for stickiness.</param>
    public static Dictionary<string, TopicPartitions> Assign(IReadOnlyList<AssignorMember> members,
        IReadOnlyDictionary<Uuid, int> partitionCounts, IReadOnlyDictionary<string, TopicPartitions> previous)
    {
        var ordered = members.OrderBy(m => m.MemberId, StringComparer.Ordinal).ToList();
        var owned = new Dictionary<string, List<(Uuid, int)>>(StringComparer.Ordinal);
        var subscribers = new Dictionary<Uuid, List<string>>();
        foreach (var m in ordered)
        {
            owned[m.MemberId] = new();
            foreach (var t in m.Subscribed)
            {
                if (!partitionCounts.ContainsKey(t)) continue;
                if (!subscribers.TryGetValue(t, out var list)) subscribers[t] = list = new();
                list.Add(m.MemberId);
            }
        }

        // Every partition to assign, in a stable order (topic id, then partition).
        var all = new List<(Uuid Topic, int Partition)>();
        foreach (var (topic, count) in partitionCounts.OrderBy(kv => kv.Key.MostSignificantBits).ThenBy(kv => kv.Key.LeastSignificantBits))
            if (subscribers.ContainsKey(topic))
                for (int p = 0; p < count; p++) all.Add((topic, p));

        // Upper bound per member so that stickiness never blocks balance: with N members sharing P partitions nobody
        // keeps more than ⌈P/N⌉.
        int quota = ordered.Count == 0 ? 0 : (all.Count + ordered.Count - 1) / ordered.Count;
        var unassigned = new List<(Uuid, int)>();
        foreach (var tp in all)
        {
            string? keeper = null;
            foreach (var (memberId, target) in previous)
                if (target.Contains(tp.Topic, tp.Partition)) { keeper = memberId; break; }
            if (keeper is not null && owned.TryGetValue(keeper, out var list) && subscribers[tp.Topic].Contains(keeper) && list.Count < quota)
                list.Add(tp);
            else unassigned.Add(tp);
        }
        // Fill: each free partition to the least loaded eligible member.
        foreach (var tp in unassigned)
        {
            string best = subscribers[tp.Item1].MinBy(id => owned[id].Count)!;
            owned[best].Add(tp);
        }
        // Balance: move from the most loaded to a less loaded eligible member while the gap exceeds one. Every move
        // lowers the sum of squared loads, so this ends.
        bool moved = true;
        while (moved)
        {
            moved = false;
            foreach (var donor in ordered.OrderByDescending(m => owned[m.MemberId].Count).Select(m => m.MemberId))
            {
                var donorList = owned[donor];
                for (int i = donorList.Count - 1; i >= 0 && !moved; i--)
                {
                    var tp = donorList[i];
                    string receiver = subscribers[tp.Item1].MinBy(id => owned[id].Count)!;
                    if (owned[receiver].Count + 1 < donorList.Count)
                    {
                        donorList.RemoveAt(i);
                        owned[receiver].Add(tp);
                        moved = true;
                    }
                }
                if (moved) break;
            }
        }

        var result = new Dictionary<string, TopicPartitions>(StringComparer.Ordinal);
        foreach (var (id, list) in owned) result[id] = TopicPartitions.From(list);
        return result;
    }
}

/// <summary>
/// Moves a member from its current assignment towards its target (Kafka's CurrentAssignmentBuilder, KIP-848's
/// reconciliation): partitions leaving the member are revoked first, with the member kept at its epoch in
/// UNREVOKED_PARTITIONS until it reports them gone; only then does it take the target's epoch and receive the new
/// partitions that no other member owns any more (UNRELEASED_PARTITIONS while some still are).
/// </summary>
internal static class CurrentAssignmentBuilder
{
    public readonly record struct Result(int MemberEpoch, int PreviousMemberEpoch, ConsumerMemberState State,
        TopicPartitions Assigned, TopicPartitions PendingRevocation);

    /// <param name="owned">What the member reported owning in this heartbeat; null when it did not say (then it is
    /// assumed to still own its pending revocations).</param>
    /// <param name="ownedByOther">Whether a partition is owned by another member.</param>
    public static Result Build(ConsumerMember member, int targetEpoch, TopicPartitions target, TopicPartitions? owned,
        Func<Uuid, int, bool> ownedByOther)
    {
        var current = new Result(member.MemberEpoch, member.PreviousMemberEpoch, member.State, member.Assigned, member.PendingRevocation);
        switch (member.State)
        {
            case ConsumerMemberState.Stable:
                if (member.MemberEpoch == targetEpoch) return current;
                return Next(member, targetEpoch, target, owned, ownedByOther);
            case ConsumerMemberState.UnrevokedPartitions:
                // Still holding what it must give up: wait (the rebalance timeout bounds the wait).
                if (StillOwns(member.PendingRevocation, owned)) return current;
                return Next(member, targetEpoch, target, owned, ownedByOther);
            default:
                // UNRELEASED_PARTITIONS: partitions may have been freed since, or the target moved on.
                return Next(member, targetEpoch, target, owned, ownedByOther);
        }
    }

    private static bool StillOwns(TopicPartitions revoking, TopicPartitions? owned) => owned is null || revoking.Overlaps(owned);

    private static Result Next(ConsumerMember member, int targetEpoch, TopicPartitions target, TopicPartitions? owned,
        Func<Uuid, int, bool> ownedByOther)
    {
        var keep = new List<(Uuid, int)>();
        var revoke = new List<(Uuid, int)>();
        var add = new List<(Uuid, int)>();
        bool unreleased = false;
        foreach (var tp in member.Assigned.All())
            (target.Contains(tp.Topic, tp.Partition) ? keep : revoke).Add(tp);
        foreach (var tp in target.All())
        {
            if (member.Assigned.Contains(tp.Topic, tp.Partition)) continue;
            if (ownedByOther(tp.Topic, tp.Partition)) unreleased = true;
            else add.Add(tp);
        }
        var revoking = TopicPartitions.From(revoke);
        if (!revoking.IsEmpty && StillOwns(revoking, owned))
            // Revocation first: the member stays in its epoch and gets nothing new until it has let go.
            return new Result(member.MemberEpoch, member.PreviousMemberEpoch, ConsumerMemberState.UnrevokedPartitions,
                TopicPartitions.From(keep), revoking);
        keep.AddRange(add);
        int previous = member.MemberEpoch != targetEpoch ? member.MemberEpoch : member.PreviousMemberEpoch;
        return new Result(targetEpoch, previous, unreleased ? ConsumerMemberState.UnreleasedPartitions : ConsumerMemberState.Stable,
            TopicPartitions.From(keep), TopicPartitions.Empty);
    }
}
