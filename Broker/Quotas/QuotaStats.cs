namespace Kayak.Broker.Quotas;

/// <summary>
/// Kafka's Rate over a WindowedSum (org.apache.kafka.common.metrics.stats.Rate / SampledStat), the statistic behind
/// producer_byte_rate, consumer_byte_rate and request_percentage (KIP-13, KIP-124): quota.window.num samples of
/// quota.window.size.seconds each, plus the one overlapping placeholder Kafka keeps. The measured rate is the sum of the
/// live samples over the elapsed time since the oldest one, never less than (samples - 1) full windows, so a first
/// burst is spread over the whole window as in Kafka. Times are milliseconds of the broker's TimeProvider. Not
/// thread-safe: <see cref="ClientQuotaManager"/> locks around it. No allocation after construction.
/// </summary>
internal sealed class SampledRate
{
    private readonly double[] _value;
    private readonly long[] _start;
    private readonly long[] _lastEvent;
    private readonly long[] _count;
    private int _used;
    private int _current;

    public SampledRate(int samples)
    {
        int slots = samples + 1; // Kafka keeps one extra slot for the sample overlapping the monitored window
        _value = new double[slots];
        _start = new long[slots];
        _lastEvent = new long[slots];
        _count = new long[slots];
    }

    public void Record(double value, long nowMs, int samples, long windowMs)
    {
        if (_used == 0) NewSample(nowMs);
        if (nowMs - _start[_current] >= windowMs) Advance(nowMs, samples);
        _value[_current] += value;
        _count[_current]++;
        _lastEvent[_current] = nowMs;
    }

    /// <summary>Rate per second: the live samples' total over <see cref="WindowSizeMs"/>.</summary>
    public double Measure(long nowMs, int samples, long windowMs)
    {
        Purge(nowMs, samples, windowMs);
        double total = 0;
        for (int i = 0; i < _used; i++) total += _value[i];
        return total / (WindowSizeMs(nowMs, samples, windowMs) / 1000.0);
    }

    /// <summary>Rate.windowSize: elapsed since the oldest sample, at least samples-1 full windows, at least 1 ms.</summary>
    public long WindowSizeMs(long nowMs, int samples, long windowMs)
    {
        Purge(nowMs, samples, windowMs);
        if (_used == 0) NewSample(nowMs);
        long oldest = _start[0];
        for (int i = 1; i < _used; i++) oldest = Math.Min(oldest, _start[i]);
        long elapsed = nowMs - oldest;
        long fullWindows = elapsed / windowMs;
        int minFull = samples - 1;
        if (fullWindows < minFull) elapsed += (minFull - fullWindows) * windowMs;
        return Math.Max(elapsed, 1);
    }

    private void NewSample(long nowMs)
    {
        _used = 1;
        _current = 0;
        Reset(0, nowMs);
    }

    private void Advance(long nowMs, int samples)
    {
        int max = Math.Min(samples + 1, _value.Length);
        _current = (_current + 1) % max;
        if (_current >= _used) _used = _current + 1;
        Reset(_current, nowMs);
    }

    /// <summary>SampledStat.purgeObsoleteSamples: a sample with no event in the last samples x window starts over.</summary>
    private void Purge(long nowMs, int samples, long windowMs)
    {
        long expireAge = samples * windowMs;
        for (int i = 0; i < _used; i++)
            if (nowMs - _lastEvent[i] >= expireAge) Reset(i, nowMs);
    }

    private void Reset(int i, long nowMs)
    {
        _value[i] = 0;
        _count[i] = 0;
        _start[i] = nowMs;
        _lastEvent[i] = nowMs;
    }
}

/// <summary>
/// Kafka's TokenBucket (KIP-599) for controller_mutation_rate: the bucket holds at most samples x window seconds x rate
/// tokens, refills at the rate, and a mutation takes as many tokens as it creates or deletes partitions. The quota is
/// exceeded once the bucket is below zero; the throttle time is the time to refill to zero.
/// </summary>
internal sealed class TokenBucket
{
    private double _tokens;
    private long _lastUpdateMs;

    public double Tokens(double rate, double burst, long nowMs)
    {
        Refill(rate, burst, nowMs);
        return _tokens;
    }

    public void Record(double permits, double rate, double burst, long nowMs)
    {
        Refill(rate, burst, nowMs);
        _tokens = Math.Min(burst, _tokens - permits);
    }

    private void Refill(double rate, double burst, long nowMs)
    {
        _tokens = Math.Min(burst, _tokens + rate * ((nowMs - _lastUpdateMs) / 1000.0));
        _lastUpdateMs = nowMs;
    }
}
