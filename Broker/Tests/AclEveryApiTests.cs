using System.Collections;
using System.Reflection;
using System.Text;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>
/// Issue 12's matrix: every API in ApiVersionTable at its newest version, sent as a realistic request naming a topic,
/// a group and a transactional id (RealisticRequests, plus the few it leaves to defaults), by bob over SASL with
/// StandardAuthorizer and no ACL for him: each is refused with Kafka's *_AUTHORIZATION_FAILED code for what it names,
/// except the APIs Kafka answers to anyone (the SASL and version exchange, DescribeCluster), those that filter what bob
/// may not see instead of refusing (ListGroups, ListTransactions: both must then list nothing) and the delegation token
/// APIs (tokens are disabled). Then the same requests after alice grants bob ALL on every topic, group, transactional id
/// and the cluster: no authorization error is left anywhere in any response. The table of codes is printed.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class AclEveryApiTests
{
    private const string Jaas = "org.apache.kafka.common.security.plain.PlainLoginModule required user_alice=\"alice-secret\" user_bob=\"bob-secret\";";
    private static readonly short[] AuthorizationCodes =
    [
        (short)ErrorCode.TopicAuthorizationFailed, (short)ErrorCode.GroupAuthorizationFailed,
        (short)ErrorCode.ClusterAuthorizationFailed, (short)ErrorCode.TransactionalIdAuthorizationFailed,
    ];

    /// <summary>Answered to every authenticated principal in Kafka (no authorization in KafkaApis' handler).</summary>
    private static readonly ApiKey[] Unchecked = [ApiKey.ApiVersions, ApiKey.SaslHandshake, ApiKey.SaslAuthenticate, ApiKey.DescribeCluster];
    /// <summary>Kafka filters by DESCRIBE instead of refusing: bob gets an empty answer.</summary>
    private static readonly ApiKey[] Filtered = [ApiKey.ListGroups, ApiKey.ListTransactions];
    /// <summary>DELEGATION_TOKEN_AUTH_DISABLED before any ACL check: Kayak serves no tokens (as Kafka without a secret key).</summary>
    private static readonly ApiKey[] Tokens = [ApiKey.CreateDelegationToken, ApiKey.RenewDelegationToken, ApiKey.ExpireDelegationToken, ApiKey.DescribeDelegationToken];

    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = Path.Combine(Path.GetTempPath(), "kayak-acl-matrix-" + Guid.NewGuid().ToString("N"));

    [TearDown]
    public void TearDown()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    [Test]
    [CancelAfter(120_000)]
    public async Task EveryServedApi_RefusesBobWithKafkasCode_UntilAnAclAllows()
    {
        var o = new KafkaBrokerOptions { DataDir = _dir };
        o.Properties["listeners"] = "SASL_PLAINTEXT://127.0.0.1:0";
        o.Properties["sasl.enabled.mechanisms"] = "PLAIN";
        o.Properties["sasl.jaas.config"] = Jaas;
        o.Properties["authorizer.class.name"] = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";
        o.Properties["super.users"] = "User:alice";
        o.Properties["group.initial.rebalance.delay.ms"] = "0";
        await using var broker = new KafkaBroker(o);
        await broker.StartAsync();
        await broker.CreateTopicAsync(RealisticRequests.Topic, 2);
        await broker.CreateTopicAsync("fuzz-grow", 1);
        Uuid IdOf(string name) => broker.State.Catalog.TryGet(name, out var t) ? t.TopicId : default;

        // Something for the filtering APIs to hide: alice's committed group and her transactional id.
        using (var alice = await LoginAsync(broker, "alice"))
        {
            var commit = await alice.SendAsync<OffsetCommitResponse>(new OffsetCommitRequest
            {
                GroupId = RealisticRequests.Group, GenerationIdOrMemberEpoch = -1, MemberId = "",
                Topics = [new() { Name = RealisticRequests.Topic, Partitions = [new() { PartitionIndex = 0, CommittedOffset = 1 }] }],
            }, 8);
            Assert.That(commit.Topics.Single().Partitions.Single().ErrorCode, Is.Zero);
            var init = await alice.SendAsync<InitProducerIdResponse>(new InitProducerIdRequest { TransactionalId = RealisticRequests.TransactionalId, TransactionTimeoutMs = 60_000 }, 4);
            Assert.That(init.ErrorCode, Is.Zero);
        }

        var table = new StringBuilder();
        var problems = new List<string>();
        using (var bob = await LoginAsync(broker, "bob"))
            foreach (var served in ApiVersionTable.Served)
            {
                if (Unchecked.Contains(served.Key)) continue;
                var response = await bob.SendAsync<IApiMessage>(Request(served.Key, served.MaxVersion, IdOf), served.MaxVersion);
                var codes = Codes(response);
                table.AppendLine($"{served.Key} v{served.MaxVersion}: {string.Join(",", codes.Distinct().Select(c => (ErrorCode)c))}");
                if (response is ListGroupsResponse { Groups.Count: > 0 } groups) problems.Add($"ListGroups shows bob {groups.Groups[0].GroupId}");
                if (response is ListTransactionsResponse { TransactionStates.Count: > 0 } txns) problems.Add($"ListTransactions shows bob {txns.TransactionStates[0].TransactionalId}");
                bool refused = codes.Any(c => AuthorizationCodes.Contains(c));
                if (Tokens.Contains(served.Key))
                {
                    if (!codes.Contains((short)ErrorCode.DelegationTokenAuthDisabled)) problems.Add($"{served.Key}: not DELEGATION_TOKEN_AUTH_DISABLED");
                }
                else if (Filtered.Contains(served.Key))
                {
                    if (refused) problems.Add($"{served.Key}: refused instead of filtered");
                }
                else if (!refused) problems.Add($"{served.Key}: bob was not refused");
            }
        TestContext.Out.WriteLine("Without ACLs:\n" + table);

        using (var alice = await LoginAsync(broker, "alice"))
        {
            var grants = new CreateAclsRequest();
            foreach (var (type, name) in new (sbyte, string)[] { (2, "*"), (3, "*"), (4, "kafka-cluster"), (5, "*") }) // TOPIC, GROUP, CLUSTER, TRANSACTIONAL_ID
                grants.Creations.Add(new() { ResourceType = type, ResourceName = name, ResourcePatternType = 3, Principal = "User:bob", Host = "*", Operation = 2, PermissionType = 3 });
            var created = await alice.SendAsync<CreateAclsResponse>(grants, 3);
            Assert.That(created.Results.Select(r => r.ErrorCode), Is.All.Zero);
        }

        table.Clear();
        using (var bob = await LoginAsync(broker, "bob"))
            foreach (var served in ApiVersionTable.Served)
            {
                if (Unchecked.Contains(served.Key) || Tokens.Contains(served.Key)) continue;
                var response = await bob.SendAsync<IApiMessage>(Request(served.Key, served.MaxVersion, IdOf), served.MaxVersion);
                var codes = Codes(response);
                table.AppendLine($"{served.Key} v{served.MaxVersion}: {string.Join(",", codes.Distinct().Select(c => (ErrorCode)c))}");
                if (codes.Any(c => AuthorizationCodes.Contains(c))) problems.Add($"{served.Key}: still refused with ALL granted");
                // The filters hid something real: now bob sees alice's group and transactional id.
                if (response is ListGroupsResponse lg && !lg.Groups.Any(g => g.GroupId == RealisticRequests.Group)) problems.Add("ListGroups hides the group from bob with ALL granted");
                if (response is ListTransactionsResponse lt && !lt.TransactionStates.Any(t => t.TransactionalId == RealisticRequests.TransactionalId))
                    problems.Add("ListTransactions hides the transactional id from bob with ALL granted");
            }
        TestContext.Out.WriteLine("With ALL granted:\n" + table);
        Assert.That(problems, Is.Empty);
    }

    /// <summary>RealisticRequests' request, or one naming the same resources for the APIs it leaves to defaults.</summary>
    private static IApiMessage Request(ApiKey key, short v, Func<string, Uuid> idOf)
    {
        const string topic = RealisticRequests.Topic;
        switch (key)
        {
            case ApiKey.WriteTxnMarkers:
                return new WriteTxnMarkersRequest
                {
                    Markers = [new() { ProducerId = 1, ProducerEpoch = 0, TransactionResult = false, CoordinatorEpoch = 0, Topics = [new() { Name = topic, PartitionIndexes = [0] }] }],
                };
            case ApiKey.ElectLeaders:
                return new ElectLeadersRequest { ElectionType = 0, TopicPartitions = [new() { Topic = topic, Partitions = [0] }], TimeoutMs = 1000 };
            case ApiKey.AlterPartitionReassignments:
                return new AlterPartitionReassignmentsRequest { Topics = [new() { Name = topic, Partitions = [new() { PartitionIndex = 0, Replicas = [1] }] }] };
            case ApiKey.ListPartitionReassignments:
                return new ListPartitionReassignmentsRequest { Topics = null };
            case ApiKey.DescribeUserScramCredentials:
                return new DescribeUserScramCredentialsRequest { Users = null };
            case ApiKey.AlterUserScramCredentials:
                return new AlterUserScramCredentialsRequest { Deletions = [new() { Name = "erin", Mechanism = 1 }] };
            case ApiKey.ConsumerGroupHeartbeat:
                return new ConsumerGroupHeartbeatRequest
                {
                    GroupId = RealisticRequests.Group + "-848", MemberId = Guid.NewGuid().ToString("N"), MemberEpoch = 0, RebalanceTimeoutMs = 10_000,
                    SubscribedTopicNames = [topic], TopicPartitions = [],
                };
            case ApiKey.ConsumerGroupDescribe:
                return new ConsumerGroupDescribeRequest { GroupIds = [RealisticRequests.Group + "-848"] };
            case ApiKey.ListGroups:
                return new ListGroupsRequest();
            case ApiKey.ListTransactions: // unfiltered, so alice's transactional id is there to hide
                return new ListTransactionsRequest { StateFilters = [], ProducerIdFilters = [], DurationFilter = -1 };
            default:
                return RealisticRequests.For(key, v, Random.Shared.Next(1_000_000), idOf) ?? ApiMessageTypes.CreateRequest(key);
        }
    }

    /// <summary>Every ErrorCode field anywhere in the response (top level, per topic, partition, group, result).</summary>
    private static List<short> Codes(object message)
    {
        var codes = new List<short>();
        Walk(message, codes, 0);
        return codes;
    }

    private static void Walk(object node, List<short> codes, int depth)
    {
        if (depth > 8) return;
        foreach (var p in node.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (p.GetIndexParameters().Length > 0) continue;
            if (p.Name == "ErrorCode" && p.PropertyType == typeof(short)) { codes.Add((short)p.GetValue(node)!); continue; }
            if (p.PropertyType == typeof(string) || p.PropertyType == typeof(byte[]) || p.Name == "UnknownTaggedFields") continue;
            if (p.GetValue(node) is IList list)
                foreach (var item in list)
                    if (item is IKafkaMessage child) Walk(child, codes, depth + 1);
        }
    }

    private static Task<RawClient> LoginAsync(KafkaBroker broker, string user) => RawClient.LoginPlainAsync(broker.BootstrapServers, user);
}
