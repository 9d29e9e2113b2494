using Kayak.Protocol;
using Kayak.Protocol.CoordinatorRecords;
using Kayak.Protocol.Messages;

namespace Kayak.Coordinator;

public sealed partial class GroupCoordinator
{
    /// <summary>
    /// OffsetCommit, all versions. Members commit with their generation; simple consumers (assign())
    /// commit with generation -1 and no member id, which Kafka accepts while the group has no members.
    /// <paramref name="partitionExists"/> (optional) filters out partitions of unknown topics first, as
    /// KafkaApis does: they answer UNKNOWN_TOPIC_OR_PARTITION whatever the group says.
    /// </summary>
    public OffsetCommitResponse CommitOffsets(OffsetCommitRequest request, short version, Func<string, int, bool>? partitionExists = null)
    {
        ErrorCode error = ErrorCode.None;
        ClassicGroup? group = null;
        if (Unavailable(request.GroupId) is var unavailable && unavailable != ErrorCode.None) error = unavailable;
        else if (!_groups.TryGetValue(request.GroupId, out group))
        {
            if (request.GenerationIdOrMemberEpoch < 0)
                group = _groups.GetOrAdd(request.GroupId, static id => new ClassicGroup(id));
            else
                // A commit for a group we do not know from a member of an old generation. v9+ reports
                // GROUP_ID_NOT_FOUND; older versions keep ILLEGAL_GENERATION as Kafka does.
                error = version >= 9 ? ErrorCode.GroupIdNotFound : ErrorCode.IllegalGeneration;
        }

        if (group is null) return CommitResponse(request, error, partitionExists);
        lock (group.Lock)
        {
            error = group.Consumer is { } consumer && group.State != GroupState.Dead
                ? ValidateConsumerOffsetCommit(consumer, request.MemberId, request.GenerationIdOrMemberEpoch, version, transactional: false)
                : ValidateOffsetCommit(group, request);
            if (error != ErrorCode.None) return CommitResponse(request, error, partitionExists);

            long now = NowMs;
            // v2-v4 carry a retention time; -1 means the broker default (KIP-211: then no expire timestamp).
            long expire = version is >= 2 and <= 4 && request.RetentionTimeMs >= 0 ? now + request.RetentionTimeMs : -1;
            var response = new OffsetCommitResponse();
            var records = new List<CoordinatorRecord>();
            foreach (var t in request.Topics)
            {
                var rt = new OffsetCommitResponse.OffsetCommitResponseTopic { Name = t.Name };
                foreach (var p in t.Partitions)
                {
                    var partitionError = ErrorCode.None;
                    string metadata = p.CommittedMetadata ?? "";
                    if (partitionExists is not null && !partitionExists(t.Name, p.PartitionIndex))
                        partitionError = ErrorCode.UnknownTopicOrPartition;
                    else if (System.Text.Encoding.UTF8.GetByteCount(metadata) > _options.OffsetMetadataMaxBytes)
                        partitionError = ErrorCode.OffsetMetadataTooLarge;
                    else
                    {
                        // v1 carries a commit timestamp; -1 (or any other version) means "now".
                        long commitTs = version == 1 && p.CommitTimestamp != -1 ? p.CommitTimestamp : now;
                        records.Add(OffsetRecord(group.GroupId, t.Name, p.PartitionIndex, p.CommittedOffset,
                            version >= 6 ? p.CommittedLeaderEpoch : -1, metadata, commitTs, expire));
                    }
                    rt.Partitions.Add(new OffsetCommitResponse.OffsetCommitResponsePartition { PartitionIndex = p.PartitionIndex }.SetError(partitionError));
                }
                response.Topics.Add(rt);
            }
            // The offsets change when their records are replayed, after the append; each keeps its record offset,
            // which lets a later transactional commit of the partition tell which came last.
            if (records.Count > 0 && Write(group, records) is var refused and not ErrorCode.None)
                return CommitResponse(request, refused, partitionExists);
            if (request.GenerationIdOrMemberEpoch >= 0 && group.Members.TryGetValue(request.MemberId, out var member))
                ScheduleHeartbeat(group, member, member.SessionTimeoutMs);
            return response;
        }
    }

    /// <summary>Kafka's validateOffsetCommit for classic groups.</summary>
    private static ErrorCode ValidateOffsetCommit(ClassicGroup group, OffsetCommitRequest request)
    {
        if (group.State == GroupState.Dead) return ErrorCode.CoordinatorNotAvailable;
        if (request.GenerationIdOrMemberEpoch >= 0 || request.MemberId.Length > 0 || request.GroupInstanceId is not null)
        {
            ErrorCode error = ValidateMember(group, request.MemberId, request.GroupInstanceId);
            if (error != ErrorCode.None) return error;
            if (request.GenerationIdOrMemberEpoch != group.GenerationId) return ErrorCode.IllegalGeneration;
            // The member has its JoinGroup answer but not its assignment yet.
            if (group.State == GroupState.CompletingRebalance) return ErrorCode.RebalanceInProgress;
            return ErrorCode.None;
        }
        // Without membership only an empty group takes commits.
        return group.State == GroupState.Empty ? ErrorCode.None : ErrorCode.UnknownMemberId;
    }

    /// <summary>A commit refused as a whole: every partition answers <paramref name="error"/>, but unknown ones UNKNOWN_TOPIC_OR_PARTITION.</summary>
    private static OffsetCommitResponse CommitResponse(OffsetCommitRequest request, ErrorCode error, Func<string, int, bool>? partitionExists)
    {
        var response = new OffsetCommitResponse();
        foreach (var t in request.Topics)
        {
            var rt = new OffsetCommitResponse.OffsetCommitResponseTopic { Name = t.Name };
            foreach (var p in t.Partitions)
            {
                var e = partitionExists is not null && !partitionExists(t.Name, p.PartitionIndex) ? ErrorCode.UnknownTopicOrPartition : error;
                rt.Partitions.Add(new OffsetCommitResponse.OffsetCommitResponsePartition { PartitionIndex = p.PartitionIndex }.SetError(e));
            }
            response.Topics.Add(rt);
        }
        return response;
    }

    private static void SetOffset(ClassicGroup group, string topic, int partition, CommittedOffset offset)
    {
        if (!group.Offsets.TryGetValue(topic, out var partitions)) group.Offsets[topic] = partitions = new Dictionary<int, CommittedOffset>();
        partitions[partition] = offset;
    }

    private static bool RemoveOffset(ClassicGroup group, string topic, int partition)
    {
        if (!group.Offsets.TryGetValue(topic, out var partitions) || !partitions.Remove(partition)) return false;
        if (partitions.Count == 0) group.Offsets.Remove(topic);
        return true;
    }

    // ------------------------------------------------------------------ OffsetFetch

    /// <summary>
    /// OffsetFetch: v0-7 one group (null topics from v2 = every committed partition), v8+ a batch of
    /// groups. Partitions without a commit answer offset -1. With RequireStable (v7+, KIP-447) a
    /// partition holding a pending transactional offset answers UNSTABLE_OFFSET_COMMIT with offset -1, which
    /// the consumer retries until the transaction ends.
    /// </summary>
    public OffsetFetchResponse FetchOffsets(OffsetFetchRequest request, short version)
    {
        var response = new OffsetFetchResponse();
        if (version >= 8)
        {
            foreach (var g in request.Groups)
            {
                var rg = new OffsetFetchResponse.OffsetFetchResponseGroup { GroupId = g.GroupId };
                // v9+ (KIP-848): a consumer-protocol member reads with its member epoch.
                if (version >= 9 && ValidateConsumerOffsetFetch(g.GroupId, g.MemberId, g.MemberEpoch) is var fetchError && fetchError != ErrorCode.None)
                {
                    rg.SetError(fetchError);
                    response.Groups.Add(rg);
                    continue;
                }
                List<(string, List<int>)>? wanted = null;
                if (g.Topics is not null)
                {
                    wanted = new();
                    foreach (var t in g.Topics) wanted.Add((t.Name, t.PartitionIndexes));
                }
                rg.SetError(FetchGroup(g.GroupId, wanted, request.RequireStable, (topic, partition, offset, error) =>
                {
                    var last = rg.Topics.Count > 0 ? rg.Topics[^1] : null;
                    if (last is null || last.Name != topic) rg.Topics.Add(last = new OffsetFetchResponse.OffsetFetchResponseTopics { Name = topic });
                    last.Partitions.Add(new OffsetFetchResponse.OffsetFetchResponsePartitions
                    {
                        PartitionIndex = partition,
                        CommittedOffset = offset?.Offset ?? -1,
                        CommittedLeaderEpoch = offset?.LeaderEpoch ?? -1,
                        Metadata = offset?.Metadata ?? "",
                    }.SetError(error));
                }));
                response.Groups.Add(rg);
            }
            return response;
        }

        List<(string, List<int>)>? topics = null;
        if (request.Topics is not null)
        {
            topics = new();
            foreach (var t in request.Topics) topics.Add((t.Name, t.PartitionIndexes));
        }
        ErrorCode error = FetchGroup(request.GroupId, topics, version >= 7 && request.RequireStable, (topic, partition, offset, partitionError) =>
        {
            var last = response.Topics.Count > 0 ? response.Topics[^1] : null;
            if (last is null || last.Name != topic) response.Topics.Add(last = new OffsetFetchResponse.OffsetFetchResponseTopic { Name = topic });
            last.Partitions.Add(new OffsetFetchResponse.OffsetFetchResponsePartition
            {
                PartitionIndex = partition,
                CommittedOffset = offset?.Offset ?? -1,
                CommittedLeaderEpoch = offset?.LeaderEpoch ?? -1,
                Metadata = offset?.Metadata ?? "",
            }.SetError(partitionError));
        });
        if (version >= 2) response.SetError(error);
        else if (error != ErrorCode.None)
            // v0-1 have no top-level error: every partition carries it.
            foreach (var t in response.Topics)
                foreach (var p in t.Partitions) p.SetError(error);
        return response;
    }

    private delegate void OffsetSink(string topic, int partition, CommittedOffset? offset, ErrorCode error);

    private ErrorCode FetchGroup(string groupId, List<(string Topic, List<int> Partitions)>? wanted, bool requireStable, OffsetSink sink)
    {
        ErrorCode unavailable = Unavailable(groupId);
        if (unavailable != ErrorCode.None || !_groups.TryGetValue(groupId, out var group))
        {
            // Not loaded yet, or no such group: every wanted partition answers without an offset.
            if (wanted is not null)
                foreach (var (topic, partitions) in wanted)
                    foreach (var p in partitions) sink(topic, p, null, ErrorCode.None);
            return unavailable;
        }
        lock (group.Lock)
        {
            bool dead = group.State == GroupState.Dead;
            if (wanted is null)
            {
                if (dead) return ErrorCode.None;
                foreach (var (topic, partitions) in group.Offsets)
                    foreach (var (p, offset) in partitions)
                        if (requireStable && HasPendingTxnOffset(group, topic, p)) sink(topic, p, null, ErrorCode.UnstableOffsetCommit);
                        else sink(topic, p, offset, ErrorCode.None);
                return ErrorCode.None;
            }
            foreach (var (topic, partitions) in wanted)
            {
                group.Offsets.TryGetValue(topic, out var committed);
                foreach (var p in partitions)
                {
                    CommittedOffset? offset = null;
                    if (!dead && requireStable && HasPendingTxnOffset(group, topic, p)) { sink(topic, p, null, ErrorCode.UnstableOffsetCommit); continue; }
                    if (!dead) committed?.TryGetValue(p, out offset);
                    sink(topic, p, offset, ErrorCode.None);
                }
            }
            return ErrorCode.None;
        }
    }

    // ------------------------------------------------------------------ retention

    /// <summary>
    /// Drops expired offsets (KIP-211): offsets with an explicit expire timestamp (v2-4 retention)
    /// expire then; otherwise offsets of an empty group expire offsets.retention.minutes after the
    /// group became empty, offsets of a Stable consumer group expire for topics it no longer
    /// subscribes to, and offsets of a simple group expire that long after their commit. An empty
    /// group left without offsets is deleted. Returns the number of offsets removed.
    /// </summary>
    public int ExpireOffsets()
    {
        if (!_loaded) return 0;
        long now = NowMs;
        long retention = _options.OffsetsRetentionMs;
        int removed = 0;
        foreach (var group in _groups.Values)
        {
            lock (group.Lock)
            {
                if (group.State == GroupState.Dead) continue;
                HashSet<string>? keep = null;
                Func<CommittedOffset, long>? baseTs = null;
                var consumer = group.Consumer;
                if (consumer is not null)
                {
                    // KIP-848 (Kafka's ConsumerGroup.offsetExpirationCondition and isSubscribedToTopic): an offset of a
                    // topic no member subscribes to expires offsets.retention.minutes after its commit; an empty group
                    // subscribes to nothing.
                    keep = ConsumerSubscribedTopics(consumer);
                    baseTs = static o => o.CommitTimestamp;
                }
                else if (group.ProtocolType is null) baseTs = static o => o.CommitTimestamp;
                else if (group.State == GroupState.Empty)
                {
                    long? stateTs = group.CurrentStateTimestamp;
                    baseTs = o => stateTs ?? o.CommitTimestamp;
                }
                else if (group.State == GroupState.Stable && (keep = group.SubscribedTopics()) is not null)
                    baseTs = static o => o.CommitTimestamp;
                if (baseTs is null) continue;

                var records = new List<CoordinatorRecord>();
                int expired = 0;
                foreach (var (topic, partitions) in group.Offsets)
                {
                    if (keep is not null && keep.Contains(topic)) continue;
                    foreach (var (p, o) in partitions)
                    {
                        bool isExpired = o.ExpireTimestamp >= 0 ? now >= o.ExpireTimestamp : now - baseTs(o) >= retention;
                        // A partition with a pending transactional offset is not expired under it (Kafka's cleanupExpiredOffsets).
                        if (!isExpired || HasPendingTxnOffset(group, topic, p)) continue;
                        expired++;
                        records.Add(OffsetTombstone(group.GroupId, topic, p));
                    }
                }
                // Pending transactional offsets keep the group (Kafka's hasOffsets counts them).
                bool deleteGroup = group.State == GroupState.Empty && consumer is not { IsEmpty: false }
                    && expired == CountOffsets(group) && group.PendingTxnOffsets.Count == 0;
                if (deleteGroup && consumer is not null) AddConsumerGroupDeletion(records, group.GroupId);
                if (deleteGroup) records.Add(GroupTombstone(group.GroupId));
                if (records.Count == 0) continue;
                // The tombstones' replay removes the offsets, the group tombstone's the group.
                if (TryWrite(group, records)) removed += expired;
            }
        }
        return removed;
    }

    /// <summary>
    /// Topics some member of a KIP-848 group subscribes to, by name or through its regex (the subscription metadata of
    /// the last heartbeat: it may still hold a topic of a member that left since, which only keeps an offset longer).
    /// </summary>
    private static HashSet<string> ConsumerSubscribedTopics(ConsumerGroups.ConsumerGroupState cg)
    {
        if (cg.IsEmpty) return new HashSet<string>(StringComparer.Ordinal);
        var topics = new HashSet<string>(cg.SubscriptionMetadata.Keys, StringComparer.Ordinal);
        foreach (var m in cg.Members.Values) topics.UnionWith(m.SubscribedTopicNames);
        return topics;
    }

    private static int CountOffsets(ClassicGroup group)
    {
        int n = 0;
        foreach (var partitions in group.Offsets.Values) n += partitions.Count;
        return n;
    }

    // ------------------------------------------------------------------ lag

    /// <summary>
    /// Committed offset, log end offset and lag for every partition the group has committed, for the
    /// broker's own use (metrics). <paramref name="logEndOffset"/> returns -1 for an unknown partition;
    /// lag is then -1 too.
    /// </summary>
    public IReadOnlyList<PartitionLag> DescribeLag(string groupId, Func<string, int, long> logEndOffset)
    {
        var result = new List<PartitionLag>();
        if (!_groups.TryGetValue(groupId, out var group)) return result;
        lock (group.Lock)
        {
            if (group.State == GroupState.Dead) return result;
            foreach (var (topic, partitions) in group.Offsets)
                foreach (var (p, o) in partitions)
                    result.Add(new PartitionLag(topic, p, o.Offset, 0, 0));
        }
        // Log end offsets are read outside the group lock.
        for (int i = 0; i < result.Count; i++)
        {
            var r = result[i];
            long end = logEndOffset(r.Topic, r.Partition);
            result[i] = r with { LogEndOffset = end, Lag = end < 0 ? -1 : Math.Max(0, end - r.CommittedOffset) };
        }
        return result;
    }

    /// <summary>Committed offsets of a group (tests, tools). Empty when the group does not exist.</summary>
    public IReadOnlyDictionary<(string Topic, int Partition), CommittedOffset> CommittedOffsets(string groupId)
    {
        var result = new Dictionary<(string, int), CommittedOffset>();
        if (!_groups.TryGetValue(groupId, out var group)) return result;
        lock (group.Lock)
            foreach (var (topic, partitions) in group.Offsets)
                foreach (var (p, o) in partitions) result[(topic, p)] = o;
        return result;
    }
}

/// <summary>One partition's committed offset, log end offset and lag (log end minus committed, never negative).</summary>
public readonly record struct PartitionLag(string Topic, int Partition, long CommittedOffset, long LogEndOffset, long Lag);
