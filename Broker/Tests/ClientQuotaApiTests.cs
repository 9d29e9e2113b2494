using Kayak.Coordinator.Tests;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>
/// DescribeClientQuotas / AlterClientQuotas over the wire at every version, and enforcement as a client sees it
/// (KIP-219): throttle_time_ms in the response, then a muted connection; for old versions a late response; an empty
/// fetch when the consumer is over its quota; THROTTLING_QUOTA_EXCEEDED from CreateTopics v6. The broker runs on a
/// manual clock, so throttles end when the test moves the clock, not after real time.
/// </summary>
[TestFixture]
public sealed class ClientQuotaApiTests
{
    private const string ClientId = "kayak-broker-tests"; // RawClient's header client id
    private static readonly TimeSpan AnswerBound = TimeSpan.FromSeconds(20);
    /// <summary>How long a muted connection is watched for an answer that must not come.</summary>
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(300);

    private static AlterClientQuotasRequest Alter(bool validateOnly, (string Type, string? Name)[] entity, params (string Key, double Value, bool Remove)[] ops)
    {
        var entry = new AlterClientQuotasRequest.EntryData();
        foreach (var (t, n) in entity) entry.Entity.Add(new AlterClientQuotasRequest.EntityData { EntityType = t, EntityName = n });
        foreach (var (k, v, r) in ops) entry.Ops.Add(new AlterClientQuotasRequest.OpData { Key = k, Value = v, Remove = r });
        return new AlterClientQuotasRequest { Entries = [entry], ValidateOnly = validateOnly };
    }

    private static async Task SetAsync(RawClient client, (string, string?)[] entity, string key, double value)
    {
        var r = await client.SendAsync<AlterClientQuotasResponse>(Alter(false, entity, (key, value, false)), 1);
        Assert.That(r.Entries.Single().ErrorCode, Is.EqualTo((short)ErrorCode.None), r.Entries.Single().ErrorMessage);
    }

    private static DescribeClientQuotasRequest Describe(bool strict, params (string Type, sbyte Match, string? Name)[] components)
    {
        var request = new DescribeClientQuotasRequest { Strict = strict };
        foreach (var (t, m, n) in components) request.Components.Add(new DescribeClientQuotasRequest.ComponentData { EntityType = t, MatchType = m, Match = n });
        return request;
    }

    private static string Show(DescribeClientQuotasResponse r) => string.Join("; ", r.Entries!.Select(e =>
        string.Join(",", e.Entity.Select(x => $"{x.EntityType}={x.EntityName ?? "<default>"}")) + " " +
        string.Join(",", e.Values.OrderBy(v => v.Key).Select(v => $"{v.Key}={v.Value}"))).OrderBy(s => s));

    [Test]
    public async Task AlterAndDescribe_AtEveryVersion([Values(0, 1)] short version)
    {
        await using var fx = await BrokerFixture.StartAsync();
        var c = fx.Client;
        var set = await c.SendAsync<AlterClientQuotasResponse>(Alter(false, [("user", "alice"), ("client-id", null)],
            ("producer_byte_rate", 1048576, false), ("request_percentage", 25.5, false)), version);
        Assert.That(set.Entries.Single().ErrorCode, Is.EqualTo((short)ErrorCode.None), set.Entries.Single().ErrorMessage);
        Assert.That(set.Entries.Single().Entity.Select(e => (e.EntityType, e.EntityName)), Is.EqualTo(new (string, string?)[] { ("user", "alice"), ("client-id", null) }));

        var checkedOnly = await c.SendAsync<AlterClientQuotasResponse>(Alter(true, [("client-id", "app")], ("consumer_byte_rate", 10, false)), version);
        Assert.That(checkedOnly.Entries.Single().ErrorCode, Is.EqualTo((short)ErrorCode.None));
        var bad = await c.SendAsync<AlterClientQuotasResponse>(Alter(false, [("client-id", "app")], ("consumer_bytes", 10, false)), version);
        Assert.That((bad.Entries.Single().ErrorCode, bad.Entries.Single().ErrorMessage), Is.EqualTo(((short)ErrorCode.InvalidRequest, "Invalid configuration key consumer_bytes")));
        await c.SendAsync<AlterClientQuotasResponse>(Alter(false, [("client-id", "app")], ("consumer_byte_rate", 4096, false)), version);

        var all = await c.SendAsync<DescribeClientQuotasResponse>(Describe(false), version);
        Assert.That(all.ErrorCode, Is.EqualTo((short)ErrorCode.None));
        Assert.That(Show(all), Is.EqualTo("client-id=app consumer_byte_rate=4096; user=alice,client-id=<default> producer_byte_rate=1048576,request_percentage=25.5"));
        var strictUser = await c.SendAsync<DescribeClientQuotasResponse>(Describe(true, ("user", 0, "alice")), version);
        Assert.That(strictUser.Entries, Is.Empty, "strict: alice's entity also has a client-id");
        var userAndDefault = await c.SendAsync<DescribeClientQuotasResponse>(Describe(true, ("user", 0, "alice"), ("client-id", 1, null)), version);
        Assert.That(userAndDefault.Entries, Has.Count.EqualTo(1));

        var badFilter = await c.SendAsync<DescribeClientQuotasResponse>(Describe(false, ("user", 1, "x")), version);
        Assert.That((badFilter.ErrorCode, badFilter.ErrorMessage, badFilter.Entries),
            Is.EqualTo(((short)ErrorCode.InvalidRequest, "Request specified MATCH_TYPE_DEFAULT, but also specified a match string.", (List<DescribeClientQuotasResponse.EntryData>?)null)));

        var removed = await c.SendAsync<AlterClientQuotasResponse>(Alter(false, [("client-id", "app")], ("consumer_byte_rate", 0, true)), version);
        Assert.That(removed.Entries.Single().ErrorCode, Is.EqualTo((short)ErrorCode.None));
        Assert.That((await c.SendAsync<DescribeClientQuotasResponse>(Describe(false, ("client-id", 2, null)), version)).Entries, Has.Count.EqualTo(1),
            "the removed entity is gone, alice's default-client entity remains");
    }

    [Test]
    public async Task Quotas_SurviveARestart_AndApplyFromTheFirstRequest()
    {
        var dir = Path.Combine(Path.GetTempPath(), "kayak-quota-restart-" + Guid.NewGuid().ToString("N"));
        try
        {
            await using (var broker = new KafkaBroker(new KafkaBrokerOptions { Port = 0, DataDir = dir }))
            {
                await broker.StartAsync();
                using var c = await RawClient.ConnectAsync(broker.BootstrapServers);
                await SetAsync(c, [("client-id", ClientId)], "producer_byte_rate", 100);
            }
            await using (var broker = new KafkaBroker(new KafkaBrokerOptions { Port = 0, DataDir = dir }))
            {
                await broker.StartAsync();
                await broker.CreateTopicAsync("t", 1);
                using var c = await RawClient.ConnectAsync(broker.BootstrapServers);
                var described = await c.SendAsync<DescribeClientQuotasResponse>(Describe(false), 1);
                Assert.That(Show(described), Is.EqualTo($"client-id={ClientId} producer_byte_rate=100"));
                var produced = await c.SendAsync<ProduceResponse>(Produce("t", 4000), 9);
                Assert.That(produced.ThrottleTimeMs, Is.GreaterThan(0), "the stored quota throttles the first produce");
            }
        }
        finally { try { Directory.Delete(dir, recursive: true); } catch (IOException) { } }
    }

    private static ProduceRequest Produce(string topic, int valueBytes)
    {
        using var builder = new Kayak.Protocol.Records.RecordBatchBuilder(new Kayak.Protocol.Records.RecordBatchOptions());
        builder.Append(1_700_000_000_000, null, new byte[valueBytes]);
        return new ProduceRequest
        {
            Acks = 1,
            TimeoutMs = 5000,
            TopicData = [new() { Name = topic, PartitionData = [new() { Index = 0, Records = builder.ToArray() }] }],
        };
    }

    private static int FrameSize(IApiMessage request, short version) => RawClient.Encode(request, version, 1).Length - 4;

    [Test]
    public async Task ProduceOverQuota_IsAnsweredAtOnceWithThrottleTime_ThenTheConnectionIsMuted()
    {
        var clock = new ManualTimeProvider();
        await using var fx = await BrokerFixture.StartAsync(o => o.Time = clock);
        await fx.Broker.CreateTopicAsync("t", 1);
        await SetAsync(fx.Client, [("client-id", ClientId)], "producer_byte_rate", 100);

        var request = Produce("t", 2000);
        int size = FrameSize(request, 9);
        // Kafka's formula over a fresh sensor's 10 s minimum window: (size / 10 - 100) / 100 * 10000 ms.
        int expected = (int)Math.Round((size / 10.0 - 100) / 100 * 10_000);
        var response = await fx.Client.SendAsync<ProduceResponse>(request, 9).WaitAsync(AnswerBound);
        Assert.That(response.Responses.Single().PartitionResponses.Single().ErrorCode, Is.EqualTo((short)ErrorCode.None));
        Assert.That(response.ThrottleTimeMs, Is.EqualTo(expected));

        // KIP-219: the next request is not read until the throttle time has passed on the broker's clock.
        await fx.Client.SendOnlyAsync(new MetadataRequest { Topics = [] }, 12);
        var next = fx.Client.ReadFrameAsync();
        Assert.That(await Task.WhenAny(next, Task.Delay(Quiet)), Is.Not.SameAs(next), "a muted connection answers nothing");
        clock.AdvanceMs(expected - 1);
        Assert.That(await Task.WhenAny(next, Task.Delay(Quiet)), Is.Not.SameAs(next), "still muted 1 ms before the end");
        clock.AdvanceMs(1);
        await next.WaitAsync(AnswerBound);
    }

    [Test]
    public async Task ProduceOverQuota_AtAVersionBeforeKip219_GetsItsResponseLate()
    {
        var clock = new ManualTimeProvider();
        await using var fx = await BrokerFixture.StartAsync(o => o.Time = clock);
        await fx.Broker.CreateTopicAsync("t", 1);
        await SetAsync(fx.Client, [("user", null)], "producer_byte_rate", 100); // the default user: ANONYMOUS here

        var request = Produce("t", 3000);
        int expected = (int)Math.Round((FrameSize(request, 5) / 10.0 - 100) / 100 * 10_000);
        await fx.Client.SendOnlyAsync(request, 5);
        var answer = fx.Client.ReadFrameAsync();
        Assert.That(await Task.WhenAny(answer, Task.Delay(Quiet)), Is.Not.SameAs(answer), "Produce v5 clients do not throttle themselves");
        clock.AdvanceMs(expected);
        var (_, frame) = await answer.WaitAsync(AnswerBound);
        var reader = new KafkaReader(frame.AsMemory(4));
        var body = new ProduceResponse();
        body.Read(ref reader, 5);
        Assert.That(body.ThrottleTimeMs, Is.EqualTo(expected), "the late response still reports the throttle");
    }

    [Test]
    public async Task FetchOverQuota_IsAnsweredEmpty_AndTheDataComesOnceTheThrottleEnds()
    {
        var clock = new ManualTimeProvider();
        await using var fx = await BrokerFixture.StartAsync(o => o.Time = clock);
        await fx.Broker.CreateTopicAsync("t", 1);
        fx.State.Topics.TryGet("t", out var topic);
        BrokerFixture.Produce(topic.Partitions[0], 50);
        await SetAsync(fx.Client, [("client-id", null)], "consumer_byte_rate", 10);

        FetchRequest Fetch() => new()
        {
            ReplicaId = -1, MaxWaitMs = 0, MinBytes = 1, MaxBytes = 1 << 20, SessionId = 0, SessionEpoch = -1,
            Topics = [new FetchRequest.FetchTopic { Topic = "t", Partitions = [new FetchRequest.FetchPartition { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 1 << 20 }] }],
        };
        var throttled = await fx.Client.SendAsync<FetchResponse>(Fetch(), 11).WaitAsync(AnswerBound);
        Assert.That(throttled.ThrottleTimeMs, Is.GreaterThan(0));
        Assert.That(throttled.Responses, Is.Empty, "a throttled fetch carries no data (KafkaApis: getThrottledResponse)");

        // Once the mute ends and the quota is lifted, the same fetch returns the data.
        clock.AdvanceMs(throttled.ThrottleTimeMs);
        await SetAsync(fx.Client, [("client-id", null)], "consumer_byte_rate", 1_000_000);
        var served = await fx.Client.SendAsync<FetchResponse>(Fetch(), 11).WaitAsync(AnswerBound);
        Assert.That(served.ThrottleTimeMs, Is.Zero);
        Assert.That(served.Responses.Single().Partitions.Single().HighWatermark, Is.EqualTo(50));
    }

    [Test]
    public async Task CreateTopics_OverControllerMutationRate_V6IsRefusedPerTopic_V5IsThrottled()
    {
        var clock = new ManualTimeProvider();
        await using var fx = await BrokerFixture.StartAsync(o => o.Time = clock);
        await SetAsync(fx.Client, [("user", "ANONYMOUS")], "controller_mutation_rate", 1); // burst: 11 partitions

        CreateTopicsRequest Create(params (string Name, int Partitions)[] topics) => new()
        {
            TimeoutMs = 5000,
            Topics = [.. topics.Select(t => new CreateTopicsRequest.CreatableTopic { Name = t.Name, NumPartitions = t.Partitions, ReplicationFactor = 1 })],
        };
        var first = await fx.Client.SendAsync<CreateTopicsResponse>(Create(("a", 10), ("b", 10), ("c", 1)), 6).WaitAsync(AnswerBound);
        Assert.That(first.Topics.Select(t => (t.Name, (ErrorCode)t.ErrorCode)), Is.EqualTo(new[]
        {
            ("a", ErrorCode.None), ("b", ErrorCode.None), ("c", ErrorCode.ThrottlingQuotaExceeded),
        }));
        Assert.That(first.Topics[2].ErrorMessage, Is.EqualTo("The throttling quota has been exceeded."));
        Assert.That(first.ThrottleTimeMs, Is.EqualTo(9000), "9 partitions of debt at 1/s");
        Assert.That(fx.State.Topics.TryGet("c", out _), Is.False);

        clock.AdvanceMs(9000);
        var permissive = await fx.Client.SendAsync<CreateTopicsResponse>(Create(("d", 5)), 5).WaitAsync(AnswerBound);
        Assert.That((ErrorCode)permissive.Topics.Single().ErrorCode, Is.EqualTo(ErrorCode.None), "v5 is permissive: created");
        Assert.That(permissive.ThrottleTimeMs, Is.EqualTo(5000), "and throttled by its debt");
    }

    [Test]
    public async Task CreatePartitionsV3_AndDeleteTopicsV5_AreRefusedOverControllerMutationRate_OlderVersionsAreThrottled()
    {
        var clock = new ManualTimeProvider();
        await using var fx = await BrokerFixture.StartAsync(o => o.Time = clock);
        foreach (var name in new[] { "g1", "g2", "d1", "d2" }) await fx.Broker.CreateTopicAsync(name, 4);
        await SetAsync(fx.Client, [("client-id", null)], "controller_mutation_rate", 1); // burst: 11 partitions

        CreatePartitionsRequest Grow(string topic, int count) => new() { TimeoutMs = 5000, Topics = [new() { Name = topic, Count = count, Assignments = null }] };
        var grown = await fx.Client.SendAsync<CreatePartitionsResponse>(Grow("g1", 16), 3).WaitAsync(AnswerBound); // 12 added: -1 left
        Assert.That(((ErrorCode)grown.Results.Single().ErrorCode, grown.ThrottleTimeMs), Is.EqualTo((ErrorCode.None, 0)),
            "strict mode checks before recording: the growth that empties the bucket is not throttled (Kafka's StrictControllerMutationQuota)");
        var refused = await fx.Client.SendAsync<CreatePartitionsResponse>(Grow("g2", 5), 3).WaitAsync(AnswerBound);
        Assert.That(((ErrorCode)refused.Results.Single().ErrorCode, refused.ThrottleTimeMs), Is.EqualTo((ErrorCode.ThrottlingQuotaExceeded, 1000)));
        Assert.That(fx.State.Topics.TryGet("g2", out var g2) ? g2.Partitions.Count : 0, Is.EqualTo(4), "a refused growth changes nothing");

        // Each refusal muted its connection for the throttle time (the clock stands still): the quota is the client
        // id's, so fresh connections of the same client id are still in debt.
        using var second = await RawClient.ConnectAsync(fx.Broker.BootstrapServers);
        using var third = await RawClient.ConnectAsync(fx.Broker.BootstrapServers);
        var deleteRefused = await second.SendAsync<DeleteTopicsResponse>(new DeleteTopicsRequest { TopicNames = ["d1"], TimeoutMs = 5000 }, 5).WaitAsync(AnswerBound);
        Assert.That((ErrorCode)deleteRefused.Responses.Single().ErrorCode, Is.EqualTo(ErrorCode.ThrottlingQuotaExceeded));
        Assert.That(fx.State.Topics.TryGet("d1", out _), Is.True);
        // DeleteTopics v4 is permissive: deleted, and the client is told to wait for its debt (1 + 4 partitions at 1/s).
        var deleted = await third.SendAsync<DeleteTopicsResponse>(new DeleteTopicsRequest { TopicNames = ["d2"], TimeoutMs = 5000 }, 4).WaitAsync(AnswerBound);
        Assert.That(((ErrorCode)deleted.Responses.Single().ErrorCode, deleted.ThrottleTimeMs), Is.EqualTo((ErrorCode.None, 5000)));
        Assert.That(fx.State.Topics.TryGet("d2", out _), Is.False);
    }
}
