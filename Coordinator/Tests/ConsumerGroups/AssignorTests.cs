using Kayak.Coordinator.ConsumerGroups;
using Kayak.Protocol;
using NUnit.Framework;

namespace Kayak.Coordinator.Tests.ConsumerGroups;

/// <summary>
/// The server-side assignors (KIP-848 "range" and "uniform") as properties over random membership and subscription
/// changes: every subscribed partition has exactly one owner that subscribes to its topic; range gives each subscriber
/// of a topic ⌊P/N⌋ or ⌈P/N⌉ of it, uniform balances members' totals within one when subscriptions are identical;
/// and both are sticky: a member that stays keeps at least as much of its previous target as balance allows.
/// Then the same through the coordinator: members chosen "range" by ServerAssignor, joining and leaving on the
/// manual clock.
/// </summary>
public class AssignorTests
{
    private static Uuid T(int i) => new(0x42, i);

    [Test]
    public void RangeGivesAFreshGroupContiguousCoPartitionedRanges()
    {
        var members = new[] { new AssignorMember("b", [T(1), T(2)]), new AssignorMember("a", [T(1), T(2)]) };
        var counts = new Dictionary<Uuid, int> { [T(1)] = 3, [T(2)] = 3 };
        var result = RangeAssignor.Assign(members, counts, new Dictionary<string, TopicPartitions>());
        // Kafka's RangeAssignor example: C0 [t0p0, t0p1, t1p0, t1p1], C1 [t0p2, t1p2].
        Assert.That(result["a"].ByTopic[T(1)], Is.EqualTo(new[] { 0, 1 }));
        Assert.That(result["a"].ByTopic[T(2)], Is.EqualTo(new[] { 0, 1 }));
        Assert.That(result["b"].ByTopic[T(1)], Is.EqualTo(new[] { 2 }));
        Assert.That(result["b"].ByTopic[T(2)], Is.EqualTo(new[] { 2 }));
    }

    [Test]
    public void RangeOrdersStaticMembersFirstByInstanceId()
    {
        var members = new[] { new AssignorMember("a", [T(1)]), new AssignorMember("z", [T(1)], InstanceId: "i1") };
        var result = RangeAssignor.Assign(members, new Dictionary<Uuid, int> { [T(1)] = 3 }, new Dictionary<string, TopicPartitions>());
        Assert.That(result["z"].ByTopic[T(1)], Is.EqualTo(new[] { 0, 1 }));
        Assert.That(result["a"].ByTopic[T(1)], Is.EqualTo(new[] { 2 }));
    }

    [TestCase("range", false)]
    [TestCase("range", true)]
    [TestCase("uniform", false)]
    [TestCase("uniform", true)]
    public void BalancedCompleteAndStickyOverRandomChanges(string assignor, bool heterogeneous)
    {
        for (int seed = 0; seed < 40; seed++)
        {
            var random = new Random(seed);
            var counts = new Dictionary<Uuid, int>();
            int topicCount = random.Next(1, 5);
            for (int t = 0; t < topicCount; t++) counts[T(t)] = random.Next(1, 17);
            var all = counts.Keys.ToList();
            var members = new Dictionary<string, List<Uuid>>();
            var previous = new Dictionary<string, TopicPartitions>();
            int next = 0;
            for (int step = 0; step < 25; step++)
            {
                int action = random.Next(4);
                if (members.Count == 0 || action <= 1 && members.Count < 10)
                    members[$"m{next++:D2}"] = Subscription(random, all, heterogeneous);
                else if (action == 2) members.Remove(members.Keys.ElementAt(random.Next(members.Count)));
                else if (heterogeneous) members[members.Keys.ElementAt(random.Next(members.Count))] = Subscription(random, all, true);
                else counts[all[random.Next(all.Count)]] += 1; // partitions added
                if (members.Count == 0) { previous.Clear(); continue; }

                var input = members.Select(kv => new AssignorMember(kv.Key, kv.Value)).ToList();
                var result = ConsumerAssignors.Assign(assignor, input, counts, previous);
                string where = $"{assignor} seed {seed} step {step}";
                AssertComplete(result, members, counts, where);
                if (assignor == "range") AssertRangeBalance(result, members, counts, where);
                else if (!heterogeneous) AssertTotalsWithinOne(result, where);
                AssertSticky(assignor, heterogeneous, result, previous, members, counts, where);
                previous = result;
            }
        }
    }

    private static List<Uuid> Subscription(Random random, List<Uuid> all, bool heterogeneous)
    {
        if (!heterogeneous) return all.ToList();
        var s = all.Where(_ => random.Next(2) == 0).ToList();
        return s.Count > 0 ? s : [all[random.Next(all.Count)]];
    }

    private static void AssertComplete(Dictionary<string, TopicPartitions> result, Dictionary<string, List<Uuid>> members,
        Dictionary<Uuid, int> counts, string where)
    {
        Assert.That(result.Keys, Is.EquivalentTo(members.Keys), where);
        var owners = new Dictionary<(Uuid, int), string>();
        foreach (var (id, tps) in result)
            foreach (var tp in tps.All())
            {
                Assert.That(members[id], Does.Contain(tp.Topic), $"{where}: {id} got a topic it does not subscribe to");
                Assert.That(owners.TryAdd(tp, id), Is.True, $"{where}: partition assigned twice");
            }
        foreach (var (topic, count) in counts)
            if (members.Values.Any(s => s.Contains(topic)))
                for (int p = 0; p < count; p++) Assert.That(owners.ContainsKey((topic, p)), $"{where}: partition {p} unassigned");
    }

    private static void AssertRangeBalance(Dictionary<string, TopicPartitions> result, Dictionary<string, List<Uuid>> members,
        Dictionary<Uuid, int> counts, string where)
    {
        foreach (var (topic, count) in counts)
        {
            var subs = members.Where(kv => kv.Value.Contains(topic)).Select(kv => kv.Key).ToList();
            if (subs.Count == 0) continue;
            foreach (var id in subs)
            {
                int got = result[id].ByTopic.TryGetValue(topic, out var s) ? s.Count : 0;
                Assert.That(got, Is.InRange(count / subs.Count, (count + subs.Count - 1) / subs.Count), $"{where}: per-topic quota");
            }
        }
    }

    private static void AssertTotalsWithinOne(Dictionary<string, TopicPartitions> result, string where)
    {
        var totals = result.Values.Select(t => t.Count).ToList();
        Assert.That(totals.Max() - totals.Min(), Is.LessThanOrEqualTo(1), $"{where}: totals");
    }

    /// <summary>
    /// Range: per topic, a member keeps min(what it had, ⌊P/N⌋). Uniform with identical subscriptions: a member keeps
    /// min(what it had, ⌊total/N⌋). (Heterogeneous uniform balances under constraints; it is only checked complete.)
    /// </summary>
    private static void AssertSticky(string assignor, bool heterogeneous, Dictionary<string, TopicPartitions> result,
        Dictionary<string, TopicPartitions> previous, Dictionary<string, List<Uuid>> members, Dictionary<Uuid, int> counts, string where)
    {
        foreach (var (id, before) in previous)
        {
            if (!result.TryGetValue(id, out var now)) continue;
            if (assignor == "range")
                foreach (var (topic, set) in before.ByTopic)
                {
                    if (!members[id].Contains(topic)) continue;
                    int subs = members.Values.Count(s => s.Contains(topic));
                    int had = set.Count(p => p < counts[topic]);
                    int kept = set.Count(p => now.Contains(topic, p));
                    Assert.That(kept, Is.GreaterThanOrEqualTo(Math.Min(had, counts[topic] / subs)), $"{where}: {id} lost partitions of a topic");
                }
            else if (!heterogeneous)
            {
                int total = counts.Values.Sum();
                int kept = before.All().Count(tp => now.Contains(tp.Topic, tp.Partition));
                Assert.That(kept, Is.GreaterThanOrEqualTo(Math.Min(before.Count, total / members.Count)), $"{where}: {id} lost partitions");
            }
        }
    }

    /// <summary>Through the coordinator: "range" chosen by ServerAssignor, members coming and going on the manual clock.</summary>
    [Test]
    public void TheCoordinatorRunsTheAssignorTheMembersAskFor()
    {
        using var d = new ConsumerGroupDriver();
        d.CreateTopic("a", 5);
        d.CreateTopic("b", 5);
        var random = new Random(7);
        int next = 0;
        for (int step = 0; step < 12; step++)
        {
            if (d.Members.Count < 2 || random.Next(3) > 0) d.Add($"m{next++}", ["a", "b"], assignor: "range");
            else d.Leave(d.Members.Values.ElementAt(random.Next(d.Members.Count)));
            d.Stabilise();
            foreach (var topic in new[] { "a", "b" })
            {
                var owned = d.OwnedOf(topic);
                Assert.That(owned.Values.Sum(s => s.Count), Is.EqualTo(5));
                Assert.That(owned.Values.Max(s => s.Count) - owned.Values.Min(s => s.Count), Is.LessThanOrEqualTo(1));
            }
            // Range co-partitions: a member owns the same partitions of both topics.
            foreach (var m in d.Members.Values)
                Assert.That(d.OwnedOf("a")[m.Id], Is.EqualTo(d.OwnedOf("b")[m.Id]), $"step {step}: {m.Id}");
        }
        var describe = d.H.Coordinator.ConsumerGroupDescribe(new Protocol.Messages.ConsumerGroupDescribeRequest { GroupIds = [Harness.Group] });
        Assert.That(describe.Groups[0].AssignorName, Is.EqualTo("range"));
    }

    [Test]
    public void TheFirstConfiguredAssignorIsTheDefault()
    {
        using var d = new ConsumerGroupDriver(time => new GroupCoordinatorOptions { Time = time, ConsumerGroupAssignors = ["range", "uniform"] });
        d.CreateTopic("a", 4);
        d.Add("m1", ["a"]);
        d.Stabilise();
        var describe = d.H.Coordinator.ConsumerGroupDescribe(new Protocol.Messages.ConsumerGroupDescribeRequest { GroupIds = [Harness.Group] });
        Assert.That(describe.Groups[0].AssignorName, Is.EqualTo("range"));
        Assert.Throws<ArgumentException>(() => new GroupCoordinator(
            new GroupCoordinatorOptions { Time = d.H.Time, ConsumerGroupAssignors = ["sticky"] }, new InMemoryGroupLog()));
    }
}
