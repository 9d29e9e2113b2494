namespace Kayak.Broker.Quotas;

/// <summary>
/// One quota key's enforcement (Kafka's ClientQuotaManager, ClientRequestQuotaManager, ControllerMutationQuotaManager
/// with the DefaultQuotaCallback): resolves a client's (user, client-id) to the metric tags Kafka's quotaMetricTags picks,
/// i.e. the most specific configured entity in the order /users/u/clients/c, /users/u/clients/&lt;default&gt;, /users/u,
/// /users/&lt;default&gt;/clients/c, /users/&lt;default&gt;/clients/&lt;default&gt;, /users/&lt;default&gt;, /clients/c,
/// /clients/&lt;default&gt;; clients with the same tags share one sensor (a rate or, for controller_mutation_rate, a token
/// bucket). Lookups use value-type keys, so recording allocates only when a client is seen for the first time.
/// </summary>
internal sealed class ClientQuotaManager
{
    /// <summary>Kafka's QuotaTypes: which entity shapes have ever had a quota of this key (flags are never cleared).</summary>
    [Flags]
    private enum QuotaTypes { None = 0, ClientId = 1, User = 2, UserClientId = 4 }

    /// <summary>ClientQuotaManager.InactiveSensorExpirationTimeSeconds: an idle client's sensor is dropped after an hour.</summary>
    private const long SensorExpiryMs = 3_600_000;

    private readonly object _lock = new();
    private readonly Dictionary<(string User, string ClientId), Sensor> _sensors = new();
    private Dictionary<ClientQuotaEntity, double> _overrides = new();
    private volatile QuotaTypes _types;
    private int _version;
    private int _purgeAt = 1024;

    public ClientQuotaManager(string key, int samples, int windowSeconds, bool tokenBucket = false, bool boundedByWindow = false)
    {
        Key = key;
        Samples = samples;
        WindowMs = windowSeconds * 1000L;
        TokenBucketQuota = tokenBucket;
        MaxThrottleMs = boundedByWindow ? WindowMs : long.MaxValue;
    }

    public string Key { get; }
    public int Samples { get; }
    public long WindowMs { get; }
    /// <summary>controller_mutation_rate (KIP-599): a token bucket instead of a sampled rate.</summary>
    public bool TokenBucketQuota { get; }
    /// <summary>ClientRequestQuotaManager caps request_percentage throttles at one window; byte rates are not capped.</summary>
    public long MaxThrottleMs { get; }

    /// <summary>Kafka's quotasEnabled: nothing is recorded until a quota of this key was set once.</summary>
    public bool Enabled => _types != QuotaTypes.None;

    private sealed class Sensor
    {
        public readonly SampledRate Rate;
        public readonly TokenBucket Bucket = new();
        public double? Limit;
        public int Version = -1;
        public long LastRecordMs;
        public Sensor(int samples) => Rate = new SampledRate(samples);
    }

    /// <summary>Takes this key's values from the stored quotas (Kafka's updateQuota for each changed entity).</summary>
    public void Update(IReadOnlyDictionary<ClientQuotaEntity, Dictionary<string, double>> quotas)
    {
        var overrides = new Dictionary<ClientQuotaEntity, double>();
        var types = QuotaTypes.None;
        foreach (var (entity, values) in quotas)
        {
            if (entity.HasIp || !values.TryGetValue(Key, out double v)) continue;
            overrides[entity] = v;
            types |= entity.HasUser ? entity.HasClientId ? QuotaTypes.UserClientId : QuotaTypes.User : QuotaTypes.ClientId;
        }
        lock (_lock)
        {
            _overrides = overrides;
            _types |= types;
            _version++;
        }
    }

    /// <summary>Records <paramref name="value"/> and returns the throttle time Kafka computes, 0 within the quota.</summary>
    public int RecordAndGetThrottleTimeMs(string user, string clientId, double value, long nowMs)
    {
        if (!Enabled) return 0;
        lock (_lock)
        {
            var s = SensorFor(user, clientId, nowMs);
            if (TokenBucketQuota)
            {
                // ControllerMutationQuotaManager.recordAndGetThrottleTimeMs: check first, then record.
                int throttle = BucketThrottle(s, nowMs);
                if (throttle == 0) RecordBucket(s, value, nowMs);
                return throttle;
            }
            s.Rate.Record(value, nowMs, Samples, WindowMs);
            return RateThrottle(s, nowMs);
        }
    }

    /// <summary>ClientQuotaManager.unrecordQuotaSensor: a throttled fetch sends no data, so its bytes do not count.</summary>
    public void Unrecord(string user, string clientId, double value, long nowMs)
    {
        if (!Enabled) return;
        lock (_lock) SensorFor(user, clientId, nowMs).Rate.Record(-value, nowMs, Samples, WindowMs);
    }

    /// <summary>
    /// KIP-599 strict mode (CreateTopics v6+, CreatePartitions v3+, DeleteTopics v5+): a mutation is refused while the
    /// bucket is below zero (returns the throttle time), else its partitions are taken and 0 is returned. Permissive
    /// mode (older versions) always records and returns the throttle the client is then given.
    /// </summary>
    public int RecordMutation(string user, string clientId, double partitions, bool strict, long nowMs)
    {
        if (!Enabled) return 0;
        lock (_lock)
        {
            var s = SensorFor(user, clientId, nowMs);
            if (strict)
            {
                int throttle = BucketThrottle(s, nowMs);
                if (throttle == 0) RecordBucket(s, partitions, nowMs);
                return throttle;
            }
            RecordBucket(s, partitions, nowMs);
            return BucketThrottle(s, nowMs);
        }
    }

    /// <summary>The quota that applies to this client (Kafka's quotaLimit over its metric tags), or null for none.</summary>
    public double? QuotaFor(string user, string clientId)
    {
        lock (_lock)
        {
            var (u, c) = MetricTags(user, clientId);
            return Limit(u, c);
        }
    }

    private Sensor SensorFor(string user, string clientId, long nowMs)
    {
        var tags = MetricTags(user, clientId);
        if (!_sensors.TryGetValue(tags, out var s))
        {
            if (_sensors.Count >= _purgeAt) Purge(nowMs);
            s = new Sensor(Samples);
            _sensors[tags] = s;
        }
        if (s.Version != _version)
        {
            s.Limit = Limit(tags.User, tags.ClientId);
            s.Version = _version;
        }
        s.LastRecordMs = nowMs;
        return s;
    }

    private void Purge(long nowMs)
    {
        List<(string, string)>? idle = null;
        foreach (var (k, v) in _sensors)
            if (nowMs - v.LastRecordMs >= SensorExpiryMs) (idle ??= new()).Add(k);
        if (idle is not null) foreach (var k in idle) _sensors.Remove(k);
        _purgeAt = Math.Max(1024, _sensors.Count * 2);
    }

    private int RateThrottle(Sensor s, long nowMs)
    {
        if (s.Limit is not { } bound) return 0;
        double observed = s.Rate.Measure(nowMs, Samples, WindowMs);
        if (observed <= bound) return 0;
        // QuotaUtils.throttleTime: the delay X that brings O over W down to T, O * W / (W + X) = T.
        double ms = (observed - bound) / bound * s.Rate.WindowSizeMs(nowMs, Samples, WindowMs);
        return (int)Math.Min(Math.Round(ms, MidpointRounding.AwayFromZero), Math.Min(MaxThrottleMs, int.MaxValue));
    }

    private double Burst(double rate) => Samples * (WindowMs / 1000.0) * rate;

    private void RecordBucket(Sensor s, double permits, long nowMs)
    {
        if (s.Limit is { } rate) s.Bucket.Record(permits, rate, Burst(rate), nowMs);
    }

    private int BucketThrottle(Sensor s, long nowMs)
    {
        if (s.Limit is not { } rate) return 0;
        double tokens = s.Bucket.Tokens(rate, Burst(rate), nowMs);
        if (tokens >= 0) return 0;
        // ControllerMutationQuotaManager.throttleTimeMs: time to refill the bucket to zero.
        return (int)Math.Min(Math.Round(-tokens / rate * 1000, MidpointRounding.AwayFromZero), int.MaxValue);
    }

    /// <summary>DefaultQuotaCallback.quotaMetricTags: which (user, client-id) pair the client's usage is counted under.</summary>
    private (string User, string ClientId) MetricTags(string user, string clientId)
    {
        switch (_types)
        {
            case QuotaTypes.None or QuotaTypes.ClientId: return ("", clientId);
            case QuotaTypes.User: return (user, "");
            case QuotaTypes.UserClientId: return (user, clientId);
        }
        var o = _overrides;
        if (o.ContainsKey(ClientQuotaEntity.ForUserClient(user, clientId))) return (user, clientId);
        if (o.ContainsKey(ClientQuotaEntity.ForUserClient(user, null))) return (user, clientId);
        if (o.ContainsKey(ClientQuotaEntity.ForUser(user))) return (user, "");
        if (o.ContainsKey(ClientQuotaEntity.ForUserClient(null, clientId))) return (user, clientId);
        if (o.ContainsKey(ClientQuotaEntity.ForUserClient(null, null))) return (user, clientId);
        if (o.ContainsKey(ClientQuotaEntity.ForUser(null))) return (user, "");
        return ("", clientId);
    }

    /// <summary>DefaultQuotaCallback.quotaLimit over metric tags.</summary>
    private double? Limit(string user, string clientId)
    {
        var o = _overrides;
        double v;
        if (user.Length > 0 && clientId.Length > 0)
        {
            if (o.TryGetValue(ClientQuotaEntity.ForUserClient(user, clientId), out v)) return v;
            if (o.TryGetValue(ClientQuotaEntity.ForUserClient(user, null), out v)) return v;
            if (o.TryGetValue(ClientQuotaEntity.ForUserClient(null, clientId), out v)) return v;
            if (o.TryGetValue(ClientQuotaEntity.ForUserClient(null, null), out v)) return v;
        }
        else if (user.Length > 0)
        {
            if (o.TryGetValue(ClientQuotaEntity.ForUser(user), out v)) return v;
            if (o.TryGetValue(ClientQuotaEntity.ForUser(null), out v)) return v;
        }
        else if (clientId.Length > 0)
        {
            if (o.TryGetValue(ClientQuotaEntity.ForClient(clientId), out v)) return v;
            if (o.TryGetValue(ClientQuotaEntity.ForClient(null), out v)) return v;
        }
        return null;
    }
}
