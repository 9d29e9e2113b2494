using System.Text;
using Kayak.Broker.Config;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>
/// Issue 12, part 5: the ACL APIs (DescribeAcls 29, CreateAcls 30, DeleteAcls 31) at the protocol level on a
/// SASL_PLAINTEXT broker with StandardAuthorizer (alice is a super user, bob is not), their errors and version edge
/// cases, Metadata's filtering, and kayak-acls.json across restarts.
/// </summary>
[CancelAfter(60_000)]
public class AclHandlerTests
{
    private const string Jaas = "org.apache.kafka.common.security.plain.PlainLoginModule required user_alice=\"alice-secret\" user_bob=\"bob-secret\";";
    private const sbyte Topic = 2, Group = 3, Cluster = 4, AnyType = 1;
    private const sbyte Literal = 3, Prefixed = 4, AnyPattern = 1, Match = 2;
    private const sbyte Read = 3, Write = 4, Create = 5, Describe = 8, AnyOp = 1, All = 2;
    private const sbyte Allow = 3, Deny = 2, AnyPermission = 1;

    private string _dir = "";

    [SetUp]
    public void SetUp()
    {
        _dir = Path.Combine(Path.GetTempPath(), "kayak-acl-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void TearDown()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private async Task<KafkaBroker> StartAsync(bool authorizer = true, Action<KafkaBrokerOptions>? configure = null)
    {
        var o = new KafkaBrokerOptions { DataDir = _dir };
        o.Properties["listeners"] = "SASL_PLAINTEXT://127.0.0.1:0";
        o.Properties["sasl.enabled.mechanisms"] = "PLAIN";
        o.Properties["sasl.jaas.config"] = Jaas;
        if (authorizer)
        {
            o.Properties["authorizer.class.name"] = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";
            o.Properties["super.users"] = "User:alice;User:admin";
        }
        configure?.Invoke(o);
        var broker = new KafkaBroker(o);
        await broker.StartAsync();
        return broker;
    }

    private static Task<RawClient> LoginAsync(KafkaBroker broker, string user) => RawClient.LoginPlainAsync(broker.BootstrapServers, user);

    private static CreateAclsRequest.AclCreation Creation(sbyte type, string name, sbyte pattern, string principal, sbyte op, sbyte permission = Allow) =>
        new() { ResourceType = type, ResourceName = name, ResourcePatternType = pattern, Principal = principal, Host = "*", Operation = op, PermissionType = permission };

    private static DescribeAclsRequest DescribeAll(sbyte pattern = AnyPattern) => new()
    {
        ResourceTypeFilter = AnyType, ResourceNameFilter = null, PatternTypeFilter = pattern, PrincipalFilter = null, HostFilter = null,
        Operation = AnyOp, PermissionType = AnyPermission,
    };

    private static DeleteAclsRequest.DeleteAclsFilter DeleteFilter(sbyte type, string? name, sbyte pattern) => new()
    {
        ResourceTypeFilter = type, ResourceNameFilter = name, PatternTypeFilter = pattern, PrincipalFilter = null, HostFilter = null,
        Operation = AnyOp, PermissionType = AnyPermission,
    };

    [Test]
    public async Task WithoutAnAuthorizer_EveryAclApi_AnswersSecurityDisabled_AtEveryVersion()
    {
        await using var broker = await StartAsync(authorizer: false);
        using var c = await LoginAsync(broker, "bob");
        for (short v = 0; v <= 3; v++)
        {
            var d = await c.SendAsync<DescribeAclsResponse>(DescribeAll(v == 0 ? Literal : AnyPattern), v);
            Assert.That(d.ErrorCode, Is.EqualTo((short)ErrorCode.SecurityDisabled), $"v{v}");
            Assert.That(d.ErrorMessage, Is.EqualTo("No Authorizer is configured on the broker"));
            var cr = await c.SendAsync<CreateAclsResponse>(new CreateAclsRequest { Creations = [Creation(Topic, "t", Literal, "User:bob", Read)] }, v);
            Assert.That(cr.Results.Single().ErrorCode, Is.EqualTo((short)ErrorCode.SecurityDisabled));
            var del = await c.SendAsync<DeleteAclsResponse>(new DeleteAclsRequest { Filters = [DeleteFilter(Topic, "t", Literal)] }, v);
            Assert.That(del.FilterResults.Single().ErrorCode, Is.EqualTo((short)ErrorCode.SecurityDisabled));
        }
    }

    [Test]
    public void AnotherAuthorizerClass_StopsTheStart_NamingTheKey()
    {
        var e = Assert.ThrowsAsync<ConfigException>(() => StartAsync(configure: o =>
            o.Properties["authorizer.class.name"] = "kafka.security.authorizer.AclAuthorizer"));
        Assert.That(e!.Key, Is.EqualTo("authorizer.class.name"));
    }

    [Test]
    public async Task NonSuperUser_WithoutClusterAcls_GetsClusterAuthorizationFailed()
    {
        await using var broker = await StartAsync();
        using var bob = await LoginAsync(broker, "bob");
        var d = await bob.SendAsync<DescribeAclsResponse>(DescribeAll(), 3);
        Assert.That(d.ErrorCode, Is.EqualTo((short)ErrorCode.ClusterAuthorizationFailed));
        Assert.That(d.Resources, Is.Empty);
        var cr = await bob.SendAsync<CreateAclsResponse>(new CreateAclsRequest
        {
            Creations = [Creation(Topic, "t", Literal, "User:bob", Read), Creation(Cluster, "kafka-cluster", Literal, "User:bob", Alter())],
        }, 3);
        Assert.That(cr.Results.Select(r => r.ErrorCode), Is.All.EqualTo((short)ErrorCode.ClusterAuthorizationFailed));
        var del = await bob.SendAsync<DeleteAclsResponse>(new DeleteAclsRequest { Filters = [DeleteFilter(AnyType, null, AnyPattern)] }, 3);
        Assert.That(del.FilterResults.Single().ErrorCode, Is.EqualTo((short)ErrorCode.ClusterAuthorizationFailed));

        // ALTER on the cluster lets bob manage ACLs; DESCRIBE is implied by ALTER.
        using var alice = await LoginAsync(broker, "alice");
        var grant = await alice.SendAsync<CreateAclsResponse>(new CreateAclsRequest { Creations = [Creation(Cluster, "kafka-cluster", Literal, "User:bob", Alter())] }, 3);
        Assert.That(grant.Results.Single().ErrorCode, Is.EqualTo(0));
        Assert.That((await bob.SendAsync<DescribeAclsResponse>(DescribeAll(), 3)).ErrorCode, Is.EqualTo(0));
    }

    private static sbyte Alter() => 7;

    [Test]
    public async Task SuperUser_CreatesDescribesAndDeletes_AtEveryVersion()
    {
        await using var broker = await StartAsync();
        using var alice = await LoginAsync(broker, "alice");
        for (short v = 0; v <= 3; v++)
        {
            var creations = new List<CreateAclsRequest.AclCreation> { Creation(Topic, $"orders-{v}", Literal, "User:bob", Read), Creation(Group, $"g-{v}", Literal, "User:*", Read, Deny) };
            if (v >= 1) creations.Add(Creation(Topic, $"pre-{v}-", Prefixed, "User:bob", Write));
            var cr = await alice.SendAsync<CreateAclsResponse>(new CreateAclsRequest { Creations = creations }, v);
            Assert.That(cr.Results.Select(r => r.ErrorCode), Is.All.EqualTo(0), $"v{v}");
            Assert.That(cr.Results.Select(r => r.ErrorMessage), Is.All.Null);

            var d = await alice.SendAsync<DescribeAclsResponse>(new DescribeAclsRequest
            {
                ResourceTypeFilter = Topic, ResourceNameFilter = $"orders-{v}", PatternTypeFilter = Literal,
                PrincipalFilter = "User:bob", HostFilter = "*", Operation = Read, PermissionType = Allow,
            }, v);
            Assert.That(d.ErrorCode, Is.EqualTo(0));
            Assert.That(d.ErrorMessage, Is.Null);
            var resource = d.Resources.Single();
            Assert.That((resource.ResourceType, resource.ResourceName), Is.EqualTo((Topic, $"orders-{v}")));
            Assert.That(resource.Acls.Single().Principal, Is.EqualTo("User:bob"));
        }
        // v0 reads every pattern type filter as LITERAL: the PREFIXED ACLs made at v1+ are not listed.
        var v0 = await alice.SendAsync<DescribeAclsResponse>(DescribeAll(Literal), 0);
        Assert.That(v0.Resources.Select(r => r.ResourceName), Has.None.StartsWith("pre-"));
        var all = await alice.SendAsync<DescribeAclsResponse>(DescribeAll(), 3);
        Assert.That(all.Resources, Has.Count.EqualTo(11));

        // MATCH finds the PREFIXED ACL that applies to a name; two filters may delete the same ACL.
        var match = await alice.SendAsync<DescribeAclsResponse>(new DescribeAclsRequest
        {
            ResourceTypeFilter = Topic, ResourceNameFilter = "pre-2-x", PatternTypeFilter = Match, PrincipalFilter = null, HostFilter = null,
            Operation = AnyOp, PermissionType = AnyPermission,
        }, 2);
        Assert.That(match.Resources.Single().PatternType, Is.EqualTo(Prefixed));
        var del = await alice.SendAsync<DeleteAclsResponse>(new DeleteAclsRequest
        {
            Filters = [DeleteFilter(Topic, null, AnyPattern), DeleteFilter(Topic, "orders-1", Literal), DeleteFilter(Group, "g-0", Literal)],
        }, 3);
        Assert.That(del.FilterResults.Select(r => r.ErrorCode), Is.All.EqualTo(0));
        Assert.That(del.FilterResults.Select(r => r.MatchingAcls.Count), Is.EqualTo(new[] { 7, 1, 1 }));
        Assert.That(del.FilterResults[1].MatchingAcls[0].ResourceName, Is.EqualTo("orders-1"));
        Assert.That((await alice.SendAsync<DescribeAclsResponse>(DescribeAll(), 3)).Resources, Has.Count.EqualTo(3));
        // v0 DeleteAcls has no pattern field: LITERAL.
        var del0 = await alice.SendAsync<DeleteAclsResponse>(new DeleteAclsRequest { Filters = [DeleteFilter(Group, null, Literal)] }, 0);
        Assert.That(del0.FilterResults.Single().MatchingAcls, Has.Count.EqualTo(3));
    }

    [Test]
    public async Task BadBindings_AreInvalidRequest_EachOnItsOwn_AndUnknownCodesCloseTheConnection()
    {
        await using var broker = await StartAsync();
        using var alice = await LoginAsync(broker, "alice");
        var cr = await alice.SendAsync<CreateAclsResponse>(new CreateAclsRequest
        {
            Creations =
            [
                Creation(AnyType, "t", Literal, "User:bob", Read),
                Creation(Topic, "t", Match, "User:bob", Read),
                Creation(Topic, "t", Literal, "User:bob", AnyOp),
                Creation(Topic, "t", Literal, "User:bob", Read, AnyPermission),
                Creation(Topic, "", Literal, "User:bob", Read),
                Creation(Cluster, "my-cluster", Literal, "User:bob", Alter()),
                Creation(Topic, "t", Literal, "bob", Read),
                Creation(Topic, "t", Literal, "User:bob", All),
            ],
        }, 3);
        Assert.That(cr.Results.Take(7).Select(r => r.ErrorCode), Is.All.EqualTo((short)ErrorCode.InvalidRequest));
        Assert.That(cr.Results[1].ErrorMessage, Is.EqualTo("Invalid patternType MATCH"));
        Assert.That(cr.Results[4].ErrorMessage, Is.EqualTo("Invalid empty resource name"));
        Assert.That(cr.Results[7].ErrorCode, Is.EqualTo(0));

        // A code Kafka has no value for is UNKNOWN: Kafka's request parsing fails and the connection is closed.
        await alice.SendOnlyAsync(new CreateAclsRequest { Creations = [Creation(99, "t", Literal, "User:bob", Read)] }, 3);
        Assert.That(await alice.IsClosedByPeerAsync(TimeSpan.FromSeconds(10)), Is.True);
        using var again = await LoginAsync(broker, "alice");
        await again.SendOnlyAsync(new DescribeAclsRequest
        {
            ResourceTypeFilter = Topic, ResourceNameFilter = null, PatternTypeFilter = 0, PrincipalFilter = null, HostFilter = null,
            Operation = AnyOp, PermissionType = AnyPermission,
        }, 2);
        Assert.That(await again.IsClosedByPeerAsync(TimeSpan.FromSeconds(10)), Is.True);
    }

    [Test]
    public async Task Metadata_HidesTopicsWithoutDescribe_AndAutoCreationNeedsCreate()
    {
        await using var broker = await StartAsync();
        await broker.CreateTopicAsync("visible", 2);
        await broker.CreateTopicAsync("hidden", 1);
        using var bob = await LoginAsync(broker, "bob");
        using var alice = await LoginAsync(broker, "alice");

        var none = await bob.SendAsync<MetadataResponse>(new MetadataRequest { Topics = null, IncludeTopicAuthorizedOperations = true }, 12);
        Assert.That(none.Topics, Is.Empty);
        var named = await bob.SendAsync<MetadataResponse>(new MetadataRequest
        {
            Topics = [new() { Name = "hidden" }, new() { Name = "no-such-topic" }], AllowAutoTopicCreation = true,
        }, 12);
        Assert.That(named.Topics.Select(t => (t.Name, t.ErrorCode, t.TopicId.IsZero, t.Partitions.Count)), Is.EquivalentTo(new[]
        {
            ("hidden", (short)ErrorCode.TopicAuthorizationFailed, true, 0), ("no-such-topic", (short)ErrorCode.TopicAuthorizationFailed, true, 0),
        }), "existing or not, the answer is the same");

        var grant = await alice.SendAsync<CreateAclsResponse>(new CreateAclsRequest
        {
            Creations = [Creation(Topic, "visible", Literal, "User:bob", Read), Creation(Topic, "new-", Prefixed, "User:bob", Describe)],
        }, 3);
        Assert.That(grant.Results.Select(r => r.ErrorCode), Is.All.EqualTo(0));
        var some = await bob.SendAsync<MetadataResponse>(new MetadataRequest { Topics = null, IncludeTopicAuthorizedOperations = true }, 12);
        var visible = some.Topics.Single();
        Assert.That(visible.Name, Is.EqualTo("visible"));
        Assert.That(visible.Partitions, Has.Count.EqualTo(2));
        Assert.That(visible.TopicAuthorizedOperations, Is.EqualTo(1 << Read | 1 << Describe));

        // DESCRIBE but no CREATE: the topic is not auto-created; with CREATE on the prefix it is.
        var noCreate = await bob.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [new() { Name = "new-a" }], AllowAutoTopicCreation = true }, 12);
        Assert.That(noCreate.Topics.Single().ErrorCode, Is.EqualTo((short)ErrorCode.TopicAuthorizationFailed));
        Assert.That(broker.State.Catalog.TryGet("new-a", out _), Is.False);
        await alice.SendAsync<CreateAclsResponse>(new CreateAclsRequest { Creations = [Creation(Topic, "new-", Prefixed, "User:bob", Create)] }, 3);
        var created = await bob.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [new() { Name = "new-a" }], AllowAutoTopicCreation = true }, 12);
        Assert.That(created.Topics.Single().ErrorCode, Is.EqualTo(0));
        Assert.That(broker.State.Catalog.TryGet("new-a", out _), Is.True);

        // v8-10 cluster operations: 0 without DESCRIBE on the cluster; a super user gets every one.
        var v10 = await bob.SendAsync<MetadataResponse>(new MetadataRequest { Topics = null, IncludeClusterAuthorizedOperations = true }, 10);
        Assert.That(v10.ClusterAuthorizedOperations, Is.EqualTo(0));
        var v10Alice = await alice.SendAsync<MetadataResponse>(new MetadataRequest { Topics = null, IncludeClusterAuthorizedOperations = true }, 10);
        Assert.That(v10Alice.ClusterAuthorizedOperations, Is.EqualTo(Kayak.Broker.Handlers.AuthorizedOperations.Cluster));
    }

    [Test]
    public async Task Acls_SurviveARestart_AndATornFileStopsTheStart_NamingIt()
    {
        await using (var broker = await StartAsync())
        {
            using var alice = await LoginAsync(broker, "alice");
            var cr = await alice.SendAsync<CreateAclsResponse>(new CreateAclsRequest
            {
                Creations = [Creation(Topic, "orders", Literal, "User:bob", Read), Creation(Group, "app-", Prefixed, "User:bob", Read, Deny)],
            }, 3);
            Assert.That(cr.Results.Select(r => r.ErrorCode), Is.All.EqualTo(0));
        }
        var file = Path.Combine(_dir, "kayak-acls.json");
        Assert.That(File.Exists(file), Is.True);
        await using (var broker = await StartAsync())
        {
            using var alice = await LoginAsync(broker, "alice");
            var d = await alice.SendAsync<DescribeAclsResponse>(DescribeAll(), 3);
            Assert.That(d.Resources.Select(r => (r.ResourceName, r.PatternType, r.Acls.Single().PermissionType)),
                Is.EquivalentTo(new[] { ("orders", Literal, Allow), ("app-", Prefixed, Deny) }));
        }
        var text = File.ReadAllText(file);
        File.WriteAllText(file, text[..(text.Length / 2)]);
        var e = Assert.ThrowsAsync<ConfigException>(() => StartAsync());
        Assert.That(e!.Message, Does.Contain(file));
    }

    [Test]
    public async Task Bob_IsRefusedPerTopicAndCluster_LearningNoOffsets_UntilAnAclAllows()
    {
        await using var broker = await StartAsync();
        const string topic = RealisticRequests.Topic;
        await broker.CreateTopicAsync(topic, 2);
        Uuid IdOf(string name) => broker.State.Catalog.TryGet(name, out var t) ? t.TopicId : default;
        using var bob = await LoginAsync(broker, "bob");
        const short Denied = (short)ErrorCode.TopicAuthorizationFailed;

        var produce = await bob.SendAsync<ProduceResponse>(RealisticRequests.For(ApiKey.Produce, 9, 1, IdOf)!, 9);
        Assert.That(produce.Responses.Single().PartitionResponses.Single().ErrorCode, Is.EqualTo(Denied));
        for (short v = 4; v <= 13; v += 9)
        {
            var fetch = await bob.SendAsync<FetchResponse>(RealisticRequests.For(ApiKey.Fetch, v, 1, IdOf)!, v);
            var p = fetch.Responses.Single().Partitions.Single();
            Assert.That((p.ErrorCode, p.HighWatermark, p.LogStartOffset), Is.EqualTo((Denied, -1L, -1L)), $"v{v}: no offsets told");
            Assert.That(p.Records is null || p.Records.Value.Length == 0, Is.True);
        }
        var list = await bob.SendAsync<ListOffsetsResponse>(RealisticRequests.For(ApiKey.ListOffsets, 7, 1, IdOf)!, 7);
        Assert.That(list.Topics.Single().Partitions.Single() is var lp && lp.ErrorCode == Denied && lp.Offset == -1, Is.True);
        var epoch = await bob.SendAsync<OffsetForLeaderEpochResponse>(RealisticRequests.For(ApiKey.OffsetForLeaderEpoch, 4, 1, IdOf)!, 4);
        Assert.That(epoch.Topics.Single().Partitions.Select(x => (x.ErrorCode, x.EndOffset)), Is.All.EqualTo((Denied, -1L)));
        var producers = await bob.SendAsync<DescribeProducersResponse>(RealisticRequests.For(ApiKey.DescribeProducers, 0, 1, IdOf)!, 0);
        Assert.That(producers.Topics.Single().Partitions.Select(x => x.ErrorCode), Is.All.EqualTo(Denied));
        var dtp = await bob.SendAsync<DescribeTopicPartitionsResponse>(new DescribeTopicPartitionsRequest { ResponsePartitionLimit = 10 }, 0);
        Assert.That(dtp.Topics, Is.Empty, "all topics: none he may describe");

        // Cluster-level: idempotent InitProducerId, log dirs, elections, cluster operations; groups: the coordinator.
        var init = await bob.SendAsync<InitProducerIdResponse>(new InitProducerIdRequest { TransactionalId = null, TransactionTimeoutMs = 1000 }, 4);
        Assert.That((init.ErrorCode, init.ProducerId), Is.EqualTo(((short)ErrorCode.ClusterAuthorizationFailed, -1L)));
        var dirs = await bob.SendAsync<DescribeLogDirsResponse>(new DescribeLogDirsRequest { Topics = null }, 4);
        Assert.That((dirs.ErrorCode, dirs.Results.Count), Is.EqualTo(((short)ErrorCode.ClusterAuthorizationFailed, 0)));
        var elect = await bob.SendAsync<ElectLeadersResponse>(new ElectLeadersRequest { TopicPartitions = null, TimeoutMs = 1000 }, 2);
        Assert.That(elect.ErrorCode, Is.EqualTo((short)ErrorCode.ClusterAuthorizationFailed));
        // KIP-455: AlterPartitionReassignments needs ALTER, ListPartitionReassignments DESCRIBE on the cluster.
        var reassign = await bob.SendAsync<AlterPartitionReassignmentsResponse>(new AlterPartitionReassignmentsRequest
        {
            Topics = [new() { Name = topic, Partitions = [new() { PartitionIndex = 0, Replicas = [1] }] }],
        }, 0);
        Assert.That(reassign.ErrorCode, Is.EqualTo((short)ErrorCode.ClusterAuthorizationFailed));
        Assert.That(reassign.Responses.Single().Partitions.Single().ErrorCode, Is.EqualTo((short)ErrorCode.ClusterAuthorizationFailed));
        var reassignments = await bob.SendAsync<ListPartitionReassignmentsResponse>(new ListPartitionReassignmentsRequest { Topics = null }, 0);
        Assert.That(reassignments.ErrorCode, Is.EqualTo((short)ErrorCode.ClusterAuthorizationFailed));
        var cluster = await bob.SendAsync<DescribeClusterResponse>(new DescribeClusterRequest { IncludeClusterAuthorizedOperations = true, EndpointType = 1 }, 1);
        Assert.That(cluster.ClusterAuthorizedOperations, Is.EqualTo(0));
        var coordinator = await bob.SendAsync<FindCoordinatorResponse>(new FindCoordinatorRequest { KeyType = 0, CoordinatorKeys = ["g"] }, 4);
        Assert.That(coordinator.Coordinators.Single() is var fc && fc.ErrorCode == (short)ErrorCode.GroupAuthorizationFailed && fc.NodeId == -1, Is.True);
        var txnCoordinator = await bob.SendAsync<FindCoordinatorResponse>(new FindCoordinatorRequest { KeyType = 1, KeyValue = "t" }, 3);
        Assert.That(txnCoordinator.ErrorCode, Is.EqualTo((short)ErrorCode.TransactionalIdAuthorizationFailed));

        using var alice = await LoginAsync(broker, "alice");
        await alice.SendAsync<CreateAclsResponse>(new CreateAclsRequest
        {
            Creations = [Creation(Topic, topic, Literal, "User:bob", All), Creation(Cluster, "kafka-cluster", Literal, "User:bob", Describe)],
        }, 3);
        produce = await bob.SendAsync<ProduceResponse>(RealisticRequests.For(ApiKey.Produce, 9, 1, IdOf)!, 9);
        Assert.That(produce.Responses.Single().PartitionResponses.Single().ErrorCode, Is.EqualTo(0));
        var fetched = await bob.SendAsync<FetchResponse>(RealisticRequests.For(ApiKey.Fetch, 13, 1, IdOf)!, 13);
        var fp = fetched.Responses.Single().Partitions.Single();
        Assert.That((fp.ErrorCode, fp.HighWatermark), Is.EqualTo(((short)ErrorCode.OffsetOutOfRange, 0L)), "authorized: partition 0 is empty, offset 1 is past its end");
        init = await bob.SendAsync<InitProducerIdResponse>(new InitProducerIdRequest { TransactionalId = null, TransactionTimeoutMs = 1000 }, 4);
        Assert.That(init.ErrorCode, Is.EqualTo(0), "WRITE on a topic (ALL) lets an idempotent producer start");
        dirs = await bob.SendAsync<DescribeLogDirsResponse>(new DescribeLogDirsRequest { Topics = null }, 4);
        Assert.That(dirs.ErrorCode, Is.EqualTo(0));
        cluster = await bob.SendAsync<DescribeClusterResponse>(new DescribeClusterRequest { IncludeClusterAuthorizedOperations = true, EndpointType = 1 }, 1);
        Assert.That(cluster.ClusterAuthorizedOperations, Is.EqualTo(1 << Describe));
        dtp = await bob.SendAsync<DescribeTopicPartitionsResponse>(new DescribeTopicPartitionsRequest { ResponsePartitionLimit = 10 }, 0);
        Assert.That(dtp.Topics.Single().TopicAuthorizedOperations, Is.EqualTo(Kayak.Broker.Handlers.AuthorizedOperations.Topic));
    }
}
