using System.Text;
using Kayak.Broker.Security;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>
/// Issue 12: the delegation token APIs (KIP-48, keys 38-41) answered as a Kafka 4.0 cluster without
/// delegation.token.secret.key: DELEGATION_TOKEN_REQUEST_NOT_ALLOWED on PLAINTEXT, DELEGATION_TOKEN_AUTH_DISABLED on an
/// authenticated SASL connection, and CreateDelegationToken's broker-side checks (CREATE_TOKENS on another owner,
/// renewers that are not users) before that.
/// </summary>
[CancelAfter(60_000)]
public class DelegationTokenTests
{
    private static async Task<ErrorCode[]> AllFourAsync(RawClient c, int correlationBase = 10)
    {
        var create = await c.SendAsync<CreateDelegationTokenResponse>(new CreateDelegationTokenRequest { MaxLifetimeMs = -1 }, 3);
        var renew = await c.SendAsync<RenewDelegationTokenResponse>(new RenewDelegationTokenRequest { Hmac = [1, 2, 3], RenewPeriodMs = 1000 }, 2);
        var expire = await c.SendAsync<ExpireDelegationTokenResponse>(new ExpireDelegationTokenRequest { Hmac = [1, 2, 3], ExpiryTimePeriodMs = -1 }, 2);
        var describe = await c.SendAsync<DescribeDelegationTokenResponse>(new DescribeDelegationTokenRequest { Owners = null }, 3);
        Assert.That(describe.Tokens, Is.Empty);
        return [(ErrorCode)create.ErrorCode, (ErrorCode)renew.ErrorCode, (ErrorCode)expire.ErrorCode, (ErrorCode)describe.ErrorCode];
    }

    [Test]
    public async Task OnPlaintext_EveryTokenRequest_IsNotAllowed()
    {
        await using var f = await BrokerFixture.StartAsync();
        var versions = await f.Client.SendAsync<ApiVersionsResponse>(new ApiVersionsRequest(), 3);
        Assert.That(versions.ApiKeys.Where(k => k.ApiKey is >= 38 and <= 41).Select(k => (k.ApiKey, k.MaxVersion)),
            Is.EqualTo(new[] { ((short)38, (short)3), ((short)39, (short)2), ((short)40, (short)2), ((short)41, (short)3) }));
        Assert.That(await AllFourAsync(f.Client), Is.All.EqualTo(ErrorCode.DelegationTokenRequestNotAllowed));
    }

    [Test]
    public async Task OnSasl_TokenAuthIsDisabled_AfterCreatesBrokerSideChecks()
    {
        string dir = Path.Combine(Path.GetTempPath(), "kayak-dt-" + Guid.NewGuid().ToString("N"));
        var o = new KafkaBrokerOptions { DataDir = dir };
        o.Properties["listeners"] = "SASL_PLAINTEXT://127.0.0.1:0";
        o.Properties["sasl.enabled.mechanisms"] = "PLAIN";
        o.Properties["sasl.jaas.config"] = "org.apache.kafka.common.security.plain.PlainLoginModule required user_bob=\"bob-secret\";";
        o.Properties["authorizer.class.name"] = StandardAuthorizer.ClassName;
        try
        {
            await using var broker = new KafkaBroker(o);
            await broker.StartAsync();
            using var bob = await RawClient.ConnectAsync(broker.BootstrapServers);
            await bob.SendAsync<SaslHandshakeResponse>(new SaslHandshakeRequest { Mechanism = "PLAIN" }, 1);
            var auth = await bob.SendAsync<SaslAuthenticateResponse>(new SaslAuthenticateRequest { AuthBytes = Encoding.UTF8.GetBytes("\0bob\0bob-secret") }, 2);
            Assert.That(auth.ErrorCode, Is.EqualTo(0));

            Assert.That(await AllFourAsync(bob), Is.All.EqualTo(ErrorCode.DelegationTokenAuthDisabled));

            var own = await bob.SendAsync<CreateDelegationTokenResponse>(new CreateDelegationTokenRequest { MaxLifetimeMs = -1 }, 3);
            Assert.That((own.PrincipalType, own.PrincipalName, own.TokenRequesterPrincipalType, own.TokenRequesterPrincipalName),
                Is.EqualTo(("User", "bob", "User", "bob")), "the owner defaults to the requester");
            var forAlice = await bob.SendAsync<CreateDelegationTokenResponse>(new CreateDelegationTokenRequest
            {
                OwnerPrincipalType = "User", OwnerPrincipalName = "alice", MaxLifetimeMs = -1,
            }, 3);
            Assert.That(forAlice.ErrorCode, Is.EqualTo((short)ErrorCode.DelegationTokenAuthorizationFailed), "CREATE_TOKENS on User:alice is needed");
            var groupRenewer = await bob.SendAsync<CreateDelegationTokenResponse>(new CreateDelegationTokenRequest
            {
                Renewers = [new() { PrincipalType = "Group", PrincipalName = "ops" }], MaxLifetimeMs = -1,
            }, 3);
            Assert.That(groupRenewer.ErrorCode, Is.EqualTo((short)ErrorCode.InvalidPrincipalType));
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }
}
