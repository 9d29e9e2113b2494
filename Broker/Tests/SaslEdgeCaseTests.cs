using System.Buffers.Binary;
using System.Text;
using Kayak.Coordinator.Tests;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>
/// Issue 12, part 7: the SASL entry points where a client misbehaves, as Kafka's SaslServerAuthenticator answers them:
/// SaslAuthenticate before SaslHandshake (closed), a second SaslHandshake or an ApiVersions mid-exchange (answered
/// ILLEGAL_SASL_STATE, then closed), tokens over sasl.server.max.receive.size (closed, while the same frame is fine
/// once authenticated), and a client that never authenticates (closed after connections.max.idle.ms on the broker's
/// TimeProvider, logged with its address).
/// </summary>
[CancelAfter(60_000)]
public class SaslEdgeCaseTests
{
    private static Task<BrokerFixture> StartAsync(Action<KafkaBrokerOptions>? configure = null) => BrokerFixture.StartAsync(o =>
    {
        o.Port = null;
        o.Properties["listeners"] = "SASL_PLAINTEXT://127.0.0.1:0";
        o.Properties["sasl.enabled.mechanisms"] = "PLAIN,SCRAM-SHA-256";
        o.Properties["listener.name.sasl_plaintext.plain.sasl.jaas.config"] =
            "org.apache.kafka.common.security.plain.PlainLoginModule required user_alice=\"alice-secret\";";
        o.Properties["sasl.jaas.config"] = "org.apache.kafka.common.security.scram.ScramLoginModule required;";
        o.ScramCredentials.Add("SCRAM-SHA-256=[name=alice,password=alice-secret]");
        configure?.Invoke(o);
    });

    private static byte[] Plain(string user, string password) => Encoding.UTF8.GetBytes("\0" + user + "\0" + password);

    private static Task<SaslHandshakeResponse> HandshakeAsync(RawClient c, string mechanism) =>
        c.SendAsync<SaslHandshakeResponse>(new SaslHandshakeRequest { Mechanism = mechanism }, 1);

    private static Task<SaslAuthenticateResponse> AuthenticateAsync(RawClient c, byte[] token) =>
        c.SendAsync<SaslAuthenticateResponse>(new SaslAuthenticateRequest { AuthBytes = token }, 2);

    [Test]
    public async Task SaslAuthenticate_BeforeSaslHandshake_ClosesWithoutAnAnswer()
    {
        await using var f = await StartAsync();
        await f.Client.SendOnlyAsync(new SaslAuthenticateRequest { AuthBytes = Plain("alice", "alice-secret") }, 2);
        Assert.That(await f.Client.IsClosedByPeerAsync(TimeSpan.FromSeconds(10)), Is.True);
    }

    [Test]
    public async Task SecondSaslHandshake_MidExchange_IsIllegalSaslState_ThenClosed()
    {
        await using var f = await StartAsync();
        Assert.That((await HandshakeAsync(f.Client, "SCRAM-SHA-256")).ErrorCode, Is.EqualTo((short)ErrorCode.None));
        var first = await AuthenticateAsync(f.Client, "n,,n=alice,r=abcdefgh"u8.ToArray());
        Assert.That(first.ErrorCode, Is.EqualTo((short)ErrorCode.None));
        var again = await HandshakeAsync(f.Client, "PLAIN");
        Assert.That(again.ErrorCode, Is.EqualTo((short)ErrorCode.IllegalSaslState));
        Assert.That(await f.Client.IsClosedByPeerAsync(TimeSpan.FromSeconds(10)), Is.True);
    }

    [Test]
    public async Task ApiVersions_AfterTheHandshake_IsIllegalSaslState_ThenClosed()
    {
        await using var f = await StartAsync();
        await HandshakeAsync(f.Client, "PLAIN");
        var versions = await f.Client.SendAsync<ApiVersionsResponse>(new ApiVersionsRequest(), 3);
        Assert.That(versions.ErrorCode, Is.EqualTo((short)ErrorCode.IllegalSaslState));
        Assert.That(await f.Client.IsClosedByPeerAsync(TimeSpan.FromSeconds(10)), Is.True);
    }

    /// <summary>
    /// A client that sends an ordinary request in the middle of the SASL exchange (after SaslHandshake and the first
    /// SCRAM token, before SaslAuthenticate completes): Kafka's SaslServerAuthenticator answers it with the request's
    /// error response carrying ILLEGAL_SASL_STATE and closes the connection; nothing of the broker's data is served.
    /// </summary>
    [Test]
    public async Task MetadataOrProduce_MidExchange_IsAnsweredIllegalSaslState_ThenClosed()
    {
        await using var f = await StartAsync();
        await f.Broker.CreateTopicAsync("mid-sasl", 1);
        Assert.That((await HandshakeAsync(f.Client, "SCRAM-SHA-256")).ErrorCode, Is.EqualTo((short)ErrorCode.None));
        Assert.That((await AuthenticateAsync(f.Client, "n,,n=alice,r=abcdefgh"u8.ToArray())).ErrorCode, Is.EqualTo((short)ErrorCode.None));
        var metadata = await f.Client.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [new() { Name = "mid-sasl" }] }, 12);
        Assert.That(metadata.Topics.Select(t => (t.Name, t.ErrorCode, t.Partitions.Count)),
            Is.EqualTo(new[] { ("mid-sasl", (short)ErrorCode.IllegalSaslState, 0) }));
        Assert.That(metadata.Brokers, Is.Empty, "no broker endpoints before authentication");
        Assert.That(await f.Client.IsClosedByPeerAsync(TimeSpan.FromSeconds(10)), Is.True);

        using var producer = await RawClient.ConnectAsync(f.Broker.BootstrapServers);
        Assert.That((await HandshakeAsync(producer, "PLAIN")).ErrorCode, Is.EqualTo((short)ErrorCode.None));
        var produce = await producer.SendAsync<ProduceResponse>(new ProduceRequest
        {
            Acks = -1, TimeoutMs = 1000,
            TopicData = [new() { Name = "mid-sasl", PartitionData = [new() { Index = 0, Records = ReadOnlyMemory<byte>.Empty }] }],
        }, 9);
        Assert.That(produce.Responses.Single().PartitionResponses.Single().ErrorCode, Is.EqualTo((short)ErrorCode.IllegalSaslState));
        Assert.That(await producer.IsClosedByPeerAsync(TimeSpan.FromSeconds(10)), Is.True);
        Assert.That(f.Broker.State.Catalog.Lookup("mid-sasl").Topic!.GetPartition(0)!.LogEndOffset, Is.EqualTo(0), "nothing was written");
    }

    /// <summary>An API whose response has no field for the error (DescribeConfigs answers per resource) is closed unanswered.</summary>
    [Test]
    public async Task RequestWithoutAnErrorField_MidExchange_IsClosedWithoutAnAnswer()
    {
        await using var f = await StartAsync();
        Assert.That((await HandshakeAsync(f.Client, "PLAIN")).ErrorCode, Is.EqualTo((short)ErrorCode.None));
        await f.Client.SendOnlyAsync(new DescribeConfigsRequest { Resources = [new() { ResourceType = 4, ResourceName = "1" }] }, 4);
        Assert.That(await f.Client.IsClosedByPeerAsync(TimeSpan.FromSeconds(10)), Is.True);
    }

    /// <summary>A frame header announcing <paramref name="size"/> bytes of SaslAuthenticate, and as much body as fits the test.</summary>
    private static byte[] AuthenticateFrame(int size)
    {
        var frame = new byte[4 + 64];
        BinaryPrimitives.WriteInt32BigEndian(frame, size);
        BinaryPrimitives.WriteInt16BigEndian(frame.AsSpan(4), (short)ApiKey.SaslAuthenticate);
        BinaryPrimitives.WriteInt16BigEndian(frame.AsSpan(6), 2);
        return frame;
    }

    [TestCase(null, 524_289)]
    [TestCase("1024", 1025)]
    public async Task TokensOverSaslServerMaxReceiveSize_AreClosed_ButTheSameSizeIsServedOnceAuthenticated(string? configured, int size)
    {
        await using var f = await StartAsync(o => { if (configured is not null) o.Properties["sasl.server.max.receive.size"] = configured; });
        await HandshakeAsync(f.Client, "PLAIN");
        await f.Client.WriteRawAsync(AuthenticateFrame(size));
        Assert.That(await f.Client.IsClosedByPeerAsync(TimeSpan.FromSeconds(10)), Is.True, "closed before reading the token");

        using var authenticated = await RawClient.ConnectAsync(f.Broker.BootstrapServers);
        await HandshakeAsync(authenticated, "PLAIN");
        Assert.That((await AuthenticateAsync(authenticated, Plain("alice", "alice-secret"))).ErrorCode, Is.EqualTo((short)ErrorCode.None));
        // After authentication only socket.request.max.bytes applies: a Metadata request of more than 1025 bytes
        // (five 249-character topic names) is answered.
        var metadata = await authenticated.SendAsync<MetadataResponse>(new MetadataRequest
        {
            Topics = Enumerable.Range(0, 5).Select(i => new MetadataRequest.MetadataRequestTopic { Name = new string((char)('a' + i), 249) }).ToList(),
            AllowAutoTopicCreation = false,
        }, 9);
        Assert.That(metadata.Topics.Select(t => t.ErrorCode).ToList(), Has.Count.EqualTo(5).And.All.EqualTo((short)ErrorCode.UnknownTopicOrPartition));
    }

    [Test]
    public async Task ClientThatNeverAuthenticates_IsClosedAfterConnectionsMaxIdleMs_AndLoggedWithItsAddress()
    {
        var time = new ManualTimeProvider();
        var logs = new CapturingLoggerFactory();
        await using var f = await StartAsync(o => { o.Time = time; o.LoggerFactory = logs; o.Properties["connections.max.idle.ms"] = "30000"; });
        // An ApiVersions answer shows the connection is being served (its deadline is set), then the client goes quiet.
        await f.Client.SendAsync<ApiVersionsResponse>(new ApiVersionsRequest(), 3);
        using var authenticated = await RawClient.ConnectAsync(f.Broker.BootstrapServers);
        await HandshakeAsync(authenticated, "PLAIN");
        Assert.That((await AuthenticateAsync(authenticated, Plain("alice", "alice-secret"))).ErrorCode, Is.EqualTo((short)ErrorCode.None));

        time.Advance(TimeSpan.FromMilliseconds(29_999));
        // Not yet: the handshake is still answered (the deadline runs from connecting, not from the last request).
        Assert.That((await HandshakeAsync(f.Client, "PLAIN")).ErrorCode, Is.EqualTo((short)ErrorCode.None));
        time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.That(await f.Client.IsClosedByPeerAsync(TimeSpan.FromSeconds(10)), Is.True, "closed at connections.max.idle.ms");
        int port = ((System.Net.IPEndPoint)f.Client.LocalEndPoint!).Port;
        Assert.That(logs.EntriesSince(0).Select(e => e.Message),
            Has.Some.Contains($"Failed authentication with 127.0.0.1:{port} ").And.Some.Contains("connections.max.idle.ms"));
        // The authenticated connection is not affected.
        var metadata = await authenticated.SendAsync<MetadataResponse>(new MetadataRequest { Topics = null }, 9);
        Assert.That(metadata.Brokers, Has.Count.EqualTo(1));
    }
}
