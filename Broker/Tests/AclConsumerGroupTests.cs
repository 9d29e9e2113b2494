using System.Text;
using Kayak.Broker.Security;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>
/// Issue 12: KIP-848 consumer groups under ACLs at the protocol level. A regex subscription resolves only to the topics
/// the heartbeating member's principal may DESCRIBE (Kafka 4.0's filterTopicDescribeAuthorizedTopics), and
/// ConsumerGroupDescribe answers TOPIC_AUTHORIZATION_FAILED, without members, for a group whose members are assigned a
/// topic the principal may not DESCRIBE (KafkaApis.handleConsumerGroupDescribe).
/// </summary>
[CancelAfter(60_000)]
public class AclConsumerGroupTests
{
    private const string Jaas = "org.apache.kafka.common.security.plain.PlainLoginModule required user_alice=\"alice-secret\" user_bob=\"bob-secret\";";
    private string _dir = "";

    [SetUp]
    public void SetUp()
    {
        _dir = Path.Combine(Path.GetTempPath(), "kayak-acl-cg-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void TearDown()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private async Task<KafkaBroker> StartAsync()
    {
        var o = new KafkaBrokerOptions { DataDir = _dir };
        o.Properties["listeners"] = "SASL_PLAINTEXT://127.0.0.1:0";
        o.Properties["sasl.enabled.mechanisms"] = "PLAIN";
        o.Properties["sasl.jaas.config"] = Jaas;
        o.Properties["authorizer.class.name"] = StandardAuthorizer.ClassName;
        o.Properties["super.users"] = "User:alice";
        var broker = new KafkaBroker(o);
        await broker.StartAsync();
        return broker;
    }

    private static Task<RawClient> LoginAsync(KafkaBroker broker, string user) => RawClient.LoginPlainAsync(broker.BootstrapServers, user);

    private static async Task GrantAsync(RawClient alice, params (sbyte Type, string Name, sbyte Op)[] acls)
    {
        var r = await alice.SendAsync<CreateAclsResponse>(new CreateAclsRequest
        {
            Creations = acls.Select(a => new CreateAclsRequest.AclCreation
            {
                ResourceType = a.Type, ResourceName = a.Name, ResourcePatternType = 3, Principal = "User:bob", Host = "*",
                Operation = a.Op, PermissionType = 3,
            }).ToList(),
        }, 3);
        Assert.That(r.Results.Select(x => x.ErrorCode), Is.All.EqualTo(0));
    }

    private const sbyte Topic = 2, Group = 3, Read = 3, Describe = 8;

    private static Uuid IdOf(KafkaBroker broker, string topic)
    {
        Assert.That(broker.State.Catalog.TryGet(topic, out var t), Is.True);
        return t!.TopicId;
    }

    private static ConsumerGroupHeartbeatRequest Heartbeat(string group, string memberId, int epoch, string? regex = null, List<string>? names = null) => new()
    {
        GroupId = group, MemberId = memberId, MemberEpoch = epoch, RebalanceTimeoutMs = epoch == 0 ? 30_000 : -1,
        SubscribedTopicRegex = epoch == 0 ? regex : null, SubscribedTopicNames = epoch == 0 ? names : null,
        TopicPartitions = epoch == 0 ? [] : null,
    };

    [Test]
    public async Task RegexSubscription_ResolvesOnlyToTopicsTheMemberMayDescribe()
    {
        await using var broker = await StartAsync();
        await broker.CreateTopicAsync("orders-eu", 2);
        await broker.CreateTopicAsync("orders-us", 2);
        using var alice = await LoginAsync(broker, "alice");
        using var bob = await LoginAsync(broker, "bob");
        await GrantAsync(alice, (Group, "regex-app", Read), (Topic, "orders-eu", Describe));

        string member = Guid.NewGuid().ToString("N")[..22];
        var join = await bob.SendAsync<ConsumerGroupHeartbeatResponse>(Heartbeat("regex-app", member, 0, regex: "orders-.*"), 1);
        Assert.That(join.ErrorCode, Is.EqualTo(0), join.ErrorMessage);
        Assert.That(join.Assignment!.TopicPartitions.Select(t => t.TopicId), Is.EqualTo(new[] { IdOf(broker, "orders-eu") }),
            "orders-us matches the regex but bob may not describe it");
        Assert.That(join.Assignment.TopicPartitions.Single().Partitions, Is.EquivalentTo(new[] { 0, 1 }));

        // Once bob may describe orders-us, the next heartbeat's resolution includes it and the member is assigned it.
        await GrantAsync(alice, (Topic, "orders-us", Describe));
        var next = await bob.SendAsync<ConsumerGroupHeartbeatResponse>(Heartbeat("regex-app", member, join.MemberEpoch), 1);
        Assert.That(next.ErrorCode, Is.EqualTo(0), next.ErrorMessage);
        Assert.That(next.MemberEpoch, Is.GreaterThan(join.MemberEpoch), "the group epoch was bumped by the new subscription metadata");
        Assert.That(next.Assignment!.TopicPartitions.Select(t => t.TopicId),
            Is.EquivalentTo(new[] { IdOf(broker, "orders-eu"), IdOf(broker, "orders-us") }));
    }

    [Test]
    public async Task RegexSubscription_OfASuperUser_IsNotFiltered()
    {
        await using var broker = await StartAsync();
        await broker.CreateTopicAsync("pay-a", 1);
        await broker.CreateTopicAsync("pay-b", 1);
        using var alice = await LoginAsync(broker, "alice");
        var join = await alice.SendAsync<ConsumerGroupHeartbeatResponse>(Heartbeat("alice-app", Guid.NewGuid().ToString("N")[..22], 0, regex: "pay-.*"), 1);
        Assert.That(join.ErrorCode, Is.EqualTo(0), join.ErrorMessage);
        Assert.That(join.Assignment!.TopicPartitions.Select(t => t.TopicId), Is.EquivalentTo(new[] { IdOf(broker, "pay-a"), IdOf(broker, "pay-b") }));
    }

    [Test]
    public async Task ConsumerGroupDescribe_AGroupAssignedATopicBobMayNotDescribe_IsTopicAuthorizationFailed()
    {
        await using var broker = await StartAsync();
        await broker.CreateTopicAsync("secret-orders", 2);
        await broker.CreateTopicAsync("public-orders", 1);
        using var alice = await LoginAsync(broker, "alice");
        using var bob = await LoginAsync(broker, "bob");
        // Alice's member is assigned both topics; bob may describe the group and only public-orders.
        var join = await alice.SendAsync<ConsumerGroupHeartbeatResponse>(
            Heartbeat("shared-app", Guid.NewGuid().ToString("N")[..22], 0, names: ["secret-orders", "public-orders"]), 1);
        Assert.That(join.ErrorCode, Is.EqualTo(0), join.ErrorMessage);
        await GrantAsync(alice, (Group, "shared-app", Describe), (Topic, "public-orders", Describe));

        var denied = await bob.SendAsync<ConsumerGroupDescribeResponse>(new ConsumerGroupDescribeRequest { GroupIds = ["shared-app"] }, 0);
        var g = denied.Groups.Single();
        Assert.That(g.ErrorCode, Is.EqualTo((short)ErrorCode.TopicAuthorizationFailed));
        Assert.That(g.ErrorMessage, Is.EqualTo("The group has described topic(s) that the client is not authorized to describe."));
        Assert.That(g.Members, Is.Empty, "no member, subscription or assignment leaks");

        var asAlice = await alice.SendAsync<ConsumerGroupDescribeResponse>(new ConsumerGroupDescribeRequest { GroupIds = ["shared-app"] }, 0);
        Assert.That(asAlice.Groups.Single().ErrorCode, Is.EqualTo(0));

        await GrantAsync(alice, (Topic, "secret-orders", Describe));
        var allowed = await bob.SendAsync<ConsumerGroupDescribeResponse>(new ConsumerGroupDescribeRequest { GroupIds = ["shared-app"] }, 0);
        Assert.That(allowed.Groups.Single().ErrorCode, Is.EqualTo(0));
        Assert.That(allowed.Groups.Single().Members.Single().Assignment.TopicPartitions.Select(t => t.TopicName),
            Is.EquivalentTo(new[] { "secret-orders", "public-orders" }));
    }
}
