using Kayak.Protocol;
using Kayak.Coordinator.Transactions;
using Kayak.Protocol.Messages;
using NUnit.Framework;

namespace Kayak.Coordinator.Tests.Transactions;

/// <summary>
/// An offset tombstone ends pending transactional offsets of its partition too (Kafka's
/// OffsetMetadataManager.replay), and DeleteGroups/OffsetDelete write one for a partition that only has a pending
/// offset (deleteAllOffsets/deleteOffsets): a deleted group's pending offsets neither materialize at the marker nor
/// come back on reload.
/// </summary>
public class PendingOffsetTombstoneTests
{
    private const string G = "simple";
    private const long Pid = 42;

    private static PendingTxnOffset Pending(int partition, long offset) => new("t", partition, offset, 1, "", 1000);

    [Test]
    public void DeletedGroupsPendingOffsetsAreGoneNowAtTheMarkerAndAfterReload()
    {
        var time = new ManualTimeProvider();
        var log = new InMemoryGroupLog();
        using var h = new Harness(log, time);
        h.Commit("t", 0, 5, group: G);
        Assert.That(h.Coordinator.StoreTransactionalOffsets(G, Pid, 0, [Pending(0, 6), Pending(1, 7)]), Is.EqualTo(ErrorCode.None));

        Assert.That(h.Coordinator.DeleteGroups(new DeleteGroupsRequest { GroupsNames = [G] }).Results[0].ErrorCode, Is.EqualTo(GroupErrors.None));
        Assert.That(h.Coordinator.Describe(G), Is.Null);
        h.Coordinator.CompleteTransaction(h.Coordinator.PartitionFor(G), Pid, 0, commit: true);
        Assert.That(h.Coordinator.Describe(G), Is.Null, "the marker finds nothing to materialize");

        using var reloaded = new Harness(log, time);
        Assert.That(reloaded.Coordinator.Describe(G), Is.Null, "the pending records do not bring the group back");
        Assert.That(CanonicalState.Dump(reloaded.Coordinator), Is.EqualTo(CanonicalState.Dump(h.Coordinator)));
    }

    [Test]
    public void OffsetDeleteOfAPendingOnlyPartitionEndsItsPendingOffset()
    {
        var time = new ManualTimeProvider();
        var log = new InMemoryGroupLog();
        using var h = new Harness(log, time);
        Assert.That(h.Coordinator.StoreTransactionalOffsets(G, Pid, 0, [Pending(0, 6), Pending(1, 7)]), Is.EqualTo(ErrorCode.None));
        var request = new OffsetDeleteRequest { GroupId = G };
        request.Topics.Add(new OffsetDeleteRequest.OffsetDeleteRequestTopic { Name = "t", Partitions = [new() { PartitionIndex = 0 }] });
        var response = h.Coordinator.DeleteOffsets(request);
        Assert.That((response.ErrorCode, response.Topics[0].Partitions[0].ErrorCode), Is.EqualTo((GroupErrors.None, GroupErrors.None)));
        Assert.That(h.Coordinator.PendingTransactionalOffsets(G)[Pid].Keys, Is.EqualTo(new[] { ("t", 1) }));

        h.Coordinator.CompleteTransaction(h.Coordinator.PartitionFor(G), Pid, 0, commit: true);
        Assert.That(h.Coordinator.CommittedOffsets(G).Keys, Is.EqualTo(new[] { ("t", 1) }), "only the partition not deleted materializes");
        using var reloaded = new Harness(log, time);
        Assert.That(reloaded.Coordinator.CommittedOffsets(G).Keys, Is.EqualTo(new[] { ("t", 1) }));
    }
}
