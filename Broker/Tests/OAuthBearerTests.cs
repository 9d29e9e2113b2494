using System.Text;
using System.Text.Json.Nodes;
using Kayak.Broker.Config;
using Kayak.Broker.Network.Sasl;
using Kayak.Coordinator.Tests;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>
/// Issue 12, part 2: SASL/OAUTHBEARER with Kafka's unsecured JWS validator (KIP-255: OAuthBearerUnsecuredJws,
/// OAuthBearerUnsecuredValidatorCallbackHandler, OAuthBearerSaslServer): token checks in Kafka's order, RFC 7628's JSON
/// error and the %x01 that turns it into SASL_AUTHENTICATION_FAILED, the principal claim, required scope, clock skew,
/// and KIP-368's session lifetime bounded by the token's exp.
/// </summary>
[CancelAfter(60_000)]
public class OAuthBearerTests
{
    private const string Module = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule";
    private static readonly long Now = new DateTimeOffset(2024, 1, 1, 0, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds();

    private static string B64(string json) => Convert.ToBase64String(Encoding.UTF8.GetBytes(json)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>An unsecured JWS as librdkafka makes it: base64url header "." base64url claims "." (no signature).</summary>
    internal static string Jwt(JsonObject claims, string header = "{\"alg\":\"none\"}") => B64(header) + "." + B64(claims.ToJsonString()) + ".";

    private static JsonObject Claims(string sub = "alice", double? iatSeconds = null, double? expSeconds = null, JsonNode? scope = null)
    {
        var c = new JsonObject { ["sub"] = sub, ["iat"] = iatSeconds ?? Now / 1000.0, ["exp"] = expSeconds ?? Now / 1000.0 + 3600 };
        if (scope is not null) c["scope"] = scope;
        return c;
    }

    private static OAuthBearerOptions Options(string? requiredScope = null, int skew = 0, string principal = "sub") =>
        new(principal, "scope", (requiredScope ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries), skew);

    private static string? Refusal(string token, OAuthBearerOptions? options = null)
    {
        try { OAuthBearerSaslServer.Validate(token, options ?? Options(), Now); return null; }
        catch (OAuthBearerIllegalTokenException e) { return e.Message; }
    }

    [Test]
    public void Validate_FollowsKafkasUnsecuredJwsRules()
    {
        var ok = OAuthBearerSaslServer.Validate(Jwt(Claims(scope: new JsonArray("read", " ", "write"))), Options("write"), Now);
        Assert.That((ok.Principal, ok.LifetimeMs), Is.EqualTo(("alice", Now + 3_600_000)));
        Assert.That(ok.Scope, Is.EquivalentTo(new[] { "read", "write" }));
        Assert.Multiple(() =>
        {
            Assert.That(Refusal(Jwt(Claims(expSeconds: Now / 1000.0))), Does.Contain("was on or after the Expiration Time value"));
            Assert.That(Refusal(Jwt(new JsonObject { ["sub"] = "alice" })), Is.EqualTo("No expiration time in JWT"));
            Assert.That(Refusal(Jwt(new JsonObject { ["exp"] = Now / 1000 + 60 })), Is.EqualTo("No principal name in JWT claim: sub"));
            Assert.That(Refusal(Jwt(Claims(), "{\"alg\":\"HS256\"}")), Is.EqualTo("Unsecured JWS must have 'none' for an algorithm"));
            Assert.That(Refusal(Jwt(Claims()) + "c2ln"), Is.EqualTo("Unsecured JWS must not contain a digital signature"));
            Assert.That(Refusal(B64("{\"alg\":\"none\"}") + "." + B64("{}")), Does.Contain("must have 3 dot-separated"));
            Assert.That(Refusal(".." + B64("{}")), Is.EqualTo("Malformed compact serialization contains '..'"));
            Assert.That(Refusal(B64("{\"alg\":\"none\"}") + ".%%%."), Is.EqualTo("malformed Base64 URL encoded value"));
            Assert.That(Refusal(B64("{\"alg\":\"none\"}") + "." + B64("[1]") + "."), Is.EqualTo("malformed JSON"));
            Assert.That(Refusal(Jwt(new JsonObject { ["sub"] = "a", ["exp"] = "soon" })), Does.StartWith("The 'exp' claim was not of type Number"));
            Assert.That(Refusal(Jwt(Claims(iatSeconds: Now / 1000.0 + 10))), Does.Contain("Issued At value"));
            Assert.That(Refusal(Jwt(Claims(iatSeconds: Now / 1000.0 + 10)), Options(skew: 10_000)), Is.Null, "within unsecuredValidatorAllowableClockSkewMs");
            Assert.That(Refusal(Jwt(Claims(iatSeconds: Now / 1000.0 - 60, expSeconds: Now / 1000.0 - 5)), Options(skew: 10_000)), Is.Null, "expired within the skew");
            Assert.That(Refusal(Jwt(Claims(iatSeconds: Now / 1000.0 - 10, expSeconds: Now / 1000.0 - 20)), Options(skew: 60_000)), Does.Contain("was not after the Issued At time"));
            Assert.That(Refusal(Jwt(Claims(scope: "read")), Options("read write")), Does.Contain("was missing a required scope (write)"));
            Assert.That(Refusal(Jwt(Claims(scope: "read")), Options("read")), Is.Null, "a string scope claim is one scope");
        });
        var custom = OAuthBearerSaslServer.Validate(Jwt(new JsonObject { ["client_id"] = "svc", ["exp"] = Now / 1000 + 60 }), Options(principal: "client_id"), Now);
        Assert.That(custom.Principal, Is.EqualTo("svc"), "unsecuredValidatorPrincipalClaimName");
    }

    private static Task<BrokerFixture> StartAsync(ManualTimeProvider time, string jaasOptions = "", long? maxReauthMs = null) => BrokerFixture.StartAsync(o =>
    {
        o.Port = null;
        o.Time = time;
        o.Properties["listeners"] = "SASL_PLAINTEXT://127.0.0.1:0";
        o.Properties["sasl.enabled.mechanisms"] = "OAUTHBEARER";
        o.Properties["listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config"] = $"{Module} required {jaasOptions};";
        if (maxReauthMs is { } ms) o.Properties["listener.name.sasl_plaintext.oauthbearer.connections.max.reauth.ms"] = ms.ToString();
    });

    private static byte[] InitialResponse(string token, string authzid = "", string extensions = "") =>
        Encoding.UTF8.GetBytes($"n,{(authzid.Length > 0 ? "a=" + authzid : "")},\u0001auth=Bearer {token}\u0001{extensions}\u0001");

    private static async Task<SaslAuthenticateResponse> AuthenticateAsync(RawClient c, byte[] token)
    {
        var handshake = await c.SendAsync<SaslHandshakeResponse>(new SaslHandshakeRequest { Mechanism = "OAUTHBEARER" }, 1);
        Assert.That(handshake.ErrorCode, Is.EqualTo((short)ErrorCode.None));
        return await c.SendAsync<SaslAuthenticateResponse>(new SaslAuthenticateRequest { AuthBytes = token }, 2);
    }

    [TestCase(null, 3_600_000L)]
    [TestCase(60_000L, 60_000L)]
    [TestCase(7_200_000L, 3_600_000L)]
    public async Task ValidToken_Authenticates_WithTheSessionLifetimeBoundedByExp(long? maxReauthMs, long lifetime)
    {
        var time = new ManualTimeProvider();
        await using var f = await StartAsync(time, maxReauthMs: maxReauthMs);
        var auth = await AuthenticateAsync(f.Client, InitialResponse(Jwt(Claims()), extensions: "traceId=abc 1\u0001"));
        Assert.That(auth.ErrorCode, Is.EqualTo((short)ErrorCode.None), auth.ErrorMessage);
        Assert.That(auth.SessionLifetimeMs, Is.EqualTo(lifetime));
        Assert.That((await f.Client.SendAsync<MetadataResponse>(new MetadataRequest { Topics = null }, 9)).Brokers, Has.Count.EqualTo(1));
    }

    [Test]
    public async Task SessionPastTheTokensExp_IsClosedAtItsNextRequest()
    {
        var time = new ManualTimeProvider();
        await using var f = await StartAsync(time);
        var auth = await AuthenticateAsync(f.Client, InitialResponse(Jwt(Claims(expSeconds: Now / 1000.0 + 120))));
        Assert.That(auth.SessionLifetimeMs, Is.EqualTo(120_000));
        time.Advance(TimeSpan.FromSeconds(119));
        Assert.That((await f.Client.SendAsync<MetadataResponse>(new MetadataRequest { Topics = null }, 9)).Brokers, Has.Count.EqualTo(1));
        time.Advance(TimeSpan.FromSeconds(1));
        await f.Client.SendOnlyAsync(new MetadataRequest { Topics = null }, 9);
        Assert.That(await f.Client.IsClosedByPeerAsync(TimeSpan.FromSeconds(10)), Is.True, "KIP-368: the token expired");
    }

    [Test]
    public async Task InvalidToken_GetsTheJsonError_ThenTheClientsControlA_IsSaslAuthenticationFailed()
    {
        var time = new ManualTimeProvider();
        await using var f = await StartAsync(time);
        var first = await AuthenticateAsync(f.Client, InitialResponse(Jwt(Claims(expSeconds: Now / 1000.0 - 1))));
        Assert.That(first.ErrorCode, Is.EqualTo((short)ErrorCode.None), "the error travels as the server's challenge");
        Assert.That(Encoding.UTF8.GetString(first.AuthBytes), Is.EqualTo("{\"status\":\"invalid_token\"}"));
        var second = await f.Client.SendAsync<SaslAuthenticateResponse>(new SaslAuthenticateRequest { AuthBytes = [0x01] }, 2);
        Assert.That(second.ErrorCode, Is.EqualTo((short)ErrorCode.SaslAuthenticationFailed));
        Assert.That(second.ErrorMessage, Is.EqualTo("{\"status\":\"invalid_token\"}"));
        Assert.That(await f.Client.IsClosedByPeerAsync(TimeSpan.FromSeconds(10)), Is.True);
    }

    [Test]
    public async Task MissingRequiredScope_IsInsufficientScope_NamingTheRequiredScope()
    {
        var time = new ManualTimeProvider();
        await using var f = await StartAsync(time, "unsecuredValidatorRequiredScope=\"produce admin\"");
        var first = await AuthenticateAsync(f.Client, InitialResponse(Jwt(Claims(scope: new JsonArray("produce")))));
        Assert.That(Encoding.UTF8.GetString(first.AuthBytes), Is.EqualTo("{\"status\":\"insufficient_scope\", \"scope\":\"[produce, admin]\"}"));
        var second = await f.Client.SendAsync<SaslAuthenticateResponse>(new SaslAuthenticateRequest { AuthBytes = [0x01] }, 2);
        Assert.That(second.ErrorCode, Is.EqualTo((short)ErrorCode.SaslAuthenticationFailed));

        using var allowed = await RawClient.ConnectAsync(f.Broker.BootstrapServers);
        var ok = await AuthenticateAsync(allowed, InitialResponse(Jwt(Claims(scope: new JsonArray("admin", "produce")))));
        Assert.That(ok.ErrorCode, Is.EqualTo((short)ErrorCode.None));
        Assert.That(ok.AuthBytes, Is.Empty);
    }

    // Control characters in test case names are lost by the test discovery: the messages are chosen by index.
    private static readonly string[] Malformed =
    [
        "n,,auth=Bearer x\u0001\u0001", // no %x01 after the gs2 header
        "n,,\u0001auth=Basic abc\u0001\u0001", // not the Bearer scheme
        "n,,\u0001host=x\u0001\u0001", // no auth
        "y,,\u0001auth=Bearer abc\u0001\u0001", // channel binding flag other than n
    ];

    [TestCase(0)]
    [TestCase(1)]
    [TestCase(2)]
    [TestCase(3)]
    public async Task MalformedClientFirstMessages_AreAuthenticationFailures(int which)
    {
        string message = Malformed[which];
        await using var f = await StartAsync(new ManualTimeProvider());
        var auth = await AuthenticateAsync(f.Client, Encoding.UTF8.GetBytes(message));
        Assert.That(auth.ErrorCode, Is.EqualTo((short)ErrorCode.SaslAuthenticationFailed));
        Assert.That(auth.ErrorMessage, Is.EqualTo("Authentication failed during authentication due to invalid credentials with SASL mechanism OAUTHBEARER"));
    }

    [Test]
    public async Task AuthorizationIdOtherThanThePrincipal_IsRefused()
    {
        await using var f = await StartAsync(new ManualTimeProvider());
        var auth = await AuthenticateAsync(f.Client, InitialResponse(Jwt(Claims()), authzid: "bob"));
        Assert.That(auth.ErrorCode, Is.EqualTo((short)ErrorCode.SaslAuthenticationFailed));
        Assert.That(auth.ErrorMessage, Does.Contain("authorization id (bob) that is different from the token's principal name (alice)"));
    }

    [Test]
    public void StartUp_RefusesANegativeClockSkewAndOtherValidators_NamingTheKey()
    {
        static Task Start(Dictionary<string, string> props)
        {
            var options = new KafkaBrokerOptions { DataDir = "/nonexistent/kayak-oauth" };
            options.Properties["listeners"] = "SASL_PLAINTEXT://127.0.0.1:0";
            options.Properties["sasl.enabled.mechanisms"] = "OAUTHBEARER";
            foreach (var (k, v) in props) options.Properties[k] = v;
            return new KafkaBroker(options).StartAsync();
        }
        var skew = Assert.ThrowsAsync<ConfigException>(() => Start(new() { ["sasl.jaas.config"] = $"{Module} required unsecuredValidatorAllowableClockSkewMs=\"-1\";" }))!;
        Assert.That(skew.Key, Is.EqualTo("sasl.jaas.config"));
        const string handlerKey = "listener.name.sasl_plaintext.oauthbearer.sasl.server.callback.handler.class";
        var handler = Assert.ThrowsAsync<ConfigException>(() => Start(new()
        {
            ["sasl.jaas.config"] = $"{Module} required;",
            [handlerKey] = "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler",
        }))!;
        Assert.That(handler.Key, Is.EqualTo(handlerKey));
        var module = Assert.ThrowsAsync<ConfigException>(() => Start(new() { ["sasl.jaas.config"] = "org.apache.kafka.common.security.plain.PlainLoginModule required;" }))!;
        Assert.That(module.Message, Does.Contain("OAuthBearerLoginModule"));
    }
}
