// Fetch (key 1), v0-17. Serves stored batches straight from mapped segment memory (no decode, no
// copy until the socket write). Limits: PartitionMaxBytes per partition and MaxBytes (v3+) per response,
// always at least one whole batch for the first partition with data (KIP-74). Long poll: when fewer than
// MinBytes are available the request waits up to MaxWaitMs and is woken by the append itself. A fetch with
// no existing partition to read (no partitions, a session-closing epoch -1 fetch, only unknown topics) is
// answered at once, as Kafka does (a Java consumer's close() would otherwise wait out fetch.max.wait.ms).
// Fetch sessions (KIP-227, v7+): epoch 0 opens a session, later epochs send only changed partitions and
// get back only partitions with news (data, error, or a moved high watermark / log start offset).
// v13+ names topics by id (UNKNOWN_TOPIC_ID when absent). v0-3 consumers cannot read magic 2: their
// data is down-converted to magic 0 (v0-1) or 1 (v2-3). Isolation (v4+, KIP-98): read_committed reads only
// batches below the last stable offset and gets the aborted transactions overlapping what it read, so the
// client drops aborted records; read_uncommitted reads to the high watermark and gets a null list.
// In an in-process cluster (issue 14) a partition this broker does not lead is NOT_LEADER_OR_FOLLOWER, with the
// current leader and its endpoint from v16 (KIP-951).
// Replication (issue 14): in a cluster a fetch with a replica id (ReplicaId up to v14, ReplicaState.ReplicaId from
// v15) is a follower's: it reads up to the log end offset (consumers up to the high watermark), its CurrentLeaderEpoch
// is checked (FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH, KIP-320) and its fetch offset is its log end offset, which
// moves the high watermark and the ISR (Cluster/ReplicaTracker.cs). Consumers' long polls wait for the high watermark.
// On a single broker a replica id is ignored (it is treated like a consumer), as before.
// ACLs: each topic needs READ (TOPIC_AUTHORIZATION_FAILED, no offsets; by id only once the id is known), as
// KafkaApis.handleFetchRequest; a follower's fetch needs CLUSTER_ACTION on the CLUSTER instead.
// Not implemented: preferred read replica (KIP-392), diverging epochs in the response (followers truncate by
// OffsetForLeaderEpoch instead). Throttling (consumer_byte_rate, KIP-219) is applied around the handler: Quotas/ClientQuotas.cs.
using System.Buffers;
using Kayak.Broker.Fetching;
using Kayak.Broker.Services;
using Kayak.Broker.Network;
using Kayak.Broker.Security;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using Kayak.Protocol.Records;
using Kayak.Storage;
using Microsoft.Extensions.Logging;

namespace Kayak.Broker.Handlers;

internal sealed class FetchHandler(ITopicCatalog catalog, FetchSessionCache sessions, TimeProvider time, ILogger logger,
    IPartitionLeadership leadership, ClusterInfo cluster, IAuthorizer? authorizer = null) : IApiHandler
{
    // Optional so unit tests that build the handler alone run it without ACLs.
    private readonly IAuthorizer _authorizer = authorizer ?? AllowAllAuthorizer.Instance;

    public ApiKey Key => ApiKey.Fetch;

    /// <summary>The response and the log slices it references (see <see cref="HandlerResult"/>).</summary>
    public async ValueTask<HandlerResult> HandleAsync(RequestContext context, IApiMessage message)
    {
        var request = (FetchRequest)message;
        short version = context.ApiVersion;
        var (targets, session, incremental, error) = ResolveTargets(request, version);
        if (error != ErrorCode.None)
            return new HandlerResult(new FetchResponse { SessionId = 0 }.SetError(error));
        bool readCommitted = version >= 4 && request.IsolationLevel == 1;
        int replicaId = version >= 15 ? request.ReplicaState.ReplicaId : request.ReplicaId;
        bool follower = replicaId >= 0 && leadership.Replicated;
        if (_authorizer.Acls is not null)
        {
            // KafkaApis.handleFetchRequest: a follower needs CLUSTER_ACTION on the CLUSTER (the whole fetch is refused
            // otherwise); a consumer needs READ on each topic.
            if (follower && !_authorizer.Cluster(context, AclOperation.ClusterAction))
                return new HandlerResult(new FetchResponse { SessionId = 0 }.SetError(ErrorCode.ClusterAuthorizationFailed));
            if (!follower) MarkDenied(context, targets);
        }
        if (follower && !incremental) RecordFollowerFetch(request, version, replicaId, targets);
        var results = new PartitionResult[targets.Count];
        long deadline = time.GetTimestamp() + (long)(Math.Max(0, request.MaxWaitMs) * (time.TimestampFrequency / 1000.0));
        while (true)
        {
            long total = ReadAll(request, version, readCommitted, follower, targets, results, out bool readError, out int readable);
            long remainingMs = (long)((deadline - time.GetTimestamp()) * 1000.0 / time.TimestampFrequency);
            // Kafka's rule (KafkaApis.handleFetchRequest, ReplicaManager.fetchMessages): answer at once when no
            // partition is left to read (an empty or session-closing fetch, or only unknown topics, which Kafka
            // answers before reading), the client does not want to wait, enough bytes are there, or reading failed.
            // Unknown partitions next to readable ones do not cut the wait short, as in Kafka.
            if (readable == 0 || total >= request.MinBytes || readError || remainingMs <= 0 || context.ConnectionClosed.IsCancellationRequested)
                break;
            ReleaseAll(results);
            if (!await WaitForDataAsync(targets, results, follower, remainingMs, context.ConnectionClosed).ConfigureAwait(false))
            {
                // Timed out: read once more (an append may have landed after the last read) and answer.
                ReadAll(request, version, readCommitted, follower, targets, results, out _, out _);
                break;
            }
        }

        var segments = new ResponseSegments();
        var response = BuildResponse(version, targets, results, session, incremental, readCommitted, segments);
        if (version >= 16) AddCurrentLeaders(context, response);
        return new HandlerResult(response, segments);
    }

    /// <summary>
    /// KIP-951: from v16 a NOT_LEADER_OR_FOLLOWER partition carries the current leader and epoch, and the response the
    /// leaders' endpoints, so the consumer moves without waiting for a Metadata refresh.
    /// </summary>
    private void AddCurrentLeaders(RequestContext context, FetchResponse response)
    {
        foreach (var t in response.Responses)
            foreach (var p in t.Partitions)
            {
                if (p.Error() != ErrorCode.NotLeaderOrFollower) continue;
                string? name = catalog.Find(t.TopicId)?.Name;
                if (name is null) continue;
                var current = leadership.Describe(name, p.PartitionIndex);
                p.CurrentLeader = new FetchResponse.LeaderIdAndEpoch { LeaderId = current.Leader, LeaderEpoch = current.LeaderEpoch };
                if (current.Leader < 0 || cluster.Broker(current.Leader) is not { } leader) continue;
                bool listed = false;
                foreach (var n in response.NodeEndpoints) listed |= n.NodeId == leader.NodeId;
                if (listed) continue;
                var endpoint = leader.EndpointFor(context.ListenerName);
                response.NodeEndpoints.Add(new FetchResponse.NodeEndpoint { NodeId = leader.NodeId, Host = endpoint.Host, Port = endpoint.Port, Rack = null });
            }
    }

    private readonly struct FetchTarget
    {
        public required string? TopicName { get; init; }
        public required Uuid TopicId { get; init; }
        public required int Partition { get; init; }
        public required long FetchOffset { get; init; }
        public required int MaxBytes { get; init; }
        public CachedPartition? Cached { get; init; }
        /// <summary>The principal may not READ the topic.</summary>
        public bool Denied { get; init; }
        /// <summary>A follower fetch's refusal of this partition (fenced epoch, not a replica), found before reading.</summary>
        public ErrorCode Error { get; init; }
    }

    private void MarkDenied(RequestContext context, List<FetchTarget> targets)
    {
        for (int i = 0; i < targets.Count; i++)
        {
            var t = targets[i];
            string? name = t.TopicName ?? catalog.Find(t.TopicId)?.Name;
            if (name is not null && !_authorizer.Topic(context, AclOperation.Read, name)) targets[i] = t with { Denied = true };
        }
    }

    /// <summary>
    /// A follower's fetch: each partition's fetch offset is the follower's log end offset (Kafka's
    /// updateFollowerFetchState), recorded before reading so the high watermark the response carries includes it.
    /// </summary>
    private void RecordFollowerFetch(FetchRequest request, short version, int replicaId, List<FetchTarget> targets)
    {
        int i = 0;
        foreach (var t in request.Topics)
            foreach (var p in t.Partitions)
            {
                if (i >= targets.Count) return;
                var target = targets[i];
                if (catalog.Lookup(target.TopicName, target.TopicId).TryGetPartition(target.Partition, out var log, out _))
                {
                    var error = leadership.FollowerFetched(log, replicaId, version >= 9 ? p.CurrentLeaderEpoch : -1, p.FetchOffset);
                    if (error != ErrorCode.None) targets[i] = target with { Error = error };
                }
                i++;
            }
    }

    private struct PartitionResult
    {
        public ErrorCode Error;
        public long HighWatermark;
        public long LastStableOffset;
        public long LogStartOffset;
        public long LogEndOffset;
        public FetchSlice? Slice;
        public ReadOnlyMemory<byte> Records;
        public PartitionLog? Log;
        public List<Kayak.Storage.AbortedTransaction>? Aborted;
    }

    private (List<FetchTarget> Targets, FetchSession? Session, bool Incremental, ErrorCode Error) ResolveTargets(FetchRequest request, short version)
    {
        var targets = new List<FetchTarget>();
        int sessionId = version >= 7 ? request.SessionId : 0;
        int epoch = version >= 7 ? request.SessionEpoch : -1;
        var cache = sessions;

        if (sessionId == 0 || epoch <= 0)
        {
            // Full fetch. Epoch -1 closes any session; epoch 0 (re)creates one.
            if (sessionId != 0) cache.Remove(sessionId);
            FetchSession? created = epoch == 0 ? cache.Create(time.GetTimestamp()) : null;
            foreach (var t in request.Topics)
                foreach (var p in t.Partitions)
                {
                    string? name = version >= 13 ? null : t.Topic;
                    var id = version >= 13 ? t.TopicId : Uuid.Zero;
                    CachedPartition? cached = null;
                    if (created is not null)
                    {
                        cached = new CachedPartition { TopicName = name, TopicId = id, Partition = p.Partition, FetchOffset = p.FetchOffset, MaxBytes = p.PartitionMaxBytes, LogStartOffset = p.LogStartOffset };
                        created.Partitions.Add(cached);
                    }
                    targets.Add(new FetchTarget { TopicName = name, TopicId = id, Partition = p.Partition, FetchOffset = p.FetchOffset, MaxBytes = p.PartitionMaxBytes, Cached = cached });
                }
            return (targets, created, false, ErrorCode.None);
        }

        var session = cache.Get(sessionId);
        if (session is null) return (targets, null, false, ErrorCode.FetchSessionIdNotFound);
        lock (session)
        {
            if (session.NextEpoch != epoch) return (targets, null, false, ErrorCode.InvalidFetchSessionEpoch);
            session.NextEpoch = epoch == int.MaxValue ? 1 : epoch + 1;
            session.LastUsedTicks = time.GetTimestamp();
            foreach (var t in request.Topics)
                foreach (var p in t.Partitions)
                {
                    string? name = version >= 13 ? null : t.Topic;
                    var id = version >= 13 ? t.TopicId : Uuid.Zero;
                    var cached = session.Find(name, id, p.Partition);
                    if (cached is null)
                    {
                        cached = new CachedPartition { TopicName = name, TopicId = id, Partition = p.Partition };
                        session.Partitions.Add(cached);
                    }
                    cached.FetchOffset = p.FetchOffset;
                    cached.MaxBytes = p.PartitionMaxBytes;
                    cached.LogStartOffset = p.LogStartOffset;
                }
            foreach (var f in request.ForgottenTopicsData)
                foreach (int partition in f.Partitions)
                {
                    var cached = session.Find(version >= 13 ? null : f.Topic, version >= 13 ? f.TopicId : Uuid.Zero, partition);
                    if (cached is not null) session.Partitions.Remove(cached);
                }
            foreach (var c in session.Partitions)
                targets.Add(new FetchTarget { TopicName = c.TopicName, TopicId = c.TopicId, Partition = c.Partition, FetchOffset = c.FetchOffset, MaxBytes = c.MaxBytes, Cached = c });
        }
        return (targets, session, true, ErrorCode.None);
    }

    /// <summary>
    /// Reads every target within the byte limits; returns the bytes gathered. <paramref name="readable"/> counts the
    /// partitions that exist; <paramref name="readError"/> is set by errors of reading one (offset out of range),
    /// not by unknown topics or partitions.
    /// </summary>
    private long ReadAll(FetchRequest request, short version, bool readCommitted, bool follower, List<FetchTarget> targets, PartitionResult[] results, out bool readError, out int readable)
    {
        readError = false;
        readable = 0;
        long responseBudget = version >= 3 ? Math.Max(0, request.MaxBytes) : long.MaxValue;
        long total = 0;
        for (int i = 0; i < targets.Count; i++)
        {
            var t = targets[i];
            ref var r = ref results[i];
            r = default;
            if (t.Denied)
            {
                r.Error = ErrorCode.TopicAuthorizationFailed;
                r.HighWatermark = r.LastStableOffset = r.LogStartOffset = -1;
                continue;
            }
            if (!catalog.Lookup(t.TopicName, t.TopicId).TryGetPartition(t.Partition, out var log, out var missing))
            {
                r.Error = missing.Code;
                r.HighWatermark = r.LastStableOffset = r.LogStartOffset = -1;
                continue;
            }
            if (t.Error != ErrorCode.None || !leadership.IsLocalLeader(log.TopicName, t.Partition))
            {
                if (t.Error != ErrorCode.None)
                {
                    r.Error = t.Error;
                    r.HighWatermark = r.LastStableOffset = r.LogStartOffset = -1;
                    continue;
                }
                // Issue 14: only the leader serves consumers (no fetch from followers, KIP-392, yet).
                r.Error = ErrorCode.NotLeaderOrFollower;
                r.HighWatermark = r.LastStableOffset = r.LogStartOffset = -1;
                continue;
            }
            readable++;
            r.Log = log;
            r.HighWatermark = log.HighWatermark;
            r.LastStableOffset = log.LastStableOffset;
            r.LogStartOffset = log.LogStartOffset;
            r.LogEndOffset = log.LogEndOffset;
            // A follower reads past the high watermark, up to the log end offset (Kafka's FetchLogEnd isolation). Out of
            // range is past the log end, as in Kafka's LocalLog.read: a consumer between the high watermark and the log
            // end (a leader whose high watermark is catching up after a failover) gets no data, not a reset.
            long readableEnd = follower ? r.LogEndOffset : r.HighWatermark;
            if (t.FetchOffset < r.LogStartOffset || t.FetchOffset > r.LogEndOffset)
            {
                r.Error = ErrorCode.OffsetOutOfRange;
                readError = true;
                continue;
            }
            // read_committed: nothing at or past the last stable offset is visible yet.
            long visibleEnd = readCommitted ? r.LastStableOffset : readableEnd;
            if (t.FetchOffset >= visibleEnd) continue;
            // Nothing more fits: later partitions get no data, but still report their offsets.
            long budget = Math.Min(t.MaxBytes, responseBudget - total);
            if (budget <= 0 && total > 0) continue;
            FetchSlice slice;
            try
            {
                // Consumers of a replicated partition stop at the high watermark; a single broker's is the log end.
                long maxOffset = readCommitted || (!follower && log.IsReplicated) ? visibleEnd : long.MaxValue;
                slice = log.Read(t.FetchOffset, (int)Math.Clamp(budget, 1, int.MaxValue), maxOffset);
            }
            catch (StorageErrorException e)
            {
                // A corrupt batch in an old segment (or an I/O error) answers this partition with Kafka's error and
                // leaves the other partitions of the request served; it used to close the connection, starving
                // every healthy partition fetched on it (issue 15, K9).
                r.Error = e.Code;
                readError = true;
                if (e.Code != ErrorCode.OffsetOutOfRange)
                    ReadFailed(log, t.FetchOffset, e);
                continue;
            }
            // KIP-74: the first batch is returned whole even past the limits only if nothing was gathered yet.
            if (total > 0 && slice.Data.Length > budget)
            {
                slice.Dispose();
                continue;
            }
            r.Slice = slice;
            r.Records = slice.Data;
            total += slice.Data.Length;
            if (readCommitted && !slice.IsEmpty && log.ProducerState.AbortedTransactions.Count > 0)
            {
                var aborted = new List<Kayak.Storage.AbortedTransaction>();
                log.CollectAbortedTransactions(t.FetchOffset, NextOffsetAfter(slice.Data.Span), aborted);
                if (aborted.Count > 0) r.Aborted = aborted;
            }
        }
        return total;
    }

    /// <summary>Kafka logs a failed partition read at ERROR ("Error processing fetch with max size ...") and answers the partition.</summary>
    private void ReadFailed(PartitionLog partition, long fetchOffset, StorageErrorException e) =>
        logger.LogError("Error processing fetch of partition {Partition} at offset {Offset}: {Message}", $"{partition.TopicName}-{partition.Partition}", fetchOffset, e.Message);

    /// <summary>The offset after the last batch of a fetched slice (upper bound for the aborted-transaction lookup).</summary>

    private static long NextOffsetAfter(ReadOnlySpan<byte> batches)
    {
        long next = 0;
        foreach (var batch in new BatchEnumerator(batches))
            next = System.Buffers.Binary.BinaryPrimitives.ReadInt64BigEndian(batch)
                + System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(batch[RecordBatchHeader.LastOffsetDeltaOffset..]) + 1;
        return next;
    }

    private static void ReleaseAll(PartitionResult[] results)
    {
        for (int i = 0; i < results.Length; i++)
        {
            results[i].Slice?.Dispose();
            results[i].Slice = null;
        }
    }

    /// <summary>Waits until any fetched partition gets an append, the wait times out, or the client leaves.</summary>
    private async Task<bool> WaitForDataAsync(List<FetchTarget> targets, PartitionResult[] results, bool follower, long remainingMs, CancellationToken connectionClosed)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(remainingMs), time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cts.Token, connectionClosed);
        var waits = new List<Task>(targets.Count);
        for (int i = 0; i < results.Length; i++)
            if (results[i].Log is { } partition)
                waits.Add(follower || !partition.IsReplicated
                    ? partition.WaitForAppendAsync(results[i].LogEndOffset, linked.Token)
                    : partition.WaitForHighWatermarkAsync(results[i].HighWatermark, linked.Token));
        if (waits.Count == 0)
        {
            try { await Task.Delay(Timeout.Infinite, linked.Token).ConfigureAwait(false); } catch (OperationCanceledException) { }
            return false;
        }
        var first = await Task.WhenAny(waits).ConfigureAwait(false);
        bool woke = first.IsCompletedSuccessfully;
        linked.Cancel();
        try { await Task.WhenAll(waits).ConfigureAwait(false); } catch (OperationCanceledException) { }
        return woke;
    }

    /// <summary>
    /// The response; every slice read is handed to <paramref name="segments"/> when the response carries its memory
    /// as read (to be sent by reference and released after sending), and released at once otherwise.
    /// </summary>
    private static FetchResponse BuildResponse(short version, List<FetchTarget> targets, PartitionResult[] results, FetchSession? session, bool incremental, bool readCommitted, ResponseSegments segments)
    {
        var response = new FetchResponse { SessionId = session?.Id ?? 0 };
        FetchResponse.FetchableTopicResponse? current = null;
        for (int i = 0; i < targets.Count; i++)
        {
            var t = targets[i];
            ref var r = ref results[i];
            var slice = r.Slice;
            r.Slice = null;
            var cached = t.Cached;
            if (cached is not null)
            {
                bool changed = r.Error != ErrorCode.None || r.Records.Length > 0
                    || cached.SentHighWatermark != r.HighWatermark || cached.SentLogStartOffset != r.LogStartOffset
                    || cached.SentLastStableOffset != r.LastStableOffset;
                cached.SentHighWatermark = r.HighWatermark;
                cached.SentLogStartOffset = r.LogStartOffset;
                cached.SentLastStableOffset = r.LastStableOffset;
                if (incremental && !changed) { slice?.Dispose(); continue; }
            }
            if (current is null || current.Topic != (t.TopicName ?? "") || current.TopicId != t.TopicId)
            {
                current = new FetchResponse.FetchableTopicResponse { Topic = t.TopicName ?? "", TopicId = t.TopicId };
                response.Responses.Add(current);
            }
            var records = r.Records;
            var error = r.Error;
            if (version < 4 && records.Length > 0) records = DownConvert(records, version < 2 ? (byte)0 : (byte)1, ref error);
            if (slice is not null)
            {
                if (records.Equals(slice.Data)) segments.Add(records, slice);
                else slice.Dispose(); // down-converted: the response holds a copy, not the mapping
            }
            current.Partitions.Add(new FetchResponse.PartitionData
            {
                PartitionIndex = t.Partition,
                HighWatermark = r.HighWatermark,
                LastStableOffset = r.LastStableOffset,
                LogStartOffset = r.LogStartOffset,
                Records = records,
                AbortedTransactions = AbortedList(version, readCommitted, r.Aborted),
            }.SetError(error));
        }
        return response;
    }

    /// <summary>Kafka answers read_uncommitted with a null list and read_committed with the (possibly empty) list.</summary>
    private static List<FetchResponse.AbortedTransaction>? AbortedList(short version, bool readCommitted, List<Kayak.Storage.AbortedTransaction>? aborted)
    {
        if (version < 4 || !readCommitted) return null;
        var list = new List<FetchResponse.AbortedTransaction>(aborted?.Count ?? 0);
        if (aborted is not null)
            foreach (var a in aborted) list.Add(new FetchResponse.AbortedTransaction { ProducerId = a.ProducerId, FirstOffset = a.FirstOffset });
        return list;
    }

    /// <summary>Old consumers (Fetch v0-3) only read magic 0/1 message sets.</summary>
    private static ReadOnlyMemory<byte> DownConvert(ReadOnlyMemory<byte> v2, byte magic, ref ErrorCode error)
    {
        var buffer = new ArrayBufferWriter<byte>(v2.Length + 256);
        try
        {
            DownConverter.ToMagic(v2.Span, magic, buffer);
        }
        catch (ProtocolException)
        {
            // Kafka: consumers older than Fetch v10 cannot read zstd (KIP-110).
            error = ErrorCode.UnsupportedCompressionType;
            return ReadOnlyMemory<byte>.Empty;
        }
        return buffer.WrittenMemory;
    }
}
