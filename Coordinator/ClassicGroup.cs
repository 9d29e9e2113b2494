using Kayak.Protocol.Messages;

namespace Kayak.Coordinator;

/// <summary>Kafka's classic group states (ClassicGroupState); names are what DescribeGroups/ListGroups report.</summary>
public enum GroupState
{
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

/// <summary>
/// One committed offset, as OffsetCommitValue holds it. <paramref name="RecordOffset"/> is where its record sits in
/// <c>__consumer_offsets</c> (-1 unknown): when transactional and plain commits of a partition mix, the one written
/// later in the log wins (Kafka's OffsetMetadataManager compares the record offsets the same way).
/// </summary>
public sealed record CommittedOffset(long Offset, int LeaderEpoch, string Metadata, long CommitTimestamp, long ExpireTimestamp, long RecordOffset = -1);

/// <summary>One member protocol from JoinGroup: name and opaque metadata (the consumer's subscription).</summary>
internal readonly record struct MemberProtocol(string Name, byte[] Metadata);

/// <summary>A classic group member (Kafka's ClassicGroupMember). Guarded by its group's lock.</summary>
internal sealed class GroupMember
{
    public required string MemberId { get; set; }
    public string? GroupInstanceId { get; init; }
    public string ClientId { get; set; } = "";
    public string ClientHost { get; set; } = "";
    public int RebalanceTimeoutMs { get; set; }
    public int SessionTimeoutMs { get; set; }
    public string ProtocolType { get; set; } = "";
    public List<MemberProtocol> Protocols { get; set; } = new();
    public byte[] Assignment { get; set; } = [];

    /// <summary>Pending JoinGroup response (the member's socket is waiting for the rebalance).</summary>
    public TaskCompletionSource<JoinGroupResponse>? AwaitingJoin { get; set; }
    public short JoinVersion { get; set; }
    /// <summary>Pending SyncGroup response (waiting for the leader's assignment).</summary>
    public TaskCompletionSource<SyncGroupResponse>? AwaitingSync { get; set; }
    public short SyncVersion { get; set; }

    /// <summary>
    /// Joined but has not completed its first JoinGroup yet: such members are not excused from the
    /// heartbeat check while waiting (Kafka's isNew; expires after NewMemberJoinTimeoutMs).
    /// </summary>
    public bool IsNew { get; set; }
    public long HeartbeatDeadline { get; set; }
    public ITimer? HeartbeatTimer { get; set; }

    public bool IsStatic => GroupInstanceId is not null;

    public byte[]? MetadataFor(string? protocol)
    {
        foreach (var p in Protocols)
            if (p.Name == protocol) return p.Metadata;
        return null;
    }

    /// <summary>Same protocols, in the same order, with the same metadata (Kafka's ClassicGroupMember.matches).</summary>
    public bool Matches(List<MemberProtocol> protocols)
    {
        if (protocols.Count != Protocols.Count) return false;
        for (int i = 0; i < protocols.Count; i++)
            if (protocols[i].Name != Protocols[i].Name || !protocols[i].Metadata.AsSpan().SequenceEqual(Protocols[i].Metadata)) return false;
        return true;
    }
}

/// <summary>
/// A classic group's state (Kafka's ClassicGroup) plus its committed offsets. Every field is guarded
/// by <see cref="Lock"/>; the coordinator takes it for each request and timer callback.
/// </summary>
internal sealed class ClassicGroup(string groupId)
{
    public readonly Lock Lock = new();
    public string GroupId { get; } = groupId;
    public GroupState State { get; set; } = GroupState.Empty;
    public int GenerationId { get; set; }
    /// <summary>Null for a group that never had members (a "simple" group of assign() consumers).</summary>
    public string? ProtocolType { get; set; }
    public string? ProtocolName { get; set; }
    public string? LeaderId { get; set; }
    /// <summary>When the group last changed state; Kafka's currentStateTimestamp, the KIP-211 retention base.</summary>
    public long? CurrentStateTimestamp { get; set; }

    /// <summary>Members in join order (the first one becomes leader).</summary>
    public readonly List<GroupMember> MemberList = new();
    public readonly Dictionary<string, GroupMember> Members = new(StringComparer.Ordinal);
    public readonly Dictionary<string, string> StaticMembers = new(StringComparer.Ordinal);
    /// <summary>Member ids handed out with MEMBER_ID_REQUIRED that have not joined yet, with their expiry timers.</summary>
    public readonly Dictionary<string, ITimer> PendingMembers = new(StringComparer.Ordinal);

    /// <summary>Set when a member joins during the first rebalance; extends the initial delay.</summary>
    public bool NewMemberAdded { get; set; }
    public ITimer? JoinTimer { get; set; }
    /// <summary>Bumped on every (re)scheduling so a stale timer callback does nothing.</summary>
    public int JoinTimerToken { get; set; }
    public bool InitialJoinDelay { get; set; }

    /// <summary>Members of the new generation that have not sent SyncGroup yet (Kafka's pendingSyncMembers).</summary>
    public readonly HashSet<string> PendingSync = new(StringComparer.Ordinal);
    public ITimer? SyncTimer { get; set; }

    public readonly Dictionary<string, Dictionary<int, CommittedOffset>> Offsets = new(StringComparer.Ordinal);

    /// <summary>
    /// Set when the group is a KIP-848 consumer group (its records were written or replayed): its members then live
    /// there and the classic fields above stay empty. Offsets stay here for both types, as in Kafka's OffsetMetadataManager.
    /// </summary>
    public ConsumerGroups.ConsumerGroupState? Consumer { get; set; }

    /// <summary>
    /// The group's last GroupMetadata record replayed (null: none, or deleted): what <c>__consumer_offsets</c> says
    /// the group is. Set only by the coordinator's replay; the rebalance protocol's in-memory state runs ahead of
    /// it between writes, as in Kafka. Never mutated after it is stored.
    /// </summary>
    public Kayak.Protocol.CoordinatorRecords.GroupMetadataValue? StoredMetadata { get; set; }

    public bool IsEmpty => MemberList.Count == 0;

    /// <summary>
    /// Set while the write path converts the group to a consumer group (KIP-848 online upgrade): the classic group's
    /// tombstone then clears its classic state but keeps the object, which the consumer records of the same write fill.
    /// </summary>
    public bool Converting { get; set; }

    /// <summary>
    /// A KIP-848 online upgrade applied in memory whose records are not appended yet: the next write of the group puts
    /// them in front of its own records in the same batch (Kafka's one CoordinatorResult for the conversion and the
    /// joining member), and the heartbeat reverts the group when nothing was written (GroupCoordinator.Migration.cs).
    /// </summary>
    public UnwrittenUpgrade? Unwritten { get; set; }
    public bool HasOffsets => Offsets.Count > 0 || PendingTxnOffsets.Count > 0;

    /// <summary>
    /// TxnOffsetCommit offsets written to the log but not yet resolved by their transaction's marker, per producer
    /// id (Kafka's pendingTransactionalOffsetCommits): materialized on commit, dropped on abort.
    /// </summary>
    public readonly Dictionary<long, Dictionary<(string Topic, int Partition), CommittedOffset>> PendingTxnOffsets = new();
    public bool IsLeader(string memberId) => LeaderId == memberId;

    public int RebalanceTimeoutMs
    {
        get
        {
            int max = 0;
            foreach (var m in MemberList) max = Math.Max(max, m.RebalanceTimeoutMs);
            return max;
        }
    }

    public void Add(GroupMember member)
    {
        if (MemberList.Count == 0) ProtocolType = member.ProtocolType;
        MemberList.Add(member);
        Members[member.MemberId] = member;
        if (member.GroupInstanceId is not null) StaticMembers[member.GroupInstanceId] = member.MemberId;
        LeaderId ??= member.MemberId;
    }

    public void Remove(GroupMember member)
    {
        MemberList.Remove(member);
        Members.Remove(member.MemberId);
        PendingSync.Remove(member.MemberId);
        if (member.GroupInstanceId is not null && StaticMembers.TryGetValue(member.GroupInstanceId, out var id) && id == member.MemberId)
            StaticMembers.Remove(member.GroupInstanceId);
        member.HeartbeatTimer?.Dispose();
        member.HeartbeatTimer = null;
        if (LeaderId == member.MemberId) LeaderId = MemberList.Count > 0 ? MemberList[0].MemberId : null;
    }

    /// <summary>Every member has rejoined and no MEMBER_ID_REQUIRED handshake is outstanding.</summary>
    public bool HasAllMembersJoined
    {
        get
        {
            if (PendingMembers.Count > 0) return false;
            foreach (var m in MemberList)
                if (m.AwaitingJoin is null) return false;
            return true;
        }
    }

    /// <summary>
    /// Kafka's supportsProtocols: an empty group takes any non-empty protocol type with at least one
    /// protocol; otherwise the type must match and one of the member's protocols must be supported by
    /// every current member.
    /// </summary>
    public bool SupportsProtocols(string protocolType, List<MemberProtocol> protocols)
    {
        if (State == GroupState.Empty || MemberList.Count == 0) return protocolType.Length > 0 && protocols.Count > 0;
        if (ProtocolType != protocolType) return false;
        foreach (var p in protocols)
            if (AllMembersSupport(p.Name)) return true;
        return false;
    }

    private bool AllMembersSupport(string protocol)
    {
        foreach (var m in MemberList)
            if (m.MetadataFor(protocol) is null) return false;
        return true;
    }

    /// <summary>
    /// Kafka's selectProtocol: among the protocols every member supports, each member votes for the
    /// first one in its own preference order; the most votes wins (ties: the earlier candidate).
    /// </summary>
    public string SelectProtocol()
    {
        var protocols = new List<List<MemberProtocol>>(MemberList.Count);
        foreach (var m in MemberList) protocols.Add(m.Protocols);
        return VoteProtocol(protocols) ?? throw new InvalidOperationException($"No protocol supported by all members of group {GroupId}.");
    }

    /// <summary>
    /// Kafka's selectProtocol over members' protocol lists (each in the member's order of preference): of the protocols
    /// every member supports, the one that most members list first among those; null when they share none.
    /// </summary>
    internal static string? VoteProtocol(List<List<MemberProtocol>> members)
    {
        var candidates = new List<string>();
        foreach (var p in members[0])
            if (AllSupport(members, p.Name)) candidates.Add(p.Name);
        if (candidates.Count == 0) return null;
        var votes = new int[candidates.Count];
        foreach (var protocols in members)
        {
            foreach (var p in protocols)
            {
                int i = candidates.IndexOf(p.Name);
                if (i >= 0) { votes[i]++; break; }
            }
        }
        int best = 0;
        for (int i = 1; i < votes.Length; i++)
            if (votes[i] > votes[best]) best = i;
        return candidates[best];
    }

    private static bool AllSupport(List<List<MemberProtocol>> members, string protocol)
    {
        foreach (var protocols in members)
            if (!Supports(protocols, protocol)) return false;
        return true;
    }

    /// <summary>Whether a member's protocol list names <paramref name="protocol"/>.</summary>
    internal static bool Supports(List<MemberProtocol> protocols, string protocol)
    {
        foreach (var p in protocols)
            if (p.Name == protocol) return true;
        return false;
    }

    /// <summary>Topics the group's consumers subscribe to, from ConsumerProtocolSubscription; null when unknown.</summary>
    public HashSet<string>? SubscribedTopics()
    {
        if (ProtocolType != "consumer" || ProtocolName is null) return null;
        var topics = new HashSet<string>(StringComparer.Ordinal);
        foreach (var m in MemberList)
        {
            var md = m.MetadataFor(ProtocolName);
            if (md is null || md.Length < 2) return null;
            try
            {
                var reader = new Kayak.Protocol.KafkaReader(md);
                short v = reader.ReadInt16();
                // The consumer protocol is forward compatible: newer versions only append fields.
                v = Math.Min(v, ConsumerProtocolSubscription.HighestSupportedVersion);
                var sub = new ConsumerProtocolSubscription();
                sub.Read(ref reader, v);
                foreach (var t in sub.Topics) topics.Add(t);
            }
            catch (Kayak.Protocol.ProtocolException) { return null; }
        }
        return topics;
    }
}
