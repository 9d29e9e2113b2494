using Kayak.Coordinator.Transactions;
using Kayak.Protocol;
using NUnit.Framework;

namespace Kayak.Coordinator.Tests.Transactions;

/// <summary>GroupCoordinator's side of TxnOffsetCommit: KIP-447 validation and materialization on commit.</summary>
public class TransactionalOffsetTests
{
    [Test]
    public void MemberBoundCommitsAreValidatedAnonymousOnesAccepted()
    {
        using var h = new Harness();
        var (member, generation) = h.StableSingle();
        var groups = h.Coordinator;
        Assert.That(groups.ValidateTxnOffsetCommit(Harness.Group, member, generation, null), Is.EqualTo((short)ErrorCode.None));
        Assert.That(groups.ValidateTxnOffsetCommit(Harness.Group, member, generation - 1, null), Is.EqualTo((short)ErrorCode.IllegalGeneration));
        Assert.That(groups.ValidateTxnOffsetCommit(Harness.Group, "stranger", generation, null), Is.EqualTo((short)ErrorCode.UnknownMemberId));
        // assign()-style producers send no member: accepted although the group is Stable (unlike OffsetCommit).
        Assert.That(groups.ValidateTxnOffsetCommit(Harness.Group, "", -1, null), Is.EqualTo((short)ErrorCode.None));
        Assert.That(groups.ValidateTxnOffsetCommit("unknown-group", "", -1, null), Is.EqualTo((short)ErrorCode.None));
    }

    [Test]
    public void CommittedTransactionOffsetsBecomeTheGroupsAndSurviveReload()
    {
        var log = new InMemoryGroupLog();
        var time = new ManualTimeProvider();
        using (var h = new Harness(log, time))
        {
            ITxnOffsetSink sink = h.Coordinator;
            sink.CommitTransactionalOffsets("tg", 42, [new PendingTxnOffset("in", 0, 17, 3, "meta", 1000), new PendingTxnOffset("in", 1, 5, -1, null, 1000)]);
            var offsets = h.Coordinator.CommittedOffsets("tg");
            Assert.That(offsets[("in", 0)].Offset, Is.EqualTo(17));
            Assert.That(offsets[("in", 0)].Metadata, Is.EqualTo("meta"));
            Assert.That(offsets[("in", 1)].Offset, Is.EqualTo(5));
        }
        using var reloaded = new Harness(log, time);
        Assert.That(reloaded.Coordinator.CommittedOffsets("tg")[("in", 0)].Offset, Is.EqualTo(17));
    }
}
