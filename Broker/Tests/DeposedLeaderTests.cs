using Kayak.Broker.Cluster;
using Kayak.Broker.Tests.Handlers;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>
/// Issue 14: a leader that is deposed while an acks=all produce waits for its ISR answers NOT_LEADER_OR_FOLLOWER at
/// once (Kafka's DelayedProduce completes on a leader change), not REQUEST_TIMED_OUT at the request's timeout, and
/// never acknowledges a record the ISR did not take under its leadership.
/// </summary>
[CancelAfter(120_000)]
public class DeposedLeaderTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = Path.Combine(Path.GetTempPath(), "kayak-deposed-tests-" + Guid.NewGuid().ToString("N"));

    [TearDown]
    public void TearDown()
    {
        try { Directory.Delete(_dir, recursive: true); }
        catch (IOException) { }
    }

    [Test]
    public async Task AcksAllProduceWaitingForTheIsr_EndsWithNotLeaderWhenTheLeaderIsFenced()
    {
        await using var cluster = new KafkaCluster(new KafkaClusterOptions { Brokers = 3, DataDir = _dir, Port = 0 });
        await cluster.StartAsync();
        await cluster.CreateTopicAsync("data", 1, 3);
        while (cluster.Partition("data", 0).Isr.Count < 3) await Task.Delay(10);
        int leader = cluster.Partition("data", 0).Leader;
        int epoch = cluster.Partition("data", 0).LeaderEpoch;
        // The followers' fetches of the partition fail from now on: the high watermark cannot pass what is appended next.
        cluster.Faults(leader).InjectError(ApiKey.Fetch, ErrorCode.UnknownServerError, count: -1, topic: "data");
        var log = cluster.Broker(leader)!.State.Catalog.Lookup("data").Topic!.GetPartition(0)!;
        long end = log.LogEndOffset;

        using var c = await RawClient.ConnectAsync(cluster.Broker(leader)!.BootstrapServers);
        var produce = c.SendAsync<ProduceResponse>(new ProduceRequest
        {
            Acks = -1,
            TimeoutMs = 60_000, // far beyond the test's wait: only the leader change can end it in time
            TopicData = [new() { Name = "data", PartitionData = [new() { Index = 0, Records = ServiceHarness.Batch(3) }] }],
        }, 9);
        while (log.LogEndOffset == end) await Task.Delay(5);
        Assert.That(produce.IsCompleted, Is.False, "acks=all waits for the followers");

        // The controller fences the leader (as when a broker loses its session): another ISR member leads.
        cluster.Controller.Detach(leader);
        var answer = await produce.WaitAsync(TimeSpan.FromSeconds(30));
        var rp = answer.Responses[0].PartitionResponses[0];
        Assert.That((ErrorCode)rp.ErrorCode, Is.EqualTo(ErrorCode.NotLeaderOrFollower), rp.ErrorMessage);
        Assert.That(cluster.Partition("data", 0).Leader, Is.Not.EqualTo(leader).And.GreaterThan(0));
        Assert.That(cluster.Partition("data", 0).LeaderEpoch, Is.GreaterThan(epoch));
    }
}
