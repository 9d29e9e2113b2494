using System.Text.Json.Nodes;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Kayak.IntegrationTests.Drivers;
using Kayak.IntegrationTests.Infrastructure;
using NUnit.Framework;

namespace Kayak.IntegrationTests;

/// <summary>
/// ListGroups / DescribeGroups / DeleteGroups / OffsetDelete through Confluent's AdminClient and kafka-python's admin
/// agree with what the group's consumers see: state, members, protocol, assignments; NON_EMPTY_GROUP and
/// GROUP_SUBSCRIBED_TO_TOPIC while members exist; offsets gone after deletion.
/// </summary>
[TestFixture]
public sealed class GroupsAdminTests : BrokerTestBase
{
    private const int Partitions = 4;
    private static readonly PythonKafka Python = (PythonKafka)ClientDrivers.Python;

    private Task<JsonNode> PythonAdminAsync(BrokerUnderTest broker, string op, JsonObject arguments)
    {
        arguments["bootstrap"] = broker.BootstrapServers;
        arguments["op"] = op;
        return Python.RunAsync("group_admin", arguments, TimeSpan.FromSeconds(40), Token);
    }

    [Test]
    [CancelAfter(90_000)]
    public async Task AdminViewsAgreeWithConsumers()
    {
        var broker = await StartBrokerAsync(BrokerMode.InProcess, GroupAssert.FastGroups());
        var topic = TopicName("adm");
        var group = "ga-" + Guid.NewGuid().ToString("N")[..8];
        await broker.CreateTopicAsync(topic, Partitions, cancellationToken: Token);

        void Member(ConsumerConfig c)
        {
            c.GroupId = group;
            c.PartitionAssignmentStrategy = PartitionAssignmentStrategy.RoundRobin;
        }
        var a = new PolledConsumer("adm-a", broker.BootstrapServers, topic, c => { Member(c); c.ClientId = "client-a"; });
        var b = new PolledConsumer("adm-b", broker.BootstrapServers, topic, c => { Member(c); c.ClientId = "client-b"; });
        try
        {
            await GroupAssert.SplitAsync([a, b], Partitions, "two members", cancellationToken: Token);
            await a.RunAsync(c =>
            {
                c.Commit([new TopicPartitionOffset(topic, 0, 5), new TopicPartitionOffset(topic, 1, 6), new TopicPartitionOffset(topic, 2, 7), new TopicPartitionOffset(topic, 3, 8)]);
                return 0;
            });

            using var admin = ConfluentClients.Admin(broker.BootstrapServers);
            // Confluent's ListGroup is ListGroups + DescribeGroups.
            var info = admin.ListGroup(group, TimeSpan.FromSeconds(10));
            Assert.That(info, Is.Not.Null);
            Assert.That(info!.State, Is.EqualTo("Stable"));
            Assert.That(info.ProtocolType, Is.EqualTo("consumer"));
            Assert.That(info.Protocol, Is.EqualTo("roundrobin"));
            Assert.That(info.Members.Select(m => m.ClientId), Is.EquivalentTo(new[] { "client-a", "client-b" }));
            Assert.That(admin.ListGroups(TimeSpan.FromSeconds(10)).Select(g => g.Group), Does.Contain(group));

            var described = await PythonAdminAsync(broker, "describe", new JsonObject { ["group"] = group });
            Assert.That(described["state"]!.GetValue<string>(), Is.EqualTo("Stable"));
            Assert.That(described["protocol"]!.GetValue<string>(), Is.EqualTo("roundrobin"));
            Assert.That(described["protocol_type"]!.GetValue<string>(), Is.EqualTo("consumer"));
            var byClient = described["members"]!.AsArray().ToDictionary(
                m => m!["client_id"]!.GetValue<string>(),
                m => m!["partitions"]!.AsArray().Select(tp => tp![1]!.GetValue<int>()).Order().ToArray());
            Assert.That(byClient.Keys, Is.EquivalentTo(new[] { "client-a", "client-b" }));
            Assert.That(byClient["client-a"], Is.EqualTo(a.Partitions.Order().ToArray()), "DescribeGroups assignment of a = what a was given");
            Assert.That(byClient["client-b"], Is.EqualTo(b.Partitions.Order().ToArray()), "DescribeGroups assignment of b = what b was given");
            var listed = await PythonAdminAsync(broker, "list", []);
            Assert.That(listed["groups"]!.AsArray().Select(g => g!["group"]!.GetValue<string>()), Does.Contain(group));
            var offsets = await PythonAdminAsync(broker, "offsets", new JsonObject { ["group"] = group });
            Assert.That(offsets["offsets"]!.AsArray().Select(o => o!["offset"]!.GetValue<long>()), Is.EqualTo(new long[] { 5, 6, 7, 8 }));

            // While members exist: DeleteGroups is NON_EMPTY_GROUP, OffsetDelete of a subscribed topic GROUP_SUBSCRIBED_TO_TOPIC.
            var ex = Assert.ThrowsAsync<DeleteGroupsException>(() => admin.DeleteGroupsAsync([group]));
            Assert.That(ex!.Results.Single().Error.Code, Is.EqualTo(ErrorCode.NonEmptyGroup));
            var pyDelete = await PythonAdminAsync(broker, "delete", new JsonObject { ["groups"] = new JsonArray(group) });
            Assert.That(pyDelete["errors"]![group]!.GetValue<string>(), Is.EqualTo("NonEmptyGroupError"));
            var offsetDelete = await PythonAdminAsync(broker, "offset_delete", new JsonObject { ["group"] = group, ["topic"] = topic, ["partitions"] = new JsonArray(0, 1) });
            Assert.That(offsetDelete["error_code"]!.GetValue<int>(), Is.Zero);
            Assert.That(offsetDelete["partitions"]!["0"]!.GetValue<int>(), Is.EqualTo((int)ErrorCode.GroupSubscribedToTopic));

            // Members leave (LeaveGroup): the group is Empty with its offsets; OffsetDelete now removes partitions 0 and 1.
            await a.CloseAsync();
            await b.CloseAsync();
            info = admin.ListGroup(group, TimeSpan.FromSeconds(10));
            Assert.That(info!.State, Is.EqualTo("Empty"));
            Assert.That(info.Members, Is.Empty);
            offsetDelete = await PythonAdminAsync(broker, "offset_delete", new JsonObject { ["group"] = group, ["topic"] = topic, ["partitions"] = new JsonArray(0, 1) });
            Assert.That(offsetDelete["error_code"]!.GetValue<int>(), Is.Zero);
            Assert.That(offsetDelete["partitions"]!["0"]!.GetValue<int>(), Is.Zero);
            using (var reader = ConfluentClients.Consumer(broker.BootstrapServers, c => c.GroupId = group))
            {
                var committed = reader.Committed(Enumerable.Range(0, Partitions).Select(p => new TopicPartition(topic, p)), TimeSpan.FromSeconds(10))
                    .ToDictionary(c => c.Partition.Value, c => c.Offset.Value);
                Assert.That(committed, Is.EqualTo(new Dictionary<int, long> { [0] = Offset.Unset.Value, [1] = Offset.Unset.Value, [2] = 7, [3] = 8 }), "OffsetDelete removed partitions 0 and 1 only");
            }

            // DeleteGroups of the empty group: gone from ListGroups, no offsets left.
            await admin.DeleteGroupsAsync([group]);
            Assert.That(admin.ListGroups(TimeSpan.FromSeconds(10)).Select(g => g.Group), Does.Not.Contain(group));
            offsets = await PythonAdminAsync(broker, "offsets", new JsonObject { ["group"] = group });
            Assert.That(offsets["offsets"]!.AsArray(), Is.Empty, "no offsets after DeleteGroups");
            var again = await PythonAdminAsync(broker, "delete", new JsonObject { ["groups"] = new JsonArray(group) });
            Assert.That(again["errors"]![group]!.GetValue<string>(), Is.EqualTo("GroupIdNotFoundError"));
        }
        finally
        {
            a.Dispose();
            b.Dispose();
        }
    }
}
