using System.Buffers.Binary;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using Kayak.Protocol.Records;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>
/// The connection pipeline's contract: bad frames close the connection without harming the broker,
/// pipelined requests are answered in order, acks=0 produces no response, KIP-511 version fallback.
/// </summary>
[CancelAfter(30_000)]
public class ConnectionTests
{
    private static readonly TimeSpan CloseTimeout = TimeSpan.FromSeconds(10);

    private static byte[] Frame(int size, params byte[] body)
    {
        var f = new byte[4 + body.Length];
        BinaryPrimitives.WriteInt32BigEndian(f, size);
        body.CopyTo(f, 4);
        return f;
    }

    private static async Task AssertBrokerStillServes(BrokerFixture fx)
    {
        using var other = await RawClient.ConnectAsync(fx.Broker.BootstrapServers);
        var r = await other.SendAsync<ApiVersionsResponse>(new ApiVersionsRequest { ClientSoftwareName = "t", ClientSoftwareVersion = "1" }, 3);
        Assert.That(r.ErrorCode, Is.EqualTo(0));
    }

    [Test]
    public async Task FrameOverSocketRequestMaxBytesClosesConnection()
    {
        await using var fx = await BrokerFixture.StartAsync(o => o.Properties["socket.request.max.bytes"] = "1024");
        // Only the size is sent: the broker must refuse before waiting for (or buffering) 2000 bytes.
        await fx.Client.WriteRawAsync(Frame(2000));
        Assert.That(await fx.Client.IsClosedByPeerAsync(CloseTimeout), Is.True);
        await AssertBrokerStillServes(fx);
    }

    [Test]
    public async Task NegativeFrameSizeClosesConnection()
    {
        await using var fx = await BrokerFixture.StartAsync();
        await fx.Client.WriteRawAsync(Frame(-5));
        Assert.That(await fx.Client.IsClosedByPeerAsync(CloseTimeout), Is.True);
        await AssertBrokerStillServes(fx);
    }

    [Test]
    public async Task UnknownApiKeyClosesConnection()
    {
        await using var fx = await BrokerFixture.StartAsync();
        // api key 9999, version 0, correlation id 1, null client id
        await fx.Client.WriteRawAsync(Frame(10, 0x27, 0x0f, 0, 0, 0, 0, 0, 1, 0xff, 0xff));
        Assert.That(await fx.Client.IsClosedByPeerAsync(CloseTimeout), Is.True);
        await AssertBrokerStillServes(fx);
    }

    [Test]
    public async Task UnsupportedVersionOfOtherApiClosesConnection()
    {
        await using var fx = await BrokerFixture.StartAsync();
        // Metadata (3) v99
        await fx.Client.WriteRawAsync(Frame(10, 0, 3, 0, 99, 0, 0, 0, 1, 0xff, 0xff));
        Assert.That(await fx.Client.IsClosedByPeerAsync(CloseTimeout), Is.True);
    }

    [Test]
    public async Task TruncatedRequestBodyClosesConnection()
    {
        await using var fx = await BrokerFixture.StartAsync();
        // Produce v3 header, then a body that ends inside the transactional id string.
        await fx.Client.WriteRawAsync(Frame(13, 0, 0, 0, 3, 0, 0, 0, 1, 0xff, 0xff, 0, 10, (byte)'x'));
        Assert.That(await fx.Client.IsClosedByPeerAsync(CloseTimeout), Is.True);
        await AssertBrokerStillServes(fx);
    }

    [Test]
    public async Task TooNewApiVersionsIsAnsweredAtV0WithUnsupportedVersion()
    {
        await using var fx = await BrokerFixture.StartAsync();
        // ApiVersions v127 with a header v2 (tagged fields) the broker cannot know how to parse: KIP-511 says
        // answer at v0 with UNSUPPORTED_VERSION and the supported ranges.
        await fx.Client.WriteRawAsync(Frame(11, 0, 18, 0, 127, 0, 0, 0, 7, 0xff, 0xff, 0));
        var (correlationId, frame) = await fx.Client.ReadFrameAsync();
        Assert.That(correlationId, Is.EqualTo(7));
        var reader = new KafkaReader(frame.AsMemory(4));
        var response = new ApiVersionsResponse();
        response.Read(ref reader, 0);
        Assert.That(response.ErrorCode, Is.EqualTo((short)ErrorCode.UnsupportedVersion));
        var apiVersions = response.ApiKeys.Find(k => k.ApiKey == (short)ApiKey.ApiVersions);
        Assert.That(apiVersions, Is.Not.Null);
        Assert.That(apiVersions!.MaxVersion, Is.EqualTo((short)4));
    }

    [Test]
    public async Task InvalidClientSoftwareNameGetsInvalidRequest()
    {
        await using var fx = await BrokerFixture.StartAsync();
        var r = await fx.Client.SendAsync<ApiVersionsResponse>(new ApiVersionsRequest { ClientSoftwareName = "-bad name", ClientSoftwareVersion = "1" }, 3);
        Assert.That(r.ErrorCode, Is.EqualTo((short)ErrorCode.InvalidRequest));
    }

    [Test]
    public async Task ApiVersionsAdvertisesExactlyTheServedTable()
    {
        await using var fx = await BrokerFixture.StartAsync();
        var r = await fx.Client.SendAsync<ApiVersionsResponse>(new ApiVersionsRequest { ClientSoftwareName = "t", ClientSoftwareVersion = "1" }, 3);
        Assert.That(r.ApiKeys.Count, Is.EqualTo(ApiVersionTable.Served.Length));
        foreach (var served in ApiVersionTable.Served)
        {
            var k = r.ApiKeys.Find(a => a.ApiKey == (short)served.Key);
            Assert.That(k, Is.Not.Null, served.Key.ToString());
            Assert.That((k!.MinVersion, k.MaxVersion), Is.EqualTo((served.MinVersion, served.MaxVersion)), served.Key.ToString());
        }
        var produce = r.ApiKeys.Find(a => a.ApiKey == (short)ApiKey.Produce);
        Assert.That(produce!.MinVersion, Is.EqualTo((short)0), "librdkafka needs Produce from v0 (KAFKA-18659)");
    }

    [Test]
    public async Task PipelinedRequestsAreAnsweredInOrder()
    {
        await using var fx = await BrokerFixture.StartAsync();
        fx.CreateTopic("pipelined", 1);
        var sent = new List<int>();
        for (int i = 0; i < 40; i++)
        {
            IApiMessage request = (i % 3) switch
            {
                0 => new ApiVersionsRequest { ClientSoftwareName = "t", ClientSoftwareVersion = "1" },
                1 => new MetadataRequest { Topics = [new MetadataRequest.MetadataRequestTopic { Name = "pipelined" }] },
                // A long poll that waits its full 200 ms: later responses must still come after it.
                _ => new FetchRequest
                {
                    MaxWaitMs = 200,
                    MinBytes = 1,
                    Topics = [new FetchRequest.FetchTopic { Topic = "pipelined", Partitions = [new FetchRequest.FetchPartition { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 1024 }] }],
                },
            };
            sent.Add(await fx.Client.SendOnlyAsync(request, request is FetchRequest ? (short)11 : request is MetadataRequest ? (short)12 : (short)3));
        }
        var received = new List<int>();
        for (int i = 0; i < sent.Count; i++) received.Add((await fx.Client.ReadFrameAsync()).CorrelationId);
        Assert.That(received, Is.EqualTo(sent));
    }

    [Test]
    public async Task ProduceWithAcksZeroSendsNoResponse()
    {
        await using var fx = await BrokerFixture.StartAsync();
        var topic = fx.CreateTopic("acks0", 1);
        int produceId = await fx.Client.SendOnlyAsync(ProduceRequestFor("acks0", Batch(), acks: 0), 9);
        int versionsId = await fx.Client.SendOnlyAsync(new ApiVersionsRequest { ClientSoftwareName = "t", ClientSoftwareVersion = "1" }, 3);
        var (first, _) = await fx.Client.ReadFrameAsync();
        Assert.That(first, Is.EqualTo(versionsId), $"no response expected for produce {produceId}");
        Assert.That(topic.Partitions[0].LogEndOffset, Is.EqualTo(1));
    }

    [Test]
    public async Task CorruptBatchIsRejectedAndNothingIsAppended()
    {
        await using var fx = await BrokerFixture.StartAsync();
        var topic = fx.CreateTopic("corrupt", 1);
        var batch = Batch();
        batch[^1] ^= 0xff; // flip a record byte: CRC no longer matches
        var r = await fx.Client.SendAsync<ProduceResponse>(ProduceRequestFor("corrupt", batch, acks: 1), 9);
        Assert.That(r.Responses[0].PartitionResponses[0].ErrorCode, Is.EqualTo((short)ErrorCode.CorruptMessage));
        Assert.That(topic.Partitions[0].LogEndOffset, Is.EqualTo(0));

        var ok = await fx.Client.SendAsync<ProduceResponse>(ProduceRequestFor("corrupt", Batch(), acks: 1), 9);
        Assert.That(ok.Responses[0].PartitionResponses[0].ErrorCode, Is.EqualTo(0));
        Assert.That(ok.Responses[0].PartitionResponses[0].BaseOffset, Is.EqualTo(0));
    }

    [Test]
    public async Task BatchOverMaxMessageBytesIsMessageTooLarge()
    {
        await using var fx = await BrokerFixture.StartAsync();
        var topic = fx.CreateTopic("small", 1, new Dictionary<string, string> { ["max.message.bytes"] = "100" });
        var r = await fx.Client.SendAsync<ProduceResponse>(ProduceRequestFor("small", Batch(200), acks: -1), 9);
        Assert.That(r.Responses[0].PartitionResponses[0].ErrorCode, Is.EqualTo((short)ErrorCode.MessageTooLarge));
        Assert.That(topic.Partitions[0].LogEndOffset, Is.EqualTo(0));
    }

    [Test]
    public async Task ProduceToUnknownTopicDoesNotCreateIt()
    {
        await using var fx = await BrokerFixture.StartAsync();
        var r = await fx.Client.SendAsync<ProduceResponse>(ProduceRequestFor("nope", Batch(), acks: 1), 9);
        Assert.That(r.Responses[0].PartitionResponses[0].ErrorCode, Is.EqualTo((short)ErrorCode.UnknownTopicOrPartition));
        Assert.That(fx.State.Logs.TryGetTopic("nope", out _), Is.False);
    }

    private static byte[] Batch(int valueSize = 10)
    {
        using var b = new RecordBatchBuilder(new RecordBatchOptions());
        b.Append(1_700_000_000_000, null, new byte[valueSize]);
        return b.ToArray();
    }

    private static ProduceRequest ProduceRequestFor(string topic, byte[] batch, short acks) => new()
    {
        Acks = acks,
        TimeoutMs = 5000,
        TopicData = [new ProduceRequest.TopicProduceData { Name = topic, PartitionData = [new ProduceRequest.PartitionProduceData { Index = 0, Records = batch }] }],
    };
}
