using System.Collections.Concurrent;
using Kayak.Protocol;
using Kayak.Storage;

namespace Kayak.Broker.Cluster;

/// <summary>
/// The leader's side of replication (issue 14), as Kafka's Partition.scala: each follower's fetch position (its log
/// end offset, updateFollowerFetchState), the high watermark as the smallest log end offset of the ISR
/// (maybeIncrementLeaderHW), ISR expansion when a follower reaches the high watermark (maybeExpandIsr) and shrinking
/// of followers that have not caught up for replica.lag.time.max.ms (maybeShrinkIsr, checked on the broker's
/// TimeProvider). ISR changes go to the controller, which persists them (Kafka's AlterPartition).
/// </summary>
internal sealed class ReplicaTracker : IDisposable
{
    private readonly ClusterController controller;
    private readonly int nodeId;
    private readonly TimeProvider time;
    private readonly long lagTimeMaxMs;

    public ReplicaTracker(ClusterController controller, int nodeId, TimeProvider time, long lagTimeMaxMs)
    {
        this.controller = controller;
        this.nodeId = nodeId;
        this.time = time;
        this.lagTimeMaxMs = lagTimeMaxMs;
        controller.Published += OnPublished;
    }

    /// <summary>The broker stops: its partitions' changes are nothing to it any more.</summary>
    public void Dispose() => controller.Published -= OnPublished;

    private sealed class Follower
    {
        public long LogEndOffset = -1; // unknown until its first fetch under this leader epoch
        public long LastCaughtUpMs;
        public long LastFetchLeaderLogEndOffset;
        public long LastFetchMs;
    }

    // Per partition led here, per leader epoch: a new epoch (failover) starts the followers' state afresh.
    private sealed class LedPartition(int leaderEpoch)
    {
        public readonly int LeaderEpoch = leaderEpoch;
        public readonly ConcurrentDictionary<int, Follower> Followers = new();
        // Cancelled when this broker stops leading at LeaderEpoch; CancelAsync runs the waits' callbacks on the thread
        // pool, never under the controller's lock that publishes the change.
        public readonly CancellationTokenSource Deposed = new();
    }

    private readonly ConcurrentDictionary<PartitionLog, LedPartition> _led = new();

    private long NowMs => time.GetUtcNow().ToUnixTimeMilliseconds();

    private LedPartition Led(PartitionLog log, int leaderEpoch)
    {
        var led = _led.GetOrAdd(log, static (_, e) => new LedPartition(e), leaderEpoch);
        if (led.LeaderEpoch != leaderEpoch)
        {
            var stale = led;
            led = new LedPartition(leaderEpoch);
            _led[log] = led;
            _ = stale.Deposed.CancelAsync();
        }
        return led;
    }

    /// <summary>
    /// See <see cref="Services.IPartitionLeadership.Deposed"/>. The assignment is read again after the token is taken:
    /// a change published in between may not have seen the entry, and then the token is not trusted.
    /// </summary>
    public CancellationToken Deposed(PartitionLog log, int leaderEpoch)
    {
        if (!Leads(Assignment(log), leaderEpoch)) return new CancellationToken(canceled: true);
        var token = Led(log, leaderEpoch).Deposed.Token;
        return Leads(Assignment(log), leaderEpoch) ? token : new CancellationToken(canceled: true);
    }

    private bool Leads(PartitionAssignment? p, int leaderEpoch) => p is not null && p.Leader == nodeId && p.LeaderEpoch == leaderEpoch;

    /// <summary>
    /// The controller published new metadata: partitions this broker no longer leads at the epoch it led them (failover,
    /// fencing, election, reassignment, deletion) end their waits for the ISR and forget their followers.
    /// </summary>
    private void OnPublished()
    {
        foreach (var (log, led) in _led)
        {
            if (Leads(Assignment(log), led.LeaderEpoch)) continue;
            if (_led.TryRemove(KeyValuePair.Create(log, led))) _ = led.Deposed.CancelAsync();
        }
    }

    /// <summary>
    /// A follower's fetch at the leader: NOT_LEADER_OR_FOLLOWER when this broker does not lead or the fetcher is not
    /// a replica, FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH for an older / newer CurrentLeaderEpoch (KIP-320); else
    /// the follower's position is recorded, the ISR possibly expanded and the high watermark moved.
    /// </summary>
    public ErrorCode FollowerFetched(PartitionLog log, int replicaId, int currentLeaderEpoch, long fetchOffset)
    {
        var p = Assignment(log);
        if (p is null || p.Leader != nodeId || Array.IndexOf(p.Replicas, replicaId) < 0 || replicaId == nodeId) return ErrorCode.NotLeaderOrFollower;
        if (currentLeaderEpoch >= 0 && currentLeaderEpoch < p.LeaderEpoch) return ErrorCode.FencedLeaderEpoch;
        if (currentLeaderEpoch > p.LeaderEpoch) return ErrorCode.UnknownLeaderEpoch;
        var led = Led(log, p.LeaderEpoch);
        long now = NowMs;
        long leaderEnd = log.LogEndOffset;
        var f = led.Followers.GetOrAdd(replicaId, static (_, n) => new Follower { LastCaughtUpMs = n }, now);
        lock (f)
        {
            // Kafka's updateFollowerFetchState: caught up now when it asked for the leader's end; caught up as of its
            // previous fetch when it asked for at least what the leader's end was then.
            if (fetchOffset >= leaderEnd) f.LastCaughtUpMs = Math.Max(f.LastCaughtUpMs, now);
            else if (fetchOffset >= f.LastFetchLeaderLogEndOffset) f.LastCaughtUpMs = Math.Max(f.LastCaughtUpMs, f.LastFetchMs);
            f.LogEndOffset = fetchOffset;
            f.LastFetchLeaderLogEndOffset = leaderEnd;
            f.LastFetchMs = now;
        }
        if (Array.IndexOf(p.Isr, replicaId) < 0 && fetchOffset >= log.HighWatermark && fetchOffset <= leaderEnd)
        {
            // maybeExpandIsr: the follower holds everything consumers may see. The high watermark stops following
            // the log end offset before the ISR grows, so no append is exposed the new member does not have.
            log.SetHighWatermarkFollowsLogEnd(false);
            int[] isr = [.. p.Isr, replicaId];
            Array.Sort(isr);
            controller.ChangeIsr(log.TopicName, log.Partition, nodeId, p.LeaderEpoch, isr);
        }
        UpdateHighWatermark(log);
        return ErrorCode.None;
    }

    /// <summary>
    /// maybeIncrementLeaderHW: the smallest log end offset of the ISR, the leader's included. An ISR member whose
    /// position is not known under this leader epoch holds it back (Kafka resets follower state on makeLeader). With
    /// the ISR the leader alone every append moves it (<see cref="PartitionLog.SetHighWatermarkFollowsLogEnd"/>).
    /// </summary>
    public void UpdateHighWatermark(PartitionLog log)
    {
        var p = Assignment(log);
        if (p is null || p.Leader != nodeId) return;
        if (p.Isr.Length == 1 && p.Isr[0] == nodeId)
        {
            log.SetHighWatermarkFollowsLogEnd(true);
            return;
        }
        log.SetHighWatermarkFollowsLogEnd(false);
        var led = Led(log, p.LeaderEpoch);
        long hw = log.LogEndOffset;
        foreach (int r in p.Isr)
        {
            if (r == nodeId) continue;
            if (!led.Followers.TryGetValue(r, out var f) || f.LogEndOffset < 0) return;
            hw = Math.Min(hw, Volatile.Read(ref f.LogEndOffset));
        }
        log.UpdateHighWatermark(hw);
    }

    /// <summary>
    /// maybeShrinkIsr, on the isr-expiration schedule: followers of partitions led here that have not caught up for
    /// replica.lag.time.max.ms leave the ISR (never the leader itself), then the high watermark is recomputed.
    /// </summary>
    public void ShrinkIsrs(Func<string, int, PartitionLog?> logOf)
    {
        long now = NowMs;
        foreach (var t in controller.Metadata.Topics.Values)
            for (int i = 0; i < t.Partitions.Length; i++)
            {
                var p = t.Partitions[i];
                if (p.Leader != nodeId || logOf(t.Name, i) is not { } log) continue;
                var led = Led(log, p.LeaderEpoch);
                int[]? shrunk = null;
                foreach (int r in p.Isr)
                {
                    if (r == nodeId) continue;
                    var f = led.Followers.GetOrAdd(r, static (_, n) => new Follower { LastCaughtUpMs = n }, now);
                    if (now - Volatile.Read(ref f.LastCaughtUpMs) > lagTimeMaxMs) shrunk = Array.FindAll(shrunk ?? p.Isr, x => x != r);
                }
                if (shrunk is not null) controller.ChangeIsr(t.Name, i, nodeId, p.LeaderEpoch, shrunk);
                UpdateHighWatermark(log);
            }
    }

    private PartitionAssignment? Assignment(PartitionLog log)
    {
        var t = controller.Topic(log.TopicName);
        return t is null || (uint)log.Partition >= (uint)t.Partitions.Length ? null : t.Partitions[log.Partition];
    }
}
