using System.Text;
using System.Text.Json;
using Kayak.Storage;

namespace Kayak.Broker.Config;

/// <summary>
/// The broker's dynamic configs (KIP-226, Kafka's DynamicBrokerConfig): the ones set for this broker (resource name =
/// node id, DYNAMIC_BROKER_CONFIG) and the cluster-wide defaults (resource name "", DYNAMIC_DEFAULT_BROKER_CONFIG), over
/// the static server.properties. The config in force, <see cref="Current"/>, is server.properties overlaid with the
/// cluster defaults, then with this broker's configs, exactly as Kafka's DynamicBrokerConfig.updateCurrentConfig merges
/// them (so log.retention.ms set statically still beats a dynamic log.retention.hours, Kafka's precedence).
/// Kafka keeps these in the metadata log; a single node keeps them in <see cref="FileName"/> in the first log dir,
/// written atomically so a crash leaves the old or the new set. A member of an in-process cluster keeps only its own
/// values there and follows the cluster's defaults, one <see cref="ClusterDefaultConfigs"/> under the cluster root.
/// </summary>
public sealed class DynamicBrokerConfig
{
    public const string FileName = "kayak-dynamic-broker-configs.json";

    private readonly Lock _lock = new();
    private readonly string? _path;
    private Dictionary<string, string> _perBroker = new(StringComparer.Ordinal);
    private Dictionary<string, string> _clusterDefault = new(StringComparer.Ordinal);
    private volatile BrokerConfig _current;
    private readonly ClusterDefaultConfigs? _shared;
    private bool _sharedChanged;

    /// <summary>Reads <see cref="FileName"/> from the first log dir when it exists.</summary>
    /// <param name="shared">A cluster member's cluster-wide defaults (the controller's); null keeps them in this broker's file.</param>
    /// <exception cref="ConfigException">The file exists but cannot be read; the broker must not start without it.</exception>
    public DynamicBrokerConfig(BrokerConfig staticConfig, bool persist = true, ClusterDefaultConfigs? shared = null)
    {
        Static = staticConfig;
        _current = staticConfig;
        if (persist)
        {
            _path = Path.Combine(staticConfig.LogDirs[0], FileName);
            if (File.Exists(_path)) (_perBroker, _clusterDefault) = ReadFile(_path);
        }
        if (shared is not null)
        {
            _shared = shared;
            var defaults = shared.Join(OnSharedChange);
            lock (_lock)
            {
                // A change published between Join and here already set the newer defaults.
                if (!_sharedChanged) _clusterDefault = new Dictionary<string, string>(defaults, StringComparer.Ordinal);
            }
        }
        lock (_lock) _current = Merge(_clusterDefault, _perBroker);
    }

    /// <summary>The two sections of <see cref="FileName"/>.</summary>
    /// <exception cref="ConfigException">The file cannot be read.</exception>
    internal static (Dictionary<string, string> PerBroker, Dictionary<string, string> ClusterDefault) ReadFile(string path)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            return (ReadSection(doc.RootElement, "broker"), ReadSection(doc.RootElement, "cluster_default"));
        }
        catch (Exception e) when (e is JsonException or IOException or InvalidOperationException or KeyNotFoundException)
        {
            throw new ConfigException("dynamic broker configs", path, $"the file cannot be read ({e.Message}); fix or remove it");
        }
    }

    /// <summary>The cluster's defaults changed (through any member): this broker's config in force follows.</summary>
    private void OnSharedChange(IReadOnlyDictionary<string, string> defaults)
    {
        lock (_lock)
        {
            BrokerConfig next;
            try { next = Merge(defaults, _perBroker); }
            catch (ConfigException) { return; } // validated on the asking member; a value this member's static config rejects is not applied here
            _clusterDefault = new Dictionary<string, string>(defaults, StringComparer.Ordinal);
            _sharedChanged = true;
            _current = next;
            Changed?.Invoke(next);
        }
    }

    /// <summary>A stopped cluster member no longer follows the shared defaults.</summary>
    public void Detach() => _shared?.Leave(OnSharedChange);

    /// <summary>server.properties and --override values (STATIC_BROKER_CONFIG).</summary>
    public BrokerConfig Static { get; }

    /// <summary>The config in force: static, then cluster defaults, then this broker's dynamic values.</summary>
    public BrokerConfig Current => _current;

    /// <summary>Raised after a change is stored, in order of changes; the argument is the new <see cref="Current"/>.</summary>
    public event Action<BrokerConfig>? Changed;

    public IReadOnlyDictionary<string, string> PerBroker { get { lock (_lock) return new Dictionary<string, string>(_perBroker, StringComparer.Ordinal); } }
    public IReadOnlyDictionary<string, string> ClusterDefault { get { lock (_lock) return new Dictionary<string, string>(_clusterDefault, StringComparer.Ordinal); } }

    /// <summary>
    /// Replaces one resource's dynamic set with what <paramref name="update"/> makes of the current one (AlterConfigs
    /// passes the request's set, IncrementalAlterConfigs applies its operations), validated as Kafka does, then stored
    /// and applied unless <paramref name="validateOnly"/>. Returns Kafka's INVALID_REQUEST message, or null on success.
    /// <paramref name="update"/> may throw for request-level problems; the caller maps those.
    /// </summary>
    public string? Alter(bool perBroker, Func<IReadOnlyDictionary<string, string>, Dictionary<string, string>> update, bool validateOnly)
    {
        // Shared defaults: the cluster's lock first, then this member's (the order its notifications take).
        if (!perBroker && _shared is not null)
            return _shared.Alter(update, proposed =>
            {
                lock (_lock)
                {
                    if (DynamicBrokerConfigs.Validate(proposed, perBroker: false) is { } problem) return problem;
                    try { Merge(proposed, _perBroker); }
                    catch (ConfigException e) { return e.Message; }
                    return null;
                }
            }, validateOnly);
        lock (_lock)
        {
            BrokerConfig next;
            var proposed = update(perBroker ? _perBroker : _clusterDefault);
            var problem = DynamicBrokerConfigs.Validate(proposed, perBroker);
            if (problem is not null) return problem;
            var broker = perBroker ? proposed : _perBroker;
            var defaults = perBroker ? _clusterDefault : proposed;
            try { next = Merge(defaults, broker); }
            catch (ConfigException e) { return e.Message; }
            if (validateOnly) return null;
            if (_path is not null) WriteFile(_path, broker, _shared is null ? defaults : new Dictionary<string, string>());
            _perBroker = new Dictionary<string, string>(broker, StringComparer.Ordinal);
            _clusterDefault = new Dictionary<string, string>(defaults, StringComparer.Ordinal);
            _current = next;
            // Under the lock, so two concurrent changes reach Storage in the order they were stored.
            Changed?.Invoke(next);
        }
        return null;
    }

    private BrokerConfig Merge(IReadOnlyDictionary<string, string> defaults, IReadOnlyDictionary<string, string> broker)
    {
        var merged = new Dictionary<string, string>(Static.Values, StringComparer.Ordinal);
        foreach (var (k, v) in defaults) merged[k] = v;
        foreach (var (k, v) in broker) merged[k] = v;
        return new BrokerConfig(merged);
    }

    internal static void WriteFile(string path, IReadOnlyDictionary<string, string> broker, IReadOnlyDictionary<string, string> defaults)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteNumber("version", 1);
            WriteSection(w, "broker", broker);
            WriteSection(w, "cluster_default", defaults);
            w.WriteEndObject();
        }
        AtomicFile.Write(path, Encoding.UTF8.GetString(ms.ToArray()));
    }

    private static void WriteSection(Utf8JsonWriter w, string name, IReadOnlyDictionary<string, string> values)
    {
        w.WriteStartObject(name);
        foreach (var (k, v) in values.OrderBy(p => p.Key, StringComparer.Ordinal)) w.WriteString(k, v);
        w.WriteEndObject();
    }

    private static Dictionary<string, string> ReadSection(JsonElement root, string name)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        if (!root.TryGetProperty(name, out var section)) return result;
        foreach (var p in section.EnumerateObject()) result[p.Name] = p.Value.GetString() ?? throw new InvalidOperationException($"{name}.{p.Name} is null");
        return result;
    }
}
