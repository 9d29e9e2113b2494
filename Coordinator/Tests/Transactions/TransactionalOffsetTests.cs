using System.Buffers.Binary;
using Kayak.Coordinator.Transactions;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using Kayak.Protocol.Records;
using Kayak.Storage;
using NUnit.Framework;

namespace Kayak.Coordinator.Tests.Transactions;

/// <summary>A sink that stores through the real group coordinator but "crashes" while ending the transaction.</summary>
internal sealed class CrashingSink(ITxnOffsetSink inner, bool afterMarker) : ITxnOffsetSink
{
    public ErrorCode StoreTransactionalOffsets(string groupId, long producerId, short producerEpoch, IReadOnlyList<PendingTxnOffset> offsets) =>
        inner.StoreTransactionalOffsets(groupId, producerId, producerEpoch, offsets);

    public void CompleteTransaction(int offsetsPartition, long producerId, short producerEpoch, bool commit)
    {
        if (afterMarker) inner.CompleteTransaction(offsetsPartition, producerId, producerEpoch, commit);
        throw new IOException("simulated kill -9 while writing markers");
    }
}

/// <summary>
/// TxnOffsetCommit durable as Kafka makes it: the offsets are appended at once as a transactional batch of the
/// producer, pending until the transaction's marker in the group's __consumer_offsets partition, and loading
/// keeps them pending until that marker, whichever of the two coordinators loads first.
/// </summary>
public class TransactionalOffsetTests
{
    private const string G = "tg";
    private InMemoryGroupLog _groupLog = null!;
    private InMemoryTransactionLog _txnLog = null!;
    private ManualTimeProvider _time = null!;
    private RecordingMarkers _markers = null!;
    private ProducerIdManager _ids = null!;
    private readonly List<IDisposable> _open = new();

    [SetUp]
    public void SetUp()
    {
        _groupLog = new InMemoryGroupLog();
        _txnLog = new InMemoryTransactionLog();
        _time = new ManualTimeProvider();
        _markers = new RecordingMarkers();
        _ids = new ProducerIdManager(null);
    }

    [TearDown]
    public void TearDown()
    {
        foreach (var d in _open) d.Dispose();
        _open.Clear();
    }

    private static readonly TxnPartition Out0 = new("out", 0);
    private int OffsetsPartition => CoordinatorBatch.PartitionFor(G, 50);

    /// <summary>A group coordinator, loaded or not, over the shared in-memory log.</summary>
    private GroupCoordinator Groups(bool load = true)
    {
        var g = new GroupCoordinator(Harness.Options(_time), _groupLog);
        _open.Add(g);
        if (load) g.Load();
        return g;
    }

    private TransactionCoordinator Transactions(ITxnOffsetSink? sink, bool load = true)
    {
        var t = new TransactionCoordinator(new TransactionCoordinatorOptions { NumPartitions = 5, Time = _time }, _txnLog, _markers, _ids) { OffsetSink = sink };
        if (load) t.Load();
        return t;
    }

    private static PendingTxnOffset In(int partition, long offset) => new("in", partition, offset, 2, "m" + offset, 1000);

    /// <summary>InitProducerId, AddPartitions(out-0), AddOffsets(group), TxnOffsetCommit(in-0 → offset).</summary>
    private static InitProducerIdResult Begin(TransactionCoordinator t, long offset, string txnId = "t")
    {
        var p = t.InitProducerId(txnId, 60_000);
        Assert.That(t.AddPartitions(txnId, p.ProducerId, p.ProducerEpoch, [Out0]), Is.EqualTo(ErrorCode.None));
        Assert.That(t.AddOffsets(txnId, p.ProducerId, p.ProducerEpoch, G), Is.EqualTo(ErrorCode.None));
        Assert.That(t.TxnOffsetCommit(txnId, G, p.ProducerId, p.ProducerEpoch, [In(0, offset)]), Is.EqualTo(ErrorCode.None));
        return p;
    }

    private static long? Committed(GroupCoordinator g, int partition = 0) =>
        g.CommittedOffsets(G).TryGetValue(("in", partition), out var o) ? o.Offset : null;

    private List<RecordBatchHeader> Headers()
    {
        var list = new List<RecordBatchHeader>();
        foreach (var b in _groupLog.Batches(OffsetsPartition))
        {
            Assert.That(RecordBatchHeader.TryRead(b, out var h), Is.True);
            list.Add(h);
        }
        return list;
    }

    // The marker's only record: length, attributes, timestamp delta, offset delta, key length (one byte each),
    // then the key: int16 version, int16 type.
    private static bool IsCommitMarker(byte[] batch) =>
        BinaryPrimitives.ReadInt16BigEndian(batch.AsSpan(RecordBatchHeader.Size + 7)) == (short)ControlRecordType.Commit;

    [Test]
    public void MemberBoundCommitsAreValidatedAnonymousOnesAccepted()
    {
        using var h = new Harness();
        var (member, generation) = h.StableSingle();
        var groups = h.Coordinator;
        Assert.That(groups.ValidateTxnOffsetCommit(Harness.Group, member, generation, null), Is.EqualTo(ErrorCode.None));
        Assert.That(groups.ValidateTxnOffsetCommit(Harness.Group, member, generation - 1, null), Is.EqualTo(ErrorCode.IllegalGeneration));
        Assert.That(groups.ValidateTxnOffsetCommit(Harness.Group, "stranger", generation, null), Is.EqualTo(ErrorCode.UnknownMemberId));
        // assign()-style producers send no member: accepted although the group is Stable (unlike OffsetCommit).
        Assert.That(groups.ValidateTxnOffsetCommit(Harness.Group, "", -1, null), Is.EqualTo(ErrorCode.None));
        Assert.That(groups.ValidateTxnOffsetCommit("unknown-group", "", -1, null), Is.EqualTo(ErrorCode.None));
    }

    [Test]
    public void TxnOffsetCommitIsAppendedAtOnceAsATransactionalBatchAndCommitsAfterItsMarker()
    {
        var groups = Groups();
        var t = Transactions(groups);
        var p = Begin(t, 17);
        Assert.That(t.TxnOffsetCommit("t", G, p.ProducerId, p.ProducerEpoch, [In(1, 5)]), Is.EqualTo(ErrorCode.None));

        var headers = Headers();
        Assert.That(headers, Has.Count.EqualTo(2), "each TxnOffsetCommit is written before it is answered");
        Assert.That(headers.Select(h => (h.ProducerId, h.ProducerEpoch, h.IsTransactional, h.IsControl, h.BaseSequence)),
            Is.EqualTo(new[] { (p.ProducerId, p.ProducerEpoch, true, false, 0), (p.ProducerId, p.ProducerEpoch, true, false, 1) }),
            "the producer's sequence continues across the transaction's batches");
        Assert.That(Committed(groups), Is.Null, "pending until the marker");
        Assert.That(groups.PendingTransactionalOffsets(G)[p.ProducerId].Keys, Is.EquivalentTo(new[] { ("in", 0), ("in", 1) }));

        Assert.That(t.EndTxn("t", p.ProducerId, p.ProducerEpoch, commit: true), Is.EqualTo(ErrorCode.None));
        headers = Headers();
        Assert.That(headers, Has.Count.EqualTo(3));
        Assert.That((headers[2].IsControl, headers[2].ProducerId), Is.EqualTo((true, p.ProducerId)));
        Assert.That(IsCommitMarker(_groupLog.Batches(OffsetsPartition)[2]), Is.True);
        Assert.That(_markers.Written, Is.EqualTo(new[] { (Out0, p.ProducerId, p.ProducerEpoch, true) }), "data partitions get their marker as before");
        Assert.That(Committed(groups), Is.EqualTo(17));
        Assert.That(Committed(groups, 1), Is.EqualTo(5));
        Assert.That(groups.CommittedOffsets(G)[("in", 0)].Metadata, Is.EqualTo("m17"));
        Assert.That(groups.PendingTransactionalOffsets(G), Is.Empty);

        var reloaded = Groups();
        Assert.That(Committed(reloaded), Is.EqualTo(17));
        Assert.That(reloaded.CommittedOffsets(G)[("in", 0)].LeaderEpoch, Is.EqualTo(2));
        Assert.That(reloaded.PendingTransactionalOffsets(G), Is.Empty);
    }

    [Test]
    public void AbortDropsTheOffsetsNowAndAfterReload()
    {
        var groups = Groups();
        var t = Transactions(groups);
        var p = Begin(t, 17);
        Assert.That(t.EndTxn("t", p.ProducerId, p.ProducerEpoch, commit: false), Is.EqualTo(ErrorCode.None));
        Assert.That(Committed(groups), Is.Null);
        Assert.That(groups.PendingTransactionalOffsets(G), Is.Empty);
        Assert.That(Headers()[^1].IsControl, Is.True);
        Assert.That(IsCommitMarker(_groupLog.Batches(OffsetsPartition)[^1]), Is.False, "an abort marker");

        var reloaded = Groups();
        Assert.That(Committed(reloaded), Is.Null);
        Assert.That(reloaded.PendingTransactionalOffsets(G), Is.Empty);
    }

    [Test]
    public void ReloadKeepsAnOpenTransactionsOffsetsPendingUntilItEnds()
    {
        var t = Transactions(Groups());
        var p = Begin(t, 17);
        // Restart with the transaction still Ongoing: its records are replayed as pending, not applied.
        var groups = Groups();
        var t2 = Transactions(groups);
        Assert.That(Committed(groups), Is.Null);
        Assert.That(groups.PendingTransactionalOffsets(G)[p.ProducerId][("in", 0)].Offset, Is.EqualTo(17));
        // The producer continues the same transaction after the restart: its sequence continues too.
        Assert.That(t2.TxnOffsetCommit("t", G, p.ProducerId, p.ProducerEpoch, [In(0, 18)]), Is.EqualTo(ErrorCode.None));
        Assert.That(Headers()[^1].BaseSequence, Is.EqualTo(1));
        Assert.That(t2.EndTxn("t", p.ProducerId, p.ProducerEpoch, commit: true), Is.EqualTo(ErrorCode.None));
        Assert.That(Committed(groups), Is.EqualTo(18));

        // A new epoch starts its sequence at 0 again.
        var q = Begin(t2, 19);
        Assert.That(q.ProducerEpoch, Is.GreaterThan(p.ProducerEpoch));
        Assert.That(Headers()[^1].BaseSequence, Is.EqualTo(0));
    }

    [TestCase(true, 17L)]
    [TestCase(false, null)]
    public void CrashAfterPrepareThenGroupsLoadFirstAndTheTransactionCoordinatorCompletes(bool commit, long? expected)
    {
        var t = Transactions(new CrashingSink(Groups(), afterMarker: false));
        var p = Begin(t, 17);
        Assert.That(t.EndTxn("t", p.ProducerId, p.ProducerEpoch, commit), Is.EqualTo(ErrorCode.None), "decided once Prepare is in the log");
        Assert.That(t.Describe("t")!.State, Is.EqualTo(commit ? TransactionState.PrepareCommit : TransactionState.PrepareAbort));
        Assert.That(Headers().Any(h => h.IsControl), Is.False, "the crash came before the offsets partition's marker");

        // Restart in the broker's order: groups load (offsets pending), then the transaction coordinator completes.
        var groups = Groups();
        Assert.That(Committed(groups), Is.Null);
        Assert.That(groups.PendingTransactionalOffsets(G).Keys, Is.EqualTo(new[] { p.ProducerId }));
        var t2 = Transactions(groups);
        Assert.That(t2.Describe("t")!.State, Is.EqualTo(commit ? TransactionState.CompleteCommit : TransactionState.CompleteAbort));
        Assert.That(Committed(groups), Is.EqualTo(expected));
        Assert.That(groups.PendingTransactionalOffsets(G), Is.Empty);
        Assert.That(_markers.Written.Where(m => m.Partition == Out0).Select(m => m.Commit), Is.Not.Empty.And.All.EqualTo(commit), "the output's marker agrees");

        // And the outcome is durable: the marker is in the log now.
        var again = Groups();
        Assert.That(Committed(again), Is.EqualTo(expected));
        Assert.That(again.PendingTransactionalOffsets(G), Is.Empty);
    }

    [TestCase(true, 17L)]
    [TestCase(false, null)]
    public void CrashAfterPrepareThenTheTransactionCoordinatorLoadsFirst(bool commit, long? expected)
    {
        var t = Transactions(new CrashingSink(Groups(), afterMarker: false));
        var p = Begin(t, 17);
        Assert.That(t.EndTxn("t", p.ProducerId, p.ProducerEpoch, commit), Is.EqualTo(ErrorCode.None), "decided once Prepare is in the log");

        // The other order: the transaction coordinator completes before the group coordinator has loaded; only
        // the marker is written then, and the group coordinator's replay resolves the records with it.
        var groups = Groups(load: false);
        Transactions(groups);
        Assert.That(Headers().Count(h => h.IsControl), Is.EqualTo(1));
        groups.Load();
        Assert.That(Committed(groups), Is.EqualTo(expected));
        Assert.That(groups.PendingTransactionalOffsets(G), Is.Empty);
    }

    [Test]
    public void CrashAfterTheOffsetsMarkerResolvesOnceAndTheRepeatedMarkerChangesNothing()
    {
        var t = Transactions(new CrashingSink(Groups(), afterMarker: true));
        var p = Begin(t, 17);
        Assert.That(t.EndTxn("t", p.ProducerId, p.ProducerEpoch, commit: true), Is.EqualTo(ErrorCode.None), "decided once Prepare is in the log");

        var groups = Groups();
        Assert.That(Committed(groups), Is.EqualTo(17), "the marker made it: replay commits");
        // A plain commit lands before recovery repeats the marker: the repeat must not bring 17 back.
        using (var h = new HarnessOver(groups)) h.Commit(30);
        var t2 = Transactions(groups);
        Assert.That(t2.Describe("t")!.State, Is.EqualTo(TransactionState.CompleteCommit));
        Assert.That(Headers().Count(h => h.IsControl), Is.EqualTo(2), "recovery writes the marker again (idempotent)");
        Assert.That(Committed(groups), Is.EqualTo(30));
        Assert.That(Committed(Groups()), Is.EqualTo(30));
    }

    [Test]
    public void APlainCommitWrittenAfterThePendingOneWins()
    {
        var groups = Groups();
        var t = Transactions(groups);
        var p = Begin(t, 17);
        using (var h = new HarnessOver(groups)) h.Commit(30);
        Assert.That(Committed(groups), Is.EqualTo(30), "plain commits apply at once");
        t.EndTxn("t", p.ProducerId, p.ProducerEpoch, commit: true);
        Assert.That(Committed(groups), Is.EqualTo(30), "the transactional record is older in the log");
        Assert.That(Committed(Groups()), Is.EqualTo(30), "same rule on replay");
    }

    [Test]
    public void ATransactionalCommitWrittenAfterAPlainOneWins()
    {
        var groups = Groups();
        var t = Transactions(groups);
        using (var h = new HarnessOver(groups)) h.Commit(30);
        var p = Begin(t, 17);
        Assert.That(Committed(groups), Is.EqualTo(30));
        t.EndTxn("t", p.ProducerId, p.ProducerEpoch, commit: true);
        Assert.That(Committed(groups), Is.EqualTo(17));
        Assert.That(Committed(Groups()), Is.EqualTo(17));
    }

    [Test]
    public void RequireStableFetchReportsUnstableOffsetWhilePending()
    {
        var groups = Groups();
        var t = Transactions(groups);
        using (var h = new HarnessOver(groups)) h.Commit(30);
        var p = Begin(t, 17);
        var request = new OffsetFetchRequest { GroupId = G, RequireStable = true, Topics = [new OffsetFetchRequest.OffsetFetchRequestTopic { Name = "in", PartitionIndexes = [0] }] };
        var pending = groups.FetchOffsets(request, 7).Topics[0].Partitions[0];
        Assert.That((pending.ErrorCode, pending.CommittedOffset), Is.EqualTo(((short)ErrorCode.UnstableOffsetCommit, -1L)));
        request.RequireStable = false;
        Assert.That(groups.FetchOffsets(request, 7).Topics[0].Partitions[0].CommittedOffset, Is.EqualTo(30), "without RequireStable: the last committed offset");
        request.RequireStable = true;
        t.EndTxn("t", p.ProducerId, p.ProducerEpoch, commit: true);
        var stable = groups.FetchOffsets(request, 7).Topics[0].Partitions[0];
        Assert.That((stable.ErrorCode, stable.CommittedOffset), Is.EqualTo(((short)ErrorCode.None, 17L)));
    }

    [Test]
    public void RetentionNeitherExpiresAPartitionWithAPendingOffsetNorDeletesTheGroup()
    {
        var groups = Groups();
        var t = Transactions(groups);
        using (var h = new HarnessOver(groups)) h.Commit(30); // a simple (assign()) group: retention counts from the commit
        var p = Begin(t, 17);
        _time.AdvanceMs(2 * 60 * 60 * 1000); // past offsets.retention.minutes (60 in the harness); the periodic check runs
        groups.ExpireOffsets();
        Assert.That(Committed(groups), Is.EqualTo(30), "in-0 has a pending transactional offset: not expired");
        Assert.That(groups.Describe(G), Is.Not.Null, "pending offsets keep the group");
        Assert.That(t.EndTxn("t", p.ProducerId, p.ProducerEpoch, commit: true), Is.EqualTo(ErrorCode.None));
        Assert.That(Committed(groups), Is.EqualTo(17));
    }

    [Test]
    public void RetentionDoesNotDeleteAGroupWhoseOnlyOffsetsArePending()
    {
        var groups = Groups();
        var t = Transactions(groups);
        var p = Begin(t, 17);
        _time.AdvanceMs(2 * 60 * 60 * 1000); // the periodic retention check runs meanwhile
        groups.ExpireOffsets();
        Assert.That(groups.Describe(G), Is.Not.Null);
        Assert.That(t.EndTxn("t", p.ProducerId, p.ProducerEpoch, commit: true), Is.EqualTo(ErrorCode.None));
        Assert.That(Committed(groups), Is.EqualTo(17));
        Assert.That(Committed(Groups()), Is.EqualTo(17), "no group tombstone hides it on replay either");
    }

    [Test]
    public void OverStorageTheTransactionalBatchesHoldTheLastStableOffsetUntilTheMarker()
    {
        string dir = Directory.CreateTempSubdirectory("kayak-txnoff-").FullName;
        try
        {
            using (var logs = new LogManager(new LogOptions { LogDirs = [dir], SegmentBytes = 1 << 20 }))
            {
                logs.Open();
                var log = new StorageGroupLog(logs, 50);
                var groups = new GroupCoordinator(Harness.Options(_time), log);
                _open.Add(groups);
                groups.Load();
                var t = Transactions(groups);
                var p = Begin(t, 17);
                // Storage checks the producer's sequences like a client's: a second batch must continue them.
                Assert.That(t.TxnOffsetCommit("t", G, p.ProducerId, p.ProducerEpoch, [In(1, 5)]), Is.EqualTo(ErrorCode.None));
                var partition = log.Topic.GetPartition(OffsetsPartition)!;
                Assert.That(partition.LastStableOffset, Is.EqualTo(0), "compaction and read_committed readers stop below the open transaction");
                Assert.That(partition.LogEndOffset, Is.EqualTo(2));
                t.EndTxn("t", p.ProducerId, p.ProducerEpoch, commit: true);
                Assert.That(partition.LastStableOffset, Is.EqualTo(partition.LogEndOffset));
                var q = Begin(t, 19); // a bumped epoch starts at sequence 0
                Assert.That(q.ProducerEpoch, Is.GreaterThan(p.ProducerEpoch));
                t.EndTxn("t", q.ProducerId, q.ProducerEpoch, commit: true);
                Assert.That(Committed(groups), Is.EqualTo(19));
            }
            using (var logs = new LogManager(new LogOptions { LogDirs = [dir], SegmentBytes = 1 << 20 }))
            {
                logs.Open();
                var groups = new GroupCoordinator(Harness.Options(_time), new StorageGroupLog(logs, 50));
                _open.Add(groups);
                groups.Load();
                Assert.That(Committed(groups), Is.EqualTo(19));
                Assert.That(Committed(groups, 1), Is.EqualTo(5));
            }
        }
        finally
        {
            foreach (var d in _open) d.Dispose();
            _open.Clear();
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>Plain (non-transactional) commits of the test group through an existing coordinator.</summary>
    private sealed class HarnessOver(GroupCoordinator groups) : IDisposable
    {
        public void Commit(long offset)
        {
            var request = new OffsetCommitRequest { GroupId = G, GenerationIdOrMemberEpoch = -1, MemberId = "" };
            request.Topics.Add(new OffsetCommitRequest.OffsetCommitRequestTopic
            {
                Name = "in",
                Partitions = [new OffsetCommitRequest.OffsetCommitRequestPartition { PartitionIndex = 0, CommittedOffset = offset, CommittedLeaderEpoch = -1 }],
            });
            Assert.That(groups.CommitOffsets(request, 8).Topics[0].Partitions[0].ErrorCode, Is.EqualTo((short)ErrorCode.None));
        }

        public void Dispose() { }
    }
}
