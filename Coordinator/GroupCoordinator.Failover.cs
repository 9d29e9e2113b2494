using Kayak.Protocol;

namespace Kayak.Coordinator;

/// <summary>
/// Coordinator failover (issue 14), as Kafka's GroupCoordinator.onElection / onResignation: a broker coordinates the
/// groups of a <c>__consumer_offsets</c> partition only while it leads it. When it finds itself leader under a leader
/// epoch it has not loaded, it drops what it held for the partition and replays the partition's log again (the same
/// replay as startup) in the background, answering COORDINATOR_LOAD_IN_PROGRESS until done; a partition it no longer
/// leads is unloaded and its groups answered NOT_COORDINATOR. Leadership is looked up per request
/// (<see cref="LeaderEpochOf"/>) instead of pushed, so a leadership change cannot be missed.
/// In a cluster every append waits for the ISR below <see cref="IGroupLog"/> (Broker/Services/CoordinatorReplication)
/// and a timeout leaves the state as it was (<see cref="CoordinatorAppendException"/>).
/// </summary>
public sealed partial class GroupCoordinator
{
    /// <summary>The leader epoch under which this broker leads a partition, or -1 when it does not; null (a single broker) leads all.</summary>
    public Func<int, int>? LeaderEpochOf { get; set; }

    /// <summary>True when this broker coordinates the partition's groups (always on a single broker).</summary>
    private bool LeadsPartition(int partition) => LeaderEpochOf is not { } epochOf || epochOf(partition) >= 0;

    private readonly PartitionLoads _loads;

    /// <summary>At startup, the partitions already loaded by <see cref="Load"/> under the epoch they are led with.</summary>
    private void RecordLoadedEpochs()
    {
        if (LeaderEpochOf is not { } epochOf) return;
        for (int p = 0; p < _options.OffsetsTopicNumPartitions; p++)
            if (epochOf(p) is var e && e >= 0) _loads.MarkLoaded(p, e);
    }

    /// <summary>NONE, NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS for the partition, starting a load or unload on a change.</summary>
    private ErrorCode PartitionAvailability(int partition) => _loads.Availability(LeaderEpochOf, partition);

    /// <summary>Kafka's onElection: unload what an earlier term left, replay the partition, then serve it.</summary>
    private void ReloadPartition(int partition, int epoch)
    {
        try
        {
            UnloadPartition(partition);
            if (!_log.IsEmpty)
            {
                var visitor = new LoadVisitor(this, partition);
                _log.Replay(partition, chunk => CoordinatorBatch.Replay(chunk, visitor));
            }
            _loads.MarkLoaded(partition, epoch);
        }
        catch (Exception e) when (CoordinatorAppendErrors.IsAppendFailure(e))
        {
            // The partition's log is not readable here (yet): the next request tries again.
        }
        finally
        {
            _loads.EndLoad(partition);
        }
    }

    /// <summary>
    /// Kafka's onResignation: forget the groups of the partition, classic and KIP-848 (members, offsets, timers), and
    /// answer their parked JoinGroup/SyncGroup requests NOT_COORDINATOR so the members find the new coordinator. A
    /// group is marked Dead first, so an operation already holding it (or a timer firing) sees it gone.
    /// </summary>
    private void UnloadPartition(int partition)
    {
        foreach (var (id, group) in _groups)
            if (PartitionFor(id) == partition)
                lock (group.Lock)
                    if (_groups.TryRemove(new KeyValuePair<string, ClassicGroup>(id, group))) Resign(group);
    }

    /// <summary>Stops what a group had running here. Under its lock.</summary>
    private static void Resign(ClassicGroup group)
    {
        group.State = GroupState.Dead;
        group.JoinTimer?.Dispose();
        group.SyncTimer?.Dispose();
        foreach (var m in group.MemberList)
        {
            m.HeartbeatTimer?.Dispose();
            m.AwaitingJoin?.TrySetResult(JoinError(ErrorCode.NotCoordinator, m.MemberId, m.JoinVersion));
            m.AwaitingJoin = null;
            m.AwaitingSync?.TrySetResult(SyncError(ErrorCode.NotCoordinator, m.SyncVersion));
            m.AwaitingSync = null;
        }
        foreach (var t in group.PendingMembers.Values) t.Dispose();
        group.PendingMembers.Clear();
        if (group.Consumer is { } consumer)
            foreach (var m in consumer.Members.Values) m.Timer?.Dispose();
    }
}
