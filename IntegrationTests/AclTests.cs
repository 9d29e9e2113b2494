using System.Text.Json;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Kayak.Broker;
using Kayak.IntegrationTests.Drivers;
using Kayak.IntegrationTests.Infrastructure;
using NUnit.Framework;

namespace Kayak.IntegrationTests;

/// <summary>
/// Issue 12, part 5: Kafka's ACLs with real clients. A broker with one SASL_PLAINTEXT listener (PLAIN users alice and
/// bob), authorizer.class.name=StandardAuthorizer and super.users=User:alice. Alice manages ACLs with Confluent.Kafka
/// 2.16's AdminClient (CreateAclsAsync, DescribeAclsAsync, DeleteAclsAsync); for each API family bob is refused with
/// Kafka's error and learns nothing (no topic names, no offsets), then succeeds once alice adds the ACL he needs. ACLs
/// survive a restart; allow.everyone.if.no.acl.found behaves as Kafka's; kcat (librdkafka 2.0.2) sees the filtered
/// metadata. The matrix for consumers, groups and transactions is in AclGroupTests.
/// </summary>
[TestFixture]
[NonParallelizable]
[CancelAfter(120_000)]
public sealed class AclTests
{
    [OneTimeSetUp]
    public void Load() => NativeKafka.EnsureLoaded();

    internal static CancellationToken Token => TestContext.CurrentContext.CancellationToken;

    internal const string Cluster = "kafka-cluster";
    internal const ResourceType TransactionalId = (ResourceType)5; // librdkafka's RD_KAFKA_RESOURCE_TRANSACTIONAL_ID

    internal static async Task<(KafkaBroker Broker, string Dir)> StartAsync(string? dir = null, Action<KafkaBrokerOptions>? configure = null)
    {
        dir ??= Path.Combine(Path.GetTempPath(), "kayak-itest", "acl-" + Guid.NewGuid().ToString("N"));
        var options = new KafkaBrokerOptions { DataDir = dir };
        var p = options.Properties;
        p["listeners"] = "SASL_PLAINTEXT://127.0.0.1:0";
        p["sasl.enabled.mechanisms"] = "PLAIN";
        p["sasl.jaas.config"] = "org.apache.kafka.common.security.plain.PlainLoginModule required user_alice=\"alice-secret\" user_bob=\"bob-secret\";";
        p["authorizer.class.name"] = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";
        p["super.users"] = "User:alice";
        p["group.initial.rebalance.delay.ms"] = "0";
        configure?.Invoke(options);
        var broker = new KafkaBroker(options);
        await broker.StartAsync(Token);
        return (broker, dir);
    }

    internal static void As(ClientConfig c, string user)
    {
        c.SecurityProtocol = SecurityProtocol.SaslPlaintext;
        c.SaslMechanism = SaslMechanism.Plain;
        c.SaslUsername = user;
        c.SaslPassword = user + "-secret";
    }

    internal static IAdminClient Admin(KafkaBroker broker, string user)
    {
        var config = ConfluentClients.AdminConfig(broker.BootstrapServers);
        As(config, user);
        return new AdminClientBuilder(config).Build();
    }

    internal static AclBinding Allow(ResourceType type, string name, AclOperation op, string principal = "User:bob",
        ResourcePatternType pattern = ResourcePatternType.Literal, AclPermissionType permission = AclPermissionType.Allow) => new()
    {
        Pattern = new ResourcePattern { Type = type, Name = name, ResourcePatternType = pattern },
        Entry = new AccessControlEntry { Principal = principal, Host = "*", Operation = op, PermissionType = permission },
    };

    internal static async Task GrantAsync(KafkaBroker broker, params AclBinding[] acls)
    {
        using var alice = Admin(broker, "alice");
        await alice.CreateAclsAsync(acls);
    }

    internal static async Task CreateTopicAsync(KafkaBroker broker, string topic, int partitions = 2)
    {
        using var alice = Admin(broker, "alice");
        await alice.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = partitions, ReplicationFactor = 1 }]);
    }

    internal static async Task Cleanup(KafkaBroker broker, string dir)
    {
        await broker.DisposeAsync();
        try { Directory.Delete(dir, true); } catch (IOException) { }
    }

    [Test]
    public async Task AdminClient_CreatesDescribesAndDeletesAcls_AndBobMayNot()
    {
        var (broker, dir) = await StartAsync();
        try
        {
            using var alice = Admin(broker, "alice");
            await alice.CreateAclsAsync([
                Allow(ResourceType.Topic, "orders", AclOperation.Read),
                Allow(ResourceType.Topic, "orders-", AclOperation.Write, pattern: ResourcePatternType.Prefixed),
                Allow(ResourceType.Group, "*", AclOperation.Read, principal: "User:*", permission: AclPermissionType.Deny),
                Allow(ResourceType.Broker, Cluster, AclOperation.Describe),
            ]);
            var all = await alice.DescribeAclsAsync(new AclBindingFilter
            {
                PatternFilter = new ResourcePatternFilter { Type = ResourceType.Any, ResourcePatternType = ResourcePatternType.Any },
                EntryFilter = new AccessControlEntryFilter { Operation = AclOperation.Any, PermissionType = AclPermissionType.Any },
            });
            Assert.That(all.AclBindings, Has.Count.EqualTo(4));
            // MATCH: every ACL that applies to the topic orders-eu.
            var match = await alice.DescribeAclsAsync(new AclBindingFilter
            {
                PatternFilter = new ResourcePatternFilter { Type = ResourceType.Topic, Name = "orders-eu", ResourcePatternType = ResourcePatternType.Match },
                EntryFilter = new AccessControlEntryFilter { Operation = AclOperation.Any, PermissionType = AclPermissionType.Any },
            });
            Assert.That(match.AclBindings.Single().Pattern.ResourcePatternType, Is.EqualTo(ResourcePatternType.Prefixed));

            // Bob has DESCRIBE on the cluster: he may list ACLs but not change them.
            using var bob = Admin(broker, "bob");
            var seen = await bob.DescribeAclsAsync(all.AclBindings[0].ToFilter());
            Assert.That(seen.AclBindings, Has.Count.EqualTo(1));
            var refused = Assert.ThrowsAsync<CreateAclsException>(() => bob.CreateAclsAsync([Allow(ResourceType.Topic, "x", AclOperation.All)]));
            Assert.That(refused!.Results.Single().Error.Code, Is.EqualTo(ErrorCode.ClusterAuthorizationFailed));
            var refusedDelete = Assert.ThrowsAsync<DeleteAclsException>(() => bob.DeleteAclsAsync([all.AclBindings[0].ToFilter()]));
            Assert.That(refusedDelete!.Results.Single().Error.Code, Is.EqualTo(ErrorCode.ClusterAuthorizationFailed));

            var deleted = await alice.DeleteAclsAsync([new AclBindingFilter
            {
                PatternFilter = new ResourcePatternFilter { Type = ResourceType.Topic, ResourcePatternType = ResourcePatternType.Any },
                EntryFilter = new AccessControlEntryFilter { Principal = "User:bob", Operation = AclOperation.Any, PermissionType = AclPermissionType.Any },
            }]);
            Assert.That(deleted.Single().AclBindings.Select(b => b.Pattern.Name), Is.EquivalentTo(new[] { "orders", "orders-" }));
            var left = await alice.DescribeAclsAsync(new AclBindingFilter
            {
                PatternFilter = new ResourcePatternFilter { Type = ResourceType.Any, ResourcePatternType = ResourcePatternType.Any },
                EntryFilter = new AccessControlEntryFilter { Operation = AclOperation.Any, PermissionType = AclPermissionType.Any },
            });
            Assert.That(left.AclBindings.Select(b => b.Pattern.Type), Is.EquivalentTo(new[] { ResourceType.Group, ResourceType.Broker }));

            var invalid = Assert.ThrowsAsync<CreateAclsException>(() => alice.CreateAclsAsync([Allow(ResourceType.Broker, "my-cluster", AclOperation.Alter)]));
            Assert.That(invalid!.Results.Single().Error.Code, Is.EqualTo(ErrorCode.InvalidRequest));
            Assert.That(invalid.Results.Single().Error.Reason, Does.Contain("kafka-cluster"));
        }
        finally { await Cleanup(broker, dir); }
    }

    [Test]
    public async Task Metadata_ShowsBobOnlyTheTopicsHeMayDescribe_AlsoToKcat()
    {
        var (broker, dir) = await StartAsync();
        try
        {
            await CreateTopicAsync(broker, "acl-secret");
            await CreateTopicAsync(broker, "acl-shared");
            using var bob = Admin(broker, "bob");
            var before = bob.GetMetadata(TimeSpan.FromSeconds(10));
            Assert.That(before.Topics, Is.Empty, "bob learns no topic name");
            var named = bob.GetMetadata("acl-secret", TimeSpan.FromSeconds(10));
            Assert.That(named.Topics.Single().Error.Code, Is.EqualTo(ErrorCode.TopicAuthorizationFailed));
            Assert.That(named.Topics.Single().Partitions, Is.Empty);

            await GrantAsync(broker, Allow(ResourceType.Topic, "acl-sh", AclOperation.Describe, pattern: ResourcePatternType.Prefixed));
            var after = bob.GetMetadata(TimeSpan.FromSeconds(10));
            Assert.That(after.Topics.Select(t => t.Topic), Is.EqualTo(new[] { "acl-shared" }));
            using var alice = Admin(broker, "alice");
            Assert.That(alice.GetMetadata(TimeSpan.FromSeconds(10)).Topics.Select(t => t.Topic), Is.SupersetOf(new[] { "acl-secret", "acl-shared" }));

            // kcat (librdkafka 2.0.2) as bob: the same filtered list.
            var options = new KcatOptions
            {
                Settings = { ["security.protocol"] = "sasl_plaintext", ["sasl.mechanism"] = "PLAIN", ["sasl.username"] = "bob", ["sasl.password"] = "bob-secret" },
            };
            var kcat = await Kcat.RunAsync(broker.BootstrapServers, ["-L", "-J"], options: options, cancellationToken: Token);
            using var doc = JsonDocument.Parse(kcat.Stdout);
            var topics = doc.RootElement.GetProperty("topics").EnumerateArray().Select(t => t.GetProperty("topic").GetString()).ToList();
            Assert.That(topics, Is.EqualTo(new[] { "acl-shared" }), kcat.Stdout);
        }
        finally { await Cleanup(broker, dir); }
    }

    [Test]
    public async Task Produce_IsRefusedWithTopicAuthorizationFailed_UntilBobMayWrite()
    {
        var (broker, dir) = await StartAsync();
        try
        {
            await CreateTopicAsync(broker, "acl-produce");
            using (var producer = ConfluentClients.Producer(broker.BootstrapServers, c => { As(c, "bob"); c.MessageTimeoutMs = 5_000; }))
            {
                var e = Assert.ThrowsAsync<ProduceException<byte[], byte[]>>(() =>
                    producer.ProduceAsync("acl-produce", new Message<byte[], byte[]> { Key = [1], Value = [1] }, Token));
                Assert.That(e!.Error.Code, Is.EqualTo(ErrorCode.TopicAuthorizationFailed));
            }
            Assert.That(broker.State.Catalog.TryGet("acl-produce", out var log) ? log.Partitions.Sum(p => p.LogEndOffset) : -1, Is.EqualTo(0));

            await GrantAsync(broker, Allow(ResourceType.Topic, "acl-produce", AclOperation.Write));
            using (var producer = ConfluentClients.Producer(broker.BootstrapServers, c => As(c, "bob")))
            {
                var d = await producer.ProduceAsync(new TopicPartition("acl-produce", 1), new Message<byte[], byte[]> { Key = [1], Value = [2] }, Token);
                Assert.That(d.Offset.Value, Is.EqualTo(0));
            }
        }
        finally { await Cleanup(broker, dir); }
    }

    [Test]
    public async Task IdempotentProducer_NeedsIdempotentWriteOnTheClusterOrWriteOnSomeTopic()
    {
        var (broker, dir) = await StartAsync();
        try
        {
            await CreateTopicAsync(broker, "acl-idem");
            var errors = new List<Error>();
            var config = ConfluentClients.ProducerConfig(broker.BootstrapServers);
            As(config, "bob");
            config.EnableIdempotence = true;
            config.MaxInFlight = 5;
            config.MessageTimeoutMs = 5_000;
            using (var producer = new ProducerBuilder<byte[], byte[]>(config).SetErrorHandler((_, e) => { lock (errors) errors.Add(e); }).Build())
            {
                Assert.ThrowsAsync<ProduceException<byte[], byte[]>>(() =>
                    producer.ProduceAsync("acl-idem", new Message<byte[], byte[]> { Key = [1], Value = [1] }, Token));
                // The fatal InitProducerId error reaches the error handler on the client's poll thread.
                for (int i = 0; i < 200 && !HasError(errors, ErrorCode.ClusterAuthorizationFailed); i++) await Task.Delay(50, Token);
            }
            lock (errors)
                Assert.That(errors.Any(e => e.Code == ErrorCode.ClusterAuthorizationFailed),
                    "InitProducerId: " + string.Join(" | ", errors.Select(e => $"{e.Code}: {e.Reason}")));

            // WRITE on one topic is enough for InitProducerId (Kafka 3.0+); IDEMPOTENT_WRITE on the cluster is not needed.
            await GrantAsync(broker, Allow(ResourceType.Topic, "acl-idem", AclOperation.Write));
            using (var producer = new ProducerBuilder<byte[], byte[]>(config).Build())
            {
                for (int i = 0; i < 5; i++)
                {
                    var d = await producer.ProduceAsync(new TopicPartition("acl-idem", 0), new Message<byte[], byte[]> { Key = [1], Value = [(byte)i] }, Token);
                    Assert.That(d.Offset.Value, Is.EqualTo(i));
                }
            }
        }
        finally { await Cleanup(broker, dir); }
    }

    private static bool HasError(List<Error> errors, ErrorCode code)
    {
        lock (errors) return errors.Any(e => e.Code == code);
    }

    [Test]
    public async Task TopicAdmin_CreateDeleteConfigsAndDeleteRecords_NeedTheirOperations()
    {
        var (broker, dir) = await StartAsync();
        try
        {
            await CreateTopicAsync(broker, "acl-admin");
            // DESCRIBE lets bob's DeleteRecords find the leader in Metadata (without it librdkafka waits for one), and
            // implies none of the operations below.
            await GrantAsync(broker, Allow(ResourceType.Topic, "acl-admin", AclOperation.Describe));
            using var bob = Admin(broker, "bob");
            var create = Assert.ThrowsAsync<CreateTopicsException>(() =>
                bob.CreateTopicsAsync([new TopicSpecification { Name = "bob-new", NumPartitions = 1, ReplicationFactor = 1 }]));
            Assert.That(create!.Results.Single().Error.Code, Is.EqualTo(ErrorCode.TopicAuthorizationFailed));
            var describe = Assert.ThrowsAsync<DescribeConfigsException>(() =>
                bob.DescribeConfigsAsync([new ConfigResource { Type = ResourceType.Topic, Name = "acl-admin" }]));
            Assert.That(describe!.Results.Single().Error.Code, Is.EqualTo(ErrorCode.TopicAuthorizationFailed));
            Assert.That(describe.Results.Single().Entries, Is.Null.Or.Empty, "no config values");
            var brokerConfigs = Assert.ThrowsAsync<DescribeConfigsException>(() =>
                bob.DescribeConfigsAsync([new ConfigResource { Type = ResourceType.Broker, Name = "1" }]));
            Assert.That(brokerConfigs!.Results.Single().Error.Code, Is.EqualTo(ErrorCode.ClusterAuthorizationFailed));
            var alter = Assert.ThrowsAsync<IncrementalAlterConfigsException>(() => bob.IncrementalAlterConfigsAsync(
                new Dictionary<ConfigResource, List<ConfigEntry>>
                {
                    [new ConfigResource { Type = ResourceType.Topic, Name = "acl-admin" }] =
                        [new ConfigEntry { Name = "retention.ms", Value = "1000", IncrementalOperation = AlterConfigOpType.Set }],
                }));
            Assert.That(alter!.Results.Single().Error.Code, Is.EqualTo(ErrorCode.TopicAuthorizationFailed));
            var records = Assert.ThrowsAsync<DeleteRecordsException>(() =>
                bob.DeleteRecordsAsync([new TopicPartitionOffset("acl-admin", 0, Offset.End)]));
            Assert.That(records!.Results.Single().Error.Code, Is.EqualTo(ErrorCode.TopicAuthorizationFailed));
            var delete = Assert.ThrowsAsync<DeleteTopicsException>(() => bob.DeleteTopicsAsync(["acl-admin"]));
            Assert.That(delete!.Results.Single().Error.Code, Is.EqualTo(ErrorCode.TopicAuthorizationFailed));
            Assert.That(broker.State.Catalog.TryGet("acl-admin", out _), Is.True);

            await GrantAsync(broker,
                Allow(ResourceType.Topic, "bob-", AclOperation.Create, pattern: ResourcePatternType.Prefixed),
                Allow(ResourceType.Topic, "acl-admin", AclOperation.AlterConfigs),
                Allow(ResourceType.Topic, "acl-admin", AclOperation.Delete));
            await bob.CreateTopicsAsync([new TopicSpecification { Name = "bob-new", NumPartitions = 1, ReplicationFactor = 1 }]);
            var configs = await bob.DescribeConfigsAsync([new ConfigResource { Type = ResourceType.Topic, Name = "acl-admin" }]);
            Assert.That(configs.Single().Entries, Does.ContainKey("retention.ms"), "ALTER_CONFIGS implies DESCRIBE_CONFIGS");
            await bob.IncrementalAlterConfigsAsync(new Dictionary<ConfigResource, List<ConfigEntry>>
            {
                [new ConfigResource { Type = ResourceType.Topic, Name = "acl-admin" }] = [new ConfigEntry { Name = "retention.ms", Value = "3600000", IncrementalOperation = AlterConfigOpType.Set }],
            });
            var deleted = await bob.DeleteRecordsAsync([new TopicPartitionOffset("acl-admin", 0, Offset.End)]);
            Assert.That(deleted.Single().Offset.Value, Is.EqualTo(0), "the low watermark of an empty partition");
            await bob.DeleteTopicsAsync(["acl-admin"]);
            Assert.That(broker.State.Catalog.TryGet("acl-admin", out _), Is.False);
        }
        finally { await Cleanup(broker, dir); }
    }

    [Test]
    public async Task Acls_SurviveARestart()
    {
        var (broker, dir) = await StartAsync();
        try
        {
            await CreateTopicAsync(broker, "acl-durable");
            await GrantAsync(broker, Allow(ResourceType.Topic, "acl-durable", AclOperation.Describe));
            await broker.DisposeAsync();
            (broker, _) = await StartAsync(dir);
            using var bob = Admin(broker, "bob");
            Assert.That(bob.GetMetadata(TimeSpan.FromSeconds(10)).Topics.Select(t => t.Topic), Is.EqualTo(new[] { "acl-durable" }));
            using var alice = Admin(broker, "alice");
            var acls = await alice.DescribeAclsAsync(Allow(ResourceType.Topic, "acl-durable", AclOperation.Describe).ToFilter());
            Assert.That(acls.AclBindings, Has.Count.EqualTo(1));
        }
        finally { await Cleanup(broker, dir); }
    }

    [Test]
    public async Task AllowEveryoneIfNoAclFound_OpensOnlyResourcesWithoutAcls()
    {
        var (broker, dir) = await StartAsync(configure: o => o.Properties["allow.everyone.if.no.acl.found"] = "true");
        try
        {
            await CreateTopicAsync(broker, "acl-open");
            await CreateTopicAsync(broker, "acl-closed");
            await GrantAsync(broker, Allow(ResourceType.Topic, "acl-closed", AclOperation.All, principal: "User:carol"));
            using var producer = ConfluentClients.Producer(broker.BootstrapServers, c => { As(c, "bob"); c.MessageTimeoutMs = 5_000; });
            var d = await producer.ProduceAsync("acl-open", new Message<byte[], byte[]> { Key = [1], Value = [1] }, Token);
            Assert.That(d.Status, Is.EqualTo(PersistenceStatus.Persisted));
            var e = Assert.ThrowsAsync<ProduceException<byte[], byte[]>>(() =>
                producer.ProduceAsync("acl-closed", new Message<byte[], byte[]> { Key = [1], Value = [1] }, Token));
            Assert.That(e!.Error.Code, Is.EqualTo(ErrorCode.TopicAuthorizationFailed));
        }
        finally { await Cleanup(broker, dir); }
    }
}
