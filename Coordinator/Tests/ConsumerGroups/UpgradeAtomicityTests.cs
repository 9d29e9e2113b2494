using System.Buffers.Binary;
using Kayak.Protocol.Records;
using NUnit.Framework;
using static Kayak.Coordinator.Tests.ConsumerGroups.OnlineMigrationTests;

namespace Kayak.Coordinator.Tests.ConsumerGroups;

/// <summary>
/// KIP-848 online upgrade is atomic, as in Kafka 4.0: consumerGroupHeartbeat collects the conversion records
/// (convertToConsumerGroup: the classic group's tombstone, then ConsumerGroup.createConsumerGroupRecords) and the
/// joining member's records in one CoordinatorResult, appended as one batch. A log cut anywhere therefore loads the old
/// classic group or the whole new consumer group, and a join refused after the conversion leaves the classic group.
/// </summary>
public class UpgradeAtomicityTests
{
    private static int RecordCount(byte[] batch) =>
        BinaryPrimitives.ReadInt32BigEndian(batch.AsSpan(RecordBatchHeader.RecordsCountOffset));

    [Test]
    public void EveryCutOfTheUpgradeLoadsTheClassicGroupOrTheWholeConsumerGroupAndBothServe()
    {
        using var d = new ConsumerGroupDriver(t => Options(t));
        d.CreateTopic("t", 4);
        var (classicId, generation) = ClassicMember(d);
        int partition = d.H.Coordinator.PartitionFor(Harness.Group);
        var before = d.H.Log.Batches(partition);
        var classic = Summary(d.H);
        Assert.That(classic.Type, Is.EqualTo("classic"));

        var c1 = d.Add("c1", ["t"]);
        Assert.That(d.Heartbeat(c1).ErrorCode, Is.EqualTo(0));
        var consumer = Summary(d.H);
        Assert.That(consumer.Type, Is.EqualTo("consumer"));
        Assert.That(consumer.Members, Does.Contain("c1 "), "the joining member is part of the new group");
        var written = d.H.Log.Batches(partition).Skip(before.Count).ToList();
        int total = written.Sum(RecordCount);
        Assert.That(total, Is.GreaterThan(6), "tombstone, the converted group and the joining member");

        // Cut the log at every record boundary of what the upgrade wrote. A batch the cut goes through is torn, and
        // log recovery drops a torn batch (Storage's LogSegment recovery, Kafka's LogSegment.recover), so the
        // coordinator loads the whole batches before the cut.
        for (int cut = 0; cut <= total; cut++)
        {
            var log = new InMemoryGroupLog();
            foreach (var b in before) log.Append(partition, b);
            int kept = 0;
            foreach (var b in written)
            {
                if (kept + RecordCount(b) > cut) break;
                log.Append(partition, b);
                kept += RecordCount(b);
            }
            using var reloaded = new Harness(log, new ManualTimeProvider());
            var loaded = Summary(reloaded);
            Assert.That(loaded, Is.EqualTo(cut == total ? consumer : classic),
                $"cut after {cut} of {total} records: the old classic group or the new consumer group, nothing between");
            if (loaded.Type == "classic")
                Assert.That(reloaded.Heartbeat(classicId, generation), Is.EqualTo(GroupErrors.None), $"cut {cut}: the classic group serves");
            else
                Assert.That(reloaded.Heartbeat(classicId, generation), Is.EqualTo(GroupErrors.RebalanceInProgress),
                    $"cut {cut}: the consumer group tells its classic member to rejoin");
        }
    }

    [Test]
    public void AJoinRefusedAfterTheConversionLeavesTheClassicGroupAsItWas()
    {
        using var d = new ConsumerGroupDriver(t => Options(t));
        d.CreateTopic("t", 4);
        var h = d.H;
        // A static classic member with instance id i1.
        var join = h.Join(instanceId: "i1", metadata: Harness.Subscription("t"));
        h.Time.AdvanceMs(3000);
        var j = join.R();
        Assert.That(j.ErrorCode, Is.EqualTo(GroupErrors.None));
        Assert.That(h.Sync(j.MemberId, j.GenerationId, new() { [j.MemberId] = Assignment("t", 0, 1, 2, 3) }).R().ErrorCode, Is.EqualTo(GroupErrors.None));
        int partition = h.Coordinator.PartitionFor(Harness.Group);
        int batches = h.Log.Batches(partition).Count;
        var classic = Summary(h);

        // A consumer-protocol member claiming the same instance id: Kafka converts the group, then
        // getOrMaybeSubscribeStaticConsumerGroupMember throws UNRELEASED_INSTANCE_ID and the conversion is reverted.
        var c1 = d.Add("c1", ["t"], instanceId: "i1");
        var refused = d.Heartbeat(c1);
        Assert.That(refused.ErrorCode, Is.EqualTo((short)Kayak.Protocol.ErrorCode.UnreleasedInstanceId));
        Assert.That(refused.ErrorMessage, Is.EqualTo(
            $"Static member c1 with instance id i1 cannot join the group because the instance id is owned by {j.MemberId} member."),
            "Kafka's throwIfInstanceIdIsUnreleased wording");
        Assert.That(h.Log.Batches(partition), Has.Count.EqualTo(batches), "nothing written");
        Assert.That(Summary(h), Is.EqualTo(classic), "still the classic group");
        Assert.That(Type(h), Is.EqualTo("classic"));
        Assert.That(h.Heartbeat(j.MemberId, j.GenerationId, instanceId: "i1"), Is.EqualTo(GroupErrors.None), "its member still heartbeats");
        // Its session timer survived the revert: silence still removes it.
        h.Time.AdvanceMs(Harness.Session + 1);
        Assert.That(h.Coordinator.Describe(Harness.Group)!.State, Is.Not.EqualTo(GroupState.Stable));
    }

    [TestCase(false)]
    [TestCase(true)]
    public void AnUpgradeTheLogRefusesLeavesTheClassicGroupAndSucceedsOnTheRetry(bool writtenButNotReplicated)
    {
        var log = new FaultyGroupLog(new InMemoryGroupLog()) { WriteThenTimeOut = writtenButNotReplicated };
        using var d = new ConsumerGroupDriver(new Harness(t => Options(t), log));
        d.CreateTopic("t", 4);
        var (classicId, generation) = ClassicMember(d);
        var classic = Summary(d.H);

        var c1 = d.Add("c1", ["t"]);
        log.Fail = true;
        Assert.That(d.Heartbeat(c1).ErrorCode, Is.EqualTo((short)Kayak.Protocol.ErrorCode.CoordinatorNotAvailable));
        log.Fail = false;
        Assert.That(log.Refused, Is.EqualTo(1), "one batch for the conversion and the join");
        Assert.That(Summary(d.H), Is.EqualTo(classic));
        Assert.That(d.H.Heartbeat(classicId, generation), Is.EqualTo(GroupErrors.None), "the classic group still serves");

        Assert.That(d.Heartbeat(c1).ErrorCode, Is.EqualTo(0));
        Assert.That(Type(d.H), Is.EqualTo("consumer"));
        Assert.That(d.State!.Members.Keys, Is.EquivalentTo(new[] { classicId, "c1" }));
    }
}
