using Kayak.Protocol;
using Kayak.Protocol.CoordinatorRecords;
using Kayak.Protocol.Records;

namespace Kayak.Coordinator;

/// <summary>
/// One write path for coordinator state, as Kafka's group coordinator has it (CoordinatorResult,
/// CoordinatorRuntime, GroupCoordinatorShard.replay): an operation decides which records to write and what to
/// answer, the records are appended to the group's <c>__consumer_offsets</c> partition, and only once the append
/// succeeded is each record replayed into state through <see cref="Replay(long, long, IKafkaMessage, IKafkaMessage?)"/>.
/// <see cref="Load"/> runs the same replay over the log. What that covers: committed offsets, pending
/// transactional offsets and their markers, producer sequences, offset and group tombstones, and a group's
/// persisted metadata (<see cref="ClassicGroup.StoredMetadata"/>, the generation's assignments).
/// <para>
/// What it does not cover is the classic rebalance protocol's soft state, which Kafka keeps only in memory too:
/// parked JoinGroup/SyncGroup requests, timers, members joining a generation that is not written yet
/// (ClassicGroup is no timeline structure in Kafka either; its writes return CoordinatorResult with
/// replayRecords=false and GroupMetadataManager.replay(GroupMetadataKey, …) rebuilds the group on load).
/// Here the GroupMetadata replay reconciles that soft state with the record, building the members on load.
/// </para>
/// Every write runs under the group's lock, so append and replay are atomic with respect to other operations on
/// the group; the replay takes the (reentrant) lock itself, which is what load needs.
/// </summary>
public sealed partial class GroupCoordinator
{
    private const long NoProducerId = -1;

    /// <summary>
    /// Appends the records as one batch to the group's partition and replays them; when the log refused the batch
    /// nothing changed and the answer is Kafka's coordinator error for the refusal (<see cref="CoordinatorAppendErrors.Map"/>:
    /// NOT_COORDINATOR once the leadership is lost, COORDINATOR_NOT_AVAILABLE for a timeout). The caller holds
    /// <paramref name="group"/>'s lock.
    /// </summary>
    private ErrorCode Write(ClassicGroup group, List<CoordinatorRecord> records)
    {
        // An online upgrade applied in memory goes first in the same batch, so the log never holds it without the
        // joining member's records (KIP-848; Kafka appends a CoordinatorResult's records atomically).
        var unwritten = group.Unwritten?.Records;
        var batch = records;
        if (unwritten is not null)
        {
            batch = new List<CoordinatorRecord>(unwritten.Count + records.Count);
            batch.AddRange(unwritten);
            batch.AddRange(records);
        }
        long baseOffset;
        try
        {
            baseOffset = _log.Append(PartitionFor(group.GroupId), CoordinatorBatch.Encode(batch, NowMs));
        }
        catch (Exception e) when (CoordinatorAppendErrors.IsAppendFailure(e))
        {
            return CoordinatorAppendErrors.Map(e);
        }
        int applied = 0;
        if (unwritten is not null)
        {
            // Already replayed when the upgrade was applied.
            applied = unwritten.Count;
            group.Unwritten = null;
        }
        for (int i = 0; i < records.Count; i++)
            Replay(group, baseOffset + applied + i, NoProducerId, records[i].Key, records[i].Value);
        return ErrorCode.None;
    }

    /// <summary><see cref="Write"/> where the caller answers nothing about a refusal (background and best-effort writes).</summary>
    private bool TryWrite(ClassicGroup group, List<CoordinatorRecord> records) => Write(group, records) == ErrorCode.None;

    // ------------------------------------------------------------------ replay

    /// <summary>
    /// The one entry point that changes coordinator state from a record (Kafka's GroupCoordinatorShard.replay):
    /// <paramref name="recordOffset"/> is the record's offset in its partition, <paramref name="producerId"/> the
    /// producer of a transactional batch (-1 otherwise), a null <paramref name="value"/> a tombstone. Keys that are
    /// neither offsets nor classic-group records go to the KIP-848 replay (share-group keys are ignored).
    /// </summary>
    internal void Replay(long recordOffset, long producerId, IKafkaMessage key, IKafkaMessage? value) =>
        Replay(null, recordOffset, producerId, key, value);

    /// <summary><paramref name="writer"/>: the group a write path already holds, saving the lookup per record.</summary>
    private void Replay(ClassicGroup? writer, long recordOffset, long producerId, IKafkaMessage key, IKafkaMessage? value)
    {
        switch (key)
        {
            case OffsetCommitKey k:
                ReplayOffset(writer, recordOffset, producerId, k, (OffsetCommitValue?)value);
                break;
            case GroupMetadataKey k:
                if (value is GroupMetadataValue v) ReplayGroupMetadata(Resolve(writer, k.Group), v);
                else ReplayGroupTombstone(k.Group);
                break;
            default:
                // KIP-848 consumer group records (GroupCoordinator.ConsumerRecords.cs).
                ReplayConsumerRecord(writer, key, value);
                break;
        }
    }

    private ClassicGroup Resolve(ClassicGroup? writer, string groupId) =>
        writer is not null && string.Equals(writer.GroupId, groupId, StringComparison.Ordinal)
            ? writer
            : _groups.GetOrAdd(groupId, static id => new ClassicGroup(id));

    /// <summary>Kafka's OffsetMetadataManager.replay(OffsetCommitKey, OffsetCommitValue).</summary>
    private void ReplayOffset(ClassicGroup? writer, long recordOffset, long producerId, OffsetCommitKey key, OffsetCommitValue? value)
    {
        if (value is null)
        {
            if (writer is null && !_groups.TryGetValue(key.Group, out writer)) return;
            lock (writer.Lock) RemoveOffsetAndPending(writer, key.Topic, key.Partition);
            return;
        }
        // A commit without membership creates a "simple" group (no protocol type), as in Kafka.
        var group = Resolve(writer, key.Group);
        lock (group.Lock)
        {
            var offset = new CommittedOffset(value.Offset, value.LeaderEpoch, value.Metadata, value.CommitTimestamp, value.ExpireTimestamp, recordOffset);
            if (producerId == NoProducerId)
            {
                SetOffset(group, key.Topic, key.Partition, offset);
                return;
            }
            // Transactional: pending until the producer's marker in this partition (KIP-98).
            if (!group.PendingTxnOffsets.TryGetValue(producerId, out var pending))
                group.PendingTxnOffsets[producerId] = pending = new();
            pending[(key.Topic, key.Partition)] = offset;
            lock (_txnLock) OpenTxnGroup(producerId, group.GroupId);
        }
    }

    /// <summary>
    /// An offset tombstone deletes the committed offset and every pending transactional offset of the partition
    /// (Kafka's replay does the same, so OffsetDelete and DeleteGroups also end pending commits).
    /// </summary>
    private static void RemoveOffsetAndPending(ClassicGroup group, string topic, int partition)
    {
        RemoveOffset(group, topic, partition);
        if (group.PendingTxnOffsets.Count == 0) return;
        List<long>? emptied = null;
        foreach (var (pid, pending) in group.PendingTxnOffsets)
            if (pending.Remove((topic, partition)) && pending.Count == 0) (emptied ??= new()).Add(pid);
        // A producer with nothing left pending in the group no longer holds it (HasOffsets, group expiry).
        if (emptied is not null)
            foreach (long pid in emptied) group.PendingTxnOffsets.Remove(pid);
    }

    /// <summary>
    /// A GroupMetadata record is the group's persisted state (Kafka's GroupMetadataManager.replay): generation,
    /// protocol, leader, members with their subscription and assignment. On load it builds the members; on the
    /// write path the members are there already and the record installs the assignments the leader sent.
    /// </summary>
    private void ReplayGroupMetadata(ClassicGroup group, GroupMetadataValue value)
    {
        lock (group.Lock)
        {
            group.StoredMetadata = value;
            group.ProtocolType = value.ProtocolType.Length > 0 ? value.ProtocolType : null;
            group.GenerationId = value.Generation;
            group.ProtocolName = value.Protocol;
            group.LeaderId = value.Leader;
            group.CurrentStateTimestamp = value.CurrentStateTimestamp >= 0 ? value.CurrentStateTimestamp : null;

            // Members a later record no longer lists are gone (load only: a write lists the group's own members).
            if (group.MemberList.Count > 0)
            {
                var listed = new HashSet<string>(value.Members.Count, StringComparer.Ordinal);
                foreach (var mm in value.Members) listed.Add(mm.MemberId);
                for (int i = group.MemberList.Count - 1; i >= 0; i--)
                    if (!listed.Contains(group.MemberList[i].MemberId)) group.Remove(group.MemberList[i]);
            }
            bool inOrder = true;
            for (int i = 0; i < value.Members.Count; i++)
            {
                var mm = value.Members[i];
                if (!group.Members.TryGetValue(mm.MemberId, out var member))
                {
                    member = new GroupMember { MemberId = mm.MemberId, GroupInstanceId = mm.GroupInstanceId };
                    group.MemberList.Add(member);
                    group.Members[member.MemberId] = member;
                    if (member.GroupInstanceId is not null) group.StaticMembers[member.GroupInstanceId] = member.MemberId;
                    // A loaded member must heartbeat within its session timeout, as after a Kafka failover.
                    ScheduleHeartbeat(group, member, mm.SessionTimeout);
                }
                // Every field comes from the record. On the write path the record was built from these very members,
                // so this changes nothing but the assignments; on load a later record of the group supersedes an
                // earlier one's (a member that rejoined with other timeouts, client or subscription).
                member.ClientId = mm.ClientId;
                member.ClientHost = mm.ClientHost;
                // Value v0 has no rebalance timeout: Kafka uses the session timeout.
                member.RebalanceTimeoutMs = mm.RebalanceTimeout >= 0 ? mm.RebalanceTimeout : mm.SessionTimeout;
                member.SessionTimeoutMs = mm.SessionTimeout;
                member.ProtocolType = value.ProtocolType;
                member.Assignment = mm.Assignment;
                // A live member keeps every protocol it offered; the record has the selected one's metadata only.
                if (member.MetadataFor(value.Protocol) is not { } metadata || !metadata.AsSpan().SequenceEqual(mm.Subscription))
                    member.Protocols = [new MemberProtocol(value.Protocol ?? "", mm.Subscription)];
                inOrder &= group.MemberList[i] == member;
            }
            // Join order decides the default leader; the record's order is the group's (load only, as above).
            if (!inOrder)
            {
                group.MemberList.Clear();
                foreach (var mm in value.Members) group.MemberList.Add(group.Members[mm.MemberId]);
            }
            if (group.LeaderId is not null && !group.Members.ContainsKey(group.LeaderId))
                group.LeaderId = group.MemberList.Count > 0 ? group.MemberList[0].MemberId : null;
            // A group between rebalances is what the record says; one in a rebalance moves on by itself.
            if (group.State is GroupState.Empty or GroupState.Stable)
                group.State = group.MemberList.Count > 0 ? GroupState.Stable : GroupState.Empty;
        }
    }

    /// <summary>
    /// A group tombstone (Kafka's removeGroup): the group is gone. Offsets still held (a log written elsewhere,
    /// where offsets outlive their group) keep it as a simple group without membership.
    /// </summary>
    private void ReplayGroupTombstone(string groupId)
    {
        if (!_groups.TryGetValue(groupId, out var group)) return;
        lock (group.Lock)
        {
            group.StoredMetadata = null;
            if (group.HasOffsets || group.Converting)
            {
                for (int i = group.MemberList.Count - 1; i >= 0; i--) group.Remove(group.MemberList[i]);
                group.GenerationId = 0;
                group.ProtocolType = group.ProtocolName = group.LeaderId = null;
                group.CurrentStateTimestamp = null;
                if (group.State == GroupState.Stable) group.State = GroupState.Empty;
                return;
            }
            group.State = GroupState.Dead;
            CancelJoinTimer(group);
            _groups.TryRemove(new KeyValuePair<string, ClassicGroup>(groupId, group));
        }
    }

    // ------------------------------------------------------------------ records

    // Key/value versions Kafka writes (GroupCoordinatorRecordHelpers): offset commit key 1, group
    // metadata key 2, offset commit value 3 (1 when an explicit expire timestamp must be kept), group
    // metadata value 3.
    internal const short OffsetCommitKeyVersion = 1;
    internal const short GroupMetadataKeyVersion = 2;
    internal const short GroupMetadataValueVersion = 3;

    private static CoordinatorRecord OffsetRecord(string groupId, string topic, int partition, long offset, int leaderEpoch,
        string metadata, long commitTimestamp, long expireTimestamp) =>
        new(new OffsetCommitKey { Group = groupId, Topic = topic, Partition = partition }, OffsetCommitKeyVersion,
            new OffsetCommitValue
            {
                Offset = offset,
                LeaderEpoch = leaderEpoch,
                Metadata = metadata,
                CommitTimestamp = commitTimestamp,
                ExpireTimestamp = expireTimestamp,
            }, expireTimestamp >= 0 ? (short)1 : (short)3);

    private static CoordinatorRecord OffsetTombstone(string groupId, string topic, int partition) =>
        new(new OffsetCommitKey { Group = groupId, Topic = topic, Partition = partition }, OffsetCommitKeyVersion, null, 0);

    private static CoordinatorRecord GroupTombstone(string groupId) =>
        new(new GroupMetadataKey { Group = groupId }, GroupMetadataKeyVersion, null, 0);

    /// <summary>
    /// The group's metadata record as it is to be after the write: <paramref name="generation"/>,
    /// <paramref name="protocol"/> and <paramref name="leader"/>, the current members, each with its assignment
    /// from <paramref name="assignments"/> when given (empty for members it leaves out, as in Kafka), else its own.
    /// </summary>
    private static CoordinatorRecord GroupRecord(ClassicGroup group, int generation, string? protocol, string? leader,
        Dictionary<string, byte[]>? assignments = null)
    {
        var value = new GroupMetadataValue
        {
            ProtocolType = group.ProtocolType ?? "",
            Generation = generation,
            Protocol = protocol,
            Leader = leader,
            CurrentStateTimestamp = group.CurrentStateTimestamp ?? -1,
        };
        foreach (var m in group.MemberList)
        {
            byte[] assignment = assignments is null ? m.Assignment : assignments.TryGetValue(m.MemberId, out var bytes) ? bytes : [];
            value.Members.Add(new GroupMetadataValue.MemberMetadata
            {
                MemberId = m.MemberId,
                GroupInstanceId = m.GroupInstanceId,
                ClientId = m.ClientId,
                ClientHost = m.ClientHost,
                RebalanceTimeout = m.RebalanceTimeoutMs,
                SessionTimeout = m.SessionTimeoutMs,
                Subscription = m.MetadataFor(protocol) ?? [],
                Assignment = assignment,
            });
        }
        return new CoordinatorRecord(new GroupMetadataKey { Group = group.GroupId }, GroupMetadataKeyVersion, value, GroupMetadataValueVersion);
    }

    /// <summary>Writes the group's metadata as it stands (generation, members, assignments). False if the log refused it.</summary>
    private bool TryStoreGroup(ClassicGroup group) =>
        TryWrite(group, [GroupRecord(group, group.GenerationId, group.ProtocolName, group.LeaderId)]);

    // ------------------------------------------------------------------ loading

    /// <summary>
    /// Loads every group and offset by replaying all partitions of <c>__consumer_offsets</c> through
    /// <see cref="Replay(long, long, IKafkaMessage, IKafkaMessage?)"/>, then starts the periodic offset
    /// expiration. Loaded members must heartbeat within their session timeout or are removed, as after a Kafka
    /// failover. Requests answer COORDINATOR_LOAD_IN_PROGRESS until this has run.
    /// </summary>
    public void Load()
    {
        // A broker whose __consumer_offsets was never written (a fresh one: the test-fixture case) has nothing
        // to replay; skipping the replay code keeps its generic instantiations out of the first start (issue 6).
        if (!_log.IsEmpty)
            for (int partition = 0; partition < _options.OffsetsTopicNumPartitions; partition++)
            {
                var visitor = new LoadVisitor(this, partition);
                _log.Replay(partition, chunk => CoordinatorBatch.Replay(chunk, visitor));
            }
        RecordLoadedEpochs();
        _loaded = true;
        if (_options.OffsetsRetentionCheckIntervalMs > 0)
        {
            var interval = TimeSpan.FromMilliseconds(_options.OffsetsRetentionCheckIntervalMs);
            _retentionTimer = _time.CreateTimer(static s => ((GroupCoordinator)s!).RunRetentionCheck(), this, interval, interval);
        }
    }

    /// <summary>Decodes one partition's batches and hands each record, producer batch and marker to the replay.</summary>
    private sealed class LoadVisitor(GroupCoordinator owner, int partition) : CoordinatorBatch.IReplayVisitor
    {
        public void OnProducerBatch(in RecordBatchHeader header) =>
            owner.ReplayProducerBatch(partition, header.ProducerId, header.ProducerEpoch, header.BaseSequence, header.LastOffsetDelta);

        public void OnMarker(in RecordBatchHeader header, bool commit) =>
            owner.ReplayEndTxnMarker(partition, header.ProducerId, header.ProducerEpoch, commit);

        public void OnRecord(long offset, long producerId, ReadOnlyMemory<byte> key, ReadOnlyMemory<byte>? value)
        {
            var reader = new KafkaReader(key);
            short keyVersion = reader.ReadInt16();
            if (keyVersion is 0 or 1)
            {
                var k = new OffsetCommitKey();
                k.Read(ref reader, keyVersion);
                owner.Replay(offset, producerId, k, value is { } v ? ReadValue<OffsetCommitValue>(v, OffsetCommitValue.HighestSupportedVersion) : null);
            }
            else if (keyVersion == 2)
            {
                var k = new GroupMetadataKey();
                k.Read(ref reader, keyVersion);
                owner.Replay(offset, producerId, k, value is { } v ? ReadValue<GroupMetadataValue>(v, GroupMetadataValue.HighestSupportedVersion) : null);
            }
            else if (TryReadConsumerRecord(keyVersion, ref reader, value, out var consumerKey, out var consumerValue))
                owner.Replay(offset, producerId, consumerKey, consumerValue);
            // Other key versions are share-group/transaction records: not ours to load.
        }
    }

    private void RunRetentionCheck()
    {
        if (_disposed) return;
        try { ExpireOffsets(); }
        catch (Exception) when (_disposed) { }
    }

    private static T ReadValue<T>(ReadOnlyMemory<byte> bytes, short highest) where T : IKafkaMessage, new()
    {
        var reader = new KafkaReader(bytes);
        short version = reader.ReadInt16();
        if (version < 0 || version > highest) throw new CorruptRecordException($"{typeof(T).Name} version {version} is newer than this broker reads.");
        var value = new T();
        value.Read(ref reader, version);
        return value;
    }

    /// <summary>Every group, for the state dumps of the replay tests (each read under its lock).</summary>
    internal ICollection<ClassicGroup> AllGroups => _groups.Values;
}
