using Kayak.Broker.Network;
using Kayak.Protocol.Messages;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>
/// Issue 15, K8: request memory is bounded. With queued.max.request.bytes reached, connections are not read until
/// frames are given back (Kafka's MemoryPool muting); large frames are not kept in a pool afterwards.
/// </summary>
[CancelAfter(30_000)]
public class RequestMemoryTests
{
    [Test]
    public async Task AtTheCap_NewRequestsWait_UntilTheHeldFrameIsGivenBack()
    {
        await using var fx = await BrokerFixture.StartAsync(o => o.Properties["queued.max.request.bytes"] = "1048576");
        fx.CreateTopic("big", 1);
        var memory = fx.State.RequestMemory;

        // A 900 KB produce sent halfway: the broker holds a ~1 MiB frame buffer for it, and the cap is reached.
        using var builder = new Kayak.Protocol.Records.RecordBatchBuilder(new Kayak.Protocol.Records.RecordBatchOptions());
        builder.Append(1_700_000_000_000, null, new byte[900_000]);
        var frame = RawClient.Encode(new ProduceRequest
        {
            Acks = 1,
            TimeoutMs = 5000,
            TopicData = [new() { Name = "big", PartitionData = [new() { Index = 0, Records = builder.ToArray() }] }],
        }, 9, correlationId: 1);
        using var slow = await RawClient.ConnectAsync(fx.Broker.BootstrapServers);
        await slow.WriteRawAsync(frame[..(frame.Length / 2)]);
        await WaitUntil(() => memory.Used >= 1 << 20);

        // Another connection's small request is not read meanwhile.
        using var other = await RawClient.ConnectAsync(fx.Broker.BootstrapServers);
        var pending = other.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [] }, 9);
        await Task.WhenAny(pending, Task.Delay(500));
        Assert.That(pending.IsCompleted, Is.False, "a request read past queued.max.request.bytes");

        // The rest arrives: the produce is answered, its frame given back, and the waiting connection is read.
        await slow.WriteRawAsync(frame[(frame.Length / 2)..]);
        var (correlationId, _) = await slow.ReadFrameAsync();
        Assert.That(correlationId, Is.EqualTo(1));
        var md = await pending;
        Assert.That(md.Brokers, Has.Count.EqualTo(1));
        await WaitUntil(() => memory.Used == 0);
    }

    [Test]
    public void LargeFrames_AreNotPooled_AndEveryByteIsAccountedUntilReturned()
    {
        var memory = new RequestMemory(-1);
        var small = memory.Rent(1000);
        var large = memory.Rent(RequestMemory.PooledMaximum + 1);
        Assert.That(large.Length, Is.EqualTo(RequestMemory.PooledMaximum + 1), "a large frame is its own array, sized exactly");
        Assert.That(memory.Used, Is.EqualTo(small.Length + large.Length));
        memory.Return(large);
        memory.Return(small);
        Assert.That(memory.Used, Is.EqualTo(0));
        // The pool does not hand the large array out again: it was never given to it.
        var again = memory.Rent(RequestMemory.PooledMaximum + 1);
        Assert.That(ReferenceEquals(again, large), Is.False);
        memory.Return(again);
        Assert.That(memory.HasRoom);
    }

    [Test]
    public void IdleTrim_ComesOnceAfterABusyPeriod_WhenTrafficDropsToATrickle()
    {
        var memory = new Network.RequestMemory(0);
        void Requests(int n) { for (int i = 0; i < n; i++) memory.Return(memory.Rent(64)); }
        Requests(50);
        Assert.That(memory.ShouldTrimIdle(), Is.False, "a trickle with no busy period before it");
        Requests(5_000);
        Assert.That(memory.ShouldTrimIdle(), Is.False, "busy");
        Requests(4_000);
        Assert.That(memory.ShouldTrimIdle(), Is.False, "still busy");
        Requests(10); // health checks only
        Assert.That(memory.ShouldTrimIdle(), Is.True, "back to a trickle after load");
        Requests(10);
        Assert.That(memory.ShouldTrimIdle(), Is.False, "once, until the next busy period");
        Assert.That(memory.ShouldTrimIdle(), Is.False);
        Requests(3_000);
        Assert.That(memory.ShouldTrimIdle(), Is.False);
        Assert.That(memory.ShouldTrimIdle(), Is.True, "idle after the next load");
    }

    [Test]
    public void IdleTrim_ComesWhenConnectionsStopClosing_AfterManyClosed()
    {
        // The full-size campaign's shape: the busiest requests come first (and trim), 2,000 connections close at the end
        // while a health check goes on at the same rate; their buffers are garbage only a collection gives back.
        var memory = new Network.RequestMemory(0);
        void Requests(int n) { for (int i = 0; i < n; i++) memory.Return(memory.Rent(64)); }
        void Close(int n) { for (int i = 0; i < n; i++) memory.ConnectionClosed(); }
        Requests(5_000);
        Assert.That(memory.ShouldTrimIdle(), Is.False, "busy");
        Requests(100);
        Assert.That(memory.ShouldTrimIdle(), Is.True, "trickle after the burst");
        Requests(100);
        Assert.That(memory.ShouldTrimIdle(), Is.False, "same trickle");
        Close(Network.RequestMemory.TrimAfterClosedConnections - 1);
        Requests(100);
        Assert.That(memory.ShouldTrimIdle(), Is.False, "a few closes");
        Requests(100);
        Assert.That(memory.ShouldTrimIdle(), Is.False, "a few closes are not worth a full collection");
        Close(2_000);
        Requests(100);
        Assert.That(memory.ShouldTrimIdle(), Is.False, "still closing");
        Close(150);
        Requests(100);
        Assert.That(memory.ShouldTrimIdle(), Is.True, "closes settled");
        Requests(100);
        Assert.That(memory.ShouldTrimIdle(), Is.False, "once");
        Close(20); // steady churn below the threshold
        Assert.That(memory.ShouldTrimIdle(), Is.False);
    }

    [Test]
    public async Task OneRequestLargerThanTheCap_StillProceeds()
    {
        var memory = new RequestMemory(100);
        Assert.That(memory.WaitForRoomAsync(CancellationToken.None).IsCompleted);
        var frame = memory.Rent(1_000);
        var wait = memory.WaitForRoomAsync(CancellationToken.None).AsTask();
        Assert.That(wait.IsCompleted, Is.False);
        memory.Return(frame);
        await wait;
    }

    private static async Task WaitUntil(Func<bool> condition)
    {
        for (int i = 0; i < 1000 && !condition(); i++) await Task.Delay(10);
        Assert.That(condition(), "condition not reached");
    }
}
