using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Kayak.Broker.Config;

namespace Kayak.Broker.Network.Sasl;

/// <summary>
/// The JAAS options of Kafka's OAuthBearerUnsecuredValidatorCallbackHandler (KIP-255), the broker's default OAUTHBEARER
/// validator, for development only: unsecured JWS (alg "none", no signature). unsecuredValidatorPrincipalClaimName
/// (default "sub"), unsecuredValidatorScopeClaimName (default "scope"), unsecuredValidatorRequiredScope (space
/// delimited), unsecuredValidatorAllowableClockSkewMs (default 0, not negative: Kafka fails each authentication with
/// OAuthBearerConfigException; Kayak refuses to start, naming the key).
/// </summary>
internal sealed record OAuthBearerOptions(string PrincipalClaim, string ScopeClaim, IReadOnlyList<string> RequiredScope, int AllowableClockSkewMs)
{
    public const string LoginModule = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule";
    public const string UnsecuredValidator = "org.apache.kafka.common.security.oauthbearer.internals.unsecured.OAuthBearerUnsecuredValidatorCallbackHandler";

    public static OAuthBearerOptions From(string jaasKey, IReadOnlyDictionary<string, string> options)
    {
        static string? Option(IReadOnlyDictionary<string, string> o, string k) => o.TryGetValue(k, out var v) && !string.IsNullOrWhiteSpace(v) ? v.Trim() : null;
        int skew = 0;
        if (Option(options, "unsecuredValidatorAllowableClockSkewMs") is { } s
            && (!int.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out skew) || skew < 0))
            throw new ConfigException(jaasKey, "[hidden]", $"unsecuredValidatorAllowableClockSkewMs must be a non-negative int: {s}");
        var scope = (Option(options, "unsecuredValidatorRequiredScope") ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return new OAuthBearerOptions(Option(options, "unsecuredValidatorPrincipalClaimName") ?? "sub",
            Option(options, "unsecuredValidatorScopeClaimName") ?? "scope", scope, skew);
    }
}

/// <summary>A token that failed validation: Kafka's OAuthBearerValidationResult (the reason is only logged).</summary>
internal sealed class OAuthBearerIllegalTokenException(string reason, string? failureScope = null) : Exception(reason)
{
    public string? FailureScope { get; } = failureScope;
}

/// <summary>A valid unsecured JWS: Kafka's OAuthBearerUnsecuredJws after OAuthBearerUnsecuredValidatorCallbackHandler's checks.</summary>
internal sealed record OAuthBearerToken(string Principal, long LifetimeMs, IReadOnlySet<string> Scope);

/// <summary>
/// SASL/OAUTHBEARER (RFC 7628, KIP-255) as Kafka's OAuthBearerSaslServer: the client's first message is
/// "n,[a=authzid]," %x01 "auth=Bearer " token %x01 *(key "=" value %x01) %x01. A valid token completes the exchange
/// with principal = the principal claim; an invalid one is answered with RFC 7628's JSON error
/// ({"status":"invalid_token"}, or "insufficient_scope" with the required scope), to which the client replies %x01 and
/// gets SASL_AUTHENTICATION_FAILED carrying that JSON. KIP-368: the token's exp bounds the session lifetime.
/// </summary>
internal sealed partial class OAuthBearerSaslServer(OAuthBearerOptions options, TimeProvider time) : ISaslServer
{
    private string? _errorMessage;

    public bool IsComplete { get; private set; }
    public string? AuthorizationId { get; private set; }
    public long? CredentialExpirationMs { get; private set; }

    // OAuthBearerClientInitialResponse's patterns: saslname, extension keys and values, and the Bearer credential.
    [GeneratedRegex("^n,(a=(?<authzid>(?:[\\x01-\\x7F-[=,]]|=2C|=3D)+))?,\\x01(?<kvpairs>([A-Za-z]+=[\\x21-\\x7E \\t\\r\\n]+\\x01)*)\\x01$")]
    private static partial Regex ClientInitialResponse();

    [GeneratedRegex("^(?<scheme>\\w+) +(?<token>[-_~+/.a-zA-Z0-9]+=*)$")]
    private static partial Regex Auth();

    public byte[]? EvaluateResponse(byte[] token)
    {
        if (token.Length == 1 && token[0] == 0x01 && _errorMessage is not null)
            throw new SaslAuthenticationException(_errorMessage);
        _errorMessage = null;
        if (IsComplete) throw new SaslMechanismException("Authentication exchange has completed");
        var (tokenValue, authzid) = ParseInitialResponse(Encoding.UTF8.GetString(token));
        OAuthBearerToken jwt;
        try { jwt = Validate(tokenValue, options, time.GetUtcNow().ToUnixTimeMilliseconds()); }
        catch (OAuthBearerIllegalTokenException e)
        {
            // OAuthBearerSaslServer.jsonErrorResponse; the reason goes to the broker log with the failure.
            _errorMessage = e.FailureScope is null
                ? "{\"status\":\"invalid_token\"}"
                : $"{{\"status\":\"insufficient_scope\", \"scope\":\"{e.FailureScope}\"}}";
            LastFailureReason = e.Message;
            return Encoding.UTF8.GetBytes(_errorMessage);
        }
        if (authzid.Length != 0 && authzid != jwt.Principal)
            throw new SaslAuthenticationException(
                $"Authentication failed: Client requested an authorization id ({authzid}) that is different from the token's principal name ({jwt.Principal})");
        AuthorizationId = jwt.Principal;
        CredentialExpirationMs = jwt.LifetimeMs;
        IsComplete = true;
        return [];
    }

    /// <summary>Why the last token was refused (Kafka logs it at debug); never sent to the client.</summary>
    public string? LastFailureReason { get; private set; }

    private static (string Token, string AuthorizationId) ParseInitialResponse(string message)
    {
        var m = ClientInitialResponse().Match(message);
        if (!m.Success) throw new SaslMechanismException("Invalid OAUTHBEARER client first message");
        string? auth = null;
        foreach (var kv in m.Groups["kvpairs"].Value.Split('\x01', StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = kv.IndexOf('=');
            if (kv[..eq] == "auth") auth = kv[(eq + 1)..];
        }
        if (auth is null) throw new SaslMechanismException("Invalid OAUTHBEARER client first message: 'auth' not specified");
        var a = Auth().Match(auth);
        if (!a.Success) throw new SaslMechanismException("Invalid OAUTHBEARER client first message: invalid 'auth' format");
        if (!a.Groups["scheme"].Value.Equals("bearer", StringComparison.OrdinalIgnoreCase))
            throw new SaslMechanismException("Invalid scheme in OAUTHBEARER client first message: " + a.Groups["scheme"].Value);
        return (a.Groups["token"].Value, m.Groups["authzid"].Success ? m.Groups["authzid"].Value : "");
    }

    /// <summary>OAuthBearerUnsecuredJws, then the handler's checks in Kafka's order (iat optional, exp required, iat &lt; exp, scope).</summary>
    internal static OAuthBearerToken Validate(string compact, OAuthBearerOptions options, long nowMs)
    {
        if (compact.Contains("..", StringComparison.Ordinal)) throw new OAuthBearerIllegalTokenException("Malformed compact serialization contains '..'");
        var splits = compact.Split('.');
        if (splits.Length != 3) throw new OAuthBearerIllegalTokenException("Unsecured JWS compact serializations must have 3 dot-separated Base64URL-encoded values");
        using var header = ToJson(splits[0]);
        using var claims = ToJson(splits[1]);
        if (!header.RootElement.TryGetProperty("alg", out var alg) || alg.ValueKind == JsonValueKind.Null)
            throw new OAuthBearerIllegalTokenException("JWS header must have an Algorithm value");
        if (Text(alg) != "none") throw new OAuthBearerIllegalTokenException("Unsecured JWS must have 'none' for an algorithm");
        if (splits[2].Length != 0) throw new OAuthBearerIllegalTokenException("Unsecured JWS must not contain a digital signature");
        var root = claims.RootElement;
        var scope = Scope(root, options.ScopeClaim);
        double exp = Number(root, "exp") ?? throw new OAuthBearerIllegalTokenException("No expiration time in JWT");
        string? principal = root.TryGetProperty(options.PrincipalClaim, out var p) && p.ValueKind != JsonValueKind.Null ? Claim(p, options.PrincipalClaim, "String") : null;
        if (string.IsNullOrWhiteSpace(principal)) throw new OAuthBearerIllegalTokenException("No principal name in JWT claim: " + options.PrincipalClaim);
        double? iat = Number(root, "iat");
        int skew = options.AllowableClockSkewMs;
        string F(double v) => v.ToString("F6", CultureInfo.InvariantCulture);
        if (iat is { } issued && 1000 * issued > nowMs + skew)
            throw new OAuthBearerIllegalTokenException($"The Issued At value ({F(issued)} seconds) was after the indicated time ({nowMs} ms) plus allowable clock skew ({skew} ms)");
        if (nowMs - skew >= 1000 * exp)
            throw new OAuthBearerIllegalTokenException($"The indicated time ({nowMs} ms) minus allowable clock skew ({skew} ms) was on or after the Expiration Time value ({F(exp)} seconds)");
        if (iat is { } i && exp <= i)
            throw new OAuthBearerIllegalTokenException($"The Expiration Time time ({F(exp)} seconds) was not after the Issued At time ({F(i)} seconds)");
        foreach (var required in options.RequiredScope)
            if (!scope.Contains(required))
                throw new OAuthBearerIllegalTokenException(
                    $"The provided scope ([{string.Join(", ", scope)}]) was missing a required scope ({required}).  All required scope elements: [{string.Join(", ", options.RequiredScope)}]",
                    "[" + string.Join(", ", options.RequiredScope) + "]");
        return new OAuthBearerToken(principal, (long)Math.Round(exp * 1000), scope);
    }

    private static JsonDocument ToJson(string split)
    {
        byte[] bytes;
        try
        {
            string b64 = split.Replace('-', '+').Replace('_', '/');
            bytes = Convert.FromBase64String(b64.PadRight(b64.Length + (4 - b64.Length % 4) % 4, '='));
        }
        catch (FormatException) { throw new OAuthBearerIllegalTokenException("malformed Base64 URL encoded value"); }
        try
        {
            var doc = JsonDocument.Parse(bytes, new JsonDocumentOptions { MaxDepth = 16 });
            if (doc.RootElement.ValueKind != JsonValueKind.Object) { doc.Dispose(); throw new OAuthBearerIllegalTokenException("malformed JSON"); }
            return doc;
        }
        catch (JsonException) { throw new OAuthBearerIllegalTokenException("malformed JSON"); }
    }

    private static string Text(JsonElement e) => e.ValueKind == JsonValueKind.String ? e.GetString()! : e.GetRawText();

    private static string Claim(JsonElement e, string name, string type) => e.ValueKind is JsonValueKind.String or JsonValueKind.True or JsonValueKind.False
        ? Text(e)
        : throw new OAuthBearerIllegalTokenException($"The '{name}' claim was not of type {type}: {e.GetRawText()}");

    private static double? Number(JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out var e) || e.ValueKind == JsonValueKind.Null) return null;
        if (e.ValueKind != JsonValueKind.Number) throw new OAuthBearerIllegalTokenException($"The '{name}' claim was not of type Number: {e.GetRawText()}");
        return e.GetDouble();
    }

    /// <summary>OAuthBearerUnsecuredJws.calculateScope: a string claim is one scope, a list its non-blank elements.</summary>
    private static IReadOnlySet<string> Scope(JsonElement root, string name)
    {
        var scope = new SortedSet<string>(StringComparer.Ordinal);
        if (!root.TryGetProperty(name, out var e) || e.ValueKind == JsonValueKind.Null) return scope;
        if (e.ValueKind == JsonValueKind.String)
        {
            if (!string.IsNullOrWhiteSpace(e.GetString())) scope.Add(e.GetString()!.Trim());
            return scope;
        }
        if (e.ValueKind != JsonValueKind.Array) throw new OAuthBearerIllegalTokenException($"The '{name}' claim was not of type List: {e.GetRawText()}");
        foreach (var s in e.EnumerateArray())
        {
            string v = Text(s);
            if (!string.IsNullOrWhiteSpace(v)) scope.Add(v.Trim());
        }
        return scope;
    }
}
