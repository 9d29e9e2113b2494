using Confluent.Kafka;
using Confluent.Kafka.Admin;
using NUnit.Framework;
using static Kayak.IntegrationTests.AclTests;

namespace Kayak.IntegrationTests;

/// <summary>
/// Issue 12, part 5, continued: consumers, group admin, list offsets and transactions under ACLs with Confluent.Kafka
/// 2.16 (see AclTests for the broker). Bob is refused with Kafka's error (GROUP_/TOPIC_/TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
/// and sees no group, offset or watermark of what he may not describe; the ACLs alice then adds let him through.
/// </summary>
[TestFixture]
[NonParallelizable]
[CancelAfter(120_000)]
public sealed class AclGroupTests
{
    [OneTimeSetUp]
    public void Load() => Infrastructure.NativeKafka.EnsureLoaded();

    private static async Task ProduceAsAliceAsync(Kayak.Broker.KafkaBroker broker, string topic, int count)
    {
        using var producer = ConfluentClients.Producer(broker.BootstrapServers, c => As(c, "alice"));
        for (int i = 0; i < count; i++)
            await producer.ProduceAsync(new TopicPartition(topic, i % 2), new Message<byte[], byte[]> { Key = [(byte)i], Value = [(byte)i] }, Token);
    }

    /// <summary>The first consumer error within the timeout, or the records consumed when there is none.</summary>
    private static (ErrorCode? Error, int Consumed) ConsumeAsBob(Kayak.Broker.KafkaBroker broker, string topic, string group, int expected, bool commit = false)
    {
        using var consumer = ConfluentClients.Consumer(broker.BootstrapServers, c => { As(c, "bob"); c.GroupId = group; });
        consumer.Subscribe(topic);
        int consumed = 0;
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (consumed < expected && DateTime.UtcNow < deadline)
        {
            try
            {
                var r = consumer.Consume(TimeSpan.FromMilliseconds(500));
                if (r is null) continue;
                consumed++;
                if (commit) consumer.Commit(r);
            }
            catch (ConsumeException e)
            {
                return (e.Error.Code, consumed);
            }
        }
        consumer.Close();
        return (null, consumed);
    }

    [Test]
    public async Task Consumer_NeedsReadOnTheGroupAndTheTopic()
    {
        var (broker, dir) = await StartAsync();
        try
        {
            await CreateTopicAsync(broker, "acl-consume");
            await ProduceAsAliceAsync(broker, "acl-consume", 6);

            var noGroup = ConsumeAsBob(broker, "acl-consume", "bob-app", 6);
            Assert.That(noGroup.Error, Is.EqualTo(ErrorCode.GroupAuthorizationFailed));
            Assert.That(noGroup.Consumed, Is.EqualTo(0));

            await GrantAsync(broker, Allow(ResourceType.Group, "bob-", AclOperation.Read, pattern: ResourcePatternType.Prefixed));
            var noTopic = ConsumeAsBob(broker, "acl-consume", "bob-app", 6);
            Assert.That(noTopic.Error, Is.EqualTo(ErrorCode.TopicAuthorizationFailed));
            Assert.That(noTopic.Consumed, Is.EqualTo(0));

            await GrantAsync(broker, Allow(ResourceType.Topic, "acl-consume", AclOperation.Read));
            var ok = ConsumeAsBob(broker, "acl-consume", "bob-app", 6, commit: true);
            Assert.That(ok, Is.EqualTo(((ErrorCode?)null, 6)));

            using var bob = Admin(broker, "bob");
            var offsets = await bob.ListConsumerGroupOffsetsAsync([new ConsumerGroupTopicPartitions("bob-app", null)]);
            Assert.That(offsets.Single().Partitions.Where(p => p.Offset.Value >= 0).Sum(p => p.Offset.Value), Is.EqualTo(6));
        }
        finally { await Cleanup(broker, dir); }
    }

    [Test]
    public async Task GroupAdmin_ListDescribeOffsetsAndDelete_ShowBobNothingOfAGroupHeMayNotDescribe()
    {
        var (broker, dir) = await StartAsync();
        try
        {
            await CreateTopicAsync(broker, "acl-groups");
            await ProduceAsAliceAsync(broker, "acl-groups", 4);
            using (var consumer = ConfluentClients.Consumer(broker.BootstrapServers, c => { As(c, "alice"); c.GroupId = "alice-app"; }))
            {
                consumer.Subscribe("acl-groups");
                int n = 0;
                var deadline = DateTime.UtcNow.AddSeconds(30);
                while (n < 4 && DateTime.UtcNow < deadline)
                    if (consumer.Consume(TimeSpan.FromMilliseconds(500)) is { } r) { n++; consumer.Commit(r); }
                Assert.That(n, Is.EqualTo(4));
                consumer.Close();
            }
            using var bob = Admin(broker, "bob");
            var listed = await bob.ListConsumerGroupsAsync();
            Assert.That(listed.Valid.Select(g => g.GroupId), Has.No.Member("alice-app"));
            var describe = Assert.ThrowsAsync<DescribeConsumerGroupsException>(() => bob.DescribeConsumerGroupsAsync(["alice-app"]));
            Assert.That(describe!.Results.ConsumerGroupDescriptions.Single().Error.Code, Is.EqualTo(ErrorCode.GroupAuthorizationFailed));
            // librdkafka reports FindCoordinator's GROUP_AUTHORIZATION_FAILED as the operation's error: no offsets at all.
            var offsets = Assert.CatchAsync<KafkaException>(() =>
                bob.ListConsumerGroupOffsetsAsync([new ConsumerGroupTopicPartitions("alice-app", null)]));
            Assert.That(GroupError(offsets!), Is.EqualTo(ErrorCode.GroupAuthorizationFailed));
            var delete = Assert.CatchAsync<KafkaException>(() => bob.DeleteGroupsAsync(["alice-app"]));
            Assert.That(GroupError(delete!), Is.EqualTo(ErrorCode.GroupAuthorizationFailed));

            // DESCRIBE on the group: listed and described; its offsets stay hidden until bob may describe the topic.
            await GrantAsync(broker, Allow(ResourceType.Group, "alice-app", AclOperation.Describe));
            Assert.That((await bob.ListConsumerGroupsAsync()).Valid.Select(g => g.GroupId), Has.Member("alice-app"));
            var described = await bob.DescribeConsumerGroupsAsync(["alice-app"], new DescribeConsumerGroupsOptions { IncludeAuthorizedOperations = true });
            Assert.That(described.ConsumerGroupDescriptions.Single().AuthorizedOperations, Is.EquivalentTo(new[] { AclOperation.Describe }));
            var hidden = await bob.ListConsumerGroupOffsetsAsync([new ConsumerGroupTopicPartitions("alice-app", null)]);
            Assert.That(hidden.Single().Partitions, Is.Empty, "offsets of topics bob may not describe are left out");
            await GrantAsync(broker, Allow(ResourceType.Topic, "acl-groups", AclOperation.Describe));
            var shown = await bob.ListConsumerGroupOffsetsAsync([new ConsumerGroupTopicPartitions("alice-app", null)]);
            Assert.That(shown.Single().Partitions.Sum(p => p.Offset.Value), Is.EqualTo(4));

            await GrantAsync(broker, Allow(ResourceType.Group, "alice-app", AclOperation.Delete));
            await bob.DeleteGroupsAsync(["alice-app"]);
            using var alice = Admin(broker, "alice");
            Assert.That((await alice.ListConsumerGroupsAsync()).Valid.Select(g => g.GroupId), Has.No.Member("alice-app"));
        }
        finally { await Cleanup(broker, dir); }
    }

    private static IConsumer<byte[], byte[]> ConsumerProtocolMember(Kayak.Broker.KafkaBroker broker, string user, string group) =>
        ConfluentClients.Consumer(broker.BootstrapServers, c =>
        {
            As(c, user);
            c.GroupId = group;
            c.GroupProtocol = GroupProtocol.Consumer;
            c.SessionTimeoutMs = null;
            c.HeartbeatIntervalMs = null;
        });

    /// <summary>Polls until <paramref name="done"/> holds or 60 s pass; a consumer error fails the test.</summary>
    private static void ConsumeUntil(IConsumer<byte[], byte[]> consumer, List<string> topics, Func<bool> done)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!done() && DateTime.UtcNow < deadline)
        {
            try
            {
                if (consumer.Consume(TimeSpan.FromMilliseconds(500)) is { } r) topics.Add(r.Topic);
            }
            catch (ConsumeException e)
            {
                Assert.Fail($"consumer error {e.Error.Code}: {e.Error.Reason}");
            }
        }
    }

    /// <summary>
    /// KIP-848 with Confluent.Kafka 2.16 (group.protocol=consumer): bob's regex subscription is resolved by the broker
    /// to the matching topics he may DESCRIBE (Kafka 4.0's filterTopicDescribeAuthorizedTopics), so he is never
    /// assigned, and never fails on, a topic he may not read; ConsumerGroupDescribe of alice's group hides it from bob
    /// with TOPIC_AUTHORIZATION_FAILED while a member is assigned a topic bob may not describe.
    /// </summary>
    [Test]
    [CancelAfter(180_000)]
    public async Task ConsumerProtocol_RegexResolvesToDescribableTopics_AndDescribeHidesGroupsWithHiddenTopics()
    {
        var (broker, dir) = await StartAsync(configure: o =>
        {
            o.Properties["group.consumer.min.heartbeat.interval.ms"] = "100";
            o.Properties["group.consumer.heartbeat.interval.ms"] = "500";
        });
        try
        {
            await CreateTopicAsync(broker, "acl848-eu");
            await CreateTopicAsync(broker, "acl848-us");
            await ProduceAsAliceAsync(broker, "acl848-eu", 6);
            await ProduceAsAliceAsync(broker, "acl848-us", 6);

            // Alice's group is assigned acl848-us; bob may describe the group but not (yet) the topic.
            using var aliceConsumer = ConsumerProtocolMember(broker, "alice", "alice-848");
            aliceConsumer.Subscribe("acl848-us");
            var aliceTopics = new List<string>();
            ConsumeUntil(aliceConsumer, aliceTopics, () => aliceTopics.Count >= 6);
            Assert.That(aliceTopics, Has.Count.EqualTo(6));
            await GrantAsync(broker,
                Allow(ResourceType.Group, "alice-848", AclOperation.Describe),
                Allow(ResourceType.Group, "bob-848", AclOperation.Read),
                Allow(ResourceType.Topic, "acl848-eu", AclOperation.Read));
            using var bobAdmin = Admin(broker, "bob");
            var hidden = Assert.ThrowsAsync<DescribeConsumerGroupsException>(() => bobAdmin.DescribeConsumerGroupsAsync(["alice-848"]));
            var hiddenGroup = hidden!.Results.ConsumerGroupDescriptions.Single();
            Assert.That(hiddenGroup.Error.Code, Is.EqualTo(ErrorCode.TopicAuthorizationFailed));
            Assert.That(hiddenGroup.Members, Is.Empty);

            using var bobConsumer = ConsumerProtocolMember(broker, "bob", "bob-848");
            bobConsumer.Subscribe("^acl848-.*");
            var bobTopics = new List<string>();
            ConsumeUntil(bobConsumer, bobTopics, () => bobTopics.Count >= 6);
            Assert.That(bobTopics, Is.EqualTo(Enumerable.Repeat("acl848-eu", 6)), "acl848-us matches but is not bob's to describe");

            // READ (which implies DESCRIBE) on acl848-us: the next resolution assigns it to bob, and bob may describe alice's group.
            await GrantAsync(broker, Allow(ResourceType.Topic, "acl848-us", AclOperation.Read));
            ConsumeUntil(bobConsumer, bobTopics, () => bobTopics.Count(t => t == "acl848-us") >= 6);
            Assert.That(bobTopics.Count(t => t == "acl848-us"), Is.EqualTo(6));
            var shown = await bobAdmin.DescribeConsumerGroupsAsync(["alice-848"]);
            Assert.That(shown.ConsumerGroupDescriptions.Single().Members.Single().Assignment.TopicPartitions.Select(tp => tp.Topic).Distinct(),
                Is.EqualTo(new[] { "acl848-us" }));
            bobConsumer.Close();
            aliceConsumer.Close();
        }
        finally { await Cleanup(broker, dir); }
    }

    private static ErrorCode GroupError(KafkaException e) => e switch
    {
        ListConsumerGroupOffsetsException l => l.Results.Single().Error.Code,
        DeleteGroupsException d => d.Results.Single().Error.Code,
        _ => e.Error.Code,
    };

    [Test]
    public async Task ListOffsets_IsRefusedWithoutDescribeOnTheTopic()
    {
        var (broker, dir) = await StartAsync();
        try
        {
            await CreateTopicAsync(broker, "acl-offsets");
            await ProduceAsAliceAsync(broker, "acl-offsets", 4);
            using var consumer = ConfluentClients.Consumer(broker.BootstrapServers, c => As(c, "bob"));
            // Metadata hides the topic, so librdkafka finds no leader to ask (ListOffsets' own TOPIC_AUTHORIZATION_FAILED
            // is covered by AclHandlerTests): no watermark is learned.
            var e = Assert.Throws<KafkaException>(() => consumer.QueryWatermarkOffsets(new TopicPartition("acl-offsets", 0), TimeSpan.FromSeconds(10)));
            Assert.That(e!.Error.Code, Is.EqualTo(ErrorCode.Local_UnknownPartition));
            await GrantAsync(broker, Allow(ResourceType.Topic, "acl-offsets", AclOperation.Describe));
            using var again = ConfluentClients.Consumer(broker.BootstrapServers, c => As(c, "bob")); // no cached metadata
            var w = again.QueryWatermarkOffsets(new TopicPartition("acl-offsets", 0), TimeSpan.FromSeconds(10));
            Assert.That(w.High.Value, Is.EqualTo(2));
        }
        finally { await Cleanup(broker, dir); }
    }

    [Test]
    public async Task Transactions_NeedWriteOnTheTransactionalId_AndReadOnTheGroupForOffsets()
    {
        var (broker, dir) = await StartAsync();
        try
        {
            await CreateTopicAsync(broker, "acl-txn");
            var config = ConfluentClients.ProducerConfig(broker.BootstrapServers);
            As(config, "bob");
            config.TransactionalId = "bob-txn";
            config.MaxInFlight = 5;
            config.EnableIdempotence = true;
            using (var denied = new ProducerBuilder<byte[], byte[]>(config).Build())
            {
                var e = Assert.Throws<KafkaException>(() => denied.InitTransactions(TimeSpan.FromSeconds(20)));
                Assert.That(e!.Error.Code, Is.EqualTo(ErrorCode.TransactionalIdAuthorizationFailed));
            }

            await GrantAsync(broker, Allow(TransactionalId, "bob-txn", AclOperation.Write), Allow(ResourceType.Topic, "acl-txn", AclOperation.Write));
            using var producer = new ProducerBuilder<byte[], byte[]>(config).Build();
            producer.InitTransactions(TimeSpan.FromSeconds(20));
            producer.BeginTransaction();
            for (int i = 0; i < 3; i++)
                await producer.ProduceAsync(new TopicPartition("acl-txn", 0), new Message<byte[], byte[]> { Key = [1], Value = [(byte)i] }, Token);
            // SendOffsetsToTransaction needs READ on the group (AddOffsetsToTxn answers GROUP_AUTHORIZATION_FAILED).
            var offsets = Assert.Catch<KafkaException>(() => producer.SendOffsetsToTransaction(
                [new TopicPartitionOffset("acl-txn", 0, 1)], new ConsumerGroupMetadata_("bob-group").Value, TimeSpan.FromSeconds(20)));
            Assert.That(offsets!.Error.Code, Is.EqualTo(ErrorCode.GroupAuthorizationFailed));
            producer.AbortTransaction(TimeSpan.FromSeconds(20));

            // With READ on the group and on the offsets' topic (TxnOffsetCommit checks both): produce, send offsets, commit.
            await GrantAsync(broker, Allow(ResourceType.Group, "bob-group", AclOperation.Read), Allow(ResourceType.Topic, "acl-txn", AclOperation.Read));
            producer.BeginTransaction();
            for (int i = 0; i < 3; i++)
                await producer.ProduceAsync(new TopicPartition("acl-txn", 1), new Message<byte[], byte[]> { Key = [2], Value = [(byte)i] }, Token);
            producer.SendOffsetsToTransaction([new TopicPartitionOffset("acl-txn", 0, 1)], new ConsumerGroupMetadata_("bob-group").Value, TimeSpan.FromSeconds(20));
            producer.CommitTransaction(TimeSpan.FromSeconds(20));

            // read_committed: the committed records only; the position passes the aborted ones and both markers.
            var read = new List<(int Partition, byte Value)>();
            using (var consumer = ConfluentClients.Consumer(broker.BootstrapServers, c => { As(c, "alice"); c.IsolationLevel = IsolationLevel.ReadCommitted; }))
            {
                var p0 = new TopicPartition("acl-txn", 0);
                consumer.Assign([new TopicPartitionOffset(p0, Offset.Beginning), new TopicPartitionOffset("acl-txn", 1, Offset.Beginning)]);
                var deadline = DateTime.UtcNow.AddSeconds(30);
                while ((read.Count < 3 || consumer.Position(p0).Value < 4) && DateTime.UtcNow < deadline)
                    if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is { } r) read.Add((r.Partition.Value, r.Message.Value[0]));
                Assert.That(consumer.Position(p0).Value, Is.EqualTo(4));
            }
            Assert.That(read, Is.EqualTo(new[] { (1, (byte)0), (1, (byte)1), (1, (byte)2) }), "the aborted transaction's records are not read");
        }
        finally { await Cleanup(broker, dir); }
    }

    /// <summary>A consumer's group metadata, as SendOffsetsToTransaction takes it, from a consumer that never joins.</summary>
    private sealed class ConsumerGroupMetadata_(string group)
    {
        public IConsumerGroupMetadata Value { get; } = Make(group);

        private static IConsumerGroupMetadata Make(string group)
        {
            using var c = new ConsumerBuilder<byte[], byte[]>(new ConsumerConfig { BootstrapServers = "127.0.0.1:1", GroupId = group }).Build();
            return c.ConsumerGroupMetadata;
        }
    }
}
