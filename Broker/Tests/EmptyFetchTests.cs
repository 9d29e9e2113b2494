using Kayak.Protocol;
using Kayak.Protocol.Messages;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>
/// Kafka answers a fetch with nothing to read at once (KafkaApis.handleFetchRequest: no interesting partitions;
/// ReplicaManager.fetchMessages: no partitions requested) instead of parking it for MaxWaitMs. The broker runs on
/// a frozen clock whose timers never fire, so a parked fetch is never answered: getting an answer at all proves
/// it was not parked, with no timing in the assertion.
/// </summary>
[TestFixture]
public sealed class EmptyFetchTests
{
    private const int MaxWaitMs = 30_000;
    private static readonly TimeSpan AnswerBound = TimeSpan.FromSeconds(20);

    private static Task<BrokerFixture> StartFrozenAsync() => BrokerFixture.StartAsync(o => o.Time = new FrozenTime());

    [TestCase((short)4)]
    [TestCase((short)12)]
    [TestCase((short)17)]
    public async Task FetchWithoutPartitionsIsAnsweredAtOnce(short version)
    {
        await using var fx = await StartFrozenAsync();
        var response = await fx.Client.SendAsync<FetchResponse>(Fetch(sessionId: 0, epoch: -1), version).WaitAsync(AnswerBound);
        Assert.That(response.ErrorCode, Is.EqualTo((short)ErrorCode.None));
        Assert.That(response.Responses, Is.Empty);
        Assert.That(response.SessionId, Is.EqualTo(0));
    }

    [Test]
    public async Task SessionClosingFetchIsAnsweredAtOnce()
    {
        await using var fx = await StartFrozenAsync();
        var topic = fx.CreateTopic("closing", 1);
        // Epoch 0 opens a session; the partition has data so this first fetch is not parked either.
        BrokerFixture.Produce(topic.Partitions[0], 1);
        var open = Fetch(sessionId: 0, epoch: 0);
        open.Topics.Add(new FetchRequest.FetchTopic { Topic = "closing", Partitions = [new FetchRequest.FetchPartition { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 1 << 20 }] });
        var opened = await fx.Client.SendAsync<FetchResponse>(open, 12).WaitAsync(AnswerBound);
        Assert.That(opened.SessionId, Is.Not.EqualTo(0));

        // What a Java consumer's close() sends: the session id, epoch -1 (FINAL_EPOCH), no partitions.
        var closed = await fx.Client.SendAsync<FetchResponse>(Fetch(opened.SessionId, epoch: -1), 12).WaitAsync(AnswerBound);
        Assert.That(closed.ErrorCode, Is.EqualTo((short)ErrorCode.None));
        Assert.That(closed.SessionId, Is.EqualTo(0), "a FINAL_EPOCH fetch creates no session");
        Assert.That(closed.Responses, Is.Empty);

        // The session is gone: an incremental fetch on it is refused.
        var stale = await fx.Client.SendAsync<FetchResponse>(Fetch(opened.SessionId, epoch: 1), 12).WaitAsync(AnswerBound);
        Assert.That(stale.ErrorCode, Is.EqualTo((short)ErrorCode.FetchSessionIdNotFound));
    }

    [Test]
    public async Task IncrementalFetchOfASessionWithAllPartitionsForgottenIsAnsweredAtOnce()
    {
        await using var fx = await StartFrozenAsync();
        var topic = fx.CreateTopic("forget", 1);
        BrokerFixture.Produce(topic.Partitions[0], 1);
        var open = Fetch(sessionId: 0, epoch: 0);
        open.Topics.Add(new FetchRequest.FetchTopic { Topic = "forget", Partitions = [new FetchRequest.FetchPartition { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 1 << 20 }] });
        var opened = await fx.Client.SendAsync<FetchResponse>(open, 12).WaitAsync(AnswerBound);

        var forget = Fetch(opened.SessionId, epoch: 1);
        forget.ForgottenTopicsData.Add(new FetchRequest.ForgottenTopic { Topic = "forget", Partitions = [0] });
        var response = await fx.Client.SendAsync<FetchResponse>(forget, 12).WaitAsync(AnswerBound);
        Assert.That(response.ErrorCode, Is.EqualTo((short)ErrorCode.None));
        Assert.That(response.SessionId, Is.EqualTo(opened.SessionId));
        Assert.That(response.Responses, Is.Empty);
    }

    [Test]
    public async Task FetchOfOnlyUnknownTopicsIsAnsweredAtOnce()
    {
        await using var fx = await StartFrozenAsync();
        var request = Fetch(sessionId: 0, epoch: -1);
        request.Topics.Add(new FetchRequest.FetchTopic { Topic = "nope", Partitions = [new FetchRequest.FetchPartition { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 1024 }] });
        var response = await fx.Client.SendAsync<FetchResponse>(request, 12).WaitAsync(AnswerBound);
        Assert.That(response.Responses.Single().Partitions.Single().ErrorCode, Is.EqualTo((short)ErrorCode.UnknownTopicOrPartition));
    }

    /// <summary>
    /// The control: a fetch with a partition to read and no data stays parked on the frozen clock (it would be
    /// answered after MaxWaitMs on a real one), also when an unknown partition sits next to it, as in Kafka.
    /// Closing the connection releases it.
    /// </summary>
    [TestCase(false)]
    [TestCase(true)]
    public async Task FetchWithAPartitionToReadWaits(bool withUnknownPartition)
    {
        await using var fx = await StartFrozenAsync();
        fx.CreateTopic("idle", 1);
        var request = Fetch(sessionId: 0, epoch: -1);
        request.Topics.Add(new FetchRequest.FetchTopic { Topic = "idle", Partitions = [new FetchRequest.FetchPartition { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 1024 }] });
        if (withUnknownPartition)
            request.Topics.Add(new FetchRequest.FetchTopic { Topic = "nope", Partitions = [new FetchRequest.FetchPartition { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 1024 }] });
        using var parked = await RawClient.ConnectAsync(fx.Broker.BootstrapServers);
        var pending = parked.SendAsync<FetchResponse>(request, 12);
        // A live request on the shared connection is answered, so the broker has read and parked the fetch.
        await fx.Client.SendAsync<ApiVersionsResponse>(new ApiVersionsRequest { ClientSoftwareName = "t", ClientSoftwareVersion = "1" }, 3).WaitAsync(AnswerBound);
        var first = await Task.WhenAny(pending, Task.Delay(500));
        Assert.That(first, Is.Not.SameAs(pending), "a fetch with a readable partition and MinBytes unmet must wait");
        parked.Dispose();
        try { await pending; } catch (Exception e) when (e is IOException or ObjectDisposedException or EndOfStreamException or System.Net.Sockets.SocketException) { }
    }

    private static FetchRequest Fetch(int sessionId, int epoch) => new()
    {
        ReplicaId = -1,
        MaxWaitMs = MaxWaitMs,
        MinBytes = 1,
        MaxBytes = 1 << 20,
        IsolationLevel = 0,
        SessionId = sessionId,
        SessionEpoch = epoch,
    };

    /// <summary>A clock that never moves: timestamps are constant and timers never fire.</summary>
    private sealed class FrozenTime : TimeProvider
    {
        public override long GetTimestamp() => 1_000_000;
        public override DateTimeOffset GetUtcNow() => new(2025, 3, 18, 0, 0, 0, TimeSpan.Zero);
        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) => new NeverTimer();

        private sealed class NeverTimer : ITimer
        {
            public bool Change(TimeSpan dueTime, TimeSpan period) => true;
            public void Dispose() { }
            public ValueTask DisposeAsync() => ValueTask.CompletedTask;
        }
    }
}
