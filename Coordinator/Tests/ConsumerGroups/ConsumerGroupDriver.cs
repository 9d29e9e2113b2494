using Kayak.Coordinator.ConsumerGroups;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using NUnit.Framework;

namespace Kayak.Coordinator.Tests.ConsumerGroups;

/// <summary>
/// Drives KIP-848 members against a coordinator on the manual clock the way a well-behaved client does: join with
/// epoch 0, then heartbeat with its epoch and what it owns, adopting every assignment it is sent at once (revoking
/// immediately). Topics live in a mutable catalog, so tests can create, delete and grow them between rounds.
/// </summary>
internal sealed class ConsumerGroupDriver : IDisposable
{
    public sealed class Member(string id)
    {
        public string Id { get; } = id;
        public int Epoch;
        public List<string>? Topics;
        public string? Regex;
        public string? Assignor;
        public string? InstanceId;
        public Dictionary<Uuid, SortedSet<int>> Owned = new();
        public bool Joined;
    }

    public readonly Harness H;
    public readonly Dictionary<string, (Uuid Id, int Partitions)> Catalog = new(StringComparer.Ordinal);
    public readonly Dictionary<string, Member> Members = new(StringComparer.Ordinal);
    private long _nextTopicId = 1;

    public ConsumerGroupDriver(Func<ManualTimeProvider, GroupCoordinatorOptions>? options = null)
    {
        H = options is null ? new Harness() : new Harness(options);
    }

    /// <summary>Over a harness built elsewhere (a refusing log).</summary>
    public ConsumerGroupDriver(Harness h) => H = h;

    public void CreateTopic(string name, int partitions) => Catalog[name] = (new Uuid(0x7700, _nextTopicId++), partitions);

    public bool Resolve(string name, out Uuid id, out int count)
    {
        bool found = Catalog.TryGetValue(name, out var t);
        id = t.Id;
        count = t.Partitions;
        return found;
    }

    public Uuid IdOf(string topic) => Catalog[topic].Id;

    /// <summary>Passed to every heartbeat: filters the topics the regexes matched (the broker's DESCRIBE check).</summary>
    public IRegexTopicAuthorizer? RegexAuthorizer;

    public Member Add(string id, string[]? topics = null, string? regex = null, string? assignor = null, string? instanceId = null)
    {
        var m = new Member(id) { Topics = topics?.ToList(), Regex = regex, Assignor = assignor, InstanceId = instanceId };
        Members[id] = m;
        return m;
    }

    public ConsumerGroupHeartbeatResponse Heartbeat(Member m, int rebalanceTimeoutMs = 30_000)
    {
        var request = new ConsumerGroupHeartbeatRequest
        {
            GroupId = Harness.Group, MemberId = m.Id, MemberEpoch = m.Joined ? m.Epoch : 0, InstanceId = m.InstanceId,
            TopicPartitions = m.Owned.Select(kv => new ConsumerGroupHeartbeatRequest.TopicPartitionsData { TopicId = kv.Key, Partitions = kv.Value.ToList() }).ToList(),
        };
        if (!m.Joined)
        {
            request.RebalanceTimeoutMs = rebalanceTimeoutMs;
            request.SubscribedTopicNames = m.Topics ?? [];
            request.SubscribedTopicRegex = m.Regex;
            request.ServerAssignor = m.Assignor;
            request.TopicPartitions = [];
        }
        var r = H.Coordinator.ConsumerGroupHeartbeat(request, 1, new ClientInfo("c", "/127.0.0.1"), Resolve, Catalog.Keys.ToList(), RegexAuthorizer);
        if (r.ErrorCode != 0) return r;
        m.Joined = true;
        m.Epoch = r.MemberEpoch;
        if (r.Assignment is { } a)
            m.Owned = a.TopicPartitions.ToDictionary(t => t.TopicId, t => new SortedSet<int>(t.Partitions));
        AssertNoPartitionOwnedTwice();
        return r;
    }

    public void Leave(Member m)
    {
        var r = H.Coordinator.ConsumerGroupHeartbeat(new ConsumerGroupHeartbeatRequest { GroupId = Harness.Group, MemberId = m.Id, MemberEpoch = -1 },
            1, new ClientInfo("c", "/127.0.0.1"), Resolve, Catalog.Keys.ToList());
        Assert.That(r.ErrorCode, Is.EqualTo(0));
        Members.Remove(m.Id);
    }

    /// <summary>Heartbeat rounds (a heartbeat interval apart on the clock) until every member is stable at the assignment epoch.</summary>
    public void Stabilise(int maxRounds = 50)
    {
        for (int round = 0; round < maxRounds; round++)
        {
            foreach (var m in Members.Values.ToList())
                Assert.That(Heartbeat(m).ErrorCode, Is.EqualTo(0), $"heartbeat of {m.Id}");
            if (State is { StateName: "Stable" } s && Members.Values.All(m => m.Epoch == s.GroupEpoch)) return;
            H.Time.Advance(TimeSpan.FromMilliseconds(1000));
        }
        Assert.Fail($"group not stable after {maxRounds} rounds: {State?.StateName}");
    }

    public ConsumerGroupState? State
    {
        get
        {
            var g = H.Coordinator.AllGroups.SingleOrDefault(g => g.GroupId == Harness.Group);
            if (g is null) return null;
            lock (g.Lock) return g.Consumer;
        }
    }

    /// <summary>Partitions of <paramref name="topic"/> each member owns now.</summary>
    public Dictionary<string, SortedSet<int>> OwnedOf(string topic)
    {
        var id = IdOf(topic);
        return Members.Values.ToDictionary(m => m.Id, m => m.Owned.TryGetValue(id, out var s) ? new SortedSet<int>(s) : new SortedSet<int>());
    }

    public void AssertNoPartitionOwnedTwice()
    {
        if (State is not { } cg) return;
        var seen = new HashSet<(Uuid, int)>();
        foreach (var m in cg.Members.Values)
            foreach (var tp in m.Assigned.All().Concat(m.PendingRevocation.All()))
                Assert.That(seen.Add(tp), Is.True, $"partition {tp.Item2} owned twice");
    }

    public void Dispose() => H.Dispose();
}
