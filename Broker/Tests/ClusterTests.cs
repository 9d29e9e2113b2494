using Kayak.Protocol;
using Kayak.Protocol.Messages;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

[TestFixture]
public sealed class DescribeLogDirsTests
{
    [TestCase((short)0)]
    [TestCase((short)1)]
    [TestCase((short)2)]
    [TestCase((short)3)]
    [TestCase((short)4)]
    public async Task AllPartitionsWithSizes(short version)
    {
        await using var f = await BrokerFixture.StartAsync();
        var topic = f.CreateTopic("dirs", 2);
        BrokerFixture.Produce(topic.Partitions[0], 3);

        var response = await f.Client.SendAsync<DescribeLogDirsResponse>(new DescribeLogDirsRequest { Topics = null }, version);
        Assert.That(response.ErrorCode, Is.EqualTo((short)ErrorCode.None));
        var dir = response.Results.Single();
        Assert.That(dir.ErrorCode, Is.EqualTo((short)ErrorCode.None));
        Assert.That(dir.LogDir, Is.EqualTo(Path.GetFullPath(f.DataDir)));
        var t = dir.Topics.Single(x => x.Name == "dirs");
        var p0 = t.Partitions.Single(p => p.PartitionIndex == 0);
        var p1 = t.Partitions.Single(p => p.PartitionIndex == 1);
        Assert.That(p0.PartitionSize, Is.EqualTo(topic.Partitions[0].Size).And.GreaterThan(0));
        Assert.That(p1.PartitionSize, Is.EqualTo(0));
        Assert.That(p0.OffsetLag, Is.EqualTo(0));
        Assert.That(p0.IsFutureKey, Is.False);
        if (version >= 4)
        {
            Assert.That(dir.TotalBytes, Is.GreaterThan(0));
            Assert.That(dir.UsableBytes, Is.GreaterThanOrEqualTo(0).And.LessThanOrEqualTo(dir.TotalBytes));
        }
        else
        {
            Assert.That(dir.TotalBytes, Is.EqualTo(-1)); // not on the wire before v4
        }
    }

    [TestCase((short)0)]
    [TestCase((short)4)]
    public async Task OnlyRequestedExistingPartitions(short version)
    {
        await using var f = await BrokerFixture.StartAsync();
        f.CreateTopic("dirs", 2);
        f.CreateTopic("other", 1);

        var request = new DescribeLogDirsRequest
        {
            Topics =
            [
                new DescribeLogDirsRequest.DescribableLogDirTopic { Topic = "dirs", Partitions = [1, 9] },
                new DescribeLogDirsRequest.DescribableLogDirTopic { Topic = "missing", Partitions = [0] },
            ],
        };
        var response = await f.Client.SendAsync<DescribeLogDirsResponse>(request, version);
        var t = response.Results.Single().Topics.Single();
        Assert.That(t.Name, Is.EqualTo("dirs"));
        Assert.That(t.Partitions.Select(p => p.PartitionIndex), Is.EqualTo(new[] { 1 }));
    }
}

[TestFixture]
public sealed class DescribeClusterTests
{
    [TestCase((short)0)]
    [TestCase((short)1)]
    public async Task ThisNodeIsTheClusterAndController(short version)
    {
        await using var f = await BrokerFixture.StartAsync();
        var response = await f.Client.SendAsync<DescribeClusterResponse>(new DescribeClusterRequest(), version);
        Assert.That(response.ErrorCode, Is.EqualTo((short)ErrorCode.None));
        Assert.That(response.ClusterId, Is.EqualTo(f.State.ClusterId).And.Not.Empty);
        Assert.That(response.ControllerId, Is.EqualTo(f.State.NodeId));
        var b = response.Brokers.Single();
        Assert.That(b.BrokerId, Is.EqualTo(f.State.NodeId));
        Assert.That($"{b.Host}:{b.Port}", Is.EqualTo(f.Broker.BootstrapServers));
        Assert.That(b.Rack, Is.Null);
        Assert.That(response.ClusterAuthorizedOperations, Is.EqualTo(int.MinValue));
        Assert.That(response.EndpointType, Is.EqualTo((sbyte)1));
    }

    [Test]
    public async Task AuthorizedOperationsWhenRequested()
    {
        await using var f = await BrokerFixture.StartAsync();
        var response = await f.Client.SendAsync<DescribeClusterResponse>(new DescribeClusterRequest { IncludeClusterAuthorizedOperations = true }, 1);
        Assert.That(response.ClusterAuthorizedOperations & (1 << 8), Is.Not.Zero, "DESCRIBE");
        Assert.That(response.ClusterAuthorizedOperations & (1 << 3), Is.Zero, "READ is not a cluster operation");
    }

    [Test]
    public async Task ControllerEndpointIsMismatchedAndUnknownTypesUnsupported()
    {
        await using var f = await BrokerFixture.StartAsync();
        var controller = await f.Client.SendAsync<DescribeClusterResponse>(new DescribeClusterRequest { EndpointType = 2 }, 1);
        Assert.That(controller.ErrorCode, Is.EqualTo((short)ErrorCode.MismatchedEndpointType));
        Assert.That(controller.Brokers, Is.Empty);
        var unknown = await f.Client.SendAsync<DescribeClusterResponse>(new DescribeClusterRequest { EndpointType = 7 }, 1);
        Assert.That(unknown.ErrorCode, Is.EqualTo((short)ErrorCode.UnsupportedEndpointType));
        Assert.That(unknown.ErrorMessage, Is.EqualTo("Unsupported endpoint type 7"));
    }
}

[TestFixture]
public sealed class DescribeTopicPartitionsTests
{
    private static DescribeTopicPartitionsRequest Request(int limit, DescribeTopicPartitionsRequest.CursorData? cursor, params string[] topics)
    {
        var request = new DescribeTopicPartitionsRequest { ResponsePartitionLimit = limit, Cursor = cursor };
        foreach (var t in topics) request.Topics.Add(new DescribeTopicPartitionsRequest.TopicRequest { Name = t });
        return request;
    }

    private static List<string> Flatten(DescribeTopicPartitionsResponse r) =>
        r.Topics.SelectMany(t => t.Partitions.Select(p => $"{t.Name}-{p.PartitionIndex}")).ToList();

    [Test]
    public async Task PagesThroughAllTopicsInNameOrder()
    {
        await using var f = await BrokerFixture.StartAsync();
        f.CreateTopic("c", 1);
        f.CreateTopic("a", 3);
        f.CreateTopic("b", 2);

        var first = await f.Client.SendAsync<DescribeTopicPartitionsResponse>(Request(4, null), 0);
        Assert.That(Flatten(first), Is.EqualTo(new[] { "a-0", "a-1", "a-2", "b-0" }));
        Assert.That(first.NextCursor, Is.Not.Null);
        Assert.That(first.NextCursor!.TopicName, Is.EqualTo("b"));
        Assert.That(first.NextCursor.PartitionIndex, Is.EqualTo(1));

        var cursor = new DescribeTopicPartitionsRequest.CursorData { TopicName = "b", PartitionIndex = 1 };
        var second = await f.Client.SendAsync<DescribeTopicPartitionsResponse>(Request(4, cursor), 0);
        Assert.That(Flatten(second), Is.EqualTo(new[] { "b-1", "c-0" }));
        Assert.That(second.NextCursor, Is.Null);

        // A page ending exactly at a topic boundary points at the next topic's first partition.
        var boundary = await f.Client.SendAsync<DescribeTopicPartitionsResponse>(Request(3, null), 0);
        Assert.That(Flatten(boundary), Is.EqualTo(new[] { "a-0", "a-1", "a-2" }));
        Assert.That(boundary.NextCursor!.TopicName, Is.EqualTo("b"));
        Assert.That(boundary.NextCursor.PartitionIndex, Is.EqualTo(0));
    }

    [Test]
    public async Task DescribesPartitionsAndUnknownTopics()
    {
        await using var f = await BrokerFixture.StartAsync();
        var topic = f.CreateTopic("t", 2);

        var response = await f.Client.SendAsync<DescribeTopicPartitionsResponse>(Request(2000, null, "t", "missing"), 0);
        Assert.That(response.Topics.Select(t => t.Name), Is.EqualTo(new[] { "missing", "t" }));
        Assert.That(response.Topics[0].ErrorCode, Is.EqualTo((short)ErrorCode.UnknownTopicOrPartition));
        var t = response.Topics[1];
        Assert.That(t.ErrorCode, Is.EqualTo((short)ErrorCode.None));
        Assert.That(t.TopicId, Is.EqualTo(topic.TopicId));
        Assert.That(t.IsInternal, Is.False);
        Assert.That(t.TopicAuthorizedOperations & (1 << 3), Is.Not.Zero, "READ");
        var p = t.Partitions[1];
        Assert.That(p.PartitionIndex, Is.EqualTo(1));
        Assert.That(p.LeaderId, Is.EqualTo(f.State.NodeId));
        Assert.That(p.LeaderEpoch, Is.EqualTo(0));
        Assert.That(p.ReplicaNodes, Is.EqualTo(new[] { f.State.NodeId }));
        Assert.That(p.IsrNodes, Is.EqualTo(new[] { f.State.NodeId }));
        Assert.That(p.EligibleLeaderReplicas, Is.Empty);
        Assert.That(p.LastKnownElr, Is.Empty);
        Assert.That(p.OfflineReplicas, Is.Empty);
        Assert.That(response.NextCursor, Is.Null);
    }

    [Test]
    public async Task CursorOutsideTheListIsInvalid()
    {
        await using var f = await BrokerFixture.StartAsync();
        f.CreateTopic("t", 1);
        var cursor = new DescribeTopicPartitionsRequest.CursorData { TopicName = "zzz", PartitionIndex = 0 };
        var response = await f.Client.SendAsync<DescribeTopicPartitionsResponse>(Request(10, cursor, "t"), 0);
        Assert.That(response.Topics.Single().ErrorCode, Is.EqualTo((short)ErrorCode.InvalidRequest));
        Assert.That(response.Topics[0].Partitions, Is.Empty);
    }
}
