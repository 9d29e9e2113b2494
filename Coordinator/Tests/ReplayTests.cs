using Kayak.Protocol;
using Kayak.Coordinator.Transactions;
using Kayak.Protocol.Messages;
using NUnit.Framework;

namespace Kayak.Coordinator.Tests;

/// <summary>
/// One write path: state changes only when a record that made it into the log is replayed, and loading replays
/// the same records through the same code, so a coordinator loaded from another's log has the same state.
/// </summary>
public class ReplayTests
{
    /// <summary>
    /// Random clients, producers and admins against one coordinator on a manual clock; at checkpoints and at the
    /// end a fresh coordinator loads the log and must dump the same canonical state (<see cref="CanonicalState"/>).
    /// </summary>
    [Test]
    public void ALoadedCoordinatorHasTheStateOfTheOneThatWroteTheLog([Range(1, 40)] int seed)
    {
        using var sim = new Simulation(seed);
        int checks = 0;
        for (int step = 0; step < 400; step++)
        {
            sim.Step();
            if (step % 50 == 49) { sim.AssertReloadMatches($"seed {seed}, step {step}"); checks++; }
        }
        sim.AssertReloadMatches($"seed {seed}, end");
        TestContext.Out.WriteLine($"seed {seed}: {sim.Summary}");
        // The run must have produced state worth comparing, else the test proves nothing.
        Assert.That(sim.Log.Partitions, Is.Not.Empty);
    }

    /// <summary>The random runs reach every kind of record and state they are meant to cover.</summary>
    [Test]
    public void TheRandomRunsCoverStableGroupsOffsetsTransactionsAndDeletions()
    {
        var seen = new HashSet<string>();
        for (int seed = 1; seed <= 40; seed++)
        {
            using var sim = new Simulation(seed);
            for (int step = 0; step < 400; step++)
            {
                sim.Step();
                foreach (var s in sim.Observe()) seen.Add(s);
            }
        }
        Assert.That(seen, Is.SupersetOf(new[]
        {
            "stable group", "empty group with generation", "committed offset", "pending offset", "committed txn offset",
            "aborted txn", "deleted offsets", "deleted group", "expired offsets", "static member",
        }));
    }

    private sealed class Simulation : IDisposable
    {
        private static readonly string[] GroupIds = ["ga", "gb", "gc", "gd"];
        private static readonly string[] Topics = ["t0", "t1", "t2"];
        private readonly Random _rng;
        private readonly ManualTimeProvider _time = new();
        private readonly GroupCoordinatorOptions _options;
        private readonly List<Client> _clients = new();
        private readonly List<Producer> _producers = new();
        private readonly HashSet<string> _events = new();
        public InMemoryGroupLog Log { get; } = new();
        public GroupCoordinator Coordinator { get; }

        public Simulation(int seed)
        {
            _rng = new Random(seed);
            // Two partitions for four groups: markers must resolve only their own groups of a shared partition.
            _options = new GroupCoordinatorOptions
            {
                Time = _time,
                OffsetsTopicNumPartitions = 2,
                InitialRebalanceDelayMs = 3000,
                OffsetsRetentionMinutes = 60,
                OffsetsRetentionCheckIntervalMs = 60_000,
            };
            Coordinator = new GroupCoordinator(_options, Log);
            Coordinator.Load();
            foreach (var g in GroupIds)
            {
                _clients.Add(new Client(g, null, "c1"));
                _clients.Add(new Client(g, null, "c2"));
                _clients.Add(new Client(g, g + "-static", "c3"));
            }
            for (int i = 0; i < 3; i++) _producers.Add(new Producer(1000 + i));
        }

        public string Summary => $"{Log.Partitions.Count} partitions written, events: {string.Join(", ", _events)}";

        public void Dispose() => Coordinator.Dispose();

        public void AssertReloadMatches(string where)
        {
            using var loaded = new GroupCoordinator(_options, Log);
            loaded.Load();
            Assert.That(CanonicalState.Dump(loaded), Is.EqualTo(CanonicalState.Dump(Coordinator)), where);
            Assert.That(CanonicalState.Dump(loaded, durable: true), Is.EqualTo(CanonicalState.Dump(Coordinator, durable: true)), where + " (stored metadata)");
        }

        /// <summary>What the state shows now, for the coverage test.</summary>
        public List<string> Observe()
        {
            var seen = new List<string>(_events);
            foreach (var g in Coordinator.AllGroups)
                lock (g.Lock)
                {
                    if (g.State == GroupState.Stable) seen.Add("stable group");
                    if (g.State == GroupState.Empty && g.GenerationId > 0) seen.Add("empty group with generation");
                    if (g.Offsets.Count > 0) seen.Add("committed offset");
                    if (g.PendingTxnOffsets.Count > 0) seen.Add("pending offset");
                    foreach (var m in g.MemberList) if (m.IsStatic && g.State == GroupState.Stable) seen.Add("static member");
                    foreach (var parts in g.Offsets.Values)
                        foreach (var o in parts.Values)
                            if (o.LeaderEpoch == 7) seen.Add("committed txn offset");
                }
            return seen;
        }

        public void Step()
        {
            foreach (var c in _clients)
            {
                c.Poll();
                // Mostly well-behaved clients, so groups do get Stable: a joined member syncs, a member told to
                // rebalance rejoins. The rest of the time they are late or vanish, and timeouts act.
                if (c.JustJoined && _rng.Next(10) < 8) Sync(c);
                c.JustJoined = false;
                if (c.MustRejoin && _rng.Next(10) < 7) Join(c);
                c.MustRejoin = false;
            }
            int roll = _rng.Next(100);
            var client = _clients[_rng.Next(_clients.Count)];
            if (roll < 20) Join(client);
            else if (roll < 30) Sync(client);
            else if (roll < 38) Heartbeat(client);
            else if (roll < 42) Leave(client);
            else if (roll < 57) Commit(client);
            else if (roll < 67) TxnCommit();
            else if (roll < 73) EndTxn();
            else if (roll < 76) DeleteOffsets();
            else if (roll < 78) DeleteGroup();
            else if (roll < 80) { if (Coordinator.ExpireOffsets() > 0) _events.Add("expired offsets"); }
            else Advance();
        }

        private void Advance()
        {
            int roll = _rng.Next(100);
            // Mostly within a session; sometimes past initial delays and session timeouts; rarely past retention.
            long ms = roll < 60 ? _rng.Next(50, 2000) : roll < 97 ? _rng.Next(2000, 15_000) : 61 * 60_000L;
            int before = CountOffsets();
            _time.AdvanceMs(ms);
            if (CountOffsets() < before) _events.Add("expired offsets");
        }

        private int CountOffsets()
        {
            int n = 0;
            foreach (var g in Coordinator.AllGroups)
                lock (g.Lock)
                    foreach (var p in g.Offsets.Values) n += p.Count;
            return n;
        }

        private byte[] RandomBytes(int max)
        {
            var b = new byte[_rng.Next(max + 1)];
            _rng.NextBytes(b);
            return b;
        }

        private void Join(Client c)
        {
            if (c.Join is { IsCompleted: false }) return;
            var request = new JoinGroupRequest
            {
                GroupId = c.Group,
                SessionTimeoutMs = 10_000,
                RebalanceTimeoutMs = _rng.Next(2) == 0 ? 10_000 : 20_000,
                MemberId = c.MemberId ?? "",
                GroupInstanceId = c.InstanceId,
                ProtocolType = "consumer",
            };
            // The subscription changes now and then, which rebalances a Stable group and moves its subscribed topics.
            if (c.Subscription is null || _rng.Next(5) == 0)
                c.Subscription = Harness.Subscription(_rng.Next(2) == 0 ? new[] { "t0" } : new[] { "t0", "t1" });
            request.Protocols.Add(new JoinGroupRequest.JoinGroupRequestProtocol { Name = "range", Metadata = c.Subscription });
            if (_rng.Next(2) == 0) request.Protocols.Add(new JoinGroupRequest.JoinGroupRequestProtocol { Name = "roundrobin", Metadata = c.Subscription });
            c.Join = Coordinator.JoinGroupAsync(request, 7, new ClientInfo(c.ClientId, "/10.0.0." + _rng.Next(1, 4)));
            c.Poll();
        }

        private void Sync(Client c)
        {
            if (c.MemberId is null || c.Generation < 0 || c.Sync is { IsCompleted: false }) return;
            var request = new SyncGroupRequest { GroupId = c.Group, GenerationId = c.Generation, MemberId = c.MemberId, GroupInstanceId = c.InstanceId };
            if (c.IsLeader)
                foreach (var m in c.Members)
                    if (_rng.Next(5) != 0) // the leader sometimes leaves a member out: it gets an empty assignment
                        request.Assignments.Add(new SyncGroupRequest.SyncGroupRequestAssignment { MemberId = m, Assignment = RandomBytes(6) });
            c.Sync = Coordinator.SyncGroupAsync(request, 3);
            c.Poll();
        }

        private void Heartbeat(Client c)
        {
            if (c.MemberId is null) return;
            short error = Coordinator.Heartbeat(new HeartbeatRequest { GroupId = c.Group, MemberId = c.MemberId, GenerationId = c.Generation, GroupInstanceId = c.InstanceId }).ErrorCode;
            if (error is GroupErrors.UnknownMemberId or GroupErrors.FencedInstanceId) c.Reset();
            else if (error is GroupErrors.RebalanceInProgress or GroupErrors.IllegalGeneration) c.MustRejoin = true;
        }

        private void Leave(Client c)
        {
            if (c.MemberId is null) return;
            var request = new LeaveGroupRequest { GroupId = c.Group };
            request.Members.Add(new LeaveGroupRequest.MemberIdentity { MemberId = c.MemberId, GroupInstanceId = c.InstanceId });
            Coordinator.LeaveGroup(request, 4);
            c.Reset();
        }

        private void Commit(Client c)
        {
            // A member commits with its generation; otherwise a simple (assign()) consumer without one.
            bool member = c.MemberId is not null && c.Generation >= 0 && _rng.Next(4) != 0;
            short version = (short)(_rng.Next(3) switch { 0 => 2, 1 => 5, _ => 8 });
            var request = new OffsetCommitRequest
            {
                GroupId = c.Group,
                MemberId = member ? c.MemberId! : "",
                GenerationIdOrMemberEpoch = member ? c.Generation : -1,
                GroupInstanceId = member ? c.InstanceId : null,
                RetentionTimeMs = version == 2 && _rng.Next(2) == 0 ? _rng.Next(1, 3_600_000) : -1,
            };
            int topics = _rng.Next(1, 3);
            for (int i = 0; i < topics; i++)
            {
                var t = new OffsetCommitRequest.OffsetCommitRequestTopic { Name = Topics[_rng.Next(Topics.Length)] };
                int partition = _rng.Next(3);
                t.Partitions.Add(new OffsetCommitRequest.OffsetCommitRequestPartition
                {
                    PartitionIndex = partition,
                    CommittedOffset = _rng.Next(1000),
                    CommittedLeaderEpoch = _rng.Next(-1, 5),
                    CommittedMetadata = _rng.Next(3) == 0 ? null : "m" + _rng.Next(100),
                });
                request.Topics.Add(t);
            }
            Coordinator.CommitOffsets(request, version);
        }

        private void TxnCommit()
        {
            var p = _producers[_rng.Next(_producers.Count)];
            string group = GroupIds[_rng.Next(GroupIds.Length)];
            var offsets = new List<PendingTxnOffset>();
            int n = _rng.Next(1, 3);
            for (int i = 0; i < n; i++)
                offsets.Add(new PendingTxnOffset(Topics[_rng.Next(Topics.Length)], _rng.Next(3), _rng.Next(1000), 7, "txn" + p.ProducerId, _time.NowMs));
            // Leader epoch 7 marks transactional offsets for the coverage test.
            if (Coordinator.StoreTransactionalOffsets(group, p.ProducerId, p.Epoch, offsets) == ErrorCode.None)
                p.Partitions.Add(Coordinator.PartitionFor(group));
        }

        private void EndTxn()
        {
            var p = _producers[_rng.Next(_producers.Count)];
            if (p.Partitions.Count == 0) return;
            bool commit = _rng.Next(3) != 0;
            foreach (int partition in p.Partitions) Coordinator.CompleteTransaction(partition, p.ProducerId, p.Epoch, commit);
            if (!commit) _events.Add("aborted txn");
            p.Partitions.Clear();
            // Now and then the producer restarts: InitProducerId bumps its epoch (its sequences start over).
            if (_rng.Next(4) == 0) p.Epoch++;
        }

        private void DeleteOffsets()
        {
            var request = new OffsetDeleteRequest { GroupId = GroupIds[_rng.Next(GroupIds.Length)] };
            var t = new OffsetDeleteRequest.OffsetDeleteRequestTopic { Name = Topics[_rng.Next(Topics.Length)] };
            for (int p = 0; p < 3; p++)
                if (_rng.Next(2) == 0) t.Partitions.Add(new OffsetDeleteRequest.OffsetDeleteRequestPartition { PartitionIndex = p });
            request.Topics.Add(t);
            int before = CountOffsets();
            var response = Coordinator.DeleteOffsets(request);
            if (response.ErrorCode == GroupErrors.None && CountOffsets() < before) _events.Add("deleted offsets");
        }

        private void DeleteGroup()
        {
            var response = Coordinator.DeleteGroups(new DeleteGroupsRequest { GroupsNames = [GroupIds[_rng.Next(GroupIds.Length)]] });
            if (response.Results[0].ErrorCode == GroupErrors.None) _events.Add("deleted group");
        }
    }

    /// <summary>A consumer as the coordinator sees it: its member id, generation, and parked requests.</summary>
    private sealed class Client(string group, string? instanceId, string clientId)
    {
        public string Group { get; } = group;
        public string? InstanceId { get; } = instanceId;
        public string ClientId { get; } = clientId;
        public string? MemberId { get; set; }
        public int Generation { get; set; } = -1;
        public bool IsLeader { get; set; }
        public List<string> Members { get; } = new();
        public byte[]? Subscription { get; set; }
        public Task<JoinGroupResponse>? Join { get; set; }
        public Task<SyncGroupResponse>? Sync { get; set; }
        /// <summary>A JoinGroup answer just arrived: a real client sends SyncGroup next.</summary>
        public bool JustJoined { get; set; }
        /// <summary>Told to (re)join: MEMBER_ID_REQUIRED, REBALANCE_IN_PROGRESS, a failed sync.</summary>
        public bool MustRejoin { get; set; }

        public void Reset()
        {
            MemberId = null;
            Generation = -1;
            IsLeader = false;
            Members.Clear();
        }

        /// <summary>Takes in answers that arrived (a rebalance completing answers parked requests).</summary>
        public void Poll()
        {
            if (Join is { IsCompleted: true } join)
            {
                Join = null;
                var r = join.Result;
                switch (r.ErrorCode)
                {
                    case GroupErrors.None:
                        MemberId = r.MemberId;
                        Generation = r.GenerationId;
                        IsLeader = r.Leader == r.MemberId;
                        Members.Clear();
                        foreach (var m in r.Members) Members.Add(m.MemberId);
                        JustJoined = true;
                        break;
                    case GroupErrors.MemberIdRequired:
                        MemberId = r.MemberId;
                        MustRejoin = true;
                        break;
                    case GroupErrors.RebalanceInProgress:
                        MustRejoin = true;
                        break;
                    case GroupErrors.UnknownMemberId or GroupErrors.FencedInstanceId:
                        Reset();
                        break;
                }
            }
            if (Sync is { IsCompleted: true } sync)
            {
                Sync = null;
                if (sync.Result.ErrorCode is GroupErrors.UnknownMemberId or GroupErrors.FencedInstanceId) Reset();
                else if (sync.Result.ErrorCode != GroupErrors.None) MustRejoin = true;
            }
        }
    }

    private sealed class Producer(long producerId)
    {
        public long ProducerId { get; } = producerId;
        public short Epoch { get; set; }
        /// <summary>Offsets partitions the open transaction wrote to: each gets the marker.</summary>
        public HashSet<int> Partitions { get; } = new();
    }
}
