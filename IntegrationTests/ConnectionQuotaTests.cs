using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Kayak.Broker;
using Kayak.IntegrationTests.Drivers;
using Kayak.IntegrationTests.Infrastructure;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using NUnit.Framework;

namespace Kayak.IntegrationTests;

/// <summary>
/// Kafka's connection limits and KIP-612 connection-rate quotas over real sockets. Raw TCP connections bound to other
/// loopback addresses (127.0.0.2, 127.0.0.3) are the limited clients: each sends ApiVersions and is either answered or
/// finds the connection closed. Confluent.Kafka 2.16's AdminClient, connecting from 127.0.0.1, shows an allowed
/// address still connects, and changes max.connections.per.ip.overrides at run time (IncrementalAlterConfigs).
/// Confluent.Kafka has no client-quota admin calls, so the ip entity's connection_creation_rate is set and listed
/// with Kayak.Protocol's AlterClientQuotas / DescribeClientQuotas messages on a raw connection.
/// </summary>
[TestFixture]
[NonParallelizable]
[CancelAfter(120_000)]
public sealed class ConnectionQuotaTests
{
    private static readonly IPAddress Limited = IPAddress.Parse("127.0.0.2");
    private static readonly IPAddress Other = IPAddress.Parse("127.0.0.3");

    [OneTimeSetUp]
    public void Load() => NativeKafka.EnsureLoaded();

    private static CancellationToken Token => TestContext.CurrentContext.CancellationToken;

    private static async Task<(KafkaBroker Broker, string Dir)> StartAsync(string? dir = null, params (string Key, string Value)[] props)
    {
        dir ??= Path.Combine(Path.GetTempPath(), "kayak-itest", "connquota-" + Guid.NewGuid().ToString("N"));
        var options = new KafkaBrokerOptions { DataDir = dir };
        options.Properties["listeners"] = "PLAINTEXT://127.0.0.1:0";
        foreach (var (k, v) in props) options.Properties[k] = v;
        var broker = new KafkaBroker(options);
        await broker.StartAsync(Token);
        return (broker, dir);
    }

    private static async Task StopAsync(KafkaBroker broker, string dir)
    {
        await broker.DisposeAsync();
        try { Directory.Delete(dir, true); } catch (IOException) { }
    }

    /// <summary>A TCP connection to the broker from <paramref name="local"/> (any port).</summary>
    private static async Task<Socket> ConnectFromAsync(IPAddress local, KafkaBroker broker)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(local, 0));
        var l = broker.Listeners[0];
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Parse(l.Host), l.Port), Token);
        return socket;
    }

    private static byte[] Frame(ApiKey key, short version, IApiMessage request, int correlationId = 1)
    {
        var buffer = new ArrayBufferWriter<byte>();
        var writer = new KafkaWriter(buffer);
        writer.WriteInt32(0);
        new RequestHeader { RequestApiKey = (short)key, RequestApiVersion = version, CorrelationId = correlationId, ClientId = "connquota-test" }
            .Write(ref writer, ApiMessageTypes.RequestHeaderVersion(key, version));
        request.Write(ref writer, version);
        writer.Flush();
        var frame = buffer.WrittenSpan.ToArray();
        BinaryPrimitives.WriteInt32BigEndian(frame, frame.Length - 4);
        return frame;
    }

    /// <summary>Sends one request; null when the broker closed the connection instead of answering.</summary>
    private static async Task<T?> SendAsync<T>(Socket socket, ApiKey key, short version, IApiMessage request) where T : class, IApiMessage
    {
        try
        {
            await socket.SendAsync(Frame(key, version, request), SocketFlags.None, Token);
            var stream = new NetworkStream(socket, ownsSocket: false);
            var size = new byte[4];
            await stream.ReadExactlyAsync(size, Token);
            var body = new byte[BinaryPrimitives.ReadInt32BigEndian(size)];
            await stream.ReadExactlyAsync(body, Token);
            var reader = new KafkaReader(body);
            new ResponseHeader().Read(ref reader, ApiMessageTypes.ResponseHeaderVersion(key, version));
            var response = (T)ApiMessageTypes.CreateResponse(key);
            response.Read(ref reader, version);
            return response;
        }
        catch (Exception e) when (e is EndOfStreamException or SocketException or IOException)
        {
            return null; // closed by the broker (FIN or RST)
        }
    }

    /// <summary>True when the broker answers ApiVersions on <paramref name="socket"/>, false when it closes it.</summary>
    private static async Task<bool> AnsweredAsync(Socket socket) =>
        await SendAsync<ApiVersionsResponse>(socket, ApiKey.ApiVersions, 0, new ApiVersionsRequest()) is not null;

    /// <summary>The connection is served once the broker has counted the closed ones out (their close is asynchronous).</summary>
    private static async Task<Socket> ConnectUntilAnsweredAsync(IPAddress local, KafkaBroker broker)
    {
        while (true)
        {
            var s = await ConnectFromAsync(local, broker);
            if (await AnsweredAsync(s)) return s;
            s.Dispose();
            await Task.Delay(50, Token);
        }
    }

    private static async Task<string> ClusterIdAsync(KafkaBroker broker)
    {
        using var admin = ConfluentClients.Admin(broker.BootstrapServers);
        var cluster = await admin.DescribeClusterAsync(new DescribeClusterOptions { RequestTimeout = TimeSpan.FromSeconds(30) });
        return cluster.ClusterId;
    }

    private static Dictionary<ConfigResource, List<ConfigEntry>> BrokerConfigs(params (string Name, string Value)[] entries) => new()
    {
        // The broker's own resource: Confluent.Kafka refuses the cluster default's empty name client-side.
        [new ConfigResource { Type = ResourceType.Broker, Name = "1" }] =
            entries.Select(e => new ConfigEntry { Name = e.Name, Value = e.Value, IncrementalOperation = AlterConfigOpType.Set }).ToList(),
    };

    [Test]
    public async Task PerIpLimit_ClosesTheExtraConnection_AnotherIpStillConnects_AndOverridesChangeAtRunTime()
    {
        var (broker, dir) = await StartAsync(null, ("max.connections.per.ip", "100"), ("max.connections.per.ip.overrides", "127.0.0.2:1"));
        try
        {
            using var first = await ConnectFromAsync(Limited, broker);
            Assert.That(await AnsweredAsync(first), Is.True, "127.0.0.2's first connection is within its override of 1");
            using (var second = await ConnectFromAsync(Limited, broker))
                Assert.That(await AnsweredAsync(second), Is.False, "the second is closed at accept");
            Assert.That(broker.State.ConnectionQuotas.RejectedConnections, Is.EqualTo(1));
            Assert.That(await ClusterIdAsync(broker), Is.Not.Empty, "Confluent.Kafka from 127.0.0.1 (limit 100) still connects");
            using (var other = await ConnectFromAsync(Other, broker))
                Assert.That(await AnsweredAsync(other), Is.True, "127.0.0.3 has the default limit");

            // Kafka's DynamicConnectionQuota: max.connections.per.ip.overrides changes at run time; 127.0.0.3 now has 1.
            using (var admin = ConfluentClients.Admin(broker.BootstrapServers))
            {
                await admin.IncrementalAlterConfigsAsync(BrokerConfigs(("max.connections.per.ip.overrides", "127.0.0.2:2,127.0.0.3:1")));
                var described = await admin.DescribeConfigsAsync([new ConfigResource { Type = ResourceType.Broker, Name = "1" }]);
                var entry = described.Single().Entries["max.connections.per.ip.overrides"];
                Assert.That((entry.Value, entry.IsReadOnly), Is.EqualTo(("127.0.0.2:2,127.0.0.3:1", false)));
            }
            // The earlier 127.0.0.3 connection's close is counted out asynchronously: served once it is.
            using var other1 = await ConnectUntilAnsweredAsync(Other, broker);
            using (var other2 = await ConnectFromAsync(Other, broker))
                Assert.That(await AnsweredAsync(other2), Is.False, "127.0.0.3's new override of 1 applies at once");
            using var limited2 = await ConnectFromAsync(Limited, broker);
            Assert.That(await AnsweredAsync(limited2), Is.True, "127.0.0.2 was raised to 2");
        }
        finally { await StopAsync(broker, dir); }
    }

    [Test]
    public async Task BrokerMaxConnections_HoldsTheNextAccept_UntilAConnectionCloses()
    {
        var (broker, dir) = await StartAsync(null, ("max.connections", "2"));
        try
        {
            var quotas = broker.State.ConnectionQuotas;
            using var a = await ConnectUntilAnsweredAsync(Limited, broker);
            using var b = await ConnectUntilAnsweredAsync(Other, broker);
            Assert.That(quotas.Total, Is.EqualTo(2));
            // Kafka blocks the acceptor (New connections are blocked if either the listener or broker limit is
            // reached): the third client is connected by the OS but not served, and not refused either.
            using var c = await ConnectFromAsync(IPAddress.Loopback, broker);
            var answer = AnsweredAsync(c);
            while (quotas.WaitingAccepts == 0) await Task.Delay(20, Token);
            Assert.That(answer.IsCompleted, Is.False, "not answered while the broker is full");
            b.Dispose();
            Assert.That(await answer, Is.True, "served once a connection closed");
            Assert.That(quotas.RejectedConnections, Is.Zero);
        }
        finally { await StopAsync(broker, dir); }
    }

    private static AlterClientQuotasRequest SetIpRate(string? ip, double rate, bool remove = false)
    {
        var entry = new AlterClientQuotasRequest.EntryData();
        entry.Entity.Add(new AlterClientQuotasRequest.EntityData { EntityType = "ip", EntityName = ip });
        entry.Ops.Add(new AlterClientQuotasRequest.OpData { Key = "connection_creation_rate", Value = rate, Remove = remove });
        return new AlterClientQuotasRequest { Entries = [entry] };
    }

    private static async Task<string> DescribeIpQuotasAsync(KafkaBroker broker)
    {
        using var s = await ConnectFromAsync(IPAddress.Loopback, broker);
        var request = new DescribeClientQuotasRequest { Strict = false };
        request.Components.Add(new DescribeClientQuotasRequest.ComponentData { EntityType = "ip", MatchType = 2, Match = null });
        var r = await SendAsync<DescribeClientQuotasResponse>(s, ApiKey.DescribeClientQuotas, 1, request);
        Assert.That(r!.ErrorCode, Is.Zero, r.ErrorMessage);
        return string.Join("; ", r.Entries!.Select(e => $"{e.Entity.Single().EntityType}={e.Entity.Single().EntityName ?? "<default>"} "
            + string.Join(",", e.Values.Select(v => $"{v.Key}={v.Value}"))).OrderBy(x => x, StringComparer.Ordinal));
    }

    [Test]
    public async Task IpConnectionCreationRate_ClosesTheConnectionOverTheRate_IsDescribed_AndSurvivesARestart()
    {
        // Two 1 s samples: the second connection from 127.0.0.2 within them measures 2/s against 1/s.
        (string, string) window = ("quota.window.num", "2");
        var (broker, dir) = await StartAsync(null, window);
        try
        {
            using (var admin = await ConnectFromAsync(IPAddress.Loopback, broker))
            {
                var set = await SendAsync<AlterClientQuotasResponse>(admin, ApiKey.AlterClientQuotas, 1, SetIpRate("127.0.0.2", 1));
                Assert.That(set!.Entries.Single().ErrorCode, Is.Zero, set.Entries.Single().ErrorMessage);
                var bad = await SendAsync<AlterClientQuotasResponse>(admin, ApiKey.AlterClientQuotas, 1, SetIpRate("127.0.0.2", 1.5));
                Assert.That((bad!.Entries.Single().ErrorCode, bad.Entries.Single().ErrorMessage),
                    Is.EqualTo(((short)Kayak.Protocol.ErrorCode.InvalidRequest, "connection_creation_rate cannot be a fractional value.")));
            }
            Assert.That(await DescribeIpQuotasAsync(broker), Is.EqualTo("ip=127.0.0.2 connection_creation_rate=1"));
            await AssertRateLimitedAsync(broker);

            await broker.DisposeAsync();
            (broker, _) = await StartAsync(dir, window);
            Assert.That(await DescribeIpQuotasAsync(broker), Is.EqualTo("ip=127.0.0.2 connection_creation_rate=1"), "stored with the client quotas");
            await AssertRateLimitedAsync(broker);
        }
        finally { await StopAsync(broker, dir); }
    }

    private static async Task AssertRateLimitedAsync(KafkaBroker broker)
    {
        var quotas = broker.State.ConnectionQuotas;
        long throttledBefore = quotas.ThrottledConnections;
        using (var first = await ConnectFromAsync(Limited, broker))
            Assert.That(await AnsweredAsync(first), Is.True, "the first connection is within 1/s");
        using (var second = await ConnectFromAsync(Limited, broker))
            Assert.That(await AnsweredAsync(second), Is.False, "over the IP's rate: held unread, then closed (ConnectionThrottledException)");
        Assert.That(quotas.ThrottledConnections, Is.EqualTo(throttledBefore + 1));
        // The first connection's close is counted out asynchronously; the throttled one was never counted.
        for (int i = 0; i < 200 && quotas.Count(Limited) != 0; i++) await Task.Delay(50, Token);
        Assert.That(quotas.Count(Limited), Is.Zero, "a throttled connection is never counted");
        Assert.That(await ClusterIdAsync(broker), Is.Not.Empty, "Confluent.Kafka from 127.0.0.1 has no rate quota");
    }
}
