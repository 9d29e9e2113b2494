using System.Buffers.Binary;
using System.Text;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Network.Sasl;

/// <summary>What the authenticator hands the connection for one frame: a response (a Kafka message, or for the v0
/// unframed exchange a raw token), and when <see cref="Failure"/> is set, the connection closes after sending it.
/// <see cref="Reauthenticated"/>: this frame completed a re-authentication (KIP-368).</summary>
internal readonly record struct SaslReply(int CorrelationId, ApiKey ApiKey, short Version, IApiMessage? Message, byte[]? Raw, string? Failure,
    bool Reauthenticated = false);

/// <summary>
/// The server side of SASL on one connection, as Kafka's SaslServerAuthenticator: ApiVersions (once) and SaslHandshake
/// v0–1 first, then the mechanism's tokens — wrapped in SaslAuthenticate v0–2 after a v1 handshake, raw size-prefixed
/// tokens after a v0 one (old clients such as kafka-python 2.0.2). Any other request before authentication closes the
/// connection ("Unexpected Kafka request of type … during SASL handshake."). KIP-368: the session lifetime
/// (connections.max.reauth.ms) goes back in SaslAuthenticate v1+, and a client that supports it re-authenticates with
/// a new SaslHandshake on the authenticated connection, keeping its mechanism and principal.
/// </summary>
internal sealed class SaslAuthenticator(SaslListenerConfig config, TimeProvider time)
{
    private enum State { HandshakeOrVersions, Handshake, Authenticate, ReauthBadMechanism, Complete, Failed }

    private State _state = State.HandshakeOrVersions;
    private bool _framed;
    private bool _clientSupportsReauth;
    private string? _mechanism;
    private string? _previousPrincipal;
    private string? _badMechanismMessage;
    private ISaslServer? _server;
    private long _expiresAtMs = long.MaxValue;

    public bool Authenticated => _state == State.Complete;

    /// <summary>Authentication completed at least once (a KIP-368 re-authentication in progress does not undo it).</summary>
    public bool HasAuthenticated { get; private set; }

    /// <summary>Kafka's principal after authentication: "User:" + the authenticated name.</summary>
    public string Principal { get; private set; } = "User:ANONYMOUS";

    /// <summary>Largest frame accepted while not authenticated (sasl.server.max.receive.size).</summary>
    public int MaxReceiveSize => config.MaxReceiveSize;

    /// <summary>KIP-368: the session ended (connections.max.reauth.ms) and the client did not re-authenticate.</summary>
    public bool SessionExpired => Authenticated && time.GetUtcNow().ToUnixTimeMilliseconds() >= _expiresAtMs;

    /// <summary>
    /// During the handshake, whether the frame is the ApiVersions request the connection answers itself (allowed once,
    /// before SaslHandshake; an ApiVersions at a version we do not know is answered and may be retried).
    /// </summary>
    public bool PassThrough(ReadOnlySpan<byte> frame)
    {
        if (_state != State.HandshakeOrVersions || frame.Length < 4) return false;
        if ((ApiKey)BinaryPrimitives.ReadInt16BigEndian(frame) != ApiKey.ApiVersions) return false;
        short version = BinaryPrimitives.ReadInt16BigEndian(frame[2..]);
        var info = ApiVersionTable.Find(ApiKey.ApiVersions)!;
        if (version >= info.MinVersion && version <= info.MaxVersion) _state = State.Handshake;
        return true;
    }

    /// <summary>
    /// A SaslHandshake on an authenticated connection: re-authentication (KIP-368) when the client showed it supports
    /// it (SaslAuthenticate v1+); otherwise the request goes to the SaslHandshake handler, which answers ILLEGAL_SASL_STATE.
    /// </summary>
    public bool TryBeginReauthentication()
    {
        if (!Authenticated || !_clientSupportsReauth) return false;
        _previousPrincipal = Principal;
        _state = State.Handshake;
        return true;
    }

    public SaslReply Process(ReadOnlyMemory<byte> frame)
    {
        try
        {
            return _state switch
            {
                State.Authenticate when !_framed => RawToken(frame.ToArray()),
                State.Authenticate => Authenticate(frame),
                State.ReauthBadMechanism => Fail(default, _badMechanismMessage!),
                State.HandshakeOrVersions or State.Handshake => Handshake(frame),
                _ => Fail(default, $"Unexpected SASL frame in state {_state}"),
            };
        }
        catch (ProtocolException e)
        {
            // A frame that is not a Kafka request where one is expected (garbage, truncated): Kafka's
            // InvalidRequestException; the first packet of a client is "not a SASL mechanism request" then.
            return Fail(default, _state == State.HandshakeOrVersions
                ? "Exception handling first SASL packet from client, GSSAPI is not supported by server"
                : "Invalid SASL request: " + e.Message);
        }
    }

    private SaslReply Fail(SaslReply reply, string message)
    {
        _state = State.Failed;
        return reply with { Failure = message };
    }

    /// <summary>Reads the request header, and the body into <paramref name="body"/> when the frame is that API at a served version.</summary>
    private static (RequestHeader Header, ApiKey Key, short Version) ReadRequest(ReadOnlyMemory<byte> frame, IApiMessage body)
    {
        if (frame.Length < 8) throw new ProtocolException($"Request of {frame.Length} bytes is shorter than a request header");
        var key = (ApiKey)BinaryPrimitives.ReadInt16BigEndian(frame.Span);
        short version = BinaryPrimitives.ReadInt16BigEndian(frame.Span[2..]);
        var header = new RequestHeader();
        var reader = new KafkaReader(frame);
        if (ApiVersionTable.Find(key) is not { } info || version < info.MinVersion || version > info.MaxVersion)
        {
            // Unknown API or version: only the correlation id is read, from the fixed part of the header.
            return (new RequestHeader { CorrelationId = BinaryPrimitives.ReadInt32BigEndian(frame.Span[4..]) }, key, version);
        }
        header.Read(ref reader, ApiMessageTypes.RequestHeaderVersion(key, version));
        if (key == body.ApiKey) body.Read(ref reader, version);
        return (header, key, version);
    }

    /// <summary>Kafka's ApiKeys constant name (METADATA, API_VERSIONS) for its messages.</summary>
    private static string KafkaName(ApiKey key)
    {
        if (!Enum.IsDefined(key)) return ((short)key).ToString(System.Globalization.CultureInfo.InvariantCulture);
        var sb = new StringBuilder();
        foreach (char c in key.ToString())
        {
            if (char.IsUpper(c) && sb.Length > 0) sb.Append('_');
            sb.Append(char.ToUpperInvariant(c));
        }
        return sb.ToString();
    }

    private SaslReply Handshake(ReadOnlyMemory<byte> frame)
    {
        var request = new SaslHandshakeRequest();
        var (header, key, version) = ReadRequest(frame, request);
        var reply = new SaslReply(header.CorrelationId, key, version, null, null, null);
        if (key == ApiKey.ApiVersions)
            return Fail(reply, $"Unexpected ApiVersions request received during SASL authentication state {_state}");
        if (key != ApiKey.SaslHandshake)
            return Fail(reply, $"Unexpected Kafka request of type {KafkaName(key)} during SASL handshake.");
        if (version is < 0 or > 1) return Fail(reply, $"Unsupported version {version} of SaslHandshake");
        string mechanism = request.Mechanism;
        var enabled = config.EnabledMechanisms.ToList();
        if (!config.EnabledMechanisms.Contains(mechanism))
        {
            return Fail(reply with { Message = new SaslHandshakeResponse { Mechanisms = enabled }.SetError(ErrorCode.UnsupportedSaslMechanism) },
                $"Unsupported SASL mechanism {mechanism}");
        }
        _framed = version >= 1;
        reply = reply with { Message = new SaslHandshakeResponse { Mechanisms = enabled } };
        if (_previousPrincipal is not null && mechanism != _mechanism)
        {
            // Kafka's REAUTH_BAD_MECHANISM: the handshake is answered, the next token fails.
            _badMechanismMessage = $"SASL mechanism '{mechanism}' requested by client is not supported for re-authentication of mechanism '{_mechanism}'";
            _state = State.ReauthBadMechanism;
            return reply;
        }
        _mechanism = mechanism;
        _server = config.CreateServer(mechanism, time);
        _state = State.Authenticate;
        return reply;
    }

    private string AuthenticationText => _previousPrincipal is null ? "authentication" : "re-authentication";

    private SaslReply Authenticate(ReadOnlyMemory<byte> frame)
    {
        var request = new SaslAuthenticateRequest();
        var (header, key, version) = ReadRequest(frame, request);
        var reply = new SaslReply(header.CorrelationId, key, version, null, null, null);
        if (key != ApiKey.SaslAuthenticate)
        {
            // A request other than SaslAuthenticate after the handshake (a second SaslHandshake, an ApiVersions, or a
            // client that sends Metadata or Produce without finishing the exchange): Kafka's SaslServerAuthenticator
            // answers it with the request's error response carrying ILLEGAL_SASL_STATE
            // (buildResponseOnAuthenticateFailure), then closes the connection. An API whose response has no field
            // for the error (the per-resource admin APIs) is closed without an answer.
            return Fail(reply with { Message = IllegalStateAnswer(frame, key, version) },
                $"Unexpected Kafka request of type {KafkaName(key)} during SASL authentication.");
        }
        if (version is < 0 or > 2) return Fail(reply, $"Version {version} is not supported for apiKey SASL_AUTHENTICATE");
        _clientSupportsReauth |= version > 0;
        try
        {
            byte[] challenge = _server!.EvaluateResponse(request.AuthBytes) ?? [];
            long lifetime = 0;
            bool reauthenticated = false;
            if (_server.IsComplete)
            {
                lifetime = Complete();
                reauthenticated = _previousPrincipal is not null;
            }
            return reply with { Message = new SaslAuthenticateResponse { AuthBytes = challenge, SessionLifetimeMs = lifetime }, Reauthenticated = reauthenticated };
        }
        catch (SaslAuthenticationException e)
        {
            return Fail(reply with { Message = AuthenticateFailed(e.Message) }, e.Message + RefusedTokenReason());
        }
        catch (SaslMechanismException e)
        {
            // Kafka does not tell the client why (it may reveal whether the user exists); the reason is logged.
            string message = $"Authentication failed during {AuthenticationText} due to invalid credentials with SASL mechanism {_mechanism}";
            return Fail(reply with { Message = AuthenticateFailed(message) }, message + ": " + e.Message);
        }
    }

    /// <summary>AbstractRequest.getErrorResponse(IllegalSaslStateException) for a served API at a served version, else null.</summary>
    private static IApiMessage? IllegalStateAnswer(ReadOnlyMemory<byte> frame, ApiKey key, short version)
    {
        if (ApiVersionTable.Find(key) is not { } info || version < info.MinVersion || version > info.MaxVersion) return null;
        var request = ApiMessageTypes.CreateRequest(key);
        var reader = new KafkaReader(frame);
        new RequestHeader().Read(ref reader, ApiMessageTypes.RequestHeaderVersion(key, version));
        request.Read(ref reader, version);
        if (request is MetadataRequest metadata)
        {
            // MetadataRequest.getErrorResponse: every named topic carries the error (an all-topics request names none).
            var response = new MetadataResponse();
            foreach (var t in metadata.Topics ?? [])
                response.Topics.Add(new MetadataResponse.MetadataResponseTopic { Name = t.Name, TopicId = t.TopicId }.SetError(ErrorCode.IllegalSaslState));
            return response;
        }
        try { return ErrorResponses.Build(key, request, version, ErrorCode.IllegalSaslState); }
        catch (ArgumentException) { return null; } // no error field to put it in
    }

    private static SaslAuthenticateResponse AuthenticateFailed(string message) =>
        new SaslAuthenticateResponse().SetError(new(ErrorCode.SaslAuthenticationFailed, message));

    /// <summary>v0 handshake: the token is the whole frame, and so is the answer (Kafka sends none on failure, it closes).</summary>
    private SaslReply RawToken(byte[] token)
    {
        try
        {
            byte[]? challenge = _server!.EvaluateResponse(token);
            if (_server.IsComplete) Complete();
            return new SaslReply(0, ApiKey.SaslAuthenticate, 0, null, challenge, null);
        }
        catch (Exception e) when (e is SaslAuthenticationException or SaslMechanismException)
        {
            return Fail(default, $"Authentication failed during {AuthenticationText} with SASL mechanism {_mechanism}: {e.Message}{RefusedTokenReason()}");
        }
    }

    /// <summary>Why an OAUTHBEARER token was refused (logged, never sent: the client only sees RFC 7628's status).</summary>
    private string RefusedTokenReason() => _server is OAuthBearerSaslServer { LastFailureReason: { } reason } ? " (" + reason + ")" : "";

    /// <summary>Authentication done: the principal, and the session lifetime of KIP-368 (0: none).</summary>
    private long Complete()
    {
        string principal = "User:" + _server!.AuthorizationId;
        if (_previousPrincipal is not null && principal != _previousPrincipal)
            throw new SaslAuthenticationException($"Cannot change principals during re-authentication from {_previousPrincipal}: {principal}");
        Principal = principal;
        _state = State.Complete;
        HasAuthenticated = true;
        // ReauthInfo.calcCompletionTimesAndReturnSessionLifetimeMs: connections.max.reauth.ms, bounded by the
        // credential's expiry (an OAUTHBEARER token's exp) when there is one, even without connections.max.reauth.ms.
        long maxReauth = config.MaxReauthMs(_mechanism!);
        long now = time.GetUtcNow().ToUnixTimeMilliseconds();
        long? credentialExpiration = _server.CredentialExpirationMs;
        if (credentialExpiration is null && maxReauth <= 0)
        {
            _expiresAtMs = long.MaxValue;
            return 0;
        }
        long lifetime = credentialExpiration is not { } expiry ? maxReauth
            : Math.Max(0, maxReauth > 0 ? Math.Min(expiry - now, maxReauth) : expiry - now);
        _expiresAtMs = now + lifetime;
        return lifetime;
    }
}
