using System.Buffers;
using System.Buffers.Binary;
using System.Net.Sockets;
using Kayak.Broker.Services;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Cluster;

/// <summary>
/// Requests from one broker to another (issue 14): the transaction coordinator's WriteTxnMarkers to partition leaders
/// (Kafka's TransactionMarkerChannelManager) and a leader's AddPartitionsToTxn VerifyOnly to the coordinator (Kafka's
/// AddPartitionsToTxnManager, KIP-890). One connection per target broker, to its first listener over loopback, as the
/// replica fetcher connects (PLAINTEXT only: TLS/SASL between brokers is not implemented); one request in flight per
/// connection. A failure (connect, I/O, timeout) closes the connection and throws <see cref="IOException"/>; the next
/// request connects again.
/// </summary>
internal sealed class InterBrokerClient(ClusterController controller, int nodeId, TimeProvider time) : IDisposable
{
    /// <summary>Kafka's request.timeout.ms default for inter-broker requests.</summary>
    public const int RequestTimeoutMs = 30_000;

    private sealed class Channel
    {
        public readonly SemaphoreSlim Gate = new(1, 1);
        public TcpClient? Tcp;
        public NetworkStream? Stream;
        public int CorrelationId;

        public void Close()
        {
            Stream?.Dispose();
            Tcp?.Dispose();
            Stream = null;
            Tcp = null;
        }
    }

    private readonly System.Collections.Concurrent.ConcurrentDictionary<int, Channel> _channels = new();
    private volatile bool _disposed;

    /// <summary>Sends <paramref name="request"/> to broker <paramref name="target"/> and reads its answer; <see cref="IOException"/> on any failure.</summary>
    public async Task<TResponse> SendAsync<TResponse>(int target, IApiMessage request, ApiKey key, short version, CancellationToken ct = default)
        where TResponse : class, IApiMessage
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        BrokerNode? node = null;
        foreach (var b in controller.LiveBrokers)
            if (b.NodeId == target) node = b;
        if (node is null || node.Listeners.Count == 0) throw new IOException($"Broker {target} is not running");
        var channel = _channels.GetOrAdd(target, static _ => new Channel());
        using var timeout = new CancellationTokenSource(TimeSpan.FromMilliseconds(RequestTimeoutMs), time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, timeout.Token);
        await channel.Gate.WaitAsync(linked.Token).ConfigureAwait(false);
        try
        {
            if (channel.Stream is null)
            {
                var endpoint = node.Listeners[0];
                channel.Tcp = new TcpClient { NoDelay = true };
                await channel.Tcp.ConnectAsync(endpoint.Host, endpoint.Port, linked.Token).ConfigureAwait(false);
                channel.Stream = channel.Tcp.GetStream();
            }
            int correlationId = ++channel.CorrelationId;
            var frame = Encode(request, key, version, correlationId);
            await channel.Stream.WriteAsync(frame, linked.Token).ConfigureAwait(false);
            var size = new byte[4];
            await channel.Stream.ReadExactlyAsync(size, linked.Token).ConfigureAwait(false);
            int length = BinaryPrimitives.ReadInt32BigEndian(size);
            if (length < 4 || length > 64 << 20) throw new ProtocolException($"{key} response frame of {length} bytes");
            var body = new byte[length];
            await channel.Stream.ReadExactlyAsync(body, linked.Token).ConfigureAwait(false);
            return Decode<TResponse>(body, key, version, correlationId);
        }
        catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException or ProtocolException
                                      || (e is OperationCanceledException && !ct.IsCancellationRequested))
        {
            channel.Close();
            throw new IOException($"{key} to broker {target} failed: {e.Message}", e);
        }
        catch
        {
            channel.Close();
            throw;
        }
        finally { channel.Gate.Release(); }
    }

    private byte[] Encode(IApiMessage request, ApiKey key, short version, int correlationId)
    {
        var buffer = new ArrayBufferWriter<byte>();
        var writer = new KafkaWriter(buffer);
        writer.WriteInt32(0); // size, patched below
        var header = new RequestHeader
        {
            RequestApiKey = (short)key,
            RequestApiVersion = version,
            CorrelationId = correlationId,
            ClientId = $"broker-{nodeId}",
        };
        header.Write(ref writer, ApiMessageTypes.RequestHeaderVersion(key, version));
        request.Write(ref writer, version);
        writer.Flush();
        var frame = buffer.WrittenMemory.ToArray();
        BinaryPrimitives.WriteInt32BigEndian(frame, frame.Length - 4);
        return frame;
    }

    private static TResponse Decode<TResponse>(byte[] body, ApiKey key, short version, int correlationId) where TResponse : class, IApiMessage
    {
        var reader = new KafkaReader(body);
        var header = new ResponseHeader();
        header.Read(ref reader, ApiMessageTypes.ResponseHeaderVersion(key, version));
        if (header.CorrelationId != correlationId) throw new ProtocolException($"Correlation id {header.CorrelationId}, expected {correlationId}");
        var response = (TResponse)ApiMessageTypes.CreateResponse(key);
        response.Read(ref reader, version);
        return response;
    }

    public void Dispose()
    {
        _disposed = true;
        foreach (var c in _channels.Values) c.Close();
    }
}
