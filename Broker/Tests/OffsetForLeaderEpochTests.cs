using Kayak.Protocol;
using Kayak.Protocol.Messages;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

[TestFixture]
public sealed class OffsetForLeaderEpochTests
{
    private static OffsetForLeaderEpochRequest Request(short version, string topic, params (int Partition, int Epoch, int Current)[] partitions)
    {
        var t = new OffsetForLeaderEpochRequest.OffsetForLeaderTopic { Topic = topic };
        foreach (var (p, e, c) in partitions)
        {
            var rp = new OffsetForLeaderEpochRequest.OffsetForLeaderPartition { Partition = p, LeaderEpoch = e };
            if (version >= 2) rp.CurrentLeaderEpoch = c;
            t.Partitions.Add(rp);
        }
        var request = new OffsetForLeaderEpochRequest { Topics = [t] };
        if (version >= 3) request.ReplicaId = -1;
        return request;
    }

    [TestCase((short)0)]
    [TestCase((short)1)]
    [TestCase((short)2)]
    [TestCase((short)3)]
    [TestCase((short)4)]
    public async Task EpochZeroEndsAtTheLogEndOffset(short version)
    {
        await using var f = await BrokerFixture.StartAsync();
        var topic = f.CreateTopic("ofle", 2);
        BrokerFixture.Produce(topic.Partitions[0], 7);

        var response = await f.Client.SendAsync<OffsetForLeaderEpochResponse>(
            Request(version, "ofle", (0, 0, -1), (1, 0, 0), (0, 3, -1)), version);
        var parts = response.Topics.Single().Partitions;

        Assert.That(parts[0].ErrorCode, Is.EqualTo((short)ErrorCode.None));
        Assert.That(parts[0].EndOffset, Is.EqualTo(7));
        // The response carries the epoch only from v1.
        Assert.That(parts[0].LeaderEpoch, Is.EqualTo(version >= 1 ? 0 : -1));
        Assert.That(parts[1].EndOffset, Is.EqualTo(0));
        // An epoch the partition never had: undefined epoch and offset, no error.
        Assert.That(parts[2].ErrorCode, Is.EqualTo((short)ErrorCode.None));
        Assert.That(parts[2].EndOffset, Is.EqualTo(-1));
        Assert.That(parts[2].LeaderEpoch, Is.EqualTo(-1));
    }

    [TestCase((short)2)]
    [TestCase((short)4)]
    public async Task CurrentLeaderEpochIsValidated(short version)
    {
        await using var f = await BrokerFixture.StartAsync();
        f.CreateTopic("ofle", 1);

        var response = await f.Client.SendAsync<OffsetForLeaderEpochResponse>(
            Request(version, "ofle", (0, 0, 1), (0, 0, -5)), version);
        var parts = response.Topics[0].Partitions;
        Assert.That(parts[0].ErrorCode, Is.EqualTo((short)ErrorCode.UnknownLeaderEpoch));
        Assert.That(parts[1].ErrorCode, Is.EqualTo((short)ErrorCode.FencedLeaderEpoch));
        Assert.That(parts[0].EndOffset, Is.EqualTo(-1));
    }

    [TestCase((short)0)]
    [TestCase((short)4)]
    public async Task UnknownTopicOrPartition(short version)
    {
        await using var f = await BrokerFixture.StartAsync();
        f.CreateTopic("ofle", 1);

        var unknownTopic = await f.Client.SendAsync<OffsetForLeaderEpochResponse>(Request(version, "missing", (0, 0, -1)), version);
        Assert.That(unknownTopic.Topics[0].Partitions[0].ErrorCode, Is.EqualTo((short)ErrorCode.UnknownTopicOrPartition));
        var unknownPartition = await f.Client.SendAsync<OffsetForLeaderEpochResponse>(Request(version, "ofle", (4, 0, -1)), version);
        Assert.That(unknownPartition.Topics[0].Partitions[0].ErrorCode, Is.EqualTo((short)ErrorCode.UnknownTopicOrPartition));
    }
}
