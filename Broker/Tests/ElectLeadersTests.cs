using Kayak.Protocol;
using Kayak.Protocol.Messages;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>ElectLeaders as Kafka's controller answers it when this node already leads every partition.</summary>
[TestFixture]
public sealed class ElectLeadersTests
{
    private const sbyte Preferred = 0, Unclean = 1;

    [TestCase((short)0, Preferred)]
    [TestCase((short)1, Preferred)]
    [TestCase((short)1, Unclean)]
    [TestCase((short)2, Preferred)]
    [TestCase((short)2, Unclean)]
    public async Task ExistingPartitionsNeedNoElectionUnknownOnesAreUnknown(short version, sbyte type)
    {
        await using var fx = await BrokerFixture.StartAsync();
        fx.CreateTopic("elect", 2);
        var request = new ElectLeadersRequest
        {
            ElectionType = type,
            TopicPartitions =
            [
                new ElectLeadersRequest.TopicPartitionsData { Topic = "elect", Partitions = [0, 1, 5] },
                new ElectLeadersRequest.TopicPartitionsData { Topic = "missing", Partitions = [0] },
            ],
            TimeoutMs = 30_000,
        };
        var r = await fx.Client.SendAsync<ElectLeadersResponse>(request, version);
        Assert.That(r.ErrorCode, Is.EqualTo(0));
        Assert.That(r.ReplicaElectionResults.Select(t => t.Topic), Is.EqualTo(new[] { "elect", "missing" }));

        var elect = r.ReplicaElectionResults[0].PartitionResult;
        Assert.That(elect.Select(p => p.PartitionId), Is.EqualTo(new[] { 0, 1, 5 }));
        foreach (var p in elect.Take(2))
        {
            Assert.That(p.ErrorCode, Is.EqualTo((short)ErrorCode.ElectionNotNeeded));
            Assert.That(p.ErrorMessage, Is.EqualTo("Leader election not needed for topic partition."));
        }
        Assert.That(elect[2].ErrorCode, Is.EqualTo((short)ErrorCode.UnknownTopicOrPartition));
        Assert.That(elect[2].ErrorMessage, Is.EqualTo("No such partition as elect-5"));

        var missing = r.ReplicaElectionResults[1].PartitionResult.Single();
        Assert.That(missing.ErrorCode, Is.EqualTo((short)ErrorCode.UnknownTopicOrPartition));
        Assert.That(missing.ErrorMessage, Is.EqualTo("No such topic as missing"));
    }

    /// <summary>Null topic_partitions: every topic is listed, without the partitions whose election was not needed.</summary>
    [TestCase((short)0)]
    [TestCase((short)2)]
    public async Task AllPartitionsListEveryTopicWithNoPartitionResults(short version)
    {
        await using var fx = await BrokerFixture.StartAsync();
        fx.CreateTopic("b-topic", 3);
        fx.CreateTopic("a-topic", 1);
        var r = await fx.Client.SendAsync<ElectLeadersResponse>(new ElectLeadersRequest { ElectionType = Preferred, TopicPartitions = null }, version);
        Assert.That(r.ErrorCode, Is.EqualTo(0));
        var topics = fx.State.Logs.Topics.Select(t => t.Name).OrderBy(n => n, StringComparer.Ordinal).ToList();
        Assert.That(topics, Does.Contain("a-topic").And.Contain("b-topic"));
        Assert.That(r.ReplicaElectionResults.Select(t => t.Topic), Is.EqualTo(topics));
        Assert.That(r.ReplicaElectionResults.SelectMany(t => t.PartitionResult), Is.Empty);
    }

    [TestCase((short)1)]
    [TestCase((short)2)]
    public async Task UnknownElectionTypeIsAnInvalidRequest(short version)
    {
        await using var fx = await BrokerFixture.StartAsync();
        fx.CreateTopic("elect", 1);
        var r = await fx.Client.SendAsync<ElectLeadersResponse>(new ElectLeadersRequest
        {
            ElectionType = 2,
            TopicPartitions = [new ElectLeadersRequest.TopicPartitionsData { Topic = "elect", Partitions = [0] }],
        }, version);
        Assert.That(r.ErrorCode, Is.EqualTo((short)ErrorCode.InvalidRequest));
        var p = r.ReplicaElectionResults.Single().PartitionResult.Single();
        Assert.That(p.ErrorCode, Is.EqualTo((short)ErrorCode.InvalidRequest));
        Assert.That(p.ErrorMessage, Is.EqualTo("Unknown election type 2"));
    }

    [Test]
    public async Task AdvertisedInApiVersions()
    {
        await using var fx = await BrokerFixture.StartAsync();
        var r = await fx.Client.SendAsync<ApiVersionsResponse>(new ApiVersionsRequest { ClientSoftwareName = "t", ClientSoftwareVersion = "1" }, 3);
        var api = r.ApiKeys.Single(k => k.ApiKey == (short)ApiKey.ElectLeaders);
        Assert.That((api.MinVersion, api.MaxVersion), Is.EqualTo(((short)0, (short)2)));
    }
}
