using System.Security.Cryptography;
using System.Text;

namespace Kayak.Broker.Network.Sasl;

/// <summary>
/// Javax's SaslServer as Kafka uses it: one token in, a challenge out (null: nothing to send). Two failure kinds, as
/// in Kafka's SaslServerAuthenticator: <see cref="SaslAuthenticationException"/> carries a message the client may see;
/// <see cref="SaslMechanismException"/> is answered with the generic "invalid credentials" message (it may reveal
/// whether a user exists) and its own text is only logged.
/// </summary>
internal interface ISaslServer
{
    byte[]? EvaluateResponse(byte[] token);
    bool IsComplete { get; }
    /// <summary>The authenticated user (the authorization id), once complete.</summary>
    string? AuthorizationId { get; }
    /// <summary>When the credential expires (Kafka's CREDENTIAL_LIFETIME_MS negotiated property: OAUTHBEARER's exp); null: never.</summary>
    long? CredentialExpirationMs => null;
}

/// <summary>Kafka's SaslAuthenticationException: its message goes to the client.</summary>
internal sealed class SaslAuthenticationException(string message) : Exception(message);

/// <summary>Kafka's javax.security.sasl.SaslException: the client gets the generic message.</summary>
internal sealed class SaslMechanismException(string message) : Exception(message);

/// <summary>
/// SASL/PLAIN (RFC 4616) as Kafka's PlainSaslServer with PlainServerCallbackHandler: "[authzid] NUL authcid NUL passwd",
/// checked against the JAAS option user_&lt;name&gt; in constant time.
/// </summary>
internal sealed class PlainSaslServer(IReadOnlyDictionary<string, string> jaasOptions) : ISaslServer
{
    public bool IsComplete { get; private set; }
    public string? AuthorizationId { get; private set; }

    public byte[]? EvaluateResponse(byte[] token)
    {
        if (IsComplete) throw new SaslMechanismException("Authentication exchange has completed");
        string response = Encoding.UTF8.GetString(token);
        var tokens = response.Split('\0');
        if (tokens.Length != 3) throw new SaslMechanismException($"Invalid SASL/PLAIN response: expected 3 tokens, got {tokens.Length}");
        string authzid = tokens[0], username = tokens[1], password = tokens[2];
        if (username.Length == 0) throw new SaslMechanismException("Authentication failed: username not specified");
        if (password.Length == 0) throw new SaslMechanismException("Authentication failed: password not specified");
        if (!jaasOptions.TryGetValue("user_" + username, out var expected)
            || !CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(expected), Encoding.UTF8.GetBytes(password)))
            throw new SaslAuthenticationException("Authentication failed: Invalid username or password");
        if (authzid.Length != 0 && authzid != username)
            throw new SaslAuthenticationException("Authentication failed: Client requested an authorization id that is different from username");
        AuthorizationId = username;
        IsComplete = true;
        return [];
    }
}

/// <summary>
/// The server side of SCRAM (RFC 5802; SHA-256 per RFC 7677, SHA-512 as Kafka's ScramSaslServer): client-first →
/// server-first (nonce, salt, iterations) → client-final (proof checked against StoredKey) → server-final (v=signature).
/// Channel binding is not supported ("n" or "y" only, as in Kafka); the tokenauth extension (delegation tokens) is refused.
/// </summary>
/// <param name="serverNonce">Test hook (RFC test vectors): the server's part of the nonce; random otherwise.</param>
internal sealed class ScramSaslServer(ScramMechanism mechanism, ScramCredentialStore store, Func<string>? serverNonce = null) : ISaslServer
{
    private enum State { ClientFirst, ClientFinal, Complete, Failed }

    private State _state = State.ClientFirst;
    private string _gs2Header = "", _clientFirstBare = "", _serverFirst = "", _nonce = "", _user = "";
    private ScramCredential? _credential;

    public bool IsComplete => _state == State.Complete;
    public string? AuthorizationId => IsComplete ? _user : null;

    public byte[]? EvaluateResponse(byte[] token)
    {
        try
        {
            return _state switch
            {
                State.ClientFirst => ClientFirst(Ascii(token)),
                State.ClientFinal => ClientFinal(Ascii(token)),
                _ => throw new SaslMechanismException("Authentication exchange has completed"),
            };
        }
        catch
        {
            _state = State.Failed;
            throw;
        }
    }

    private static string Ascii(byte[] token)
    {
        try { return new UTF8Encoding(false, true).GetString(token); }
        catch (DecoderFallbackException) { throw new SaslMechanismException("Invalid SCRAM message: not UTF-8"); }
    }

    private byte[] ClientFirst(string message)
    {
        // gs2-header = gs2-cbind-flag "," [ "a=" saslname ] "," ; Kafka accepts n and y, not p=.
        int first = message.IndexOf(',');
        int second = first < 0 ? -1 : message.IndexOf(',', first + 1);
        if (second < 0 || message[..first] is not ("n" or "y"))
            throw new SaslMechanismException("Invalid SCRAM client first message format");
        string authzField = message[(first + 1)..second];
        if (authzField.Length != 0 && !authzField.StartsWith("a=", StringComparison.Ordinal))
            throw new SaslMechanismException("Invalid SCRAM client first message format");
        _gs2Header = message[..(second + 1)];
        _clientFirstBare = message[(second + 1)..];
        var fields = _clientFirstBare.Split(',');
        if (fields.Length < 2 || !fields[0].StartsWith("n=", StringComparison.Ordinal) || !fields[1].StartsWith("r=", StringComparison.Ordinal) || fields[1].Length == 2)
            throw new SaslMechanismException("Invalid SCRAM client first message format");
        foreach (var ext in fields.AsSpan(2))
            if (ext.Equals("tokenauth=true", StringComparison.OrdinalIgnoreCase))
                throw new SaslAuthenticationException("Authentication failed: Delegation tokens are not supported");
        // saslname: "," and "=" are sent as =2C and =3D (ScramFormatter.username).
        _user = fields[0][2..].Replace("=2C", ",").Replace("=3D", "=");
        string authzid = authzField.Length == 0 ? "" : authzField[2..].Replace("=2C", ",").Replace("=3D", "=");
        if (authzid.Length != 0 && authzid != _user)
            throw new SaslAuthenticationException("Authentication failed: Client requested an authorization id that is different from username");
        _credential = store.Find(mechanism.Name, _user) ?? throw new SaslMechanismException("Authentication failed: Invalid user credentials");
        if (_credential.Iterations < ScramMechanism.MinIterations)
            throw new SaslMechanismException($"Iterations {_credential.Iterations} is less than the minimum {ScramMechanism.MinIterations} for {mechanism.Name}");
        _nonce = fields[1][2..] + (serverNonce?.Invoke() ?? Convert.ToBase64String(RandomNumberGenerator.GetBytes(18)));
        _serverFirst = $"r={_nonce},s={Convert.ToBase64String(_credential.Salt)},i={_credential.Iterations}";
        _state = State.ClientFinal;
        return Encoding.UTF8.GetBytes(_serverFirst);
    }

    private byte[] ClientFinal(string message)
    {
        // client-final = "c=" base64(gs2-header) ",r=" nonce *("," extension) ",p=" base64(proof)
        int proofAt = message.LastIndexOf(",p=", StringComparison.Ordinal);
        if (proofAt < 0 || !message.StartsWith("c=", StringComparison.Ordinal))
            throw new SaslMechanismException("Invalid SCRAM client final message format");
        string withoutProof = message[..proofAt];
        var fields = withoutProof.Split(',');
        if (fields.Length < 2 || !fields[1].StartsWith("r=", StringComparison.Ordinal))
            throw new SaslMechanismException("Invalid SCRAM client final message format");
        // Kafka's ScramSaslServer checks that the nonce ends with the server-first nonce, not that it equals it:
        // librdkafka before 2.x's fix sends its own nonce again in front (seen with Debian's 2.0.2), and Kafka accepts
        // that; the proof covers the message as sent either way.
        if (!fields[1][2..].EndsWith(_nonce, StringComparison.Ordinal)) throw new SaslMechanismException("Invalid client nonce in the final client message.");
        if (fields[0][2..] != Convert.ToBase64String(Encoding.UTF8.GetBytes(_gs2Header)))
            throw new SaslMechanismException("Invalid channel binding in the final client message.");
        byte[] proof;
        try { proof = Convert.FromBase64String(message[(proofAt + 3)..]); }
        catch (FormatException) { throw new SaslMechanismException("Invalid SCRAM client final message format"); }
        var credential = _credential!;
        byte[] authMessage = Encoding.UTF8.GetBytes(_clientFirstBare + "," + _serverFirst + "," + withoutProof);
        byte[] clientSignature = mechanism.Hmac(credential.StoredKey, authMessage);
        if (proof.Length != clientSignature.Length) throw new SaslMechanismException("Invalid client credentials");
        // ClientKey = ClientProof XOR ClientSignature; the proof is right when H(ClientKey) is the StoredKey.
        for (int i = 0; i < proof.Length; i++) proof[i] ^= clientSignature[i];
        if (!CryptographicOperations.FixedTimeEquals(mechanism.H(proof), credential.StoredKey))
            throw new SaslMechanismException("Invalid client credentials");
        _state = State.Complete;
        return Encoding.UTF8.GetBytes("v=" + Convert.ToBase64String(mechanism.Hmac(credential.ServerKey, authMessage)));
    }
}
