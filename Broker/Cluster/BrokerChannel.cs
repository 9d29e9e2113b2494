using System.Buffers;
using System.Buffers.Binary;
using System.Net.Sockets;
using System.Security.Authentication;
using Kayak.Broker.Services;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Cluster;

/// <summary>
/// One connection from this broker to another broker's inter-broker listener over loopback (<see cref="InterBrokerSecurity"/>:
/// PLAINTEXT; SSL, the TLS handshake as that listener's client with its keystore and truststore; SASL_PLAINTEXT, or
/// SASL_SSL over the TLS stream, authenticated as the broker's own principal), one request at a time: the framing the
/// replica fetcher and the inter-broker client share (size prefix, request header with <paramref name="clientId"/>,
/// correlation id checked on the answer). Not thread-safe; the caller serialises requests and closes the channel
/// after a failure.
/// </summary>
internal sealed class BrokerChannel(string clientId, InterBrokerSecurity security)
{
    private TcpClient? _tcp;
    private Stream? _stream; // the socket's NetworkStream, or the SslStream over it
    private int _correlationId;

    /// <summary>Connects to <paramref name="node"/>'s inter-broker listener and authenticates, unless connected already.</summary>
    public async ValueTask EnsureConnectedAsync(BrokerNode node, CancellationToken ct)
    {
        if (_stream is not null) return;
        var endpoint = security.ListenerName is null ? node.Listeners[0] : node.EndpointFor(security.ListenerName);
        _tcp?.Dispose(); // a connect or handshake that failed before the caller's Close
        _tcp = new TcpClient { NoDelay = true };
        await _tcp.ConnectAsync(endpoint.Host, endpoint.Port, ct).ConfigureAwait(false);
        Stream stream = _tcp.GetStream();
        if (security.Tls is { } tls)
        {
            // Kafka's SslTransportLayer handshakes before any request, SASL included (SASL_SSL authenticates inside TLS).
            try
            {
                stream = await tls.AuthenticateAsClientAsync(stream, endpoint.Host, ct).ConfigureAwait(false);
            }
            catch (AuthenticationException e)
            {
                // An IOException, so the fetcher and the inter-broker client log it and back off as after any lost connection.
                throw new IOException($"TLS handshake with broker {node.NodeId} at {endpoint.Host}:{endpoint.Port} (listener {tls.ListenerName}) failed: {e.Message}", e);
            }
        }
        _stream = stream;
        if (security.Mechanism is not null) await AuthenticateAsync(security.Mechanism, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// SaslHandshake v1 then SaslAuthenticate v2 rounds until the mechanism is done (KIP-152, as Kafka's
    /// SaslClientAuthenticator); a refusal is an <see cref="IOException"/> with the broker's message, so the caller
    /// backs off and connects again as after any failure.
    /// </summary>
    private async Task AuthenticateAsync(string mechanism, CancellationToken ct)
    {
        const int MaxSaslFrame = 1 << 20;
        var handshake = await ExchangeAsync<SaslHandshakeResponse>(new SaslHandshakeRequest { Mechanism = mechanism },
            ApiKey.SaslHandshake, 1, MaxSaslFrame, ct).ConfigureAwait(false);
        if (handshake.Error() != ErrorCode.None)
            throw new IOException($"SaslHandshake {mechanism} refused: {handshake.Error()} (enabled: {string.Join(",", handshake.Mechanisms)})");
        var client = security.CreateClient();
        byte[]? message = client.Next(null);
        while (message is not null)
        {
            var answer = await ExchangeAsync<SaslAuthenticateResponse>(new SaslAuthenticateRequest { AuthBytes = message },
                ApiKey.SaslAuthenticate, 2, MaxSaslFrame, ct).ConfigureAwait(false);
            if (answer.Error() != ErrorCode.None)
                throw new IOException($"Authentication as {security.Username} with {mechanism} failed: {answer.ErrorMessage ?? answer.Error().ToString()}");
            message = client.Next(answer.AuthBytes);
        }
    }

    /// <summary>Writes the request and reads its answer; a frame outside 4..<paramref name="maxFrameBytes"/> is a <see cref="ProtocolException"/>.</summary>
    public async Task<TResponse> ExchangeAsync<TResponse>(IApiMessage request, ApiKey key, short version, long maxFrameBytes, CancellationToken ct)
        where TResponse : class, IApiMessage
    {
        var stream = _stream ?? throw new IOException("Not connected");
        int correlationId = ++_correlationId;
        await stream.WriteAsync(Encode(request, key, version, correlationId), ct).ConfigureAwait(false);
        var size = new byte[4];
        await stream.ReadExactlyAsync(size, ct).ConfigureAwait(false);
        int length = BinaryPrimitives.ReadInt32BigEndian(size);
        if (length < 4 || length > maxFrameBytes) throw new ProtocolException($"{key} response frame of {length} bytes");
        var body = new byte[length];
        await stream.ReadExactlyAsync(body, ct).ConfigureAwait(false);
        return Decode<TResponse>(body, key, version, correlationId);
    }

    public void Close()
    {
        _stream?.Dispose();
        _tcp?.Dispose();
        _stream = null;
        _tcp = null;
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
            ClientId = clientId,
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
}
