using Kayak.Protocol;
using Kayak.Protocol.Messages;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>
/// AlterPartitionReassignments / ListPartitionReassignments (KIP-455) over the wire: a single node, whose only replica
/// cannot move, and the error codes Kafka's controller answers.
/// </summary>
[TestFixture]
public sealed class PartitionReassignmentsTests
{
    private static AlterPartitionReassignmentsRequest Alter(string topic, int partition, List<int>? replicas) => new()
    {
        Topics = [new() { Name = topic, Partitions = [new() { PartitionIndex = partition, Replicas = replicas }] }],
    };

    [Test]
    public async Task SingleNodeAcceptsItselfAndRefusesOtherBrokersUnknownPartitionsAndCancellations()
    {
        await using var fx = await BrokerFixture.StartAsync();
        fx.CreateTopic("r", 1);
        int self = fx.State.NodeId;

        async Task<AlterPartitionReassignmentsResponse.ReassignablePartitionResponse> One(string topic, int partition, List<int>? replicas)
        {
            var r = await fx.Client.SendAsync<AlterPartitionReassignmentsResponse>(Alter(topic, partition, replicas), 0);
            Assert.That(r.ErrorCode, Is.EqualTo(0));
            return r.Responses.Single().Partitions.Single();
        }

        Assert.That((await One("r", 0, [self])).ErrorCode, Is.EqualTo(0));
        var other = await One("r", 0, [self + 1]);
        Assert.That(other.ErrorCode, Is.EqualTo((short)ErrorCode.InvalidReplicaAssignment));
        Assert.That(other.ErrorMessage, Is.EqualTo($"The manual partition assignment includes broker {self + 1}, but no such broker is registered."));
        Assert.That((await One("r", 0, [])).ErrorCode, Is.EqualTo((short)ErrorCode.InvalidReplicaAssignment));
        Assert.That((await One("r", 0, [self, self])).ErrorMessage, Is.EqualTo($"The manual partition assignment includes the broker {self} more than once."));
        Assert.That((await One("r", 0, null)).ErrorCode, Is.EqualTo((short)ErrorCode.NoReassignmentInProgress));
        Assert.That((await One("r", 3, [self])).ErrorCode, Is.EqualTo((short)ErrorCode.UnknownTopicOrPartition));
        Assert.That((await One("missing", 0, [self])).ErrorCode, Is.EqualTo((short)ErrorCode.UnknownTopicOrPartition));

        var list = await fx.Client.SendAsync<ListPartitionReassignmentsResponse>(new ListPartitionReassignmentsRequest { Topics = null }, 0);
        Assert.That((list.ErrorCode, list.Topics.Count), Is.EqualTo(((short)0, 0)));
    }
}
