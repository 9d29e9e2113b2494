using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Kayak.Broker.Config;
using Kayak.Broker.Network.Tls;
using Microsoft.Extensions.Logging;

namespace Kayak.Broker.Network;

/// <summary>
/// Accepts TCP connections on one listener and runs a <see cref="Connection"/> for each: straight over the socket
/// (zero-copy sends) on PLAINTEXT, over an SslStream after the TLS handshake on SSL (records copied once, to encrypt);
/// SASL_PLAINTEXT and SASL_SSL connections authenticate through a SaslAuthenticator first.
/// </summary>
internal sealed class Listener : IAsyncDisposable
{
    private readonly ListenerEndpoint _endpoint;
    private readonly BrokerState _broker;
    private readonly ILogger _log;
    private readonly SslFactory? _ssl;
    private readonly Sasl.SaslListenerConfig? _sasl;
    private readonly ConcurrentDictionary<Connection, Task> _connections = new();
    private readonly ConcurrentDictionary<Socket, Task> _handshakes = new();
    private readonly CancellationTokenSource _stopping = new();
    private Socket? _socket;
    private Task? _acceptLoop;

    /// <param name="ssl">The listener's TLS configuration; null for PLAINTEXT and SASL_PLAINTEXT.</param>
    /// <param name="sasl">The listener's SASL configuration; null for PLAINTEXT and SSL.</param>
    public Listener(ListenerEndpoint endpoint, BrokerState broker, ILogger log, SslFactory? ssl = null, Sasl.SaslListenerConfig? sasl = null)
    {
        _endpoint = endpoint;
        _broker = broker;
        _log = log;
        _ssl = ssl;
        _sasl = sasl;
    }

    private Sasl.SaslAuthenticator? NewAuthenticator() => _sasl is null ? null : new Sasl.SaslAuthenticator(_sasl, _broker.Time);

    /// <summary>The bound endpoint (port resolved when 0 was asked for).</summary>
    public ListenerEndpoint BoundEndpoint { get; private set; } = null!;

    public void Start()
    {
        IPAddress address = ResolveBindAddress(_endpoint.Host);
        var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        if (address.Equals(IPAddress.IPv6Any)) socket.DualMode = true;
        // No SocketOptionName.ReuseAddress: on Linux .NET maps it to SO_REUSEPORT as well, which let a second broker
        // listen on the same port and take half of the new connections (issue 15, K3). Without it .NET still sets
        // SO_REUSEADDR on Unix listeners, so a restart binds at once over TIME_WAIT connections, as Kafka does.
        try
        {
            socket.Bind(new IPEndPoint(address, _endpoint.Port));
        }
        catch (SocketException e)
        {
            socket.Dispose();
            // Kafka's words (SocketServer): "Socket server failed to bind to host:port: Address already in use."
            throw new InvalidOperationException($"Socket server failed to bind to {_endpoint.Host}:{_endpoint.Port}: {e.Message}.", e);
        }
        socket.Listen(1024);
        _socket = socket;
        int port = ((IPEndPoint)socket.LocalEndPoint!).Port;
        BoundEndpoint = _endpoint with { Port = port };
        _broker.ConnectionQuotas.AddListener(_endpoint.Name);
        _acceptLoop = AcceptLoopAsync(socket);
    }

    private static IPAddress ResolveBindAddress(string host)
    {
        if (host.Length == 0 || host == "0.0.0.0") return IPAddress.Any;
        // The usual embedded/test listener, without the first-use cost of the address parser (issue 6).
        if (host == "127.0.0.1") return IPAddress.Loopback;
        if (host == "::") return IPAddress.IPv6Any;
        if (IPAddress.TryParse(host, out var ip)) return ip;
        if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase)) return IPAddress.Loopback;
        var addresses = Dns.GetHostAddresses(host);
        return addresses.Length > 0 ? addresses[0] : throw new InvalidOperationException($"Cannot resolve listener host {host}");
    }

    private async Task AcceptLoopAsync(Socket socket)
    {
        while (true)
        {
            Socket client;
            try
            {
                client = await socket.AcceptAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
            {
                return;
            }
            var address = await AdmitAsync(client).ConfigureAwait(false);
            if (_stopping.IsCancellationRequested)
            {
                if (address is not null) _broker.ConnectionQuotas.Release(_endpoint.Name, address);
                client.Dispose();
                return;
            }
            if (address is null) continue;
            if (_ssl is not null)
            {
                // The handshake runs off the accept loop, so a stuck client delays nobody else; registered like a
                // connection (placeholder first) so DisposeAsync waits for it.
                _handshakes[client] = Task.CompletedTask;
                _handshakes.TryUpdate(client, HandshakeAsync(client, _ssl, address), Task.CompletedTask);
                continue;
            }
            Register(new Connection(new SocketTransport(client), _broker, _log, _endpoint.Name, sasl: NewAuthenticator()), address);
        }
    }

    /// <summary>
    /// Kafka's Acceptor.accept with ConnectionQuotas.inc: waits (blocking this listener's accepts, as Kafka's acceptor
    /// thread blocks) while the broker or listener rate or max.connections says so; then a connection over its IP's
    /// max.connections.per.ip is closed at once and one over its IP's connection_creation_rate is closed after the
    /// throttle time. Returns the counted address, or null when the connection was refused (or the listener stops).
    /// </summary>
    private async ValueTask<IPAddress?> AdmitAsync(Socket client)
    {
        IPAddress address;
        try { address = ((IPEndPoint)client.RemoteEndPoint!).Address; }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            client.Dispose(); // gone before it was looked at
            return null;
        }
        ConnectionQuotas.Admission admission;
        try { admission = await _broker.ConnectionQuotas.AdmitAsync(_endpoint.Name, address, _stopping.Token).ConfigureAwait(false); }
        catch (OperationCanceledException)
        {
            client.Dispose();
            return null;
        }
        switch (admission.Outcome)
        {
            case ConnectionQuotas.Outcome.TooManyForIp:
                _log.LogInformation("Rejected connection from {Address}, address already has the configured maximum of {Count} connections.",
                    ConnectionQuotas.Normalize(address), admission.Limit);
                client.Dispose();
                return null;
            case ConnectionQuotas.Outcome.Throttled:
                // Kafka's ConnectionThrottledException: the socket is held, unread, and closed once the throttle ends,
                // so a client reconnecting in a loop is slowed to the IP's rate rather than refused at wire speed.
                _log.LogInformation("Delaying closing of connection from {Address} for {ThrottleMs} ms (connection_creation_rate {Rate}/s)",
                    ConnectionQuotas.Normalize(address), admission.ThrottleMs, admission.Limit);
                _handshakes[client] = Task.CompletedTask;
                _handshakes.TryUpdate(client, CloseAfterThrottleAsync(client, admission.ThrottleMs), Task.CompletedTask);
                return null;
            default:
                return address;
        }
    }

    private async Task CloseAfterThrottleAsync(Socket client, long throttleMs)
    {
        try { await Task.Delay(TimeSpan.FromMilliseconds(throttleMs), _broker.Time, _stopping.Token).ConfigureAwait(false); }
        catch (OperationCanceledException) { }
        finally
        {
            client.Dispose();
            _handshakes.TryRemove(client, out _);
        }
    }

    private void Register(Connection connection, IPAddress address)
    {
        // Registered before it runs, so DisposeAsync sees it; its task replaces the placeholder only if the
        // connection has not already ended and removed itself (a plain store here would put a finished
        // connection back into the table for good).
        _connections[connection] = Task.CompletedTask;
        _connections.TryUpdate(connection, RunConnectionAsync(connection, address), Task.CompletedTask);
        // DisposeAsync cancels _stopping before it closes the registered connections: one registered after that
        // is closed here, so none outlives the listener.
        if (_stopping.IsCancellationRequested) connection.Close();
    }

    /// <summary>
    /// TLS handshake within <see cref="SslFactory.HandshakeTimeout"/>: plaintext bytes, garbage, a missing required
    /// client certificate or a client that sends nothing end here with the socket closed (Kafka's SslTransportLayer
    /// logs "Failed authentication with … (SSL handshake failed)" at INFO and closes the channel).
    /// </summary>
    private async Task HandshakeAsync(Socket client, SslFactory ssl, IPAddress address)
    {
        await Task.Yield();
        EndPoint? remote = null;
        try
        {
            remote = client.RemoteEndPoint;
            client.NoDelay = true;
            var (stream, principal) = await ssl.AuthenticateAsync(new NetworkStream(client, ownsSocket: true), _stopping.Token).ConfigureAwait(false);
            Register(new Connection(new StreamTransport(stream, remote), _broker, _log, _endpoint.Name, principal, NewAuthenticator()), address);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            client.Dispose();
            // Counted since the accept (Kafka counts a channel from accept to close, handshake included).
            _broker.ConnectionQuotas.Release(_endpoint.Name, address);
            if (!_stopping.IsCancellationRequested)
                _log.LogInformation("Failed authentication with {Client} on listener {Listener} (SSL handshake failed): {Error}",
                    remote?.ToString() ?? "?", _endpoint.Name, e is OperationCanceledException ? $"no handshake within {ssl.HandshakeTimeout.TotalSeconds:0.#} s" : e.Message);
        }
        finally
        {
            _handshakes.TryRemove(client, out _);
        }
    }

    private async Task RunConnectionAsync(Connection connection, IPAddress address)
    {
        await Task.Yield();
        try { await connection.RunAsync().ConfigureAwait(false); }
        finally
        {
            _connections.TryRemove(connection, out _);
            _broker.ConnectionQuotas.Release(_endpoint.Name, address);
        }
    }

    /// <summary>Stops accepting, then closes connections once their in-flight requests are answered.</summary>
    public async ValueTask DisposeAsync()
    {
        _stopping.Cancel();
        _socket?.Dispose();
        if (_acceptLoop is not null) await _acceptLoop.ConfigureAwait(false);
        await Task.WhenAll(_handshakes.Values.ToArray()).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        foreach (var (connection, _) in _connections)
        {
            // One connection failing to close (a cancellation callback of a handler throwing) must not stop the
            // others from closing or the broker from flushing its logs.
            try { connection.Close(); }
            catch (Exception e) { _log.LogWarning(e, "Closing a connection failed"); }
        }
        var tasks = _connections.Values.ToArray();
        await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }
}
