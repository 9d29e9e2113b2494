using System.Buffers;

namespace Kayak.Broker.Network;

/// <summary>
/// The memory of received request frames, for all connections of a broker (issue 15, K8).
/// <list type="bullet">
/// <item>A cap, Kafka's <c>queued.max.request.bytes</c> (its MemoryPool): while the frames held reach it, connections
/// stop reading new requests (TCP pushes back on the clients) until frames are returned. One request may take the
/// cap over by its own size, as Kafka's SimpleMemoryPool allows, so a request larger than the cap still proceeds.</item>
/// <item>Given back: frames up to <see cref="PooledMaximum"/> come from the shared array pool; larger ones (a 100 MiB
/// produce) are plain arrays the GC reclaims, so an idle broker shrinks back instead of keeping every large buffer it
/// ever used in the pool (4.8 GB retained 60 s after the clients left, before this).</item>
/// </list>
/// </summary>
internal sealed class RequestMemory
{
    /// <summary>Larger frames are not pooled.</summary>
    public const int PooledMaximum = 8 << 20;

    private readonly long _capacity;
    private long _used;
    private readonly object _lock = new();
    private TaskCompletionSource? _roomFreed;

    public RequestMemory(long capacity) { _capacity = capacity; }

    /// <summary>Bytes of frames currently held (tests, diagnostics).</summary>
    public long Used => Interlocked.Read(ref _used);

    private long _rented;
    private long _closed;
    private QuietAfterBusy _requests = new(1_000);
    private QuietAfterBusy _closes = new(TrimAfterClosedConnections);

    /// <summary>
    /// One signal of <see cref="ShouldTrimIdle"/>: the count per period (10 s) of a running total, its busiest period
    /// since the last trim, and whether a period fell below a tenth of that peak (a peak of at least <c>minPeak</c>).
    /// </summary>
    private struct QuietAfterBusy(long minPeak)
    {
        private long _atLastCheck;
        private long _peak;

        public bool Quieted(long total)
        {
            long period = total - _atLastCheck;
            _atLastCheck = total;
            if (period > _peak) { _peak = period; return false; }
            return _peak >= minPeak && period * 10 < _peak;
        }

        public void Reset() => _peak = 0;
    }

    /// <summary>A connection ended (its pipe buffers and socket state became garbage); counted for <see cref="ShouldTrimIdle"/>.</summary>
    public void ConnectionClosed() => Interlocked.Increment(ref _closed);

    /// <summary>
    /// The idle trim (every 10 s): true once the requests of a period fall below a tenth of the busiest period since the
    /// last trim (a health check every second still counts as idle after a load), or once connections stop closing
    /// after at least <see cref="TrimAfterClosedConnections"/> closed in one period. .NET collects only when something
    /// allocates enough, so a broker back at a trickle kept its peak heap (the full-size fault campaign: 324 MB 60 s
    /// after 2,000 connections and never-reading pipeliners left, 51 MB before); one compacting collection then gives
    /// the freed memory back to the OS. The request signal alone missed a load whose busiest moment came first: it
    /// trimmed then, and the 2,000 connections that closed at the end left their buffers as gen-2 garbage (164 MB
    /// RssAnon 60 s later, 8 MB idle before). Not again until a new busy period or burst of closes.
    /// </summary>
    public bool ShouldTrimIdle()
    {
        // Both signals observe every period, so each keeps its own peak current.
        bool trim = _closes.Quieted(Interlocked.Read(ref _closed)) | _requests.Quieted(Interlocked.Read(ref _rented));
        if (trim) { _requests.Reset(); _closes.Reset(); }
        return trim;
    }

    /// <summary>Connections closed in one period that make the next quiet period trim.</summary>
    public const int TrimAfterClosedConnections = 100;

    public bool HasRoom => _capacity <= 0 || Interlocked.Read(ref _used) < _capacity;

    /// <summary>Completes when a frame may be taken (at once unless the cap is reached).</summary>
    public ValueTask WaitForRoomAsync(CancellationToken cancellationToken)
    {
        if (HasRoom) return ValueTask.CompletedTask;
        return WaitSlowAsync(cancellationToken);
    }

    private async ValueTask WaitSlowAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            Task wait;
            lock (_lock)
            {
                if (HasRoom) return;
                _roomFreed ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                wait = _roomFreed.Task;
            }
            await wait.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>A buffer of at least <paramref name="minimumLength"/> bytes, counted until <see cref="Return"/>.</summary>
    public byte[] Rent(int minimumLength)
    {
        byte[] array = minimumLength <= PooledMaximum
            ? ArrayPool<byte>.Shared.Rent(Math.Max(minimumLength, 1))
            : GC.AllocateUninitializedArray<byte>(minimumLength);
        Interlocked.Add(ref _used, array.Length);
        Interlocked.Increment(ref _rented);
        return array;
    }

    public void Return(byte[] array)
    {
        if (array.Length <= PooledMaximum) ArrayPool<byte>.Shared.Return(array);
        long used = Interlocked.Add(ref _used, -array.Length);
        if (_capacity > 0 && used < _capacity)
        {
            TaskCompletionSource? freed;
            lock (_lock) { freed = _roomFreed; _roomFreed = null; }
            freed?.TrySetResult();
        }
    }
}
