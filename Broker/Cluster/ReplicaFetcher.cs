using System.Net.Sockets;
using Kayak.Broker.Config;
using Kayak.Broker.Services;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using Kayak.Storage;
using Microsoft.Extensions.Logging;

namespace Kayak.Broker.Cluster;

/// <summary>
/// A follower's replica fetchers (issue 14), as Kafka's ReplicaFetcherManager: one fetcher per leader broker, each
/// fetching every partition this broker follows under that leader with the Fetch protocol itself, over loopback to the
/// leader's inter-broker listener (<see cref="InterBrokerSecurity"/>).
/// </summary>
internal sealed class ReplicaFetcherManager(ClusterController controller, int nodeId, int clusterSize, ITopicCatalog catalog,
    BrokerConfig config, InterBrokerSecurity security, TimeProvider time, ILogger logger) : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _fetchers = new();

    public void Start()
    {
        for (int leader = 1; leader <= clusterSize; leader++)
            if (leader != nodeId)
            {
                var fetcher = new ReplicaFetcher(controller, nodeId, leader, catalog, config, security, time, logger);
                _fetchers.Add(Task.Run(() => fetcher.RunAsync(_stop.Token)));
            }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        foreach (var f in _fetchers)
        {
            try { await f.ConfigureAwait(false); }
            catch (OperationCanceledException) { }
        }
        _stop.Dispose();
    }
}

/// <summary>
/// Kafka's ReplicaFetcherThread / AbstractFetcherThread for one leader: a full (sessionless) Fetch with ReplicaState
/// (v15) = this broker's id, each partition at its log end offset with the leader epoch this follower knows
/// (CurrentLeaderEpoch), long-polled by replica.fetch.wait.max.ms / replica.fetch.min.bytes and bounded by
/// replica.fetch.max.bytes per partition and replica.fetch.response.max.bytes in all; the leader's batches are
/// appended as they are (<see cref="PartitionLog.AppendAsFollower"/>) and its high watermark taken. Under a leader
/// epoch it has not reconciled with yet (and after a restart) it first truncates by OffsetForLeaderEpoch (KIP-101/279).
/// Errors back off by replica.fetch.backoff.ms on the broker's TimeProvider.
/// </summary>
internal sealed class ReplicaFetcher(ClusterController controller, int nodeId, int leaderId, ITopicCatalog catalog,
    BrokerConfig config, InterBrokerSecurity security, TimeProvider time, ILogger logger)
{
    private const short FetchVersion = 15;
    private readonly BrokerChannel _channel = new($"replica-fetcher-{nodeId}-from-{leaderId}", security);

    private readonly record struct Followed(string Topic, Uuid TopicId, int Partition, int LeaderEpoch, PartitionLog Log);

    // The leader epoch each partition was last reconciled with the leader under (KIP-101): a new epoch, a fetcher's
    // first round (after a restart) or a diverging fetch asks OffsetForLeaderEpoch and truncates before fetching.
    private readonly Dictionary<(Uuid, int), int> _reconciled = new();

    public async Task RunAsync(CancellationToken ct)
    {
        var backoff = TimeSpan.FromMilliseconds(config.ReplicaFetchBackoffMs);
        try
        {
            while (!ct.IsCancellationRequested)
            {
                var followed = FollowedPartitions();
                var leader = controller.LiveBroker(leaderId);
                if (followed.Count == 0 || leader is null)
                {
                    Close();
                    await Task.Delay(backoff, time, ct).ConfigureAwait(false);
                    continue;
                }
                bool failed;
                try
                {
                    await ReconcileAsync(leader, followed, ct).ConfigureAwait(false);
                    failed = await FetchOnceAsync(leader, followed, ct).ConfigureAwait(false);
                }
                catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or ProtocolException or InvalidOperationException)
                {
                    logger.LogInformation("Replica fetcher {Node} from leader {Leader}: {Message}; retrying after {Backoff} ms", nodeId, leaderId, e.Message, config.ReplicaFetchBackoffMs);
                    Close();
                    failed = true;
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // A storage failure (full disk, a partition deleted meanwhile) must not end replication for good.
                    logger.LogError(e, "Replica fetcher {Node} from leader {Leader} failed; retrying after {Backoff} ms", nodeId, leaderId, config.ReplicaFetchBackoffMs);
                    Close();
                    failed = true;
                }
                if (failed) await Task.Delay(backoff, time, ct).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
        finally { Close(); }
    }

    /// <summary>The partitions this broker holds as a follower of <c>leaderId</c>, per the controller's metadata.</summary>
    private List<Followed> FollowedPartitions()
    {
        var list = new List<Followed>();
        foreach (var t in controller.Metadata.Topics.Values)
            for (int i = 0; i < t.Partitions.Length; i++)
            {
                var p = t.Partitions[i];
                if (p.Leader != leaderId || Array.IndexOf(p.Replicas, nodeId) < 0) continue;
                if (catalog.Lookup(t.Name).TryGetPartition(i, out var log, out _))
                    list.Add(new Followed(t.Name, t.TopicId, i, p.LeaderEpoch, log));
            }
        return list;
    }

    /// <returns>True when a partition failed and the fetcher should back off.</returns>
    private async Task<bool> FetchOnceAsync(BrokerNode leader, List<Followed> followed, CancellationToken ct)
    {
        var request = new FetchRequest
        {
            ReplicaState = new FetchRequest.ReplicaStateData { ReplicaId = nodeId, ReplicaEpoch = -1 },
            MaxWaitMs = config.ReplicaFetchWaitMaxMs,
            MinBytes = config.ReplicaFetchMinBytes,
            MaxBytes = config.ReplicaFetchResponseMaxBytes,
            IsolationLevel = 0,
            SessionId = 0,
            SessionEpoch = -1, // sessionless full fetch
        };
        var byTopic = new Dictionary<Uuid, FetchRequest.FetchTopic>();
        foreach (var f in followed)
        {
            if (!byTopic.TryGetValue(f.TopicId, out var topic))
            {
                topic = new FetchRequest.FetchTopic { TopicId = f.TopicId };
                byTopic[f.TopicId] = topic;
                request.Topics.Add(topic);
            }
            topic.Partitions.Add(new FetchRequest.FetchPartition
            {
                Partition = f.Partition,
                CurrentLeaderEpoch = f.LeaderEpoch,
                FetchOffset = f.Log.LogEndOffset,
                LastFetchedEpoch = -1,
                LogStartOffset = f.Log.LogStartOffset,
                PartitionMaxBytes = config.ReplicaFetchMaxBytes,
            });
        }
        var response = await SendAsync<FetchResponse>(leader, request, ApiKey.Fetch, FetchVersion, ct).ConfigureAwait(false);
        if (response.Error() != ErrorCode.None) return true;
        bool failed = false;
        foreach (var t in response.Responses)
            foreach (var p in t.Partitions)
            {
                Followed? match = null;
                foreach (var f in followed)
                    if (f.TopicId == t.TopicId && f.Partition == p.PartitionIndex) match = f;
                if (match is not { } m) continue;
                if (p.Error() != ErrorCode.None)
                {
                    // NOT_LEADER_OR_FOLLOWER / FENCED / UNKNOWN_LEADER_EPOCH: the controller's metadata moves on and the
                    // next round follows it. OFFSET_OUT_OF_RANGE: this log diverged from the leader's; reconcile again.
                    if (p.Error() == ErrorCode.OffsetOutOfRange) _reconciled.Remove((m.TopicId, m.Partition));
                    logger.LogDebug("Replica fetch of {Topic}-{Partition} from {Leader}: {Error}", m.Topic, m.Partition, leaderId, p.Error());
                    failed = true;
                    continue;
                }
                try
                {
                    if (p.Records is { Length: > 0 } records) m.Log.AppendAsFollower(records.Span);
                    m.Log.UpdateHighWatermark(p.HighWatermark, allowDecrease: true);
                }
                catch (StorageErrorException e)
                {
                    logger.LogWarning("Replica fetch of {Topic}-{Partition} from {Leader} could not be appended: {Message}", m.Topic, m.Partition, leaderId, e.Message);
                    _reconciled.Remove((m.TopicId, m.Partition));
                    failed = true;
                }
            }
        return failed;
    }

    /// <summary>
    /// KIP-101 / KIP-279: before fetching under a leader epoch it has not reconciled with, the follower asks the leader
    /// where the latest epoch of its own log ends (OffsetForLeaderEpoch v4, ReplicaId = this broker) and truncates to that
    /// end, or to where that epoch ends in its own log when the leader answers an older epoch; records the ISR never had
    /// (a former leader's unacknowledged tail) go, and fetching continues from a common prefix.
    /// </summary>
    private async Task ReconcileAsync(BrokerNode leader, List<Followed> followed, CancellationToken ct)
    {
        OffsetForLeaderEpochRequest? request = null;
        var asked = new List<(Followed F, int Epoch)>();
        foreach (var f in followed)
        {
            if (_reconciled.TryGetValue((f.TopicId, f.Partition), out int e) && e == f.LeaderEpoch) continue;
            if (f.Log.LogEndOffset == f.Log.LogStartOffset)
            {
                _reconciled[(f.TopicId, f.Partition)] = f.LeaderEpoch;
                continue;
            }
            int latest = f.Log.LatestLeaderEpoch();
            request ??= new OffsetForLeaderEpochRequest { ReplicaId = nodeId };
            var topic = request.Topics.Find(t => t.Topic == f.Topic);
            if (topic is null)
            {
                topic = new OffsetForLeaderEpochRequest.OffsetForLeaderTopic { Topic = f.Topic };
                request.Topics.Add(topic);
            }
            topic.Partitions.Add(new OffsetForLeaderEpochRequest.OffsetForLeaderPartition { Partition = f.Partition, CurrentLeaderEpoch = f.LeaderEpoch, LeaderEpoch = latest });
            asked.Add((f, latest));
        }
        if (request is null) return;
        var response = await SendAsync<OffsetForLeaderEpochResponse>(leader, request, ApiKey.OffsetForLeaderEpoch, 4, ct).ConfigureAwait(false);
        foreach (var t in response.Topics)
            foreach (var p in t.Partitions)
            {
                var match = asked.Find(a => a.F.Topic == t.Topic && a.F.Partition == p.Partition);
                if (match.F.Log is not { } log || p.Error() != ErrorCode.None) continue;
                long target = p.EndOffset;
                if (target >= 0 && p.LeaderEpoch >= 0 && p.LeaderEpoch < match.Epoch)
                    target = Math.Min(target, log.EndOffsetForLeaderEpoch(p.LeaderEpoch, int.MinValue).EndOffset);
                if (target < 0) target = log.HighWatermark; // the leader has no epoch this old: keep only what was committed
                if (target < log.LogEndOffset)
                {
                    logger.LogInformation("Truncating {Topic}-{Partition} on broker {Node} from {End} to {Offset}: leader {Leader} answered epoch {Epoch} ends at {LeaderEnd}",
                        match.F.Topic, match.F.Partition, nodeId, log.LogEndOffset, target, leaderId, p.LeaderEpoch, p.EndOffset);
                    log.TruncateTo(target);
                }
                _reconciled[(match.F.TopicId, match.F.Partition)] = match.F.LeaderEpoch;
            }
    }

    private async Task<TResponse> SendAsync<TResponse>(BrokerNode leader, IApiMessage request, ApiKey key, short version, CancellationToken ct)
        where TResponse : class, IApiMessage
    {
        await _channel.EnsureConnectedAsync(leader, ct).ConfigureAwait(false);
        // The leader answers within replica.fetch.wait.max.ms; a silent leader is given up on after 30 s more
        // (Kafka's replica.socket.timeout.ms default).
        using var timeout = new CancellationTokenSource(TimeSpan.FromMilliseconds(config.ReplicaFetchWaitMaxMs + 30_000L), time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, timeout.Token);
        try
        {
            return await _channel.ExchangeAsync<TResponse>(request, key, version, config.ReplicaFetchResponseMaxBytes + (64L << 20), linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new IOException($"No Fetch response from leader {leaderId} within {config.ReplicaFetchWaitMaxMs + 30_000} ms");
        }
    }

    private void Close() => _channel.Close();
}
