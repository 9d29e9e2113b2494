using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Kayak.IntegrationTests.Infrastructure;
using NUnit.Framework;

namespace Kayak.IntegrationTests;

/// <summary>
/// Issue 11 part 4 through Confluent.Kafka 2.16's AdminClient, which has the calls 1.9.3 lacked: ElectLeaders
/// (answered as a single Kafka node answers it) and KIP-430 authorized operations on the cluster, topics and groups
/// (the full sets Kafka returns while no authorizer is configured).
/// </summary>
[TestFixture]
public sealed class AdminClient216Tests : BrokerTestBase
{
    [Test]
    [CancelAfter(60_000)]
    public async Task ElectLeaders_PreferredAndUnclean_AreNotNeeded_AndUnknownPartitionsAreReported()
    {
        RequireKayak("the mock cluster's ElectLeaders differs");
        var broker = await StartBrokerAsync(BrokerMode.InProcess);
        var topic = TopicName("elect");
        await broker.CreateTopicAsync(topic, 2, new Dictionary<string, string>(), Token);
        using var admin = ConfluentClients.Admin(broker.BootstrapServers);
        foreach (var type in new[] { ElectionType.Preferred, ElectionType.Unclean })
        {
            var partitions = new List<TopicPartition> { new(topic, 0), new(topic, 1), new(topic, 7), new("no-such-topic", 0) };
            // A partial failure is an exception carrying every partition's result, as the Java admin client reports it.
            var e = Assert.ThrowsAsync<ElectLeadersException>(() => admin.ElectLeadersAsync(type, partitions))!;
            var byPartition = e.Results.TopicPartitions.ToDictionary(p => (p.Topic, p.Partition.Value), p => p.Error.Code);
            Assert.That(byPartition[(topic, 0)], Is.EqualTo(ErrorCode.ElectionNotNeeded), type.ToString());
            Assert.That(byPartition[(topic, 1)], Is.EqualTo(ErrorCode.ElectionNotNeeded));
            Assert.That(byPartition[(topic, 7)], Is.EqualTo(ErrorCode.UnknownTopicOrPart));
            Assert.That(byPartition[("no-such-topic", 0)], Is.EqualTo(ErrorCode.UnknownTopicOrPart));
        }
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task AuthorizedOperations_AreTheFullSets_WhenAskedFor()
    {
        RequireKayak("the mock cluster reports no authorized operations");
        var broker = await StartBrokerAsync(BrokerMode.InProcess);
        var topic = TopicName("ops");
        await broker.CreateTopicAsync(topic, 1, new Dictionary<string, string>(), Token);
        using var admin = ConfluentClients.Admin(broker.BootstrapServers);

        var cluster = await admin.DescribeClusterAsync(new DescribeClusterOptions { IncludeAuthorizedOperations = true });
        Assert.That(cluster.AuthorizedOperations, Is.EquivalentTo(new[]
        {
            AclOperation.Create, AclOperation.ClusterAction, AclOperation.DescribeConfigs, AclOperation.AlterConfigs,
            AclOperation.IdempotentWrite, AclOperation.Alter, AclOperation.Describe,
        }));
        var withoutOps = await admin.DescribeClusterAsync(new DescribeClusterOptions { IncludeAuthorizedOperations = false });
        Assert.That(withoutOps.AuthorizedOperations, Is.Null.Or.Empty);

        var topics = await admin.DescribeTopicsAsync(TopicCollection.OfTopicNames([topic]), new DescribeTopicsOptions { IncludeAuthorizedOperations = true });
        Assert.That(topics.TopicDescriptions[0].AuthorizedOperations, Is.EquivalentTo(new[]
        {
            AclOperation.Read, AclOperation.Write, AclOperation.Create, AclOperation.Delete, AclOperation.Alter,
            AclOperation.Describe, AclOperation.DescribeConfigs, AclOperation.AlterConfigs,
        }));

        // A group with a committed offset, described with its operations.
        using (var consumer = ConfluentClients.Consumer(broker.BootstrapServers, c => c.GroupId = "ops-group"))
            consumer.Commit([new TopicPartitionOffset(topic, 0, 0)]);
        var groups = await admin.DescribeConsumerGroupsAsync(["ops-group"], new DescribeConsumerGroupsOptions { IncludeAuthorizedOperations = true });
        Assert.That(groups.ConsumerGroupDescriptions[0].AuthorizedOperations, Is.SupersetOf(new[]
        {
            AclOperation.Read, AclOperation.Delete, AclOperation.Describe,
        }));
    }
}
