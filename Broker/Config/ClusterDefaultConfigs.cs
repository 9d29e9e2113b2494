using System.Text;
using System.Text.Json;
using Kayak.Storage;

namespace Kayak.Broker.Config;

/// <summary>
/// The cluster-wide dynamic broker defaults (AlterConfigs on the BROKER resource "", DYNAMIC_DEFAULT_BROKER_CONFIG) of
/// an in-process cluster: one set for every member, as Kafka's brokers all replay the same ConfigRecords for the
/// default broker resource (issue 14). Stored under the cluster root in <see cref="DynamicBrokerConfig.FileName"/>'s
/// format with only its cluster_default section; each member's <see cref="DynamicBrokerConfig"/> overlays it and
/// recomputes its config when it changes. A member's own DYNAMIC_BROKER_CONFIG values stay in its broker-&lt;id&gt; dir.
/// </summary>
public sealed class ClusterDefaultConfigs
{
    private readonly Lock _lock = new();
    private readonly string _path;
    private Dictionary<string, string> _values = new(StringComparer.Ordinal);
    private Action<IReadOnlyDictionary<string, string>>? _members;

    /// <exception cref="ConfigException">The file exists but cannot be read: the cluster must not start without it.</exception>
    public ClusterDefaultConfigs(string root)
    {
        _path = Path.Combine(root, DynamicBrokerConfig.FileName);
        if (File.Exists(_path)) _values = DynamicBrokerConfig.ReadFile(_path).ClusterDefault;
    }

    public IReadOnlyDictionary<string, string> Values { get { lock (_lock) return new Dictionary<string, string>(_values, StringComparer.Ordinal); } }

    /// <summary>A member's config follows the defaults from now on; returns them as they are.</summary>
    internal IReadOnlyDictionary<string, string> Join(Action<IReadOnlyDictionary<string, string>> onChange)
    {
        lock (_lock)
        {
            _members += onChange;
            return new Dictionary<string, string>(_values, StringComparer.Ordinal);
        }
    }

    internal void Leave(Action<IReadOnlyDictionary<string, string>> onChange)
    {
        lock (_lock) _members -= onChange;
    }

    /// <summary>
    /// One change, serialised with every other: <paramref name="check"/> validates the proposed set against the asking
    /// member's config (Kafka's controller validates on the broker that received the request); then stored and handed
    /// to every member under this lock, so all of them apply changes in the order they were stored.
    /// </summary>
    internal string? Alter(Func<IReadOnlyDictionary<string, string>, Dictionary<string, string>> update,
        Func<Dictionary<string, string>, string?> check, bool validateOnly)
    {
        lock (_lock)
        {
            var proposed = update(_values);
            if (check(proposed) is { } problem) return problem;
            if (validateOnly) return null;
            DynamicBrokerConfig.WriteFile(_path, new Dictionary<string, string>(StringComparer.Ordinal), proposed);
            _values = new Dictionary<string, string>(proposed, StringComparer.Ordinal);
            _members?.Invoke(_values);
        }
        return null;
    }
}
