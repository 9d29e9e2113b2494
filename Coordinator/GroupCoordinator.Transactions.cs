using Kayak.Coordinator.Transactions;

namespace Kayak.Coordinator;

/// <summary>
/// The group coordinator's side of transactional offset commits (KIP-98, KIP-447): TxnOffsetCommit is
/// validated against the group here, kept pending by the transaction coordinator, and materialized through
/// <see cref="CommitTransactionalOffsets"/> when the transaction commits (aborted ones never reach the group).
/// </summary>
public sealed partial class GroupCoordinator : ITxnOffsetSink
{
    /// <summary>
    /// Kafka's validateOffsetCommit for a transactional commit: a member-bound commit (KIP-447 sends the
    /// consumer's generation and member id) must match the group; an anonymous one (generation -1, assign())
    /// is accepted whatever the group's state, unlike a plain OffsetCommit.
    /// </summary>
    public short ValidateTxnOffsetCommit(string groupId, string memberId, int generationId, string? groupInstanceId)
    {
        if (!_loaded) return GroupErrors.CoordinatorLoadInProgress;
        if (!_groups.TryGetValue(groupId, out var group)) return GroupErrors.None; // created by the commit
        lock (group.Lock)
        {
            if (group.State == GroupState.Dead) return GroupErrors.CoordinatorNotAvailable;
            if (generationId < 0 && memberId.Length == 0 && groupInstanceId is null) return GroupErrors.None;
            short error = ValidateMember(group, memberId, groupInstanceId);
            if (error != GroupErrors.None) return error;
            return generationId != group.GenerationId ? GroupErrors.IllegalGeneration : GroupErrors.None;
        }
    }

    /// <summary>Makes a committed transaction's offsets the group's committed offsets (persisted in __consumer_offsets).</summary>
    public void CommitTransactionalOffsets(string groupId, long producerId, IReadOnlyCollection<PendingTxnOffset> offsets)
    {
        var group = _groups.GetOrAdd(groupId, static id => new ClassicGroup(id));
        lock (group.Lock)
        {
            var records = new List<CoordinatorRecord>(offsets.Count);
            var accepted = new List<(string Topic, int Partition, CommittedOffset Offset)>(offsets.Count);
            foreach (var o in offsets)
            {
                var offset = new CommittedOffset(o.Offset, o.LeaderEpoch, o.Metadata ?? "", o.CommitTimestampMs, -1);
                accepted.Add((o.Topic, o.Partition, offset));
                records.Add(OffsetRecord(groupId, o.Topic, o.Partition, offset));
            }
            if (records.Count > 0 && !TryAppend(groupId, records))
                throw new IOException($"Cannot persist transactional offsets of group {groupId}");
            foreach (var (topic, partition, offset) in accepted) SetOffset(group, topic, partition, offset);
        }
    }
}
