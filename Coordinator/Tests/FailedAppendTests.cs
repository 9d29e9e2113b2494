using Kayak.Protocol;
using Kayak.Coordinator.Transactions;
using Kayak.Protocol.Messages;
using NUnit.Framework;

namespace Kayak.Coordinator.Tests;

/// <summary>
/// A record the log refuses changes no state: each writing operation runs once against a failing log (its
/// answer is the error Kafka gives, and the stored state is as before) and once against a healthy one (where the
/// same operation does change it, so the first half could fail).
/// Issue 14: also with a log that writes the batch and then reports that the ISR did not catch up in time (a cluster's
/// acks=-1 coordinator append timing out): the answer is the same error and the in-memory state keeps nothing.
/// </summary>
[TestFixture(false)]
[TestFixture(true)]
public class FailedAppendTests(bool writtenButNotReplicated)
{
    private const string Simple = "simple";
    private const long Pid = 77;
    private ManualTimeProvider _time = null!;
    private FaultyGroupLog _log = null!;
    private Harness _h = null!;
    private string _member = "";
    private int _generation;

    private GroupCoordinator C => _h.Coordinator;

    [SetUp]
    public void SetUp()
    {
        _time = new ManualTimeProvider();
        _log = new FaultyGroupLog(new InMemoryGroupLog()) { WriteThenTimeOut = writtenButNotReplicated };
        _h = new Harness(_log, _time);
        (_member, _generation) = _h.StableSingle();
        Assert.That(Harness.CommitError(_h.Commit("t1", 0, 5, _member, _generation)), Is.EqualTo(GroupErrors.None));
        Assert.That(Harness.CommitError(_h.Commit("t9", 1, 1, group: Simple)), Is.EqualTo(GroupErrors.None));
        Assert.That(C.StoreTransactionalOffsets(Simple, Pid, 0, [new PendingTxnOffset("t9", 2, 3, 1, "p", _time.NowMs)]), Is.EqualTo(ErrorCode.None));
    }

    [TearDown]
    public void TearDown() => _h.Dispose();

    private int Batches()
    {
        int n = 0;
        foreach (int p in _log.Inner.Partitions) n += _log.Inner.Batches(p).Count;
        return n;
    }

    /// <summary>Runs <paramref name="act"/> against a refusing log; returns the stored state it must have left alone.</summary>
    private string RefusedChangesNothing(Action act)
    {
        string before = CanonicalState.Dump(C, durable: true);
        int batches = Batches();
        int refusedBefore = _log.Refused;
        _log.Fail = true;
        act();
        _log.Fail = false;
        Assert.That(_log.Refused, Is.GreaterThan(refusedBefore), "the operation tried to write");
        Assert.That(Batches(), Is.EqualTo(writtenButNotReplicated ? batches + _log.Refused - refusedBefore : batches));
        Assert.That(CanonicalState.Dump(C, durable: true), Is.EqualTo(before), "a refused record changed state");
        return before;
    }

    [Test]
    public void OffsetCommit()
    {
        string before = RefusedChangesNothing(() =>
            Assert.That(Harness.CommitError(_h.Commit("t1", 0, 6, _member, _generation)), Is.EqualTo(GroupErrors.CoordinatorNotAvailable)));
        Assert.That(_h.Fetched("t1", 0), Is.EqualTo(5));
        Assert.That(Harness.CommitError(_h.Commit("t1", 0, 6, _member, _generation)), Is.EqualTo(GroupErrors.None));
        Assert.That(_h.Fetched("t1", 0), Is.EqualTo(6));
        Assert.That(CanonicalState.Dump(C, durable: true), Is.Not.EqualTo(before));
    }

    [Test]
    public void TxnOffsetCommit()
    {
        RefusedChangesNothing(() =>
            Assert.That(C.StoreTransactionalOffsets(Simple, Pid + 1, 0, [new PendingTxnOffset("t9", 0, 9, 1, "", _time.NowMs)]),
                Is.EqualTo(ErrorCode.CoordinatorNotAvailable)));
        Assert.That(C.PendingTransactionalOffsets(Simple).Keys, Is.EqualTo(new[] { Pid }));
        Assert.That(C.StoreTransactionalOffsets(Simple, Pid + 1, 0, [new PendingTxnOffset("t9", 0, 9, 1, "", _time.NowMs)]), Is.EqualTo(ErrorCode.None));
        Assert.That(C.PendingTransactionalOffsets(Simple).Keys, Is.EquivalentTo(new[] { Pid, Pid + 1 }));
    }

    [Test]
    public void TransactionMarker()
    {
        int partition = C.PartitionFor(Simple);
        RefusedChangesNothing(() => Assert.Throws<IOException>(() => C.CompleteTransaction(partition, Pid, 0, commit: true)));
        Assert.That(C.CommittedOffsets(Simple).ContainsKey(("t9", 2)), Is.False, "still pending");
        C.CompleteTransaction(partition, Pid, 0, commit: true);
        Assert.That(C.CommittedOffsets(Simple)[("t9", 2)].Offset, Is.EqualTo(3));
        Assert.That(C.PendingTransactionalOffsets(Simple), Is.Empty);
    }

    [Test]
    public void OffsetDelete()
    {
        var request = new OffsetDeleteRequest { GroupId = Simple };
        request.Topics.Add(new OffsetDeleteRequest.OffsetDeleteRequestTopic { Name = "t9", Partitions = [new() { PartitionIndex = 1 }] });
        RefusedChangesNothing(() => Assert.That(C.DeleteOffsets(request).ErrorCode, Is.EqualTo(GroupErrors.CoordinatorNotAvailable)));
        Assert.That(_h.Fetched("t9", 1, Simple), Is.EqualTo(1));
        Assert.That(C.DeleteOffsets(request).ErrorCode, Is.EqualTo(GroupErrors.None));
        Assert.That(_h.Fetched("t9", 1, Simple), Is.EqualTo(-1));
    }

    [Test]
    public void DeleteGroups()
    {
        var request = new DeleteGroupsRequest { GroupsNames = [Simple] };
        RefusedChangesNothing(() => Assert.That(C.DeleteGroups(request).Results[0].ErrorCode, Is.EqualTo(GroupErrors.CoordinatorNotAvailable)));
        Assert.That(C.Describe(Simple), Is.Not.Null);
        Assert.That(C.DeleteGroups(request).Results[0].ErrorCode, Is.EqualTo(GroupErrors.None));
        Assert.That(C.Describe(Simple), Is.Null);
    }

    [Test]
    public void RetentionExpiry()
    {
        // Past retention the simple group's plain offset expires (the pending one keeps its partition and the group).
        RefusedChangesNothing(() =>
        {
            _time.AdvanceMs(61 * 60_000L);
            Assert.That(C.ExpireOffsets(), Is.Zero);
        });
        Assert.That(_h.Fetched("t9", 1, Simple), Is.EqualTo(1));
        Assert.That(C.ExpireOffsets(), Is.GreaterThan(0));
        Assert.That(_h.Fetched("t9", 1, Simple), Is.EqualTo(-1));
    }

    [Test]
    public void LeaderSyncGroup()
    {
        var (id, join) = _h.JoinDynamic("g2");
        _time.AdvanceMs(3000);
        int generation = join.R().GenerationId;
        Task<SyncGroupResponse> sync = null!;
        RefusedChangesNothing(() => sync = _h.Sync(id, generation, new() { [id] = [9] }, group: "g2"));
        Assert.That(sync.R().ErrorCode, Is.EqualTo(GroupErrors.CoordinatorNotAvailable));

        // The member rejoins after the failed generation, and this time the assignment is stored.
        var again = _h.Join(id, group: "g2");
        var j = again.R();
        Assert.That(j.ErrorCode, Is.EqualTo(GroupErrors.None));
        Assert.That(_h.Sync(id, j.GenerationId, new() { [id] = [9] }, group: "g2").R().Assignment, Is.EqualTo(new byte[] { 9 }));
        using var reloaded = new GroupCoordinator(Harness.Options(_time), _log);
        reloaded.Load();
        Assert.That(CanonicalState.Dump(reloaded), Is.EqualTo(CanonicalState.Dump(C)));
    }

    [Test]
    public void EmptiedGroupKeepsItsGenerationWhenItsRecordIsRefused()
    {
        RefusedChangesNothing(() => Assert.That(_h.Leave(_member).Members[0].ErrorCode, Is.EqualTo(GroupErrors.None)));
        var group = C.Describe(Harness.Group)!;
        Assert.That(group.State, Is.EqualTo(GroupState.Empty), "the member is gone either way");
        Assert.That(group.GenerationId, Is.EqualTo(_generation), "the next generation is only installed by its record");

        // With a healthy log the next emptying writes and installs the next generation.
        var (id, join) = _h.JoinDynamic();
        _time.AdvanceMs(3000);
        Assert.That(join.R().GenerationId, Is.EqualTo(_generation + 1));
        _h.Leave(id);
        Assert.That(C.Describe(Harness.Group)!.GenerationId, Is.EqualTo(_generation + 2));
    }

    /// <summary>KIP-848: a member joining a new consumer group whose records are refused leaves no group behind.</summary>
    [Test]
    public void ConsumerGroupHeartbeatJoin()
    {
        var topicId = new Uuid(0x7700, 1);
        ConsumerTopicResolver resolve = (string name, out Uuid id, out int count) =>
        {
            id = topicId;
            count = name == "t1" ? 2 : 0;
            return name == "t1";
        };
        ConsumerGroupHeartbeatResponse Join() => C.ConsumerGroupHeartbeat(new ConsumerGroupHeartbeatRequest
        {
            GroupId = "cg", MemberId = "m1", MemberEpoch = 0, RebalanceTimeoutMs = 30_000, SubscribedTopicNames = ["t1"], TopicPartitions = [],
        }, 1, new ClientInfo("c", "/127.0.0.1"), resolve, ["t1"]);
        RefusedChangesNothing(() => Assert.That(Join().ErrorCode, Is.EqualTo(GroupErrors.CoordinatorNotAvailable)));
        Assert.That(C.Describe("cg"), Is.Null, "no group was kept");
        var joined = Join();
        Assert.That(joined.ErrorCode, Is.EqualTo(GroupErrors.None));
        Assert.That(joined.MemberEpoch, Is.GreaterThan(0));
    }
}
