using System.Collections.Concurrent;
using Kayak.Protocol;

namespace Kayak.Coordinator;

/// <summary>
/// The onElection / onResignation bookkeeping the group and transaction coordinators share (issue 14): which
/// partitions of their topic (<c>__consumer_offsets</c>, <c>__transaction_state</c>) this broker has loaded under which
/// leader epoch, and the loads in flight. Leadership is looked up per request, not pushed, so a change cannot be
/// missed: a new leader epoch starts a background load (COORDINATOR_LOAD_IN_PROGRESS meanwhile), a partition led
/// elsewhere is unloaded (NOT_COORDINATOR). A single broker (no epoch lookup) serves every partition.
/// </summary>
internal sealed class PartitionLoads
{
    private readonly ConcurrentDictionary<int, int> _loaded = new();
    private readonly ConcurrentDictionary<int, Task> _loads = new();
    private readonly Action<int, int> _load;
    private readonly Action<int> _unload;

    /// <param name="load">(partition, epoch) on the thread pool; calls <see cref="MarkLoaded"/> when done and <see cref="EndLoad"/> always.</param>
    /// <param name="unload">Forgets what the partition held; the partition is led elsewhere now.</param>
    public PartitionLoads(Action<int, int> load, Action<int> unload)
    {
        _load = load;
        _unload = unload;
    }

    /// <summary>NONE, NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS for the partition, starting a load or unload on a change.</summary>
    public ErrorCode Availability(Func<int, int>? leaderEpochOf, int partition)
    {
        if (leaderEpochOf is null) return ErrorCode.None;
        int epoch = leaderEpochOf(partition);
        if (epoch < 0)
        {
            if (!_loads.ContainsKey(partition) && _loaded.TryRemove(partition, out _)) _unload(partition);
            return ErrorCode.NotCoordinator;
        }
        if (_loaded.TryGetValue(partition, out int loaded) && loaded == epoch) return ErrorCode.None;
        var load = new Task(() => _load(partition, epoch));
        if (_loads.TryAdd(partition, load)) load.Start(TaskScheduler.Default);
        return ErrorCode.CoordinatorLoadInProgress;
    }

    public void MarkLoaded(int partition, int epoch) => _loaded[partition] = epoch;

    public bool IsLoaded(int partition) => _loaded.ContainsKey(partition);

    /// <summary>The leader epoch the partition was loaded under, if it is loaded.</summary>
    public bool TryGetLoadedEpoch(int partition, out int epoch) => _loaded.TryGetValue(partition, out epoch);

    public void EndLoad(int partition) => _loads.TryRemove(partition, out _);

    /// <summary>Waits for the loads started so far (tests).</summary>
    public void WaitForLoads()
    {
        foreach (var t in _loads.Values) t.Wait();
    }
}
