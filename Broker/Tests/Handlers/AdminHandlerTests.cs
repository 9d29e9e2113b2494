using Kayak.Broker.Handlers;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using NUnit.Framework;

namespace Kayak.Broker.Tests.Handlers;

/// <summary>Metadata, ListOffsets and CreateTopics called directly with in-process services (issue 10, step 1).</summary>
public class AdminHandlerTests
{
    [Test]
    public async Task MetadataDescribesTopicsWithThisNodeAsLeaderAndItsAdvertisedEndpoint()
    {
        using var h = new ServiceHarness();
        var topic = h.CreateTopic("t", 2);
        var handler = new MetadataHandler(h.Catalog, h.Topics, h.Cluster, h.Leadership);

        var response = await ServiceHarness.Call<MetadataResponse>(handler, ServiceHarness.Context(ApiKey.Metadata, 12),
            new MetadataRequest { Topics = [new() { Name = "t" }], AllowAutoTopicCreation = false });

        Assert.That((response.ClusterId, response.ControllerId), Is.EqualTo(("test-cluster", h.Cluster.NodeId)));
        var b = response.Brokers.Single();
        Assert.That((b.NodeId, b.Host, b.Port), Is.EqualTo((h.Cluster.NodeId, "broker.test", 9999)));
        var t = response.Topics.Single();
        Assert.That((t.Name, t.TopicId, (ErrorCode)t.ErrorCode), Is.EqualTo(("t", topic.TopicId, ErrorCode.None)));
        Assert.That(t.Partitions.Select(p => (p.PartitionIndex, p.LeaderId)), Is.EqualTo(new[] { (0, h.Cluster.NodeId), (1, h.Cluster.NodeId) }));
    }

    [Test]
    public async Task MetadataAutoCreatesOnlyWhenAllowed_AndUnknownIdsAreUnknownTopicId()
    {
        using var h = new ServiceHarness(new() { ["num.partitions"] = "3" });
        var handler = new MetadataHandler(h.Catalog, h.Topics, h.Cluster, h.Leadership);
        var context = ServiceHarness.Context(ApiKey.Metadata, 12);

        var refused = await ServiceHarness.Call<MetadataResponse>(handler, context,
            new MetadataRequest { Topics = [new() { Name = "auto" }], AllowAutoTopicCreation = false });
        Assert.That((ErrorCode)refused.Topics.Single().ErrorCode, Is.EqualTo(ErrorCode.UnknownTopicOrPartition));
        Assert.That(h.Catalog.TryGet("auto", out _), Is.False);

        var created = await ServiceHarness.Call<MetadataResponse>(handler, context,
            new MetadataRequest { Topics = [new() { Name = "auto" }], AllowAutoTopicCreation = true });
        Assert.That(created.Topics.Single().Partitions, Has.Count.EqualTo(3), "num.partitions");

        var byId = await ServiceHarness.Call<MetadataResponse>(handler, context,
            new MetadataRequest { Topics = [new() { Name = null, TopicId = Uuid.NewRandom() }] });
        Assert.That((ErrorCode)byId.Topics.Single().ErrorCode, Is.EqualTo(ErrorCode.UnknownTopicId));
    }

    private static ListOffsetsRequest ListOffsets(string topic, params (int Partition, long Timestamp)[] partitions) => new()
    {
        Topics = [new() { Name = topic, Partitions = partitions.Select(p => new ListOffsetsRequest.ListOffsetsPartition { PartitionIndex = p.Partition, Timestamp = p.Timestamp }).ToList() }],
    };

    [Test]
    public async Task ListOffsetsAnswersEarliestLatestAndErrorsPerPartition()
    {
        using var h = new ServiceHarness();
        var topic = h.CreateTopic("t", 1);
        ServiceHarness.Append(topic.Partitions[0], 4);
        var handler = new ListOffsetsHandler(h.Catalog, h.Leadership);

        var response = await ServiceHarness.Call<ListOffsetsResponse>(handler, ServiceHarness.Context(ApiKey.ListOffsets, 7),
            ListOffsets("t", (0, -2), (0, -1), (0, -7), (1, -1)));

        var answers = response.Topics.Single().Partitions.Select(p => ((ErrorCode)p.ErrorCode, p.Offset)).ToList();
        Assert.That(answers, Is.EqualTo(new[]
        {
            (ErrorCode.None, 0L), // earliest
            (ErrorCode.None, 4L), // latest
            (ErrorCode.InvalidRequest, -1L), // no special timestamp below -5
            (ErrorCode.UnknownTopicOrPartition, -1L),
        }));

        var unknown = await ServiceHarness.Call<ListOffsetsResponse>(handler, ServiceHarness.Context(ApiKey.ListOffsets, 7), ListOffsets("nope", (0, -1)));
        Assert.That((ErrorCode)unknown.Topics.Single().Partitions.Single().ErrorCode, Is.EqualTo(ErrorCode.UnknownTopicOrPartition));
    }

    private static CreateTopicsRequest.CreatableTopic Topic(string name, int partitions = 1, short rf = 1) =>
        new() { Name = name, NumPartitions = partitions, ReplicationFactor = rf };

    [Test]
    public async Task CreateTopicsCreatesRefusesAndValidatesPerTopic()
    {
        using var h = new ServiceHarness();
        var handler = new CreateTopicsHandler(h.Topics, h.Config, h.Cluster, h.Describer, h.Quotas);
        var request = new CreateTopicsRequest { Topics = [Topic("new", 2), Topic("dup"), Topic("dup"), Topic("rf", 1, 3), Topic("bad name!")] };

        var response = await ServiceHarness.Call<CreateTopicsResponse>(handler, ServiceHarness.Context(ApiKey.CreateTopics, 7), request);

        var results = response.Topics.ToDictionary(t => t.Name + (t == response.Topics[2] ? "#2" : ""), t => t);
        Assert.That(((ErrorCode)results["new"].ErrorCode, results["new"].NumPartitions), Is.EqualTo((ErrorCode.None, 2)));
        Assert.That(h.Catalog.TryGet("new", out var created) ? created.TopicId : default, Is.EqualTo(results["new"].TopicId));
        Assert.That(results["new"].Configs, Is.Not.Null.And.Not.Empty, "v5+ answers the topic's configs");
        Assert.That((ErrorCode)results["dup"].ErrorCode, Is.EqualTo(ErrorCode.InvalidRequest));
        Assert.That((ErrorCode)results["dup#2"].ErrorCode, Is.EqualTo(ErrorCode.InvalidRequest));
        Assert.That(results["dup"].ErrorMessage, Does.Contain("unit-test"), "the message names the client");
        Assert.That(((ErrorCode)results["rf"].ErrorCode, results["rf"].NumPartitions, results["rf"].Configs),
            Is.EqualTo((ErrorCode.InvalidReplicationFactor, -1, (List<CreateTopicsResponse.CreatableTopicConfigs>?)null)));
        Assert.That((ErrorCode)results["bad name!"].ErrorCode, Is.EqualTo(ErrorCode.InvalidTopicException));
        Assert.That(h.Catalog.All.Select(t => t.Name), Is.EquivalentTo(new[] { "new" }));
    }

    [Test]
    public async Task CreateTopicsValidateOnlyCreatesNothing_AndAnExistingTopicIsTopicAlreadyExists()
    {
        using var h = new ServiceHarness();
        h.CreateTopic("exists", 1);
        var handler = new CreateTopicsHandler(h.Topics, h.Config, h.Cluster, h.Describer, h.Quotas);

        var response = await ServiceHarness.Call<CreateTopicsResponse>(handler, ServiceHarness.Context(ApiKey.CreateTopics, 4),
            new CreateTopicsRequest { Topics = [Topic("checked", 3), Topic("exists")], ValidateOnly = true });

        Assert.That(response.Topics.Select(t => ((ErrorCode)t.ErrorCode, t.Name)), Is.EqualTo(new[]
        {
            (ErrorCode.None, "checked"), (ErrorCode.TopicAlreadyExists, "exists"),
        }));
        Assert.That(h.Catalog.TryGet("checked", out _), Is.False);
    }
}
