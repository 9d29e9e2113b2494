using System.Net.Sockets;
using Kayak.Broker.Services;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Cluster;

/// <summary>
/// Requests from one broker to another (issue 14): the transaction coordinator's WriteTxnMarkers to partition leaders
/// (Kafka's TransactionMarkerChannelManager) and a leader's AddPartitionsToTxn VerifyOnly to the coordinator (Kafka's
/// AddPartitionsToTxnManager, KIP-890). One connection per target broker, to its inter-broker listener over loopback as
/// the replica fetcher connects (<see cref="InterBrokerSecurity"/>); one request in flight per
/// connection. A failure (connect, I/O, timeout) closes the connection and throws <see cref="IOException"/>; the next
/// request connects again.
/// </summary>
internal sealed class InterBrokerClient(ClusterController controller, int nodeId, InterBrokerSecurity security, TimeProvider time) : IDisposable
{
    /// <summary>Kafka's request.timeout.ms default for inter-broker requests.</summary>
    public const int RequestTimeoutMs = 30_000;

    private sealed class Channel(string clientId, InterBrokerSecurity security)
    {
        public readonly SemaphoreSlim Gate = new(1, 1);
        public readonly BrokerChannel Connection = new(clientId, security);

        public void Close() => Connection.Close();
    }

    private readonly System.Collections.Concurrent.ConcurrentDictionary<int, Channel> _channels = new();
    private volatile bool _disposed;

    /// <summary>Sends <paramref name="request"/> to broker <paramref name="target"/> and reads its answer; <see cref="IOException"/> on any failure.</summary>
    public async Task<TResponse> SendAsync<TResponse>(int target, IApiMessage request, ApiKey key, short version, CancellationToken ct = default)
        where TResponse : class, IApiMessage
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var node = controller.LiveBroker(target);
        if (node is null || node.Listeners.Count == 0) throw new IOException($"Broker {target} is not running");
        var channel = _channels.GetOrAdd(target, static (_, self) => new Channel($"broker-{self.nodeId}", self.security), (nodeId, security));
        using var timeout = new CancellationTokenSource(TimeSpan.FromMilliseconds(RequestTimeoutMs), time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, timeout.Token);
        await channel.Gate.WaitAsync(linked.Token).ConfigureAwait(false);
        try
        {
            await channel.Connection.EnsureConnectedAsync(node, linked.Token).ConfigureAwait(false);
            return await channel.Connection.ExchangeAsync<TResponse>(request, key, version, 64 << 20, linked.Token).ConfigureAwait(false);
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

    public void Dispose()
    {
        _disposed = true;
        foreach (var c in _channels.Values) c.Close();
    }
}
