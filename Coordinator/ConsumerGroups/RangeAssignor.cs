using Kayak.Protocol;

namespace Kayak.Coordinator.ConsumerGroups;

/// <summary>
/// KIP-848's server-side "range" assignor (Kafka's RangeAssignor), per topic: the members subscribed to a topic,
/// ordered by instance id (static members first) then member id, share its partitions so that each gets ⌊P/N⌋ and
/// the first P mod N get one more. In a fresh group this gives every member the same contiguous range of each topic
/// (co-partitioning: member i reads partitions [a, b) of every topic with the same count). Sticky across epochs as
/// Kafka's earlier sticky range assignor (KIP-848's first version): a member first keeps the partitions of its previous
/// target up to its quota, and only the rest are handed out, lowest partition first, to members below their quota.
/// Kafka 4.0 dropped the retention step for speed; keeping it moves fewer partitions and yields the same
/// quotas and the same result for a fresh group.
/// </summary>
internal static class RangeAssignor
{
    public const string Name = "range";

    public static Dictionary<string, TopicPartitions> Assign(IReadOnlyList<AssignorMember> members,
        IReadOnlyDictionary<Uuid, int> partitionCounts, IReadOnlyDictionary<string, TopicPartitions> previous)
    {
        var ordered = new List<AssignorMember>(members);
        ordered.Sort(static (a, b) =>
        {
            if (a.InstanceId is not null && b.InstanceId is not null) return string.CompareOrdinal(a.InstanceId, b.InstanceId);
            if (a.InstanceId is not null) return -1;
            if (b.InstanceId is not null) return 1;
            return string.CompareOrdinal(a.MemberId, b.MemberId);
        });
        var owned = new Dictionary<string, List<(Uuid, int)>>(StringComparer.Ordinal);
        foreach (var m in ordered) owned[m.MemberId] = new();

        // Subscribers of each existing topic, in the member order above.
        var subscribers = new Dictionary<Uuid, List<string>>();
        foreach (var m in ordered)
            foreach (var t in m.Subscribed)
            {
                if (!partitionCounts.ContainsKey(t)) continue;
                if (!subscribers.TryGetValue(t, out var list)) subscribers[t] = list = new();
                if (!list.Contains(m.MemberId)) list.Add(m.MemberId);
            }

        foreach (var (topic, subs) in subscribers)
        {
            int count = partitionCounts[topic];
            int minQuota = count / subs.Count;
            int extra = count % subs.Count;
            var taken = new bool[count];
            var got = new int[subs.Count];
            var quota = new int[subs.Count];

            // 1. Retention: a member keeps up to ⌊P/N⌋ of its previous partitions, or ⌊P/N⌋+1 while extra slots remain.
            for (int i = 0; i < subs.Count; i++)
            {
                var kept = new List<int>();
                if (previous.TryGetValue(subs[i], out var before) && before.ByTopic.TryGetValue(topic, out var set))
                    foreach (int p in set)
                        if (p < count) kept.Add(p);
                quota[i] = minQuota;
                if (kept.Count > minQuota && extra > 0) { quota[i]++; extra--; }
                int keep = Math.Min(kept.Count, quota[i]);
                for (int k = 0; k < keep; k++)
                {
                    taken[kept[k]] = true;
                    owned[subs[i]].Add((topic, kept[k]));
                }
                got[i] = keep;
            }
            // 2. The remaining extra slots go to the first members (in order) that did not get one by retention.
            for (int i = 0; i < subs.Count && extra > 0; i++)
                if (quota[i] == minQuota) { quota[i]++; extra--; }
            // 3. Free partitions, lowest first, fill members up to their quota in order: contiguous ranges when fresh.
            int next = 0;
            for (int i = 0; i < subs.Count; i++)
                while (got[i] < quota[i])
                {
                    while (taken[next]) next++;
                    taken[next] = true;
                    owned[subs[i]].Add((topic, next));
                    got[i]++;
                }
        }

        var result = new Dictionary<string, TopicPartitions>(StringComparer.Ordinal);
        foreach (var (id, list) in owned) result[id] = TopicPartitions.From(list);
        return result;
    }
}

/// <summary>
/// The server-side assignors a consumer group can use (group.consumer.assignors), by the names members send as
/// ServerAssignor (KIP-848); Kafka's class names in the config map to the same two.
/// </summary>
internal static class ConsumerAssignors
{
    /// <summary>The assignor name for a configured entry; ArgumentException for one this broker does not have.</summary>
    public static string Normalize(string configured) => configured.Trim() switch
    {
        UniformAssignor.Name or "org.apache.kafka.coordinator.group.assignor.UniformAssignor" => UniformAssignor.Name,
        RangeAssignor.Name or "org.apache.kafka.coordinator.group.assignor.RangeAssignor" => RangeAssignor.Name,
        _ => throw new ArgumentException($"group.consumer.assignors: unknown assignor {configured}; this broker has uniform and range."),
    };

    public static Dictionary<string, TopicPartitions> Assign(string name, IReadOnlyList<AssignorMember> members,
        IReadOnlyDictionary<Uuid, int> partitionCounts, IReadOnlyDictionary<string, TopicPartitions> previous) =>
        name == RangeAssignor.Name
            ? RangeAssignor.Assign(members, partitionCounts, previous)
            : UniformAssignor.Assign(members, partitionCounts, previous);

    /// <summary>
    /// Kafka's ConsumerGroup.computePreferredServerAssignor: the assignor most members name, ties going to the one
    /// configured first; the configured default when nobody names one.
    /// </summary>
    public static string Preferred(IEnumerable<ConsumerMember> members, IReadOnlyList<string> configured)
    {
        string? best = null;
        int bestVotes = 0;
        foreach (var name in configured)
        {
            int votes = 0;
            foreach (var m in members)
                if (m.ServerAssignor == name) votes++;
            if (votes > bestVotes) { best = name; bestVotes = votes; }
        }
        return best ?? configured[0];
    }
}
