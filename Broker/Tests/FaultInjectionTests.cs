using Kayak.Coordinator.Tests;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>
/// The public fault-injection API (issue 10, step 7; the in-process cluster of issue 14 builds on it): a rule per
/// request drops the connection before the request takes effect, loses the response after it took effect, or delays
/// it on the broker's clock; rules can change while the broker runs; CreateTopicAsync and CrashAsync are public.
/// </summary>
[CancelAfter(30_000)]
public class FaultInjectionTests
{
    [Test]
    public async Task DropConnection_LoseResponse_AndDelay_DoWhatTheySay()
    {
        var faults = new BrokerFaults();
        var clock = new ManualTimeProvider();
        await using var fx = await BrokerFixture.StartAsync(o => { o.Faults = faults; o.Time = clock; });
        await fx.Broker.CreateTopicAsync("f", 1);
        var log = fx.State.Topics.TryGet("f", out var t) ? t.Partitions[0] : throw new AssertionException("topic");

        // Dropped before handling: the produce has no effect, the connection is closed.
        faults.OnRequest = r => r.ApiKey == ApiKey.Produce ? RequestFault.DropConnection : RequestFault.None;
        using (var c = await RawClient.ConnectAsync(fx.Broker.BootstrapServers))
        {
            await c.SendOnlyAsync(Produce(), 9);
            Assert.That(await c.IsClosedByPeerAsync(TimeSpan.FromSeconds(10)), Is.True);
        }
        Assert.That(log.LogEndOffset, Is.EqualTo(0), "a dropped request takes no effect");

        // Response lost: the produce took effect, the client hears nothing and sees the connection close.
        faults.OnRequest = r => r.ApiKey == ApiKey.Produce ? RequestFault.LoseResponse : RequestFault.None;
        using (var c = await RawClient.ConnectAsync(fx.Broker.BootstrapServers))
        {
            await c.SendOnlyAsync(Produce(), 9);
            Assert.That(await c.IsClosedByPeerAsync(TimeSpan.FromSeconds(10)), Is.True);
        }
        Assert.That(log.LogEndOffset, Is.EqualTo(1), "a lost response's request took effect");

        // Delayed on the broker's clock: nothing happens until the clock moves.
        faults.OnRequest = r => r.ApiKey == ApiKey.Produce ? RequestFault.Delay(TimeSpan.FromSeconds(5)) : RequestFault.None;
        using (var c = await RawClient.ConnectAsync(fx.Broker.BootstrapServers))
        {
            var answered = c.SendAsync<ProduceResponse>(Produce(), 9);
            for (int i = 0; i < 50 && log.LogEndOffset == 1; i++) await Task.Delay(10);
            Assert.That(log.LogEndOffset, Is.EqualTo(1), "delayed: not handled before the clock moves");
            clock.AdvanceMs(5_000);
            var r = await answered;
            Assert.That(r.Responses[0].PartitionResponses[0].BaseOffset, Is.EqualTo(1));
        }

        // Cleared: requests go through again.
        faults.OnRequest = null;
        var ok = await fx.Client.SendAsync<ProduceResponse>(Produce(), 9);
        Assert.That(ok.Responses[0].PartitionResponses[0].ErrorCode, Is.EqualTo(0));
        Assert.That(log.LogEndOffset, Is.EqualTo(3));

        var e = Assert.ThrowsAsync<KafkaException>(() => fx.Broker.CreateTopicAsync("f", 1))!;
        Assert.That(e.Code, Is.EqualTo(ErrorCode.TopicAlreadyExists));
    }

    [Test]
    public async Task CrashAsync_LeavesTheDataToRecover_AndTheDirectoryCanBeOpenedAgain()
    {
        var dir = Path.Combine(Path.GetTempPath(), "kayak-crash-" + Guid.NewGuid().ToString("N"));
        try
        {
            var broker = new KafkaBroker(new KafkaBrokerOptions { Port = 0, DataDir = dir });
            await broker.StartAsync();
            await broker.CreateTopicAsync("c", 1);
            using (var c = await RawClient.ConnectAsync(broker.BootstrapServers))
                await c.SendAsync<ProduceResponse>(Produce("c"), 9);
            await broker.CrashAsync();
            Assert.That(File.Exists(Path.Combine(dir, ".kafka_cleanshutdown")), Is.False);

            await using var again = new KafkaBroker(new KafkaBrokerOptions { Port = 0, DataDir = dir });
            await again.StartAsync();
            Assert.That(again.State.Topics.TryGet("c", out var t) && t.Partitions[0].LogEndOffset == 1);
        }
        finally { try { Directory.Delete(dir, true); } catch (IOException) { } }
    }

    private static ProduceRequest Produce(string topic = "f")
    {
        using var builder = new Kayak.Protocol.Records.RecordBatchBuilder(new Kayak.Protocol.Records.RecordBatchOptions());
        builder.Append(1_700_000_000_000, null, new byte[] { 1, 2, 3 });
        return new ProduceRequest
        {
            Acks = 1,
            TimeoutMs = 5000,
            TopicData = [new() { Name = topic, PartitionData = [new() { Index = 0, Records = builder.ToArray() }] }],
        };
    }
}
