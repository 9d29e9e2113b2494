using System.Text;
using Kayak.Protocol.CoordinatorRecords;

namespace Kayak.Coordinator.Tests;

/// <summary>
/// A canonical text dump of a group coordinator's state, for comparing a coordinator with one loaded from its log:
/// groups in id order with generation, protocol type and name, leader, members (id, instance id, client, host,
/// timeouts, subscription and assignment), committed offsets (offset, leader epoch, metadata, commit and expire
/// timestamps, record offset), pending transactional offsets per producer, and the producer sequences.
/// <para>
/// Groups that left no trace in the log (no stored metadata, no offsets, nothing pending) are not listed: a load
/// cannot know them. A group between rebalances (Empty, Stable) is dumped from its live state, which must agree
/// with what its records say; one inside a rebalance (whose in-memory state runs ahead of the log, as in Kafka)
/// from its stored metadata. <c>durable: true</c> dumps every group from its stored metadata. The state timestamp
/// is part of the dump only for Empty groups: Kafka writes the CompletingRebalance time into a Stable group's
/// record, and only an Empty group's timestamp is used (the KIP-211 retention base).
/// </para>
/// </summary>
internal static class CanonicalState
{
    public static string Dump(GroupCoordinator coordinator, bool durable = false)
    {
        var groups = new List<ClassicGroup>(coordinator.AllGroups);
        groups.Sort((a, b) => string.CompareOrdinal(a.GroupId, b.GroupId));
        var sb = new StringBuilder();
        foreach (var g in groups)
        {
            lock (g.Lock)
            {
                if (g.State == GroupState.Dead) continue;
                if (g.StoredMetadata is null && g.Offsets.Count == 0 && g.PendingTxnOffsets.Count == 0) continue;
                sb.Append("group ").Append(g.GroupId).Append('\n');
                if (durable || g.State is not (GroupState.Empty or GroupState.Stable)) Stored(sb, g.StoredMetadata);
                else Live(sb, g);
                foreach (var (topic, partition, o) in Sorted(g.Offsets)) Offset(sb, "  offset ", topic, partition, o);
                var pids = new List<long>(g.PendingTxnOffsets.Keys);
                pids.Sort();
                foreach (long pid in pids)
                {
                    var keys = new List<(string Topic, int Partition)>(g.PendingTxnOffsets[pid].Keys);
                    keys.Sort((a, b) => a.Topic == b.Topic ? a.Partition.CompareTo(b.Partition) : string.CompareOrdinal(a.Topic, b.Topic));
                    foreach (var k in keys) Offset(sb, $"  pending {pid} ", k.Topic, k.Partition, g.PendingTxnOffsets[pid][k]);
                }
            }
        }
        var sequences = coordinator.TxnSequences();
        Array.Sort(sequences, (a, b) => a.Key.CompareTo(b.Key));
        foreach (var (key, (epoch, last)) in sequences)
            sb.Append("sequence p").Append(key.Partition).Append(" pid ").Append(key.ProducerId).Append(" epoch ").Append(epoch).Append(" last ").Append(last).Append('\n');
        return sb.ToString();
    }

    private static void Live(StringBuilder sb, ClassicGroup g)
    {
        Header(sb, g.State, g.GenerationId, g.ProtocolType, g.ProtocolName, g.LeaderId, g.CurrentStateTimestamp ?? -1);
        foreach (var m in g.MemberList)
            Member(sb, m.MemberId, m.GroupInstanceId, m.ClientId, m.ClientHost, m.SessionTimeoutMs, m.RebalanceTimeoutMs,
                m.MetadataFor(g.ProtocolName) ?? [], m.Assignment);
    }

    private static void Stored(StringBuilder sb, GroupMetadataValue? v)
    {
        if (v is null)
        {
            // No record: what a load makes of offsets alone, a simple group.
            Header(sb, GroupState.Empty, 0, null, null, null, -1);
            return;
        }
        Header(sb, v.Members.Count > 0 ? GroupState.Stable : GroupState.Empty, v.Generation,
            v.ProtocolType.Length > 0 ? v.ProtocolType : null, v.Protocol, v.Leader, v.CurrentStateTimestamp);
        foreach (var m in v.Members)
            Member(sb, m.MemberId, m.GroupInstanceId, m.ClientId, m.ClientHost, m.SessionTimeout, m.RebalanceTimeout, m.Subscription, m.Assignment);
    }

    private static void Header(StringBuilder sb, GroupState state, int generation, string? type, string? protocol, string? leader, long stateTs) =>
        sb.Append("  ").Append(state).Append(" generation ").Append(generation).Append(" type ").Append(type ?? "-")
            .Append(" protocol ").Append(protocol ?? "-").Append(" leader ").Append(leader ?? "-")
            .Append(" since ").Append(state == GroupState.Empty ? stateTs.ToString() : "n/a").Append('\n');

    private static void Member(StringBuilder sb, string id, string? instance, string client, string host, int session, int rebalance,
        byte[] subscription, byte[] assignment) =>
        sb.Append("  member ").Append(id).Append(" instance ").Append(instance ?? "-").Append(" client ").Append(client)
            .Append(' ').Append(host).Append(" session ").Append(session).Append(" rebalance ").Append(rebalance)
            .Append(" subscription ").Append(Convert.ToHexString(subscription)).Append(" assignment ").Append(Convert.ToHexString(assignment)).Append('\n');

    private static void Offset(StringBuilder sb, string prefix, string topic, int partition, CommittedOffset o) =>
        sb.Append(prefix).Append(topic).Append('-').Append(partition).Append(" offset ").Append(o.Offset).Append(" epoch ").Append(o.LeaderEpoch)
            .Append(" metadata '").Append(o.Metadata).Append("' committed ").Append(o.CommitTimestamp).Append(" expires ").Append(o.ExpireTimestamp)
            .Append(" record ").Append(o.RecordOffset).Append('\n');

    private static List<(string, int, CommittedOffset)> Sorted(Dictionary<string, Dictionary<int, CommittedOffset>> offsets)
    {
        var list = new List<(string Topic, int Partition, CommittedOffset Offset)>();
        foreach (var (topic, partitions) in offsets)
            foreach (var (p, o) in partitions) list.Add((topic, p, o));
        list.Sort((a, b) => a.Topic == b.Topic ? a.Partition.CompareTo(b.Partition) : string.CompareOrdinal(a.Topic, b.Topic));
        return list;
    }
}

/// <summary>An in-memory group log that refuses appends (as a full or failed disk would) while <see cref="Fail"/> is set.</summary>
internal sealed class FaultyGroupLog(InMemoryGroupLog inner) : IGroupLog
{
    public bool Fail { get; set; }
    /// <summary>
    /// A failing append writes the batch first and then reports the ISR's timeout (issue 14: the records are in the
    /// leader's log, not acknowledged), as the broker's ReplicatedGroupLog does; else it refuses before writing.
    /// </summary>
    public bool WriteThenTimeOut { get; set; }
    /// <summary>What a written-but-refused append reports: the ISR's timeout by default, or a lost leadership.</summary>
    public Kayak.Protocol.ErrorCode Reported { get; set; } = Kayak.Protocol.ErrorCode.RequestTimedOut;
    public int Refused { get; private set; }
    public InMemoryGroupLog Inner => inner;

    public long Append(int partition, ReadOnlySpan<byte> batch)
    {
        if (!Fail) return inner.Append(partition, batch);
        Refused++;
        if (!WriteThenTimeOut) throw new IOException("injected append failure");
        inner.Append(partition, batch);
        throw new CoordinatorAppendException(Reported, "injected: the ISR did not catch up");
    }

    public long AppendEndTxnMarker(int partition, long producerId, short producerEpoch, int coordinatorEpoch, bool commit)
    {
        if (!Fail) return inner.AppendEndTxnMarker(partition, producerId, producerEpoch, coordinatorEpoch, commit);
        Refused++;
        if (!WriteThenTimeOut) throw new IOException("injected append failure");
        inner.AppendEndTxnMarker(partition, producerId, producerEpoch, coordinatorEpoch, commit);
        throw new CoordinatorAppendException(Reported, "injected: the ISR did not catch up");
    }

    public void Replay(int partition, Action<ReadOnlyMemory<byte>> onBatches) => inner.Replay(partition, onBatches);
}
