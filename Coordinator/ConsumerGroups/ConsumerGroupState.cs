using Kayak.Protocol;

namespace Kayak.Coordinator.ConsumerGroups;

/// <summary>
/// KIP-848 member states as Kafka's MemberState numbers them; the CurrentMemberAssignment record stores the number.
/// </summary>
internal enum ConsumerMemberState : sbyte
{
    /// <summary>Owns exactly what its epoch's target gave it.</summary>
    Stable = 0,
    /// <summary>Must give up <see cref="ConsumerMember.PendingRevocation"/> before it may move to the next epoch.</summary>
    UnrevokedPartitions = 1,
    /// <summary>In the new epoch, waiting for partitions that other members still own.</summary>
    UnreleasedPartitions = 2,
    Unknown = 127,
}

/// <summary>
/// Partitions by topic id, sorted. Values are never mutated once they are in a member or a target: every change
/// builds a new one, so replay can hand the same instance to state and records.
/// </summary>
internal sealed class TopicPartitions
{
    public static readonly TopicPartitions Empty = new(new Dictionary<Uuid, SortedSet<int>>());

    private readonly Dictionary<Uuid, SortedSet<int>> _byTopic;

    public TopicPartitions(Dictionary<Uuid, SortedSet<int>> byTopic)
    {
        _byTopic = byTopic;
        foreach (var (id, set) in byTopic.ToArray())
            if (set.Count == 0) _byTopic.Remove(id);
    }

    public IReadOnlyDictionary<Uuid, SortedSet<int>> ByTopic => _byTopic;
    public bool IsEmpty => _byTopic.Count == 0;
    public int Count { get { int n = 0; foreach (var s in _byTopic.Values) n += s.Count; return n; } }

    public bool Contains(Uuid topic, int partition) => _byTopic.TryGetValue(topic, out var s) && s.Contains(partition);

    public IEnumerable<(Uuid Topic, int Partition)> All()
    {
        foreach (var (id, set) in _byTopic)
            foreach (int p in set) yield return (id, p);
    }

    public static TopicPartitions From(IEnumerable<(Uuid Topic, int Partition)> partitions)
    {
        var d = new Dictionary<Uuid, SortedSet<int>>();
        foreach (var (t, p) in partitions)
        {
            if (!d.TryGetValue(t, out var s)) d[t] = s = new SortedSet<int>();
            s.Add(p);
        }
        return new TopicPartitions(d);
    }

    public static TopicPartitions From(IEnumerable<(Uuid Topic, IEnumerable<int> Partitions)> topics)
    {
        var d = new Dictionary<Uuid, SortedSet<int>>();
        foreach (var (t, ps) in topics)
        {
            if (!d.TryGetValue(t, out var s)) d[t] = s = new SortedSet<int>();
            s.UnionWith(ps);
        }
        return new TopicPartitions(d);
    }

    public bool SetEquals(TopicPartitions other)
    {
        if (_byTopic.Count != other._byTopic.Count) return false;
        foreach (var (id, set) in _byTopic)
            if (!other._byTopic.TryGetValue(id, out var o) || !set.SetEquals(o)) return false;
        return true;
    }

    /// <summary>True when every partition here is in <paramref name="other"/>.</summary>
    public bool IsSubsetOf(TopicPartitions other)
    {
        foreach (var (id, set) in _byTopic)
            if (!other._byTopic.TryGetValue(id, out var o) || !set.IsSubsetOf(o)) return false;
        return true;
    }

    /// <summary>True when this and <paramref name="other"/> share a partition.</summary>
    public bool Overlaps(TopicPartitions other)
    {
        foreach (var (id, set) in _byTopic)
            if (other._byTopic.TryGetValue(id, out var o) && set.Overlaps(o)) return true;
        return false;
    }
}

/// <summary>A subscribed topic as the group last recorded it (ConsumerGroupPartitionMetadataValue.TopicMetadata).</summary>
internal readonly record struct SubscribedTopic(Uuid TopicId, string Name, int NumPartitions);

/// <summary>
/// A KIP-848 member (Kafka's ConsumerGroupMember): its metadata (ConsumerGroupMemberMetadata record) and its current
/// assignment (ConsumerGroupCurrentMemberAssignment record). Both change only by replay; the timer fields are soft state.
/// Guarded by the owning group's lock.
/// </summary>
internal sealed class ConsumerMember(string memberId)
{
    public string MemberId { get; } = memberId;
    public string? InstanceId { get; set; }
    public string? RackId { get; set; }
    public string ClientId { get; set; } = "";
    public string ClientHost { get; set; } = "";
    public List<string> SubscribedTopicNames { get; set; } = new();
    /// <summary>KIP-848 SubscribedTopicRegex (RE2 syntax, see <see cref="TopicRegex"/>); null when the member has none.</summary>
    public string? SubscribedTopicRegex { get; set; }
    public int RebalanceTimeoutMs { get; set; } = -1;
    public string? ServerAssignor { get; set; }

    public int MemberEpoch { get; set; }
    public int PreviousMemberEpoch { get; set; }
    public ConsumerMemberState State { get; set; } = ConsumerMemberState.Stable;
    public TopicPartitions Assigned { get; set; } = TopicPartitions.Empty;
    public TopicPartitions PendingRevocation { get; set; } = TopicPartitions.Empty;

    /// <summary>Session expiry (unix ms); the member is removed when it passes without a heartbeat.</summary>
    public long SessionDeadline { get; set; }
    /// <summary>When an UNREVOKED_PARTITIONS member must have revoked by (its rebalance timeout), -1 when none runs.</summary>
    public long RevocationDeadline { get; set; } = -1;
    /// <summary>
    /// A classic member's join or sync deadline (unix ms, -1 none): after a Heartbeat told it to rejoin, or after its
    /// JoinGroup, it has its rebalance timeout to send the next JoinGroup or SyncGroup (Kafka's join and sync timeouts).
    /// </summary>
    public long ClassicDeadline { get; set; } = -1;
    public ITimer? Timer { get; set; }

    /// <summary>Epoch -2: a static member that left and is expected back under its instance id (KIP-848, KIP-345).</summary>
    public bool IsStaticLeft => MemberEpoch == ConsumerGroupState.LeaveStaticEpoch;

    /// <summary>
    /// Set for a classic member in a consumer group (KIP-848 online migration): it speaks JoinGroup/SyncGroup/Heartbeat
    /// and its session timeout and protocols are the ClassicMemberMetadata of its ConsumerGroupMemberMetadata record.
    /// </summary>
    public ClassicMemberInfo? Classic { get; set; }
    public bool UsesClassicProtocol => Classic is not null;
}

/// <summary>Kafka's ConsumerGroupMemberMetadataValue.ClassicMemberMetadata: session timeout and the JoinGroup protocols.</summary>
internal sealed record ClassicMemberInfo(int SessionTimeoutMs, List<MemberProtocol> Protocols)
{
    public bool SameAs(ClassicMemberInfo? other)
    {
        if (other is null || other.SessionTimeoutMs != SessionTimeoutMs || other.Protocols.Count != Protocols.Count) return false;
        for (int i = 0; i < Protocols.Count; i++)
            if (Protocols[i].Name != other.Protocols[i].Name || !Protocols[i].Metadata.AsSpan().SequenceEqual(other.Protocols[i].Metadata)) return false;
        return true;
    }
}

/// <summary>
/// The KIP-848 side of a group (Kafka's ConsumerGroup): group epoch, target assignment and its epoch, members, and
/// which member owns each partition (Kafka's currentPartitionEpoch: assigned or pending revocation). A partition
/// is handed to a member only while no other member owns it, so no partition is ever owned by two members.
/// Lives in <see cref="ClassicGroup.Consumer"/> so offsets, the lock and the group id stay in one place.
/// </summary>
internal sealed class ConsumerGroupState
{
    public const int LeaveEpoch = -1;
    public const int LeaveStaticEpoch = -2;

    public int GroupEpoch { get; set; }
    public int AssignmentEpoch { get; set; }
    public readonly Dictionary<string, ConsumerMember> Members = new(StringComparer.Ordinal);
    /// <summary>Instance id → member id of static members.</summary>
    public readonly Dictionary<string, string> StaticMembers = new(StringComparer.Ordinal);
    /// <summary>Member id → its target assignment (ConsumerGroupTargetAssignmentMember records).</summary>
    public readonly Dictionary<string, TopicPartitions> Target = new(StringComparer.Ordinal);
    /// <summary>Subscribed topics by name (ConsumerGroupPartitionMetadata record).</summary>
    public Dictionary<string, SubscribedTopic> SubscriptionMetadata { get; set; } = new(StringComparer.Ordinal);
    /// <summary>Who owns each partition now (assigned or pending revocation).</summary>
    public readonly Dictionary<(Uuid Topic, int Partition), string> Owners = new();
    /// <summary>Compiled regexes of the members' subscriptions (soft state, pruned to the regexes in use).</summary>
    public readonly Dictionary<string, System.Text.RegularExpressions.Regex> RegexCache = new(StringComparer.Ordinal);

    public bool IsEmpty => Members.Count == 0;

    /// <summary>Kafka's allMembersUseClassicProtocolExcept: every member but <paramref name="memberId"/> is a classic one.</summary>
    public bool AllMembersUseClassicProtocolExcept(string memberId)
    {
        foreach (var m in Members.Values)
            if (m.MemberId != memberId && !m.UsesClassicProtocol) return false;
        return true;
    }

    /// <summary>Kafka's ConsumerGroup.ConsumerGroupState names, as ListGroups and ConsumerGroupDescribe report them.</summary>
    public string StateName
    {
        get
        {
            if (Members.Count == 0) return "Empty";
            if (GroupEpoch > AssignmentEpoch) return "Assigning";
            foreach (var m in Members.Values)
                if (m.MemberEpoch != AssignmentEpoch || m.State != ConsumerMemberState.Stable) return "Reconciling";
            return "Stable";
        }
    }

    public TopicPartitions TargetOf(string memberId) => Target.TryGetValue(memberId, out var t) ? t : TopicPartitions.Empty;

    public string? NameOf(Uuid topicId)
    {
        foreach (var t in SubscriptionMetadata.Values)
            if (t.TopicId == topicId) return t.Name;
        return null;
    }

    /// <summary>Replaces <paramref name="member"/>'s ownership entries with what it holds now.</summary>
    public void SetOwnership(ConsumerMember member, TopicPartitions assigned, TopicPartitions pending)
    {
        ReleaseOwnership(member);
        foreach (var tp in assigned.All()) Owners[tp] = member.MemberId;
        foreach (var tp in pending.All()) Owners[tp] = member.MemberId;
    }

    public void ReleaseOwnership(ConsumerMember member)
    {
        foreach (var tp in member.Assigned.All()) RemoveOwner(tp, member.MemberId);
        foreach (var tp in member.PendingRevocation.All()) RemoveOwner(tp, member.MemberId);
    }

    private void RemoveOwner((Uuid, int) tp, string memberId)
    {
        if (Owners.TryGetValue(tp, out var owner) && owner == memberId) Owners.Remove(tp);
    }
}
