using System.Text;
using Kayak.Protocol;
using Kayak.Protocol.CoordinatorRecords;
using NUnit.Framework;

namespace Kayak.Coordinator.Tests;

[TestFixture]
public class PersistenceTests
{
    [Test]
    public void PartitionUsesJavaStringHashCode()
    {
        // "hello".hashCode() == 99162322 in Java; Kafka takes abs(hash) % partitions.
        Assert.That(CoordinatorBatch.PartitionFor("hello", 50), Is.EqualTo(99162322 % 50));
        // A negative Java hash: "polygenelubricants".hashCode() == Integer.MIN_VALUE; & 0x7fffffff gives 0.
        Assert.That(CoordinatorBatch.PartitionFor("polygenelubricants", 50), Is.EqualTo(0));
    }

    [Test]
    public void CommitsAreWrittenInKafkaFormatToTheGroupsPartition()
    {
        using var h = new Harness();
        h.Commit("t1", 2, 77, group: "hello", metadata: "m");
        int partition = h.Coordinator.PartitionFor("hello");
        Assert.That(h.Log.Partitions, Is.EqualTo(new[] { partition }));
        var records = new List<(byte[] Key, byte[]? Value)>();
        foreach (var batch in h.Log.Batches(partition))
            CoordinatorBatch.Decode(batch, (k, v) => records.Add((k.ToArray(), v?.ToArray())));
        Assert.That(records, Has.Count.EqualTo(1));

        var kr = new KafkaReader(records[0].Key);
        Assert.That(kr.ReadInt16(), Is.EqualTo(1), "offset commit key version 1");
        var key = new OffsetCommitKey();
        key.Read(ref kr, 1);
        Assert.That((key.Group, key.Topic, key.Partition), Is.EqualTo(("hello", "t1", 2)));

        var vr = new KafkaReader(records[0].Value!);
        Assert.That(vr.ReadInt16(), Is.EqualTo(3), "offset commit value version 3");
        var value = new OffsetCommitValue();
        value.Read(ref vr, 3);
        Assert.That((value.Offset, value.Metadata, value.CommitTimestamp), Is.EqualTo((77L, "m", h.Time.NowMs)));
    }

    [Test]
    public void NewCoordinatorLoadsOffsetsAndGroupsFromTheLog()
    {
        var time = new ManualTimeProvider();
        var log = new InMemoryGroupLog();
        string a;
        int gen;
        using (var h = new Harness(log, time))
        {
            (a, gen) = h.StableSingle(assignment: [4, 2]);
            h.Commit("t1", 0, 5, a, gen);
            h.Commit("t1", 0, 6, a, gen); // the later commit wins
            h.Commit("t9", 1, 1, group: "simple");
            h.Commit("gone", 0, 1, group: "deleted");
            Assert.That(h.Coordinator.DeleteGroups(new() { GroupsNames = ["deleted"] }).Results[0].ErrorCode, Is.EqualTo(GroupErrors.None));
        }
        using var h2 = new Harness(log, time);
        var snapshot = h2.Coordinator.Describe(Harness.Group)!;
        Assert.Multiple(() =>
        {
            Assert.That(snapshot.State, Is.EqualTo(GroupState.Stable));
            Assert.That(snapshot.GenerationId, Is.EqualTo(gen));
            Assert.That(snapshot.LeaderId, Is.EqualTo(a));
            Assert.That(snapshot.ProtocolName, Is.EqualTo("range"));
            Assert.That(snapshot.MemberIds, Is.EqualTo(new[] { a }));
            Assert.That(h2.Fetched("t1", 0), Is.EqualTo(6));
            Assert.That(h2.Fetched("t9", 1, "simple"), Is.EqualTo(1));
            Assert.That(h2.Coordinator.Describe("deleted"), Is.Null);
        });
        // The loaded member carries on: its assignment survives, its heartbeat is accepted.
        Assert.That(h2.Heartbeat(a, gen), Is.EqualTo(GroupErrors.None));
        Assert.That(h2.Sync(a, gen).R().Assignment, Is.EqualTo(new byte[] { 4, 2 }));
    }

    [Test]
    public void LoadedMembersThatNeverComeBackTimeOut()
    {
        var time = new ManualTimeProvider();
        var log = new InMemoryGroupLog();
        using (var h = new Harness(log, time)) h.StableSingle();
        using var h2 = new Harness(log, time);
        Assert.That(h2.State(), Is.EqualTo(GroupState.Stable));
        time.AdvanceMs(Harness.Session);
        Assert.That(h2.State(), Is.Not.EqualTo(GroupState.Stable));
        time.AdvanceMs(Harness.Rebalance);
        Assert.That(h2.State(), Is.EqualTo(GroupState.Empty));
        // The emptied group was written too: a third load sees it Empty.
        using var h3 = new Harness(log, time);
        Assert.That(h3.State(), Is.EqualTo(GroupState.Empty));
    }

    [Test]
    public void CorruptBatchIsDetected()
    {
        using var h = new Harness();
        h.Commit("t1", 0, 1, group: "hello");
        var batch = h.Log.Batches(h.Coordinator.PartitionFor("hello"))[0].ToArray();
        batch[^3] ^= 0xFF;
        Assert.Throws<CorruptRecordException>(() => CoordinatorBatch.Decode(batch, (_, _) => { }));
    }
}
