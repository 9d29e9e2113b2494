using Kayak.Protocol;
using Kayak.Protocol.Messages;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>
/// KIP-430: asked for, Metadata, DescribeGroups and DescribeCluster answer every operation AclEntry.supportedOperations
/// lists for the resource type (Kafka without an authorizer); not asked for, int.MinValue.
/// </summary>
[TestFixture]
public sealed class AuthorizedOperationsTests
{
    // Bit n = AclOperation code n: READ 3, WRITE 4, CREATE 5, DELETE 6, ALTER 7, DESCRIBE 8, CLUSTER_ACTION 9,
    // DESCRIBE_CONFIGS 10, ALTER_CONFIGS 11, IDEMPOTENT_WRITE 12. Written out so the test does not share the broker's table.
    private const int TopicOps = (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 10) | (1 << 11);
    private const int ClusterOps = (1 << 5) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12);
    private const int GroupOps = (1 << 3) | (1 << 6) | (1 << 8) | (1 << 10) | (1 << 11);

    [Test]
    public void ExpectedBitFieldsMatchKafkasNumbers()
    {
        // What Java's Utils.to32BitField gives for Kafka's sets, as seen from clients (e.g. librdkafka's test suite).
        Assert.That(TopicOps, Is.EqualTo(3576));
        Assert.That(ClusterOps, Is.EqualTo(8096));
        Assert.That(GroupOps, Is.EqualTo(3400));
    }

    [TestCase((short)8)]
    [TestCase((short)10)]
    public async Task MetadataV8To10AnswersClusterAndTopicOperations(short version)
    {
        await using var fx = await BrokerFixture.StartAsync();
        fx.CreateTopic("ops", 1);
        var request = new MetadataRequest
        {
            Topics = [new MetadataRequest.MetadataRequestTopic { Name = "ops" }, new MetadataRequest.MetadataRequestTopic { Name = "absent" }],
            AllowAutoTopicCreation = false,
            IncludeClusterAuthorizedOperations = true,
            IncludeTopicAuthorizedOperations = true,
        };
        var r = await fx.Client.SendAsync<MetadataResponse>(request, version);
        Assert.That(r.ClusterAuthorizedOperations, Is.EqualTo(ClusterOps));
        var ops = r.Topics.Single(t => t.Name == "ops");
        Assert.That(ops.ErrorCode, Is.EqualTo(0));
        Assert.That(ops.TopicAuthorizedOperations, Is.EqualTo(TopicOps));
        // Kafka sets them on every topic answered by name, UNKNOWN_TOPIC_OR_PARTITION ones included.
        var absent = r.Topics.Single(t => t.Name == "absent");
        Assert.That(absent.ErrorCode, Is.EqualTo((short)ErrorCode.UnknownTopicOrPartition));
        Assert.That(absent.TopicAuthorizedOperations, Is.EqualTo(TopicOps));
    }

    [TestCase((short)8)]
    [TestCase((short)12)]
    public async Task MetadataNotAskedForIsMinValue(short version)
    {
        await using var fx = await BrokerFixture.StartAsync();
        fx.CreateTopic("ops", 1);
        var r = await fx.Client.SendAsync<MetadataResponse>(new MetadataRequest { Topics = null }, version);
        Assert.That(r.ClusterAuthorizedOperations, Is.EqualTo(int.MinValue));
        Assert.That(r.Topics.Single(t => t.Name == "ops").TopicAuthorizedOperations, Is.EqualTo(int.MinValue));
    }

    [Test]
    public async Task MetadataV12AnswersTopicOperationsAndByIdOnlyForKnownIds()
    {
        await using var fx = await BrokerFixture.StartAsync();
        var topic = fx.CreateTopic("ops", 1);
        var request = new MetadataRequest
        {
            Topics =
            [
                new MetadataRequest.MetadataRequestTopic { Name = null, TopicId = topic.TopicId },
                new MetadataRequest.MetadataRequestTopic { Name = null, TopicId = new Uuid(7, 7) },
            ],
            IncludeTopicAuthorizedOperations = true,
        };
        var r = await fx.Client.SendAsync<MetadataResponse>(request, 12);
        Assert.That(r.Topics[0].Name, Is.EqualTo("ops"));
        Assert.That(r.Topics[0].TopicAuthorizedOperations, Is.EqualTo(TopicOps));
        Assert.That(r.Topics[1].ErrorCode, Is.EqualTo((short)ErrorCode.UnknownTopicId));
        Assert.That(r.Topics[1].TopicAuthorizedOperations, Is.EqualTo(int.MinValue), "Kafka adds unknown ids after setting operations");
        Assert.That(r.ClusterAuthorizedOperations, Is.EqualTo(int.MinValue), "not in the v11+ schema");
    }

    [TestCase((short)3, true)]
    [TestCase((short)5, true)]
    [TestCase((short)5, false)]
    public async Task DescribeGroupsAnswersGroupOperations(short version, bool include)
    {
        await using var fx = await BrokerFixture.StartAsync();
        var r = await fx.Client.SendAsync<DescribeGroupsResponse>(
            new DescribeGroupsRequest { Groups = ["no-such-group"], IncludeAuthorizedOperations = include }, version);
        var g = r.Groups.Single();
        Assert.That(g.ErrorCode, Is.EqualTo(0));
        Assert.That(g.GroupState, Is.EqualTo("Dead"));
        Assert.That(g.AuthorizedOperations, Is.EqualTo(include ? GroupOps : int.MinValue));
    }

    [TestCase(true)]
    [TestCase(false)]
    public async Task DescribeClusterAnswersClusterOperations(bool include)
    {
        await using var fx = await BrokerFixture.StartAsync();
        var r = await fx.Client.SendAsync<DescribeClusterResponse>(
            new DescribeClusterRequest { IncludeClusterAuthorizedOperations = include, EndpointType = 1 }, 1);
        Assert.That(r.ErrorCode, Is.EqualTo(0));
        Assert.That(r.ClusterAuthorizedOperations, Is.EqualTo(include ? ClusterOps : int.MinValue));
    }

    [Test]
    public async Task DescribeTopicPartitionsAnswersTopicOperations()
    {
        await using var fx = await BrokerFixture.StartAsync();
        fx.CreateTopic("ops", 1);
        var r = await fx.Client.SendAsync<DescribeTopicPartitionsResponse>(
            new DescribeTopicPartitionsRequest { Topics = [new DescribeTopicPartitionsRequest.TopicRequest { Name = "ops" }], ResponsePartitionLimit = 10 }, 0);
        Assert.That(r.Topics.Single().TopicAuthorizedOperations, Is.EqualTo(TopicOps));
    }
}
