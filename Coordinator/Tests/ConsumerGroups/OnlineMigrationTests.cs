using System.Buffers;
using Kayak.Coordinator.ConsumerGroups;
using Kayak.Protocol;
using Kayak.Protocol.CoordinatorRecords;
using Kayak.Protocol.Messages;
using NUnit.Framework;

namespace Kayak.Coordinator.Tests.ConsumerGroups;

/// <summary>
/// KIP-848 online migration (group.consumer.migration.policy), as Kafka 4.0's GroupMetadataManager: a consumer-protocol
/// member joining a classic group with members upgrades it (the classic members keep their assignments and keep using
/// JoinGroup/SyncGroup/Heartbeat), and the last consumer-protocol member leaving a group of classic members downgrades
/// it; a policy that forbids the direction answers Kafka's errors. State comes from the records only: every test
/// reloads the log and compares.
/// </summary>
public class OnlineMigrationTests
{
    internal static GroupCoordinatorOptions Options(ManualTimeProvider time, string policy = "bidirectional", int consumerMax = int.MaxValue) => new()
    {
        Time = time,
        InitialRebalanceDelayMs = 3000,
        OffsetsRetentionMinutes = 60,
        OffsetsRetentionCheckIntervalMs = 60_000,
        ConsumerGroupMigrationPolicy = policy,
        ConsumerGroupMaxSize = consumerMax,
    };

    internal static byte[] Assignment(string topic, params int[] partitions)
    {
        var a = new ConsumerProtocolAssignment();
        a.AssignedPartitions.Add(new ConsumerProtocolAssignment.TopicPartition { Topic = topic, Partitions = partitions.ToList() });
        var buffer = new ArrayBufferWriter<byte>();
        var w = new KafkaWriter(buffer);
        w.WriteInt16(1);
        a.Write(ref w, 1);
        w.Flush();
        return buffer.WrittenSpan.ToArray();
    }

    internal static SortedSet<int> Partitions(byte[] assignment)
    {
        var reader = new KafkaReader(assignment);
        short v = reader.ReadInt16();
        var a = new ConsumerProtocolAssignment();
        a.Read(ref reader, v);
        return new SortedSet<int>(a.AssignedPartitions.SelectMany(t => t.Partitions));
    }

    internal static string Type(Harness h) =>
        h.Coordinator.ListGroups(new ListGroupsRequest(), 5).Groups.Single(g => g.GroupId == Harness.Group).GroupType;

    /// <summary>Every record in the group's partition: key version and whether it is a tombstone, with the decoded member metadata.</summary>
    private static List<(short KeyVersion, bool Tombstone, ConsumerGroupMemberMetadataValue? Member)> Records(Harness h)
    {
        var result = new List<(short, bool, ConsumerGroupMemberMetadataValue?)>();
        int partition = h.Coordinator.PartitionFor(Harness.Group);
        foreach (var batch in h.Log.Batches(partition))
            CoordinatorBatch.Decode(batch, (k, v) =>
            {
                short keyVersion = (short)(k.Span[0] << 8 | k.Span[1]);
                ConsumerGroupMemberMetadataValue? member = null;
                if (keyVersion == 5 && v is { } bytes)
                {
                    var reader = new KafkaReader(bytes);
                    short version = reader.ReadInt16();
                    member = new ConsumerGroupMemberMetadataValue();
                    member.Read(ref reader, version);
                }
                result.Add((keyVersion, v is null, member));
            });
        return result;
    }

    /// <summary>A classic member alone in the group, owning partitions 0-3 of "t" at generation 1.</summary>
    internal static (string Id, int Generation) ClassicMember(ConsumerGroupDriver d) =>
        d.H.StableSingle(assignment: Assignment("t", 0, 1, 2, 3), metadata: Harness.Subscription("t"));

    private static (string Group, string Type, string Members) Reloaded(Harness h)
    {
        using var reloaded = new Harness(h.Log, new ManualTimeProvider());
        return Summary(reloaded);
    }

    internal static (string Group, string Type, string Members) Summary(Harness h)
    {
        var g = h.Coordinator.AllGroups.Single(g => g.GroupId == Harness.Group);
        lock (g.Lock)
        {
            if (g.Consumer is { } cg)
                return (g.GroupId, "consumer", string.Join(";", cg.Members.Values.OrderBy(m => m.MemberId, StringComparer.Ordinal).Select(m =>
                    $"{m.MemberId} e{m.MemberEpoch} {m.State} [{string.Join(",", m.Assigned.All().Select(p => p.Partition))}] " +
                    $"classic={m.Classic?.SessionTimeoutMs.ToString() ?? "-"} epoch{cg.GroupEpoch}/{cg.AssignmentEpoch}")));
            return (g.GroupId, "classic", $"gen{g.GenerationId} {g.ProtocolName} leader={g.LeaderId} " + string.Join(";",
                g.MemberList.Select(m => $"{m.MemberId} [{string.Join(",", m.Assignment.Length > 0 ? Partitions(m.Assignment) : [])}]")));
        }
    }

    [Test]
    public void AConsumerMemberUpgradesAClassicGroupWhoseMemberKeepsItsPartitionsAndRejoinsToGiveSomeUp()
    {
        using var d = new ConsumerGroupDriver(t => Options(t));
        d.CreateTopic("t", 4);
        var h = d.H;
        var (classicId, generation) = ClassicMember(d);
        int before = Records(h).Count;

        var c1 = d.Add("c1", ["t"]);
        Assert.That(d.Heartbeat(c1).ErrorCode, Is.EqualTo(0));
        Assert.That(Type(h), Is.EqualTo("consumer"));

        // Kafka's convertToConsumerGroup: the classic group's tombstone, then the converted group's records.
        var written = Records(h).Skip(before).ToList();
        Assert.That(written.Take(6).Select(r => (r.KeyVersion, r.Tombstone)),
            Is.EqualTo(new[] { ((short)2, true), ((short)5, false), ((short)3, false), ((short)7, false), ((short)6, false), ((short)8, false) }));
        var classicRecord = written[1].Member!;
        Assert.That(classicRecord.ClassicMemberMetadata, Is.Not.Null);
        Assert.That(classicRecord.ClassicMemberMetadata!.SessionTimeoutMs, Is.EqualTo(Harness.Session));
        Assert.That(classicRecord.ClassicMemberMetadata.SupportedProtocols.Select(p => p.Name), Is.EqualTo(new[] { "range" }));
        Assert.That(classicRecord.SubscribedTopicNames, Is.EqualTo(new[] { "t" }));

        // The classic member still owns all four; the newcomer waits for the two it is given.
        var cg = d.State!;
        var classic = cg.Members[classicId];
        Assert.That(classic.UsesClassicProtocol, Is.True);
        Assert.That(classic.Assigned.Count, Is.EqualTo(4));
        Assert.That(c1.Owned.Values.Sum(s => s.Count), Is.EqualTo(0), "nothing before the classic member revokes");
        Assert.That(cg.Members["c1"].State, Is.EqualTo(ConsumerMemberState.UnreleasedPartitions));
        d.AssertNoPartitionOwnedTwice();

        // Its Heartbeat (and a SyncGroup) tells it to rejoin; an eager client revokes everything and rejoins owning nothing.
        Assert.That(h.Heartbeat(classicId, generation), Is.EqualTo(GroupErrors.RebalanceInProgress));
        Assert.That(h.Sync(classicId, generation).R().ErrorCode, Is.EqualTo(GroupErrors.RebalanceInProgress));
        var join = h.Join(classicId, metadata: Harness.Subscription("t")).R();
        Assert.That(join.ErrorCode, Is.EqualTo(GroupErrors.None));
        Assert.That(join.GenerationId, Is.EqualTo(cg.GroupEpoch), "the generation is the member epoch");
        Assert.That(join.Leader, Is.Empty, "every classic member of a consumer group is a follower");
        Assert.That(join.Members, Is.Empty);
        var sync = h.Sync(classicId, join.GenerationId).R();
        Assert.That(sync.ErrorCode, Is.EqualTo(GroupErrors.None));
        var mine = Partitions(sync.Assignment);
        Assert.That(mine, Has.Count.EqualTo(2));
        Assert.That(h.Heartbeat(classicId, join.GenerationId), Is.EqualTo(GroupErrors.None));
        Assert.That(h.Heartbeat(classicId, generation), Is.EqualTo(GroupErrors.IllegalGeneration), "the old generation is gone");

        // The consumer-protocol member now gets the other two.
        d.Heartbeat(c1);
        Assert.That(c1.Owned[d.IdOf("t")], Is.EquivalentTo(new SortedSet<int>([0, 1, 2, 3]).Except(mine)));
        Assert.That(d.State!.StateName, Is.EqualTo("Stable"));

        // A classic member commits with its generation (ILLEGAL_GENERATION otherwise, any version).
        Assert.That(Harness.CommitError(h.Commit("t", mine.Min, 5, classicId, join.GenerationId, version: 7)), Is.EqualTo(GroupErrors.None));
        Assert.That(Harness.CommitError(h.Commit("t", mine.Min, 6, classicId, generation, version: 7)), Is.EqualTo(GroupErrors.IllegalGeneration));
        Assert.That(Reloaded(h), Is.EqualTo(Summary(h)));
    }

    [Test]
    public void TheLastConsumerMemberLeavingDowngradesTheGroupWhichThenRebalances()
    {
        using var d = new ConsumerGroupDriver(t => Options(t));
        d.CreateTopic("t", 4);
        var h = d.H;
        var (classicId, _) = ClassicMember(d);
        var c1 = d.Add("c1", ["t"]);
        d.Heartbeat(c1);
        var join = h.Join(classicId, metadata: Harness.Subscription("t")).R();
        h.Sync(classicId, join.GenerationId).R();
        d.Heartbeat(c1);
        int epoch = d.State!.GroupEpoch;
        int before = Records(h).Count;

        d.Leave(c1);
        Assert.That(Type(h), Is.EqualTo("classic"));
        // Kafka's createGroupTombstoneRecords (current assignments, targets, target epoch, members, subscription
        // metadata, group epoch), then the classic group's GroupMetadata record.
        var written = Records(h).Skip(before).Select(r => (r.KeyVersion, r.Tombstone)).ToList();
        Assert.That(written, Is.EqualTo(new[]
        {
            ((short)8, true), ((short)8, true), ((short)7, true), ((short)7, true), ((short)6, true),
            ((short)5, true), ((short)5, true), ((short)4, true), ((short)3, true), ((short)2, false),
        }));
        var g = h.Coordinator.Describe(Harness.Group)!;
        Assert.That(g.State, Is.EqualTo(GroupState.PreparingRebalance), "a downgrade for a leaving member rebalances");
        Assert.That(h.Coordinator.ConsumerGroupDescribe(new ConsumerGroupDescribeRequest { GroupIds = [Harness.Group] }).Groups[0].ErrorCode,
            Is.EqualTo((short)ErrorCode.GroupIdNotFound));

        // The classic member learns it from its Heartbeat in the generation it had, rejoins and leads the next one.
        Assert.That(h.Heartbeat(classicId, epoch), Is.EqualTo(GroupErrors.RebalanceInProgress));
        var rejoin = h.Join(classicId, metadata: Harness.Subscription("t")).R();
        Assert.That(rejoin.ErrorCode, Is.EqualTo(GroupErrors.None));
        Assert.That(rejoin.GenerationId, Is.EqualTo(epoch + 1));
        Assert.That(rejoin.Leader, Is.EqualTo(classicId));
        var sync = h.Sync(classicId, rejoin.GenerationId, new() { [classicId] = Assignment("t", 0, 1, 2, 3) }).R();
        Assert.That(Partitions(sync.Assignment), Is.EquivalentTo(new[] { 0, 1, 2, 3 }));
        Assert.That(h.State(), Is.EqualTo(GroupState.Stable));
        Assert.That(Reloaded(h), Is.EqualTo(Summary(h)));
    }

    [Test]
    public void TheUpgradedGroupReloadsAsTheSameConsumerGroup()
    {
        using var d = new ConsumerGroupDriver(t => Options(t));
        d.CreateTopic("t", 4);
        var (classicId, _) = ClassicMember(d);
        var c1 = d.Add("c1", ["t"]);
        d.Heartbeat(c1);
        var summary = Summary(d.H);
        Assert.That(summary.Type, Is.EqualTo("consumer"));
        Assert.That(summary.Members, Does.Contain($"{classicId} e1 Stable [0,1,2,3] classic={Harness.Session}"));
        Assert.That(Reloaded(d.H), Is.EqualTo(summary));
    }

    [TestCase("disabled")]
    [TestCase("downgrade")]
    public void APolicyWithoutUpgradeAnswersGroupIdNotFound(string policy)
    {
        using var d = new ConsumerGroupDriver(t => Options(t, policy));
        d.CreateTopic("t", 4);
        var (classicId, generation) = ClassicMember(d);
        var r = d.Heartbeat(d.Add("c1", ["t"]));
        Assert.That(r.ErrorCode, Is.EqualTo((short)ErrorCode.GroupIdNotFound));
        Assert.That(r.ErrorMessage, Does.Contain("online upgrade is disabled"));
        Assert.That(Type(d.H), Is.EqualTo("classic"));
        Assert.That(d.H.Heartbeat(classicId, generation), Is.EqualTo(GroupErrors.None), "the classic group is untouched");
    }

    [Test]
    public void AGroupLargerThanTheConsumerGroupMaxSizeIsNotUpgraded()
    {
        using var d = new ConsumerGroupDriver(t => Options(t, consumerMax: 1));
        d.CreateTopic("t", 4);
        var h = d.H;
        var (a, joinA) = h.JoinDynamic(metadata: Harness.Subscription("t"));
        var (b, joinB) = h.JoinDynamic(metadata: Harness.Subscription("t"));
        h.Time.AdvanceMs(3000); // group.initial.rebalance.delay.ms, extended once by the second member
        h.Time.AdvanceMs(3000);
        Assert.That((joinA.R().ErrorCode, joinB.R().ErrorCode), Is.EqualTo(((short)0, (short)0)));
        var r = d.Heartbeat(d.Add("c1", ["t"]));
        Assert.That(r.ErrorCode, Is.EqualTo((short)ErrorCode.GroupIdNotFound));
        Assert.That(r.ErrorMessage, Does.Contain("exceeds the consumer group maximum size"));
        Assert.That(Type(h), Is.EqualTo("classic"));
    }

    [Test]
    public void WithTheUpgradePolicyTheGroupStaysAConsumerGroupWhenOnlyClassicMembersRemain()
    {
        using var d = new ConsumerGroupDriver(t => Options(t, "upgrade"));
        d.CreateTopic("t", 4);
        var h = d.H;
        var (classicId, _) = ClassicMember(d);
        var c1 = d.Add("c1", ["t"]);
        d.Heartbeat(c1);
        d.Leave(c1);
        Assert.That(Type(h), Is.EqualTo("consumer"));
        Assert.That(d.State!.Members.Keys, Is.EqualTo(new[] { classicId }));
        Assert.That(Reloaded(h), Is.EqualTo(Summary(h)));
    }

    [Test]
    public void AClassicMemberJoinsANonEmptyConsumerGroupAndGetsPartitionsOnlyOnceReleased()
    {
        using var d = new ConsumerGroupDriver(t => Options(t));
        d.CreateTopic("t", 4);
        var h = d.H;
        var c1 = d.Add("c1", ["t"]);
        d.Stabilise();
        Assert.That(c1.Owned[d.IdOf("t")], Has.Count.EqualTo(4));

        // KIP-394 handshake, then the join answers at once.
        var first = h.Join(metadata: Harness.Subscription("t")).R();
        Assert.That(first.ErrorCode, Is.EqualTo(GroupErrors.MemberIdRequired));
        var join = h.Join(first.MemberId, metadata: Harness.Subscription("t")).R();
        Assert.That(join.ErrorCode, Is.EqualTo(GroupErrors.None));
        var sync = h.Sync(first.MemberId, join.GenerationId).R();
        Assert.That(sync.Assignment.Length == 0 || Partitions(sync.Assignment).Count == 0, Is.True, "c1 still owns everything");
        d.AssertNoPartitionOwnedTwice();

        // c1 revokes two; the classic member is told to rejoin and gets them.
        d.Heartbeat(c1);
        d.Heartbeat(c1);
        Assert.That(c1.Owned[d.IdOf("t")], Has.Count.EqualTo(2));
        Assert.That(h.Heartbeat(first.MemberId, join.GenerationId), Is.EqualTo(GroupErrors.RebalanceInProgress));
        var rejoin = h.Join(first.MemberId, metadata: Harness.Subscription("t")).R();
        var mine = Partitions(h.Sync(first.MemberId, rejoin.GenerationId).R().Assignment);
        Assert.That(mine, Is.EquivalentTo(new SortedSet<int>([0, 1, 2, 3]).Except(c1.Owned[d.IdOf("t")])));
        d.AssertNoPartitionOwnedTwice();

        // A consumer-protocol member is unknown to the classic Heartbeat; a classic member's session timeout fences it.
        Assert.That(h.Heartbeat("c1", c1.Epoch), Is.EqualTo(GroupErrors.UnknownMemberId));
        h.Time.AdvanceMs(Harness.Session + 1);
        Assert.That(d.State!.Members.ContainsKey(first.MemberId), Is.False, "fenced after its session timeout");
    }

    [Test]
    public void AClassicMemberThatDoesNotRejoinWithinItsRebalanceTimeoutIsFenced()
    {
        using var d = new ConsumerGroupDriver(t => Options(t, "upgrade"));
        d.CreateTopic("t", 4);
        var h = d.H;
        var (classicId, generation) = ClassicMember(d);
        var c1 = d.Add("c1", ["t"]);
        d.Heartbeat(c1);
        // Heartbeats keep its session alive, but it never rejoins.
        Assert.That(h.Heartbeat(classicId, generation), Is.EqualTo(GroupErrors.RebalanceInProgress));
        for (int elapsed = 0; elapsed <= Harness.Rebalance; elapsed += 5000)
        {
            h.Time.AdvanceMs(5000);
            d.Heartbeat(c1);
            if (d.State!.Members.ContainsKey(classicId)) h.Heartbeat(classicId, generation);
        }
        Assert.That(d.State!.Members.ContainsKey(classicId), Is.False);
        Assert.That(c1.Owned[d.IdOf("t")], Has.Count.EqualTo(4), "its partitions went to the member that stayed");
    }
}
