using System.Net;
using Kayak.Broker.Config;
using Kayak.Broker.Quotas;

namespace Kayak.Broker.Network;

/// <summary>
/// Kafka 4.0's ConnectionQuotas for all listeners of one broker: connection counts per IP, per listener and in total,
/// and the KIP-612 connection creation rates (broker-wide max.connection.creation.rate, per listener
/// listener.name.&lt;l&gt;.max.connection.creation.rate, per IP the connection_creation_rate client quota). At accept:
/// <list type="number">
/// <item>the broker and listener rates record the connection; over either, the accept waits the throttle time (capped
/// at one quota window), then waits while the listener's or the broker's max.connections is reached (Kafka's
/// waitForConnectionSlot: the acceptor blocks, the client's connection waits in the backlog);</item>
/// <item>the IP's rate records it; over its quota the connection is not counted, the broker and listener rates forget it,
/// and the caller closes it after the throttle time (Kafka's ConnectionThrottledException, delayed close);</item>
/// <item>an IP already holding max.connections.per.ip (or its max.connections.per.ip.overrides entry) connections:
/// the caller closes it at once (TooManyConnectionsException).</item>
/// </list>
/// Rates are Kafka's Rate over quota.window.num samples of quota.window.size.seconds (<see cref="SampledRate"/>), on
/// the broker's TimeProvider. One lock, as Kafka synchronizes on its counts map; nothing here is on the request path.
/// </summary>
internal sealed class ConnectionQuotas
{
    /// <summary>QuotaConfigs.IP_CONNECTION_RATE_DEFAULT: no per-IP rate quota.</summary>
    public const int NoIpRateQuota = int.MaxValue;

    /// <summary>ConnectionQuotas.InactiveSensorExpirationTimeSeconds: an IP's rate sensor idle an hour is dropped.</summary>
    private const long IpSensorExpiryMs = 3_600_000;

    public enum Outcome { Accepted, TooManyForIp, Throttled }

    /// <summary>The result of <see cref="AdmitAsync"/>: for <see cref="Outcome.TooManyForIp"/> the limit, for
    /// <see cref="Outcome.Throttled"/> how long to hold the socket before closing it.</summary>
    public readonly record struct Admission(Outcome Outcome, int Limit = 0, long ThrottleMs = 0);

    private sealed class RateSensor(int samples)
    {
        public readonly SampledRate Rate = new(samples);
        public long LastRecordMs;
    }

    private sealed class ListenerQuota(int samples)
    {
        public int MaxConnections = int.MaxValue;
        public int MaxRate = int.MaxValue;
        public int Count;
        public readonly RateSensor Rate = new(samples);
    }

    private readonly object _lock = new();
    private readonly TimeProvider _time;
    private readonly int _samples;
    private readonly long _windowMs;
    private readonly RateSensor _brokerRate;
    private readonly Dictionary<string, ListenerQuota> _listeners = new(StringComparer.OrdinalIgnoreCase);
    private readonly Dictionary<IPAddress, int> _counts = new();
    private readonly Dictionary<IPAddress, RateSensor> _ipSensors = new();
    private Dictionary<IPAddress, int> _ipRates = new();
    private int _defaultIpRate = NoIpRateQuota;
    private int _purgeAt = 1024;
    private int _total;
    private int _maxConnections = int.MaxValue;
    private int _maxConnectionsPerIp = int.MaxValue;
    private IReadOnlyDictionary<IPAddress, int> _perIpOverrides = new Dictionary<IPAddress, int>();
    private int _brokerMaxRate = int.MaxValue;
    private BrokerConfig _config;
    /// <summary>Completed (and replaced) whenever a slot may have freed: Kafka's counts.notifyAll.</summary>
    private TaskCompletionSource _slotChanged = NewSignal();
    private int _waiting;
    private long _rejected, _throttled;

    public ConnectionQuotas(BrokerConfig config, TimeProvider time)
    {
        _time = time;
        // ConnectionQuotas.rateQuotaMetricConfig: the client quota windows; a throttle is at most one window.
        _samples = config.QuotaWindowNum;
        _windowMs = config.QuotaWindowSizeSeconds * 1000L;
        _brokerRate = new RateSensor(_samples);
        _config = config;
        Reconfigure(config);
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private long NowMs => _time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>Connections refused for their IP's count (closed at accept).</summary>
    public long RejectedConnections => Interlocked.Read(ref _rejected);
    /// <summary>Connections over their IP's creation rate (closed after the throttle time).</summary>
    public long ThrottledConnections => Interlocked.Read(ref _throttled);
    /// <summary>Accepts waiting now for a connection slot or a rate throttle (Kafka's AcceptorBlockedPercent, as a count).</summary>
    public int WaitingAccepts => Volatile.Read(ref _waiting);

    public int Count(IPAddress address) { lock (_lock) return _counts.GetValueOrDefault(Normalize(address)); }
    public int Total { get { lock (_lock) return _total; } }
    public int ListenerCount(string listener) { lock (_lock) return _listeners.TryGetValue(listener, out var q) ? q.Count : 0; }

    /// <summary>The IP's connection_creation_rate: its own quota, else the default IP quota, else none (Kafka's connectionRateForIp).</summary>
    public int ConnectionRateForIp(IPAddress address)
    {
        lock (_lock) return _ipRates.TryGetValue(Normalize(address), out int r) ? r : _defaultIpRate;
    }

    /// <summary>A dual-mode socket reports IPv4 clients as ::ffff:a.b.c.d; Kafka (and its quotas) see a.b.c.d.</summary>
    public static IPAddress Normalize(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;

    /// <summary>Kafka's addListener: the listener's own limits from listener.name.&lt;l&gt;. keys (else the broker-wide ones).</summary>
    public void AddListener(string listener)
    {
        lock (_lock)
        {
            if (!_listeners.ContainsKey(listener))
            {
                var q = new ListenerQuota(_samples);
                Configure(q, listener, _config);
                _listeners[listener] = q;
            }
            Signal();
        }
    }

    private static void Configure(ListenerQuota q, string listener, BrokerConfig config)
    {
        q.MaxConnections = config.ListenerInt(listener, "max.connections");
        q.MaxRate = config.ListenerInt(listener, "max.connection.creation.rate");
    }

    /// <summary>
    /// The static or dynamic config in force changed (Kafka's DynamicConnectionQuota and ListenerConnectionQuota.reconfigure):
    /// new limits apply to the next accept; accepts waiting for a slot look again. A rate sensor keeps its samples.
    /// </summary>
    public void Reconfigure(BrokerConfig config)
    {
        lock (_lock)
        {
            _config = config;
            _maxConnections = config.MaxConnections;
            _maxConnectionsPerIp = config.MaxConnectionsPerIp;
            _perIpOverrides = config.MaxConnectionsPerIpOverrides;
            _brokerMaxRate = config.MaxConnectionCreationRate;
            foreach (var (name, q) in _listeners) Configure(q, name, config);
            Signal();
        }
    }

    /// <summary>
    /// The client quotas changed: the connection_creation_rate of ip entities (Kafka's ClientQuotaMetadataManager calls
    /// updateIpConnectionRateQuota for each; the default entity, ip=null, applies to addresses without their own).
    /// </summary>
    public void UpdateIpRates(IReadOnlyDictionary<ClientQuotaEntity, Dictionary<string, double>> quotas)
    {
        var rates = new Dictionary<IPAddress, int>();
        int defaultRate = NoIpRateQuota;
        foreach (var (entity, values) in quotas)
        {
            if (!entity.HasIp || !values.TryGetValue(QuotaKeys.ConnectionCreationRate, out double v)) continue;
            int rate = (int)Math.Min(v, int.MaxValue);
            if (entity.Ip is null) defaultRate = rate;
            else if (IPAddress.TryParse(entity.Ip, out var ip)) rates[Normalize(ip)] = rate;
        }
        lock (_lock)
        {
            _ipRates = rates;
            _defaultIpRate = defaultRate;
        }
    }

    /// <summary>
    /// Admits a connection accepted on <paramref name="listener"/> from <paramref name="address"/> (Kafka's inc):
    /// waits out the broker/listener rate throttle and for a free slot, then checks the IP's rate and count. Only an
    /// <see cref="Outcome.Accepted"/> connection is counted; the caller gives it back with <see cref="Release"/>.
    /// </summary>
    public async ValueTask<Admission> AdmitAsync(string listener, IPAddress address, CancellationToken cancellationToken)
    {
        address = Normalize(address);
        long start = NowMs;
        long throttleMs = RecordConnectionAndGetThrottleTimeMs(listener, start);
        if (throttleMs > 0)
        {
            Interlocked.Increment(ref _waiting);
            try { await Task.Delay(TimeSpan.FromMilliseconds(throttleMs), _time, cancellationToken).ConfigureAwait(false); }
            finally { Interlocked.Decrement(ref _waiting); }
        }
        while (true)
        {
            Task slotChanged;
            lock (_lock)
            {
                if (SlotAvailable(listener)) return AdmitLocked(listener, address);
                slotChanged = _slotChanged.Task;
            }
            Interlocked.Increment(ref _waiting);
            try { await slotChanged.WaitAsync(cancellationToken).ConfigureAwait(false); }
            finally { Interlocked.Decrement(ref _waiting); }
        }
    }

    private Admission AdmitLocked(string listener, IPAddress address)
    {
        long now = NowMs;
        // recordIpConnectionMaybeThrottle: only addresses with a quota have a sensor.
        int ipRate = _ipRates.TryGetValue(address, out int r) ? r : _defaultIpRate;
        if (ipRate != NoIpRateQuota)
        {
            var sensor = IpSensor(address, now);
            long ipThrottle = RecordAndGetThrottleTimeMs(sensor, ipRate, now);
            if (ipThrottle > 0)
            {
                // The connection is not accepted: it must not count against the IP, the listener or the broker rate.
                sensor.Rate.Record(-1, now, _samples, _windowMs);
                _brokerRate.Rate.Record(-1, now, _samples, _windowMs);
                if (_listeners.TryGetValue(listener, out var lq)) lq.Rate.Rate.Record(-1, now, _samples, _windowMs);
                Interlocked.Increment(ref _throttled);
                return new Admission(Outcome.Throttled, ipRate, ipThrottle);
            }
        }
        int count = _counts.GetValueOrDefault(address);
        int max = _perIpOverrides.TryGetValue(address, out int o) ? o : _maxConnectionsPerIp;
        if (count >= max)
        {
            Interlocked.Increment(ref _rejected);
            return new Admission(Outcome.TooManyForIp, max);
        }
        _counts[address] = count + 1;
        _total++;
        if (_listeners.TryGetValue(listener, out var q)) q.Count++;
        return new Admission(Outcome.Accepted);
    }

    /// <summary>An admitted connection closed (Kafka's dec): accepts waiting for a slot look again.</summary>
    public void Release(string listener, IPAddress address)
    {
        address = Normalize(address);
        lock (_lock)
        {
            if (_counts.TryGetValue(address, out int count))
            {
                if (count <= 1) _counts.Remove(address);
                else _counts[address] = count - 1;
            }
            if (_total > 0) _total--;
            if (_listeners.TryGetValue(listener, out var q) && q.Count > 0) q.Count--;
            Signal();
        }
    }

    private void Signal()
    {
        var s = _slotChanged;
        _slotChanged = NewSignal();
        s.TrySetResult();
    }

    /// <summary>connectionSlotAvailable (Kayak has no protected inter-broker listener: every listener counts toward max.connections).</summary>
    private bool SlotAvailable(string listener)
    {
        if (_listeners.TryGetValue(listener, out var q) && q.Count >= q.MaxConnections) return false;
        return _total < _maxConnections;
    }

    /// <summary>recordConnectionAndGetThrottleTimeMs: the longer of the broker's and the listener's rate throttles.</summary>
    private long RecordConnectionAndGetThrottleTimeMs(string listener, long nowMs)
    {
        lock (_lock)
        {
            long broker = RecordAndGetThrottleTimeMs(_brokerRate, _brokerMaxRate, nowMs);
            long listenerThrottle = _listeners.TryGetValue(listener, out var q) ? RecordAndGetThrottleTimeMs(q.Rate, q.MaxRate, nowMs) : 0;
            return Math.Max(broker, listenerThrottle);
        }
    }

    /// <summary>
    /// Sensor.record then checkQuotas (the value is recorded even when it violates the quota), and
    /// QuotaUtils.boundedThrottleTime: (observed - bound) / bound x the rate's window, at most one quota window.
    /// </summary>
    private long RecordAndGetThrottleTimeMs(RateSensor sensor, int bound, long nowMs)
    {
        sensor.LastRecordMs = nowMs;
        sensor.Rate.Record(1, nowMs, _samples, _windowMs);
        if (bound == int.MaxValue) return 0;
        double observed = sensor.Rate.Measure(nowMs, _samples, _windowMs);
        if (observed <= bound) return 0;
        double ms = (observed - bound) / bound * sensor.Rate.WindowSizeMs(nowMs, _samples, _windowMs);
        return Math.Min((long)Math.Round(ms, MidpointRounding.AwayFromZero), _windowMs);
    }

    private RateSensor IpSensor(IPAddress address, long nowMs)
    {
        if (_ipSensors.TryGetValue(address, out var s)) return s;
        if (_ipSensors.Count >= _purgeAt)
        {
            List<IPAddress>? idle = null;
            foreach (var (ip, sensor) in _ipSensors)
                if (nowMs - sensor.LastRecordMs >= IpSensorExpiryMs) (idle ??= new()).Add(ip);
            if (idle is not null) foreach (var ip in idle) _ipSensors.Remove(ip);
            _purgeAt = Math.Max(1024, _ipSensors.Count * 2);
        }
        s = new RateSensor(_samples);
        _ipSensors[address] = s;
        return s;
    }
}
