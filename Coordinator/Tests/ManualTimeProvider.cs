namespace Kayak.Coordinator.Tests;

/// <summary>
/// A clock that only moves when a test says so. Timers fire synchronously inside <see cref="Advance"/>,
/// in due-time order, so state-machine timeouts are tested without sleeping.
/// </summary>
internal sealed class ManualTimeProvider : TimeProvider
{
    private readonly List<ManualTimer> _timers = new();
    private DateTimeOffset _now = new(2024, 1, 1, 0, 0, 0, TimeSpan.Zero);

    public override DateTimeOffset GetUtcNow() => _now;
    public long NowMs => _now.ToUnixTimeMilliseconds();

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new ManualTimer(this, callback, state);
        timer.Change(dueTime, period);
        lock (_timers) _timers.Add(timer);
        return timer;
    }

    public void Advance(TimeSpan by) => AdvanceMs((long)by.TotalMilliseconds);

    public void AdvanceMs(long ms)
    {
        var target = _now.AddMilliseconds(ms);
        while (true)
        {
            ManualTimer? next = null;
            lock (_timers)
            {
                foreach (var t in _timers)
                    if (t.Due is { } due && due <= target && (next is null || due < next.Due)) next = t;
            }
            if (next is null) break;
            _now = next.Due!.Value;
            next.Fire();
        }
        _now = target;
    }

    /// <summary>Moves the clock without firing the timers that fall due: timers running late, as real ones do.</summary>
    public void AdvanceWithoutFiring(long ms) => _now = _now.AddMilliseconds(ms);

    private void Remove(ManualTimer t) { lock (_timers) _timers.Remove(t); }

    private sealed class ManualTimer(ManualTimeProvider owner, TimerCallback callback, object? state) : ITimer
    {
        public DateTimeOffset? Due { get; private set; }
        private TimeSpan _period = Timeout.InfiniteTimeSpan;

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            _period = period;
            Due = dueTime == Timeout.InfiniteTimeSpan ? null : owner._now + dueTime;
            return true;
        }

        public void Fire()
        {
            Due = _period == Timeout.InfiniteTimeSpan || _period == TimeSpan.Zero ? null : Due + _period;
            callback(state);
        }

        public void Dispose() { Due = null; owner.Remove(this); }
        public ValueTask DisposeAsync() { Dispose(); return ValueTask.CompletedTask; }
    }
}
