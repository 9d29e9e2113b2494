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
/// written atomically so a crash leaves the old or the new set.
/// </summary>
public sealed class DynamicBrokerConfig
{
    public const string FileName = "kayak-dynamic-broker-configs.json";

    private readonly Lock _lock = new();
    private readonly string? _path;
    private Dictionary<string, string> _perBroker = new(StringComparer.Ordinal);
    private Dictionary<string, string> _clusterDefault = new(StringComparer.Ordinal);
    private volatile BrokerConfig _current;

    /// <summary>Reads <see cref="FileName"/> from the first log dir when it exists.</summary>
    /// <exception cref="ConfigException">The file exists but cannot be read; the broker must not start without it.</exception>
    public DynamicBrokerConfig(BrokerConfig staticConfig, bool persist = true)
    {
        Static = staticConfig;
        _current = staticConfig;
        if (!persist) return;
        _path = Path.Combine(staticConfig.LogDirs[0], FileName);
        if (!File.Exists(_path)) return;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(_path));
            _perBroker = ReadSection(doc.RootElement, "broker");
            _clusterDefault = ReadSection(doc.RootElement, "cluster_default");
            _current = Merge(_clusterDefault, _perBroker);
        }
        catch (Exception e) when (e is JsonException or IOException or InvalidOperationException or KeyNotFoundException)
        {
            throw new ConfigException("dynamic broker configs", _path, $"the file cannot be read ({e.Message}); fix or remove it");
        }
    }

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
            Save(defaults, broker);
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

    private void Save(IReadOnlyDictionary<string, string> defaults, IReadOnlyDictionary<string, string> broker)
    {
        if (_path is null) return;
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteNumber("version", 1);
            WriteSection(w, "broker", broker);
            WriteSection(w, "cluster_default", defaults);
            w.WriteEndObject();
        }
        AtomicFile.Write(_path, Encoding.UTF8.GetString(ms.ToArray()));
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
