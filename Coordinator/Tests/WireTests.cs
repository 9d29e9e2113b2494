using System.Buffers;
using Kayak.Protocol;
using Kayak.Protocol.CoordinatorRecords;
using Kayak.Protocol.Messages;
using NUnit.Framework;

namespace Kayak.Coordinator.Tests;

/// <summary>Every response the coordinator builds must be writable at the version it was asked for.</summary>
[TestFixture]
public class WireTests
{
    private static int WriteAt(IKafkaMessage message, short version)
    {
        var buffer = new ArrayBufferWriter<byte>();
        var w = new KafkaWriter(buffer);
        message.Write(ref w, version);
        w.Flush();
        Assert.That(buffer.WrittenCount, Is.EqualTo(message.Size(version)), $"{message.GetType().Name} v{version}");
        return buffer.WrittenCount;
    }

    [Test]
    public void ResponsesWriteAtEveryVersion()
    {
        using var h = new Harness();
        var (a, gen) = h.StableSingle();
        h.Commit("t1", 0, 3, a, gen, version: 7);
        var fresh = new List<(short, Task<JoinGroupResponse>)>();
        for (short v = 0; v <= 9; v++)
        {
            WriteAt(h.Commit("t1", 0, 4, a, gen, version: v), v);
            var fetch = v >= 8
                ? new OffsetFetchRequest { Groups = [new() { GroupId = Harness.Group, Topics = null }, new() { GroupId = "none", Topics = [new() { Name = "t1", PartitionIndexes = [0] }] }] }
                : new OffsetFetchRequest { GroupId = Harness.Group, Topics = v >= 2 ? null : [new() { Name = "t1", PartitionIndexes = [0, 1] }] };
            WriteAt(h.Coordinator.FetchOffsets(fetch, v), v);
            // Errors and MEMBER_ID_REQUIRED answers at every JoinGroup version.
            WriteAt(h.Join("ghost", version: v).R(), v);
            fresh.Add((v, h.Join(version: v, group: "fresh" + v)));
        }
        // v4+ answered MEMBER_ID_REQUIRED at once; older versions complete after the initial delay.
        h.Time.AdvanceMs(3000);
        foreach (var (v, join) in fresh) WriteAt(join.R(), v);
        for (short v = 0; v <= 5; v++)
        {
            WriteAt(h.Sync(a, gen, version: v).R(), v);
            WriteAt(h.Sync("ghost", gen, version: v).R(), v);
            WriteAt(h.Leave("ghost", version: v), v);
            WriteAt(h.Coordinator.DescribeGroups(new DescribeGroupsRequest { Groups = [Harness.Group, "missing"] }), v);
            WriteAt(h.Coordinator.ListGroups(new ListGroupsRequest(), v), v);
        }
        for (short v = 0; v <= 4; v++)
            WriteAt(h.Coordinator.Heartbeat(new HeartbeatRequest { GroupId = Harness.Group, MemberId = a, GenerationId = gen }), v);
        for (short v = 0; v <= 2; v++)
            WriteAt(h.Coordinator.DeleteGroups(new DeleteGroupsRequest { GroupsNames = [Harness.Group, "missing"] }), v);
        WriteAt(h.Coordinator.DeleteOffsets(new OffsetDeleteRequest { GroupId = Harness.Group, Topics = [new() { Name = "t2", Partitions = [new() { PartitionIndex = 0 }] }] }), 0);
    }

    [Test]
    public void StaticLeaderRejoinAtOldVersionGetsNoMemberListAndNoSkipFlag()
    {
        using var h = new Harness();
        var j = h.Join(instanceId: "i", version: 5);
        h.Time.AdvanceMs(3000);
        string id = j.R().MemberId;
        h.Sync(id, 1, new() { [id] = [1] }, instanceId: "i");
        var rejoin = h.Join(instanceId: "i", version: 8).R();
        Assert.That(rejoin.SkipAssignment, Is.False);
        Assert.That(rejoin.Members, Is.Empty);
        WriteAt(rejoin, 8);
    }

    [Test]
    public void GroupMetadataRecordDecodesWithKafkaSchema()
    {
        using var h = new Harness();
        var (a, gen) = h.StableSingle(assignment: [5, 6]);
        var values = new List<GroupMetadataValue>();
        foreach (var batch in h.Log.Batches(h.Coordinator.PartitionFor(Harness.Group)))
        {
            CoordinatorBatch.Decode(batch, (k, v) =>
            {
                var kr = new KafkaReader(k);
                Assert.That(kr.ReadInt16(), Is.EqualTo(2), "group metadata key version 2");
                var key = new GroupMetadataKey();
                key.Read(ref kr, 2);
                Assert.That(key.Group, Is.EqualTo(Harness.Group));
                var vr = new KafkaReader(v!.Value);
                Assert.That(vr.ReadInt16(), Is.EqualTo(3), "group metadata value version 3");
                var value = new GroupMetadataValue();
                value.Read(ref vr, 3);
                values.Add(value);
            });
        }
        var last = values[^1];
        Assert.Multiple(() =>
        {
            Assert.That(last.ProtocolType, Is.EqualTo("consumer"));
            Assert.That(last.Generation, Is.EqualTo(gen));
            Assert.That(last.Protocol, Is.EqualTo("range"));
            Assert.That(last.Leader, Is.EqualTo(a));
            Assert.That(last.Members.Single().MemberId, Is.EqualTo(a));
            Assert.That(last.Members.Single().Assignment, Is.EqualTo(new byte[] { 5, 6 }));
            Assert.That(last.Members.Single().SessionTimeout, Is.EqualTo(Harness.Session));
            Assert.That(last.Members.Single().Subscription, Is.EqualTo(Harness.Subscription("t1")));
        });
    }
}
