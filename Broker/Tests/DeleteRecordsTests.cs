using Kayak.Protocol;
using Kayak.Protocol.Messages;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

[TestFixture]
public sealed class DeleteRecordsTests
{
    private static DeleteRecordsRequest Request(string topic, params (int Partition, long Offset)[] partitions)
    {
        var t = new DeleteRecordsRequest.DeleteRecordsTopic { Name = topic };
        foreach (var (p, o) in partitions) t.Partitions.Add(new DeleteRecordsRequest.DeleteRecordsPartition { PartitionIndex = p, Offset = o });
        return new DeleteRecordsRequest { Topics = [t], TimeoutMs = 1000 };
    }

    [TestCase((short)0)]
    [TestCase((short)1)]
    [TestCase((short)2)]
    public async Task MovesLogStartOffsetAndAnswersLowWatermark(short version)
    {
        await using var f = await BrokerFixture.StartAsync();
        var topic = f.CreateTopic("dr", 2);
        BrokerFixture.Produce(topic.Partitions[0], 10);
        BrokerFixture.Produce(topic.Partitions[1], 3);

        var response = await f.Client.SendAsync<DeleteRecordsResponse>(Request("dr", (0, 4), (1, -1)), version);

        var parts = response.Topics.Single().Partitions;
        Assert.That(parts[0].ErrorCode, Is.EqualTo((short)ErrorCode.None));
        Assert.That(parts[0].LowWatermark, Is.EqualTo(4));
        Assert.That(topic.Partitions[0].LogStartOffset, Is.EqualTo(4));
        // -1 means "up to the high watermark".
        Assert.That(parts[1].ErrorCode, Is.EqualTo((short)ErrorCode.None));
        Assert.That(parts[1].LowWatermark, Is.EqualTo(3));
        Assert.That(topic.Partitions[1].LogStartOffset, Is.EqualTo(3));

        // Deleting below the current start changes nothing and reports the current start.
        var again = await f.Client.SendAsync<DeleteRecordsResponse>(Request("dr", (0, 2)), version);
        Assert.That(again.Topics[0].Partitions[0].LowWatermark, Is.EqualTo(4));
    }

    [TestCase((short)0)]
    [TestCase((short)2)]
    public async Task OffsetsOutsideTheLogAndUnknownPartitionsAreErrors(short version)
    {
        await using var f = await BrokerFixture.StartAsync();
        var topic = f.CreateTopic("dr", 1);
        BrokerFixture.Produce(topic.Partitions[0], 5);

        var response = await f.Client.SendAsync<DeleteRecordsResponse>(Request("dr", (0, 6), (3, 1)), version);
        var parts = response.Topics[0].Partitions;
        Assert.That(parts[0].ErrorCode, Is.EqualTo((short)ErrorCode.OffsetOutOfRange));
        Assert.That(parts[0].LowWatermark, Is.EqualTo(-1));
        Assert.That(parts[1].ErrorCode, Is.EqualTo((short)ErrorCode.UnknownTopicOrPartition));
        Assert.That(topic.Partitions[0].LogStartOffset, Is.EqualTo(0));

        var negative = await f.Client.SendAsync<DeleteRecordsResponse>(Request("dr", (0, -2)), version);
        Assert.That(negative.Topics[0].Partitions[0].ErrorCode, Is.EqualTo((short)ErrorCode.OffsetOutOfRange));

        var unknown = await f.Client.SendAsync<DeleteRecordsResponse>(Request("nope", (0, 0)), version);
        Assert.That(unknown.Topics[0].Name, Is.EqualTo("nope"));
        Assert.That(unknown.Topics[0].Partitions[0].ErrorCode, Is.EqualTo((short)ErrorCode.UnknownTopicOrPartition));
    }

    [Test]
    public async Task CompactedTopicIsAPolicyViolation()
    {
        await using var f = await BrokerFixture.StartAsync();
        var topic = f.CreateTopic("compacted", 1, new() { ["cleanup.policy"] = "compact" });
        BrokerFixture.Produce(topic.Partitions[0], 2);

        var response = await f.Client.SendAsync<DeleteRecordsResponse>(Request("compacted", (0, 1)), 2);
        Assert.That(response.Topics[0].Partitions[0].ErrorCode, Is.EqualTo((short)ErrorCode.PolicyViolation));
        Assert.That(topic.Partitions[0].LogStartOffset, Is.EqualTo(0));
    }
}
