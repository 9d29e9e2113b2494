using Kayak.Broker.Cluster;
using Kayak.Coordinator.Tests;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using Kayak.Testing;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>
/// The public fault API of issue 14 (steps 3-5), after librdkafka's mock cluster, over the wire with the raw client:
/// injected errors arrive in the API's own error fields for exactly the next K requests (filtered by partition or
/// group) and take no effect; latency waits on the broker's clock; connections drop before or after the request
/// takes effect; a paused broker accepts connections and answers nothing until resumed; network partitions are
/// recorded for replication; <see cref="KayakFixture"/> keeps its ports across restarts and cleans up.
/// </summary>
[CancelAfter(60_000)]
public class FaultApiTests
{
    [Test]
    public async Task InjectedProduceError_AnswersTheNextKRequests_InThePartitionFields_WithoutEffect()
    {
        await using var fx = await BrokerFixture.StartAsync();
        var log = fx.CreateTopic("f", 1).Partitions[0];
        fx.Broker.Faults.InjectError(ApiKey.Produce, ErrorCode.NotLeaderOrFollower, count: 2);

        for (int i = 0; i < 2; i++)
        {
            var r = await fx.Client.SendAsync<ProduceResponse>(Produce("f", 0), 9);
            var p = r.Responses.Single().PartitionResponses.Single();
            Assert.That((ErrorCode)p.ErrorCode, Is.EqualTo(ErrorCode.NotLeaderOrFollower));
            Assert.That(p.BaseOffset, Is.EqualTo(-1));
        }
        Assert.That(log.LogEndOffset, Is.EqualTo(0), "an injected error takes no effect");
        Assert.That(fx.Broker.Faults.PendingErrors, Is.EqualTo(0));
        var ok = await fx.Client.SendAsync<ProduceResponse>(Produce("f", 0), 9);
        Assert.That(ok.Responses[0].PartitionResponses[0].ErrorCode, Is.EqualTo(0));
        Assert.That(log.LogEndOffset, Is.EqualTo(1));
    }

    [Test]
    public async Task PartitionFilter_OnlyRequestsNamingThatPartition_UseUpTheError()
    {
        await using var fx = await BrokerFixture.StartAsync();
        var topic = fx.CreateTopic("p", 2);
        fx.Broker.Faults.InjectError(ApiKey.Produce, ErrorCode.RequestTimedOut, count: 1, topic: "p", partition: 1);

        var other = await fx.Client.SendAsync<ProduceResponse>(Produce("p", 0), 9);
        Assert.That(other.Responses[0].PartitionResponses[0].ErrorCode, Is.EqualTo(0));
        Assert.That(fx.Broker.Faults.PendingErrors, Is.EqualTo(1));
        var hit = await fx.Client.SendAsync<ProduceResponse>(Produce("p", 1), 9);
        Assert.That((ErrorCode)hit.Responses[0].PartitionResponses[0].ErrorCode, Is.EqualTo(ErrorCode.RequestTimedOut));
        Assert.That(topic.Partitions[1].LogEndOffset, Is.EqualTo(0));
        var after = await fx.Client.SendAsync<ProduceResponse>(Produce("p", 1), 9);
        Assert.That(after.Responses[0].PartitionResponses[0].ErrorCode, Is.EqualTo(0));
    }

    [Test]
    public async Task GroupFilter_Heartbeat_AndFindCoordinatorKeys_CarryTheError()
    {
        await using var fx = await BrokerFixture.StartAsync();
        fx.Broker.Faults.InjectError(ApiKey.Heartbeat, ErrorCode.RebalanceInProgress, count: -1, group: "g1");
        fx.Broker.Faults.InjectError(ApiKey.FindCoordinator, ErrorCode.CoordinatorNotAvailable, count: 2, group: "g1");

        var otherGroup = await fx.Client.SendAsync<HeartbeatResponse>(new HeartbeatRequest { GroupId = "g2", GenerationId = 1, MemberId = "m" }, 4);
        Assert.That((ErrorCode)otherGroup.ErrorCode, Is.Not.EqualTo(ErrorCode.RebalanceInProgress));
        for (int i = 0; i < 3; i++)
        {
            var hb = await fx.Client.SendAsync<HeartbeatResponse>(new HeartbeatRequest { GroupId = "g1", GenerationId = 1, MemberId = "m" }, 4);
            Assert.That((ErrorCode)hb.ErrorCode, Is.EqualTo(ErrorCode.RebalanceInProgress), "count -1: until cleared");
        }

        var v4 = await fx.Client.SendAsync<FindCoordinatorResponse>(new FindCoordinatorRequest { KeyType = 0, CoordinatorKeys = ["g1"] }, 4);
        Assert.That(v4.Coordinators.Single().Key, Is.EqualTo("g1"));
        Assert.That((ErrorCode)v4.Coordinators[0].ErrorCode, Is.EqualTo(ErrorCode.CoordinatorNotAvailable));
        var v3 = await fx.Client.SendAsync<FindCoordinatorResponse>(new FindCoordinatorRequest { KeyValue = "g1" }, 3);
        Assert.That((ErrorCode)v3.ErrorCode, Is.EqualTo(ErrorCode.CoordinatorNotAvailable));
        Assert.That(v3.NodeId, Is.EqualTo(-1));
        var found = await fx.Client.SendAsync<FindCoordinatorResponse>(new FindCoordinatorRequest { KeyValue = "g1" }, 3);
        Assert.That(found.ErrorCode, Is.EqualTo(0));

        fx.Broker.Faults.InjectError(ApiKey.OffsetFetch, ErrorCode.CoordinatorLoadInProgress, count: 2, group: "g1");
        var offsets = await fx.Client.SendAsync<OffsetFetchResponse>(new OffsetFetchRequest { Groups = [new() { GroupId = "g1", Topics = null }] }, 8);
        Assert.That((ErrorCode)offsets.Groups.Single().ErrorCode, Is.EqualTo(ErrorCode.CoordinatorLoadInProgress));
        var offsetsV7 = await fx.Client.SendAsync<OffsetFetchResponse>(new OffsetFetchRequest { GroupId = "g1", Topics = null }, 7);
        Assert.That((ErrorCode)offsetsV7.ErrorCode, Is.EqualTo(ErrorCode.CoordinatorLoadInProgress));

        fx.Broker.Faults.Clear();
        var cleared = await fx.Client.SendAsync<HeartbeatResponse>(new HeartbeatRequest { GroupId = "g1", GenerationId = 1, MemberId = "m" }, 4);
        Assert.That((ErrorCode)cleared.ErrorCode, Is.Not.EqualTo(ErrorCode.RebalanceInProgress));
    }

    [Test]
    public async Task FetchAndListOffsets_CarryTheErrorPerPartition_UnsupportedApisAreRefused()
    {
        await using var fx = await BrokerFixture.StartAsync();
        var log = fx.CreateTopic("r", 1).Partitions[0];
        BrokerFixture.Produce(log, 2);
        fx.Broker.Faults.InjectError(ApiKey.Fetch, ErrorCode.NotLeaderOrFollower);
        fx.Broker.Faults.InjectError(ApiKey.ListOffsets, ErrorCode.OffsetNotAvailable);

        var fetch = new FetchRequest
        {
            MaxWaitMs = 0, MinBytes = 0, MaxBytes = 1 << 20,
            Topics = [new() { Topic = "r", Partitions = [new() { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 1 << 20 }] }],
        };
        var f = await fx.Client.SendAsync<FetchResponse>(fetch, 11);
        Assert.That((ErrorCode)f.Responses.Single().Partitions.Single().ErrorCode, Is.EqualTo(ErrorCode.NotLeaderOrFollower));
        var f2 = await fx.Client.SendAsync<FetchResponse>(fetch, 11);
        Assert.That(f2.Responses[0].Partitions[0].ErrorCode, Is.EqualTo(0));
        Assert.That(f2.Responses[0].Partitions[0].HighWatermark, Is.EqualTo(2));

        var list = new ListOffsetsRequest { ReplicaId = -1, Topics = [new() { Name = "r", Partitions = [new() { PartitionIndex = 0, Timestamp = -1 }] }] };
        var l = await fx.Client.SendAsync<ListOffsetsResponse>(list, 7);
        Assert.That((ErrorCode)l.Topics[0].Partitions[0].ErrorCode, Is.EqualTo(ErrorCode.OffsetNotAvailable));
        var l2 = await fx.Client.SendAsync<ListOffsetsResponse>(list, 7);
        Assert.That(l2.Topics[0].Partitions[0].Offset, Is.EqualTo(2));

        Assert.Throws<ArgumentException>(() => fx.Broker.Faults.InjectError(ApiKey.CreateTopics, ErrorCode.NotController));
        Assert.Throws<ArgumentException>(() => fx.Broker.Faults.InjectError(ApiKey.Heartbeat, ErrorCode.NotController, topic: "r"));
        Assert.Throws<ArgumentOutOfRangeException>(() => fx.Broker.Faults.InjectError(ApiKey.Produce, ErrorCode.NotController, count: 0));
    }

    [Test]
    public async Task MetadataError_GoesToTheTopicsErrorField_BrokersStayListed_NothingIsAutoCreated()
    {
        await using var fx = await BrokerFixture.StartAsync();
        fx.CreateTopic("m", 2);
        fx.CreateTopic("ok", 1);
        fx.Broker.Faults.InjectError(ApiKey.Metadata, ErrorCode.LeaderNotAvailable, count: 1, topic: "m");

        var unrelated = await fx.Client.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [new() { Name = "ok" }] }, 12);
        Assert.That(unrelated.Topics.Single().ErrorCode, Is.EqualTo(0));
        var request = new MetadataRequest { Topics = [new() { Name = "m" }, new() { Name = "ok" }, new() { Name = "new-topic" }], AllowAutoTopicCreation = true };
        var r = await fx.Client.SendAsync<MetadataResponse>(request, 12);
        Assert.That(r.Brokers, Has.Count.EqualTo(1));
        var m = r.Topics.Single(t => t.Name == "m");
        Assert.That((ErrorCode)m.ErrorCode, Is.EqualTo(ErrorCode.LeaderNotAvailable));
        Assert.That(m.Partitions, Is.Empty);
        Assert.That(r.Topics.Single(t => t.Name == "ok").ErrorCode, Is.EqualTo(0));
        Assert.That(fx.State.Topics.TryGet("new-topic", out _), Is.False, "a faulted Metadata request creates no topic");

        var after = await fx.Client.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [new() { Name = "m" }] }, 12);
        Assert.That(after.Topics.Single().Partitions, Has.Count.EqualTo(2));
    }

    [Test]
    public async Task Latency_WaitsOnTheBrokersClock_ForThatApiOnly()
    {
        var clock = new ManualTimeProvider();
        await using var fx = await BrokerFixture.StartAsync(o => o.Time = clock);
        var log = fx.CreateTopic("l", 1).Partitions[0];
        fx.Broker.Faults.AddLatency(ApiKey.Produce, TimeSpan.FromSeconds(3), count: 1);

        using var c = await RawClient.ConnectAsync(fx.Broker.BootstrapServers);
        var versions = await c.SendAsync<ApiVersionsResponse>(new ApiVersionsRequest(), 2);
        Assert.That(versions.ErrorCode, Is.EqualTo(0), "other APIs are not delayed");
        var answered = c.SendAsync<ProduceResponse>(Produce("l", 0), 9);
        for (int i = 0; i < 50 && log.LogEndOffset == 0; i++) await Task.Delay(10);
        Assert.That(log.LogEndOffset, Is.EqualTo(0));
        clock.AdvanceMs(3_000);
        Assert.That((await answered).Responses[0].PartitionResponses[0].BaseOffset, Is.EqualTo(0));
        var next = await c.SendAsync<ProduceResponse>(Produce("l", 0), 9);
        Assert.That(next.Responses[0].PartitionResponses[0].BaseOffset, Is.EqualTo(1), "count 1: the next one is not delayed");
    }

    [Test]
    public async Task DropConnections_BeforeOrAfterTheRequestTakesEffect()
    {
        await using var fx = await BrokerFixture.StartAsync();
        var log = fx.CreateTopic("d", 1).Partitions[0];

        fx.Broker.Faults.DropConnections(ApiKey.Produce);
        using (var c = await RawClient.ConnectAsync(fx.Broker.BootstrapServers))
        {
            await c.SendOnlyAsync(Produce("d", 0), 9);
            Assert.That(await c.IsClosedByPeerAsync(TimeSpan.FromSeconds(10)), Is.True);
        }
        Assert.That(log.LogEndOffset, Is.EqualTo(0));

        fx.Broker.Faults.DropConnections(ApiKey.Produce, afterRequest: true);
        using (var c = await RawClient.ConnectAsync(fx.Broker.BootstrapServers))
        {
            await c.SendOnlyAsync(Produce("d", 0), 9);
            Assert.That(await c.IsClosedByPeerAsync(TimeSpan.FromSeconds(10)), Is.True);
        }
        Assert.That(log.LogEndOffset, Is.EqualTo(1));

        using var again = await RawClient.ConnectAsync(fx.Broker.BootstrapServers);
        var ok = await again.SendAsync<ProduceResponse>(Produce("d", 0), 9);
        Assert.That(ok.Responses[0].PartitionResponses[0].BaseOffset, Is.EqualTo(1), "used up: the next request goes through");
    }

    [Test]
    public async Task PausedBroker_AcceptsConnections_AnswersNothing_UntilResumed()
    {
        await using var fx = await BrokerFixture.StartAsync();
        var log = fx.CreateTopic("z", 1).Partitions[0];
        fx.Broker.Faults.Pause();
        Assert.That(fx.Broker.Faults.IsPaused);

        using var c = await RawClient.ConnectAsync(fx.Broker.BootstrapServers); // accepted while paused
        using var c2 = await RawClient.ConnectAsync(fx.Broker.BootstrapServers);
        var produced = c.SendAsync<ProduceResponse>(Produce("z", 0), 9);
        var versions = c2.SendAsync<ApiVersionsResponse>(new ApiVersionsRequest(), 2);
        for (int i = 0; i < 50 && log.LogEndOffset == 0; i++) await Task.Delay(10);
        Assert.That(log.LogEndOffset, Is.EqualTo(0));
        Assert.That(produced.IsCompleted || versions.IsCompleted, Is.False, "nothing answered while paused");

        fx.Broker.Faults.Resume();
        Assert.That((await produced).Responses[0].PartitionResponses[0].BaseOffset, Is.EqualTo(0));
        Assert.That((await versions).ErrorCode, Is.EqualTo(0));
        Assert.That(fx.Broker.Faults.IsPaused, Is.False);
    }

    [Test]
    public void NetworkPartitions_CutIsolateHeal()
    {
        var net = new NetworkPartitions();
        net.Cut(1, 2, oneWay: true);
        Assert.That(net.IsPartitioned(1, 2) && !net.IsPartitioned(2, 1));
        net.Isolate(3, [1, 2, 3]);
        Assert.That(net.Cuts(), Is.EqualTo(new[] { (1, 2), (1, 3), (2, 3), (3, 1), (3, 2) }));
        Assert.That(net.IsPartitioned(3, 1) && net.IsPartitioned(1, 3) && net.IsPartitioned(2, 3) && !net.IsPartitioned(3, 3));
        net.Heal(3);
        Assert.That(net.IsPartitioned(3, 1) || net.IsPartitioned(2, 3), Is.False);
        Assert.That(net.IsPartitioned(1, 2), "other cuts stay");
        net.HealAll();
        Assert.That(net.IsPartitioned(1, 2), Is.False);
        Assert.Throws<ArgumentException>(() => net.Cut(1, 1));
    }

    [Test]
    public async Task KayakFixture_KeepsPortsAndFaultsAcrossRestarts_AndDeletesItsDirectory()
    {
        string dir;
        await using (var kafka = await KayakFixture.StartAsync(brokers: 3))
        {
            dir = kafka.DataDir;
            var ports = kafka.BootstrapServers.Split(',');
            Assert.That(ports, Has.Length.EqualTo(3));
            Assert.That(kafka.Broker(2)!.BootstrapServers, Is.EqualTo(ports[1]));
            kafka.InjectError(ApiKey.ApiVersions, ErrorCode.UnsupportedVersion, count: 1, broker: 2);

            await kafka.KillBrokerAsync(2);
            Assert.That(kafka.Cluster.Nodes()[1].State, Is.EqualTo(BrokerRunState.Stopped));
            await kafka.StartBrokerAsync(2);
            Assert.That(kafka.Broker(2)!.BootstrapServers, Is.EqualTo(ports[1]), "same port after a restart");

            using var c = await RawClient.ConnectAsync(ports[1]);
            var v = await c.SendAsync<ApiVersionsResponse>(new ApiVersionsRequest(), 2);
            Assert.That((ErrorCode)v.ErrorCode, Is.EqualTo(ErrorCode.UnsupportedVersion), "the node's faults outlive the restart");
            kafka.PauseBroker(3);
            Assert.That(kafka.Cluster.Nodes()[2].State, Is.EqualTo(BrokerRunState.Paused));
            // A paused broker with a request held still stops: the held request ends with its connection.
            using (var held = await RawClient.ConnectAsync(ports[2]))
            {
                await held.SendOnlyAsync(new ApiVersionsRequest(), 2);
                await kafka.StopBrokerAsync(3);
                Assert.That(await held.IsClosedByPeerAsync(TimeSpan.FromSeconds(10)), Is.True);
            }
            await kafka.StartBrokerAsync(3);
            Assert.That(kafka.Cluster.Nodes()[2].State, Is.EqualTo(BrokerRunState.Paused), "a pause outlives a restart, like the node's other faults");
            kafka.ClearFaults();
            Assert.That(kafka.Cluster.Nodes()[2].State, Is.EqualTo(BrokerRunState.Running));
            using var resumed = await RawClient.ConnectAsync(ports[2]);
            Assert.That((await resumed.SendAsync<ApiVersionsResponse>(new ApiVersionsRequest(), 2)).ErrorCode, Is.EqualTo(0));
        }
        Assert.That(Directory.Exists(dir), Is.False);
    }

    [Test]
    public void FaultNames_AcceptKafkaNames_EnumNames_AndNumbers()
    {
        Assert.That(FaultNames.TryParseErrorCode("NOT_LEADER_OR_FOLLOWER", out var e) && e == ErrorCode.NotLeaderOrFollower);
        Assert.That(FaultNames.TryParseErrorCode("RequestTimedOut", out e) && e == ErrorCode.RequestTimedOut);
        Assert.That(FaultNames.TryParseErrorCode("27", out e) && e == ErrorCode.RebalanceInProgress);
        Assert.That(FaultNames.TryParseErrorCode("NO_SUCH_ERROR", out _), Is.False);
        Assert.That(FaultNames.TryParseErrorCode("9999", out _), Is.False);
        Assert.That(FaultNames.TryParseApiKey("OFFSET_COMMIT", out var a) && a == ApiKey.OffsetCommit);
        Assert.That(FaultNames.TryParseApiKey("produce", out a) && a == ApiKey.Produce);
        Assert.That(FaultNames.TryParseApiKey("12", out a) && a == ApiKey.Heartbeat);
        Assert.That(FaultNames.TryParseApiKey("Nope", out _), Is.False);
    }

    private static ProduceRequest Produce(string topic, int partition)
    {
        using var builder = new Kayak.Protocol.Records.RecordBatchBuilder(new Kayak.Protocol.Records.RecordBatchOptions());
        builder.Append(1_700_000_000_000, null, new byte[] { 1, 2, 3 });
        return new ProduceRequest
        {
            Acks = 1,
            TimeoutMs = 5000,
            TopicData = [new() { Name = topic, PartitionData = [new() { Index = partition, Records = builder.ToArray() }] }],
        };
    }
}
