using Kayak.Protocol;
using Kayak.Protocol.Messages;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>
/// The group.consumer.* broker configs (KIP-848, Kafka's GroupCoordinatorConfig) reach the coordinator through the one
/// config registry: the heartbeat interval members are told, group.consumer.max.size, group.consumer.assignors; bad
/// combinations stop the broker at start as Kafka's config validation does; DescribeConfigs lists them.
/// </summary>
[TestFixture]
public sealed class ConsumerGroupConfigTests
{
    private static ConsumerGroupHeartbeatRequest Join(string memberId, string topic, string? assignor = null) => new()
    {
        GroupId = "cfg-group", MemberId = memberId, MemberEpoch = 0, RebalanceTimeoutMs = 30_000,
        SubscribedTopicNames = [topic], TopicPartitions = [], ServerAssignor = assignor,
    };

    [Test]
    public async Task TheCoordinatorRunsWithTheConfiguredSettings()
    {
        await using var f = await BrokerFixture.StartAsync(o =>
        {
            o.Properties["group.consumer.heartbeat.interval.ms"] = "7000";
            o.Properties["group.consumer.max.size"] = "1";
            o.Properties["group.consumer.assignors"] = "org.apache.kafka.coordinator.group.assignor.RangeAssignor";
        });
        f.CreateTopic("cfg", 2);

        var unsupported = await f.Client.SendAsync<ConsumerGroupHeartbeatResponse>(Join("m1", "cfg", "uniform"), 1);
        Assert.That(unsupported.ErrorCode, Is.EqualTo((short)ErrorCode.UnsupportedAssignor));
        Assert.That(unsupported.ErrorMessage, Does.EndWith("Supported assignors: range."));

        var first = await f.Client.SendAsync<ConsumerGroupHeartbeatResponse>(Join("m1", "cfg", "range"), 1);
        Assert.That(first.ErrorCode, Is.EqualTo((short)0));
        Assert.That(first.HeartbeatIntervalMs, Is.EqualTo(7000));

        var second = await f.Client.SendAsync<ConsumerGroupHeartbeatResponse>(Join("m2", "cfg"), 1);
        Assert.That(second.ErrorCode, Is.EqualTo((short)ErrorCode.GroupMaxSizeReached));
        Assert.That(second.ErrorMessage, Is.EqualTo("The consumer group has reached its maximum capacity of 1 members."));

        var describe = await f.Client.SendAsync<ConsumerGroupDescribeResponse>(new ConsumerGroupDescribeRequest { GroupIds = ["cfg-group"] }, 0);
        Assert.That(describe.Groups[0].AssignorName, Is.EqualTo("range"));
    }

    /// <summary>Over the wire: a bad regex is INVALID_REGULAR_EXPRESSION, a hostile one cannot stall the broker.</summary>
    [Test]
    public async Task RegexSubscriptionsOverTheWire()
    {
        await using var f = await BrokerFixture.StartAsync();
        f.CreateTopic("re-a", 2);
        f.CreateTopic("re-b", 1);
        var bad = Join("m1", "re-a");
        bad.SubscribedTopicNames = [];
        bad.SubscribedTopicRegex = "re-(";
        var refused = await f.Client.SendAsync<ConsumerGroupHeartbeatResponse>(bad, 1);
        Assert.That(refused.ErrorCode, Is.EqualTo((short)ErrorCode.InvalidRegularExpression));
        Assert.That(refused.ErrorMessage, Does.StartWith("SubscribedTopicRegex `re-(` is not a valid regular expression"));

        var hostile = Join("m1", "re-a");
        hostile.SubscribedTopicNames = [];
        hostile.SubscribedTopicRegex = "(r|re|e|-|a|b)*(a|aa)+(x+x+)+y";
        var joined = await f.Client.SendAsync<ConsumerGroupHeartbeatResponse>(hostile, 1);
        Assert.That(joined.ErrorCode, Is.EqualTo((short)0));
        Assert.That(joined.Assignment!.TopicPartitions, Is.Empty, "matches nothing");

        var good = Join("m2", "re-a");
        good.SubscribedTopicNames = [];
        good.SubscribedTopicRegex = "re-.*";
        var assigned = await f.Client.SendAsync<ConsumerGroupHeartbeatResponse>(good, 1);
        Assert.That(assigned.ErrorCode, Is.EqualTo((short)0));
        Assert.That(assigned.Assignment!.TopicPartitions.Sum(t => t.Partitions.Count), Is.EqualTo(3));
    }

    [TestCase("group.consumer.heartbeat.interval.ms", "50000")] // not below the session timeout, and above its max
    [TestCase("group.consumer.session.timeout.ms", "1000")] // below group.consumer.min.session.timeout.ms
    [TestCase("group.consumer.assignors", "sticky")]
    [TestCase("group.consumer.migration.policy", "sideways")]
    [TestCase("group.consumer.max.size", "0")]
    public void InvalidSettingsStopTheBrokerAtStart(string key, string value)
    {
        Assert.That(async () => { await using var f = await BrokerFixture.StartAsync(o => o.Properties[key] = value); },
            Throws.Exception);
    }

    [Test]
    public async Task DescribeConfigsListsKafkasDefaults()
    {
        await using var f = await BrokerFixture.StartAsync();
        var request = new DescribeConfigsRequest
        {
            Resources = [new DescribeConfigsRequest.DescribeConfigsResource { ResourceType = 4, ResourceName = f.State.NodeId.ToString() }],
        };
        var response = await f.Client.SendAsync<DescribeConfigsResponse>(request, 4);
        var configs = response.Results[0].Configs.ToDictionary(c => c.Name, c => c.Value);
        Assert.That(configs["group.consumer.assignors"], Is.EqualTo("uniform,range"));
        Assert.That(configs["group.consumer.migration.policy"], Is.EqualTo("bidirectional"));
        Assert.That(configs["group.consumer.session.timeout.ms"], Is.EqualTo("45000"));
        Assert.That(configs["group.consumer.heartbeat.interval.ms"], Is.EqualTo("5000"));
        Assert.That(configs["group.consumer.max.size"], Is.EqualTo(int.MaxValue.ToString()));
    }
}
