using System.Buffers;
using System.Buffers.Binary;
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
/// leader's first listener (which must be PLAINTEXT: TLS/SASL between brokers is not implemented).
/// </summary>
internal sealed class ReplicaFetcherManager(ClusterController controller, int nodeId, int clusterSize, ITopicCatalog catalog,
    BrokerConfig config, TimeProvider time, ILogger logger) : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _fetchers = new();

    public void Start()
    {
        for (int leader = 1; leader <= clusterSize; leader++)
            if (leader != nodeId)
            {
                var fetcher = new ReplicaFetcher(controller, nodeId, leader, catalog, config, time, logger);
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
/// appended as they are (<see cref="PartitionLog.AppendAsFollower"/>) and its high watermark taken. Errors back off by
/// replica.fetch.backoff.ms on the broker's TimeProvider.
/// </summary>
internal sealed class ReplicaFetcher(ClusterController controller, int nodeId, int leaderId, ITopicCatalog catalog,
    BrokerConfig config, TimeProvider time, ILogger logger)
{
    private const short FetchVersion = 15;
    private TcpClient? _tcp;
    private NetworkStream? _stream;
    private int _correlationId;

    private readonly record struct Followed(string Topic, Uuid TopicId, int Partition, int LeaderEpoch, PartitionLog Log);

    public async Task RunAsync(CancellationToken ct)
    {
        var backoff = TimeSpan.FromMilliseconds(config.ReplicaFetchBackoffMs);
        try
        {
            while (!ct.IsCancellationRequested)
            {
                var followed = FollowedPartitions();
                BrokerNode? leader = null;
                foreach (var b in controller.LiveBrokers)
                    if (b.NodeId == leaderId) leader = b;
                if (followed.Count == 0 || leader is null)
                {
                    Close();
                    await Task.Delay(backoff, time, ct).ConfigureAwait(false);
                    continue;
                }
                bool failed;
                try
                {
                    failed = await FetchOnceAsync(leader, followed, ct).ConfigureAwait(false);
                }
                catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or ProtocolException or InvalidOperationException)
                {
                    logger.LogInformation("Replica fetcher {Node} from leader {Leader}: {Message}; retrying after {Backoff} ms", nodeId, leaderId, e.Message, config.ReplicaFetchBackoffMs);
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
        var response = await SendAsync(leader, request, ct).ConfigureAwait(false);
        if (response.ErrorCode != 0) return true;
        bool failed = false;
        foreach (var t in response.Responses)
            foreach (var p in t.Partitions)
            {
                Followed? match = null;
                foreach (var f in followed)
                    if (f.TopicId == t.TopicId && f.Partition == p.PartitionIndex) match = f;
                if (match is not { } m) continue;
                if (p.ErrorCode != 0)
                {
                    // NOT_LEADER_OR_FOLLOWER / FENCED / UNKNOWN_LEADER_EPOCH: the controller's metadata moves on and the
                    // next round follows it. OFFSET_OUT_OF_RANGE: this log diverged from the leader's (it led before a
                    // failover and kept records the ISR never had); truncation by OffsetForLeaderEpoch (KIP-101) is
                    // not implemented, so the replica stays out of the ISR.
                    logger.LogDebug("Replica fetch of {Topic}-{Partition} from {Leader}: {Error}", m.Topic, m.Partition, leaderId, (ErrorCode)p.ErrorCode);
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
                    failed = true;
                }
            }
        return failed;
    }

    private async Task<FetchResponse> SendAsync(BrokerNode leader, FetchRequest request, CancellationToken ct)
    {
        if (_stream is null)
        {
            var endpoint = leader.Listeners[0];
            _tcp = new TcpClient { NoDelay = true };
            await _tcp.ConnectAsync(endpoint.Host, endpoint.Port, ct).ConfigureAwait(false);
            _stream = _tcp.GetStream();
        }
        int correlationId = ++_correlationId;
        var buffer = new ArrayBufferWriter<byte>();
        Encode(buffer, request, correlationId);
        var frame = buffer.WrittenMemory.ToArray();
        BinaryPrimitives.WriteInt32BigEndian(frame, frame.Length - 4);
        // The leader answers within replica.fetch.wait.max.ms; a silent leader is given up on after 30 s more
        // (Kafka's replica.socket.timeout.ms default).
        using var timeout = new CancellationTokenSource(TimeSpan.FromMilliseconds(config.ReplicaFetchWaitMaxMs + 30_000L), time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, timeout.Token);
        try
        {
            await _stream.WriteAsync(frame, linked.Token).ConfigureAwait(false);
            var size = new byte[4];
            await _stream.ReadExactlyAsync(size, linked.Token).ConfigureAwait(false);
            int length = BinaryPrimitives.ReadInt32BigEndian(size);
            if (length < 4 || length > config.ReplicaFetchResponseMaxBytes + (64 << 20)) throw new ProtocolException($"Fetch response frame of {length} bytes");
            var body = new byte[length];
            await _stream.ReadExactlyAsync(body, linked.Token).ConfigureAwait(false);
            return Decode(body, correlationId);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new IOException($"No Fetch response from leader {leaderId} within {config.ReplicaFetchWaitMaxMs + 30_000} ms");
        }
    }

    private void Encode(IBufferWriter<byte> buffer, FetchRequest request, int correlationId)
    {
        var writer = new KafkaWriter(buffer);
        writer.WriteInt32(0); // size, patched by the caller
        var header = new RequestHeader
        {
            RequestApiKey = (short)ApiKey.Fetch,
            RequestApiVersion = FetchVersion,
            CorrelationId = correlationId,
            ClientId = $"replica-fetcher-{nodeId}-from-{leaderId}",
        };
        header.Write(ref writer, ApiMessageTypes.RequestHeaderVersion(ApiKey.Fetch, FetchVersion));
        request.Write(ref writer, FetchVersion);
        writer.Flush();
    }

    private static FetchResponse Decode(byte[] body, int correlationId)
    {
        var reader = new KafkaReader(body);
        var header = new ResponseHeader();
        header.Read(ref reader, ApiMessageTypes.ResponseHeaderVersion(ApiKey.Fetch, FetchVersion));
        if (header.CorrelationId != correlationId) throw new ProtocolException($"Correlation id {header.CorrelationId}, expected {correlationId}");
        var response = new FetchResponse();
        response.Read(ref reader, FetchVersion);
        return response;
    }

    private void Close()
    {
        _stream?.Dispose();
        _tcp?.Dispose();
        _stream = null;
        _tcp = null;
    }
}
