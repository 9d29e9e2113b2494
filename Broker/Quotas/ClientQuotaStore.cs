using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Kayak.Protocol;
using Kayak.Storage;

namespace Kayak.Broker.Quotas;

/// <summary>
/// The client quotas set with AlterClientQuotas (KIP-546) and listed by DescribeClientQuotas (KIP-257): Kafka 4.0's
/// ClientQuotaControlManager (validation, one result per entity) and ClientQuotasImage.describe (filters). Kafka keeps
/// them in the metadata log; Kayak keeps them in <see cref="FileName"/> in the first log dir, rewritten atomically on
/// each change and read at start-up (a file that cannot be read refuses the start, naming it).
/// </summary>
internal sealed class ClientQuotaStore
{
    public const string FileName = "kayak-client-quotas.json";

    private readonly object _lock = new();
    private readonly Dictionary<ClientQuotaEntity, Dictionary<string, double>> _quotas = new();
    private readonly string? _path;

    /// <summary>Raised under no lock after a change was stored, with the quotas then in force.</summary>
    public event Action<IReadOnlyDictionary<ClientQuotaEntity, Dictionary<string, double>>>? Changed;

    /// <param name="logDir">The first log dir; null keeps quotas in memory only (unit tests).</param>
    /// <exception cref="Config.ConfigException">The file exists but cannot be read.</exception>
    public ClientQuotaStore(string? logDir)
    {
        if (logDir is null) return;
        _path = Path.Combine(logDir, FileName);
        if (File.Exists(_path)) Load(_path);
    }

    public IReadOnlyDictionary<ClientQuotaEntity, Dictionary<string, double>> Snapshot()
    {
        lock (_lock) return Copy();
    }

    private Dictionary<ClientQuotaEntity, Dictionary<string, double>> Copy()
    {
        var copy = new Dictionary<ClientQuotaEntity, Dictionary<string, double>>(_quotas.Count);
        foreach (var (e, v) in _quotas) copy[e] = new Dictionary<string, double>(v, StringComparer.Ordinal);
        return copy;
    }

    /// <summary>One entry of an AlterClientQuotas request: the entity as sent (types may repeat) and its ops.</summary>
    public sealed record Alteration(List<(string Type, string? Name)> Entity, List<(string Key, double Value, bool Remove)> Ops);

    /// <summary>One result per distinct entity, in request order (Kafka answers from a map keyed by entity).</summary>
    public List<(List<(string Type, string? Name)> Entity, KafkaError Error)> Alter(IReadOnlyList<Alteration> alterations, bool validateOnly)
    {
        var results = new List<(List<(string Type, string? Name)> Entity, KafkaError Error)>();
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        var changes = new List<(ClientQuotaEntity Entity, Dictionary<string, double?> Ops)>();
        lock (_lock)
        {
            foreach (var a in alterations)
            {
                string key = EntityKey(a.Entity);
                var ops = new Dictionary<string, double?>(StringComparer.Ordinal);
                KafkaError error = default;
                foreach (var op in a.Ops)
                {
                    if (!ops.TryAdd(op.Key, op.Remove ? null : op.Value))
                        error = new(ErrorCode.InvalidRequest, $"Duplicate quota key {op.Key} not updating quota for this entity {Describe(a.Entity)}");
                }
                if (index.TryGetValue(key, out int seen))
                {
                    // Kafka's result map keeps one answer per entity: the repeat's error replaces the first answer,
                    // while the first entry's change still applies (ClientQuotaControlManager.alterClientQuotas).
                    results[seen] = (results[seen].Entity, new(ErrorCode.InvalidRequest, $"Ignoring duplicate entity {Describe(a.Entity)}"));
                    continue;
                }
                index[key] = results.Count;
                if (!error.IsError)
                {
                    error = Validate(a.Entity, ops, out var entity);
                    if (!error.IsError) changes.Add((entity, ops));
                }
                results.Add((a.Entity, error));
            }
            if (validateOnly || changes.Count == 0) return results;
            foreach (var (entity, ops) in changes) Apply(entity, ops);
            Persist();
        }
        Changed?.Invoke(Snapshot());
        return results;
    }

    private static string EntityKey(List<(string Type, string? Name)> entity)
    {
        var parts = new List<string>(entity.Count);
        foreach (var (t, n) in entity) parts.Add(t + "\u0000" + (n is null ? "\u0001" : "=" + n));
        parts.Sort(StringComparer.Ordinal);
        return string.Join("\u0002", parts);
    }

    private static string Describe(List<(string Type, string? Name)> entity)
    {
        var parts = new List<string>(entity.Count);
        foreach (var (t, n) in entity) parts.Add($"{t}={n ?? "null"}");
        return "ClientQuotaEntity(entries={" + string.Join(", ", parts) + "})";
    }

    /// <summary>ClientQuotaControlManager.validateEntity, configKeysForEntityType and validateQuotaKeyValue.</summary>
    private static KafkaError Validate(List<(string Type, string? Name)> sent, Dictionary<string, double?> ops, out ClientQuotaEntity entity)
    {
        entity = default;
        if (sent.Count == 0) return new(ErrorCode.InvalidRequest, "Invalid empty client quota entity");
        bool hasUser = false, hasClient = false, hasIp = false;
        string? user = null, client = null, ip = null;
        foreach (var (type, name) in sent)
        {
            if (type == ClientQuotaEntity.UserType && hasUser || type == ClientQuotaEntity.ClientIdType && hasClient || type == ClientQuotaEntity.IpType && hasIp)
                return new(ErrorCode.InvalidRequest, $"Invalid client quota entity, duplicate entity entry {type}");
            switch (type)
            {
                case ClientQuotaEntity.UserType: hasUser = true; user = name; break;
                case ClientQuotaEntity.ClientIdType: hasClient = true; client = name; break;
                case ClientQuotaEntity.IpType: hasIp = true; ip = name; break;
                default: return new(ErrorCode.InvalidRequest, $"Unhandled client quota entity type: {type}");
            }
            if (name is { Length: 0 }) return new(ErrorCode.InvalidRequest, $"Empty {type} not supported");
        }
        if (hasIp)
        {
            if (hasUser || hasClient)
                return new(ErrorCode.InvalidRequest, "Invalid quota entity combination, IP entity shouldnot be combined with User or ClientId");
            // Kafka resolves host names too (InetAddress.getByName); Kayak takes literal addresses only, so a quota
            // never depends on DNS at request time.
            if (ip is not null && !IPAddress.TryParse(ip, out _))
                return new(ErrorCode.InvalidRequest, $"{ip} is not a valid IP or resolvable host.");
        }
        entity = new ClientQuotaEntity(hasUser, user, hasClient, client, hasIp, ip);
        foreach (var (key, value) in ops)
        {
            if (value is not { } v) continue; // removal: any key, nothing to check (as in Kafka)
            var type = QuotaKeys.TypeOf(key, hasIp);
            if (type is null) return new(ErrorCode.InvalidRequest, $"Invalid configuration key {key}");
            if (!(v > 0.0)) return new(ErrorCode.InvalidRequest, $"Quota {key} must be greater than 0");
            switch (type)
            {
                case QuotaKeys.ValueType.Int when v > int.MaxValue:
                    return new(ErrorCode.InvalidRequest, $"Proposed value for {key} is too large for an INT.");
                case QuotaKeys.ValueType.Long when v > long.MaxValue:
                    return new(ErrorCode.InvalidRequest, $"Proposed value for {key} is too large for a LONG.");
            }
            if (type != QuotaKeys.ValueType.Double && Math.Abs(v % 1.0) > 1e-6)
                return new(ErrorCode.InvalidRequest, $"{key} cannot be a fractional value.");
        }
        return default;
    }

    private void Apply(ClientQuotaEntity entity, Dictionary<string, double?> ops)
    {
        if (!_quotas.TryGetValue(entity, out var values)) values = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var (key, value) in ops)
        {
            if (value is { } v) values[key] = v;
            else values.Remove(key);
        }
        if (values.Count == 0) _quotas.Remove(entity);
        else _quotas[entity] = values;
    }

    /// <summary>A DescribeClientQuotas filter component: MatchType 0 = exact name, 1 = default, 2 = any specified.</summary>
    public readonly record struct Component(string EntityType, sbyte MatchType, string? Match);

    /// <summary>ClientQuotasImage.describe. Bad filters throw <see cref="KafkaException"/> with Kafka's code and message.</summary>
    public List<(ClientQuotaEntity Entity, Dictionary<string, double> Values)> Describe(IReadOnlyList<Component> components, bool strict)
    {
        var exact = new Dictionary<string, string?>(StringComparer.Ordinal);
        var typed = new HashSet<string>(StringComparer.Ordinal);
        foreach (var c in components)
        {
            if (c.EntityType.Length == 0) throw new KafkaException(ErrorCode.InvalidRequest, "Invalid empty entity type.");
            if (exact.ContainsKey(c.EntityType) || typed.Contains(c.EntityType))
                throw new KafkaException(ErrorCode.InvalidRequest, $"Entity type {c.EntityType} cannot appear more than once in the filter.");
            if (c.EntityType is not (ClientQuotaEntity.IpType or ClientQuotaEntity.UserType or ClientQuotaEntity.ClientIdType))
                throw new KafkaException(ErrorCode.UnsupportedVersion, $"Unsupported entity type {c.EntityType}");
            switch (c.MatchType)
            {
                case 0:
                    if (c.Match is null) throw new KafkaException(ErrorCode.InvalidRequest, "Request specified MATCH_TYPE_EXACT, but set match string to null.");
                    exact[c.EntityType] = c.Match;
                    break;
                case 1:
                    if (c.Match is not null) throw new KafkaException(ErrorCode.InvalidRequest, "Request specified MATCH_TYPE_DEFAULT, but also specified a match string.");
                    exact[c.EntityType] = null;
                    break;
                case 2:
                    if (c.Match is not null) throw new KafkaException(ErrorCode.InvalidRequest, "Request specified MATCH_TYPE_SPECIFIED, but also specified a match string.");
                    typed.Add(c.EntityType);
                    break;
                default:
                    throw new KafkaException(ErrorCode.InvalidRequest, $"Unknown match type {c.MatchType}");
            }
        }
        bool ipFilter = exact.ContainsKey(ClientQuotaEntity.IpType) || typed.Contains(ClientQuotaEntity.IpType);
        bool userOrClient = exact.ContainsKey(ClientQuotaEntity.UserType) || typed.Contains(ClientQuotaEntity.UserType)
            || exact.ContainsKey(ClientQuotaEntity.ClientIdType) || typed.Contains(ClientQuotaEntity.ClientIdType);
        if (ipFilter && userOrClient)
            throw new KafkaException(ErrorCode.InvalidRequest, "Invalid entity filter component combination. IP filter component should not be used with user or clientId filter component.");

        var result = new List<(ClientQuotaEntity, Dictionary<string, double>)>();
        lock (_lock)
        {
            foreach (var (entity, values) in _quotas)
                if (Matches(entity, exact, typed, strict))
                    result.Add((entity, new Dictionary<string, double>(values, StringComparer.Ordinal)));
        }
        return result;
    }

    private static bool Matches(ClientQuotaEntity entity, Dictionary<string, string?> exact, HashSet<string> typed, bool strict)
    {
        if (strict && entity.Count != exact.Count + typed.Count) return false;
        foreach (var (type, name) in exact)
            if (!entity.Has(type) || entity.Name(type) != name) return false;
        foreach (var type in typed)
            if (!entity.Has(type)) return false;
        return true;
    }

    // ------------------------------------------------------------------ file

    private void Persist()
    {
        if (_path is null) return;
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteNumber("version", 1);
            w.WriteStartArray("entries");
            foreach (var (entity, values) in _quotas)
            {
                w.WriteStartObject();
                w.WriteStartObject("entity");
                foreach (var (type, name) in entity.Entries())
                {
                    if (name is null) w.WriteNull(type);
                    else w.WriteString(type, name);
                }
                w.WriteEndObject();
                w.WriteStartObject("quotas");
                foreach (var (k, v) in values) w.WriteNumber(k, v);
                w.WriteEndObject();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        AtomicFile.Write(_path, Encoding.UTF8.GetString(ms.ToArray()));
    }

    private void Load(string path)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            foreach (var e in doc.RootElement.GetProperty("entries").EnumerateArray())
            {
                var sent = new List<(string, string?)>();
                foreach (var p in e.GetProperty("entity").EnumerateObject())
                    sent.Add((p.Name, p.Value.ValueKind == JsonValueKind.Null ? null : p.Value.GetString()));
                var ops = new Dictionary<string, double?>(StringComparer.Ordinal);
                foreach (var q in e.GetProperty("quotas").EnumerateObject()) ops[q.Name] = q.Value.GetDouble();
                var error = Validate(sent, ops, out var entity);
                if (error.IsError) throw new InvalidOperationException(error.Message);
                Apply(entity, ops);
            }
        }
        catch (Exception e) when (e is JsonException or IOException or InvalidOperationException or KeyNotFoundException or FormatException)
        {
            throw new Config.ConfigException("client quotas", path, $"the file cannot be read ({e.Message}); fix or remove it");
        }
    }

    internal static string Format(double v) => v.ToString("R", CultureInfo.InvariantCulture);
}
