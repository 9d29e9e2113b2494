using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Kayak.Broker.Network.Sasl;

/// <summary>SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), as Kafka's ScramMechanism: minimum 4096 iterations.</summary>
internal sealed record ScramMechanism(string Name, HashAlgorithmName Hash, int KeyLength)
{
    public const int MinIterations = 4096;
    /// <summary>Kafka's ScramControlManager.MAX_ITERATIONS for credentials set through the API or --add-scram.</summary>
    public const int MaxIterations = 16384;
    public static readonly ScramMechanism Sha256 = new("SCRAM-SHA-256", HashAlgorithmName.SHA256, 32);
    public static readonly ScramMechanism Sha512 = new("SCRAM-SHA-512", HashAlgorithmName.SHA512, 64);

    public static ScramMechanism? Find(string name) => name switch
    {
        "SCRAM-SHA-256" => Sha256,
        "SCRAM-SHA-512" => Sha512,
        _ => null,
    };

    /// <summary>The int8 of Kafka's clients.admin.ScramMechanism in the KIP-554 messages (0 is UNKNOWN).</summary>
    public static ScramMechanism? FromType(sbyte type) => type switch { 1 => Sha256, 2 => Sha512, _ => null };

    public sbyte Type => this == Sha256 ? (sbyte)1 : (sbyte)2;

    // Kafka's ScramFormatter: Hi() is PBKDF2 with the HMAC; the password is its UTF-8 bytes (no SASLprep, as Kafka).
    public byte[] SaltedPassword(string password, byte[] salt, int iterations) =>
        Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), salt, iterations, Hash, KeyLength);

    public byte[] Hmac(byte[] key, byte[] data) => Hash == HashAlgorithmName.SHA256 ? HMACSHA256.HashData(key, data) : HMACSHA512.HashData(key, data);

    public byte[] H(byte[] data) => Hash == HashAlgorithmName.SHA256 ? SHA256.HashData(data) : SHA512.HashData(data);

    public byte[] ClientKey(byte[] saltedPassword) => Hmac(saltedPassword, "Client Key"u8.ToArray());

    public byte[] ServerKey(byte[] saltedPassword) => Hmac(saltedPassword, "Server Key"u8.ToArray());

    /// <summary>Kafka's ScramCredential from a password: what is stored instead of it.</summary>
    public ScramCredential Credential(string password, byte[] salt, int iterations) =>
        FromSaltedPassword(SaltedPassword(password, salt, iterations), salt, iterations);

    /// <summary>As ScramControlManager.finishUpsertion: the client sends Hi(password) (KIP-554), the broker keeps the keys.</summary>
    public ScramCredential FromSaltedPassword(byte[] salted, byte[] salt, int iterations) =>
        new(salt, H(ClientKey(salted)), ServerKey(salted), iterations);
}

/// <summary>Kafka's ScramCredential: salt, StoredKey = H(ClientKey), ServerKey, iterations. Never the password.</summary>
internal sealed record ScramCredential(byte[] Salt, byte[] StoredKey, byte[] ServerKey, int Iterations);

/// <summary>
/// SCRAM credentials by mechanism and user. Kafka keeps them in the metadata log (UserScramCredentialRecord, written by
/// kafka-storage format --add-scram and by AlterUserScramCredentials, KIP-554); a single node keeps them in
/// <see cref="FileName"/> in the first log dir, written with Storage's AtomicFile so a crash leaves the old or the new
/// set. Only Kafka's ScramCredential (salt, StoredKey, ServerKey, iterations) is stored, never a password.
/// Reads (each new authentication) take no lock; changes are serialised, stored, then applied.
/// </summary>
internal sealed class ScramCredentialStore
{
    public const string FileName = "kayak-scram-credentials.json";

    private readonly ConcurrentDictionary<(string Mechanism, string User), ScramCredential> _credentials = new();
    private readonly Lock _write = new();
    private string? _path;

    public ScramCredential? Find(string mechanism, string user) => _credentials.GetValueOrDefault((mechanism, user));

    /// <summary>An in-memory credential (tests, or before <see cref="Open"/>); <see cref="Open"/> persists seeds.</summary>
    public void Add(string mechanism, string user, ScramCredential credential) => _credentials[(mechanism, user)] = credential;

    /// <summary>Every (mechanism, user) with its iterations, for DescribeUserScramCredentials.</summary>
    public List<(string Mechanism, string User, int Iterations)> Snapshot()
    {
        var list = new List<(string, string, int)>();
        foreach (var (key, credential) in _credentials) list.Add((key.Mechanism, key.User, credential.Iterations));
        return list;
    }

    /// <summary>--add-scram specs (<see cref="ParseAddScram"/>) in memory; <see cref="Open"/> persists them or reports them ignored.</summary>
    public void AddSeeds(IEnumerable<string> specs)
    {
        foreach (var spec in specs)
        {
            var (mechanism, user, credential) = ParseAddScram(spec);
            Add(mechanism, user, credential);
        }
    }

    /// <summary>The warning for each seed <see cref="Open"/> did not apply, naming the directory whose file won.</summary>
    public static void LogIgnoredSeeds(Microsoft.Extensions.Logging.ILogger log, IEnumerable<string> ignored, string dir)
    {
        foreach (var seed in ignored)
            Microsoft.Extensions.Logging.LoggerExtensions.LogWarning(log,
                "--add-scram {Credential} ignored: {File} exists in {Dir} and is authoritative (Kafka applies --add-scram at format time only); use AlterUserScramCredentials",
                seed, FileName, dir);
    }

    /// <summary>
    /// Loads <see cref="FileName"/> from <paramref name="logDir"/>. As kafka-storage format --add-scram, the seeds
    /// (already in memory through <see cref="Add"/>) are written once, when the directory has no credentials file yet;
    /// afterwards the file is authoritative, so a credential changed or deleted through the API stays so across
    /// restarts that pass the same --add-scram. Returns the seeds ignored because the file did not have them.
    /// </summary>
    /// <exception cref="Config.ConfigException">The file exists but cannot be read: the broker must not start without it.</exception>
    public List<string> Open(string logDir)
    {
        var ignored = new List<string>();
        lock (_write)
        {
            _path = Path.Combine(logDir, FileName);
            if (!File.Exists(_path))
            {
                if (!_credentials.IsEmpty) Save(_credentials);
                return ignored;
            }
            Dictionary<(string, string), ScramCredential> stored;
            try { stored = Read(File.ReadAllBytes(_path)); }
            catch (Exception e) when (e is JsonException or IOException or FormatException or InvalidOperationException or KeyNotFoundException or UnauthorizedAccessException)
            {
                throw new Config.ConfigException("SCRAM credentials file", _path, $"the file cannot be read ({e.Message}); fix or remove it");
            }
            foreach (var key in _credentials.Keys)
                if (!stored.ContainsKey(key)) ignored.Add($"{key.Mechanism} {key.User}");
            _credentials.Clear();
            foreach (var (key, credential) in stored) _credentials[key] = credential;
        }
        return ignored;
    }

    /// <summary>
    /// Applies one AlterUserScramCredentials: stored first (AtomicFile), then visible to new authentications; sessions
    /// already authenticated are not touched, as in Kafka. Callers validated the changes.
    /// </summary>
    public void Apply(IReadOnlyList<(string Mechanism, string User)> deletions, IReadOnlyList<(string Mechanism, string User, ScramCredential Credential)> upserts)
    {
        lock (_write)
        {
            var next = new Dictionary<(string, string), ScramCredential>(_credentials);
            foreach (var d in deletions) next.Remove(d);
            foreach (var u in upserts) next[(u.Mechanism, u.User)] = u.Credential;
            if (_path is not null) Save(next);
            foreach (var d in deletions) _credentials.TryRemove(d, out _);
            foreach (var u in upserts) _credentials[(u.Mechanism, u.User)] = u.Credential;
        }
    }

    private void Save(IEnumerable<KeyValuePair<(string Mechanism, string User), ScramCredential>> credentials)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteNumber("version", 1);
            w.WriteStartArray("credentials");
            foreach (var (key, c) in credentials.OrderBy(kv => kv.Key.User, StringComparer.Ordinal).ThenBy(kv => kv.Key.Mechanism, StringComparer.Ordinal))
            {
                w.WriteStartObject();
                w.WriteString("mechanism", key.Mechanism);
                w.WriteString("name", key.User);
                w.WriteString("salt", Convert.ToBase64String(c.Salt));
                w.WriteString("stored_key", Convert.ToBase64String(c.StoredKey));
                w.WriteString("server_key", Convert.ToBase64String(c.ServerKey));
                w.WriteNumber("iterations", c.Iterations);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        Kayak.Storage.AtomicFile.Write(_path!, Encoding.UTF8.GetString(ms.ToArray()));
    }

    private static Dictionary<(string, string), ScramCredential> Read(byte[] bytes)
    {
        using var doc = JsonDocument.Parse(bytes);
        var root = doc.RootElement;
        if (root.GetProperty("version").GetInt32() != 1) throw new FormatException("unknown version");
        var result = new Dictionary<(string, string), ScramCredential>();
        foreach (var e in root.GetProperty("credentials").EnumerateArray())
        {
            string mechanism = e.GetProperty("mechanism").GetString()!;
            if (ScramMechanism.Find(mechanism) is null) throw new FormatException($"unknown mechanism {mechanism}");
            string user = e.GetProperty("name").GetString()!;
            result[(mechanism, user)] = new ScramCredential(
                Convert.FromBase64String(e.GetProperty("salt").GetString()!),
                Convert.FromBase64String(e.GetProperty("stored_key").GetString()!),
                Convert.FromBase64String(e.GetProperty("server_key").GetString()!),
                e.GetProperty("iterations").GetInt32());
        }
        return result;
    }

    /// <summary>
    /// Reads kafka-storage's --add-scram syntax: MECHANISM=[name=alice,password=alice-secret] with optional
    /// iterations=N and salt=base64 (random 32-byte salt otherwise; Kafka's kafka-storage uses its default 4096
    /// iterations). Throws ArgumentException with a message that never contains the password.
    /// </summary>
    public static (string Mechanism, string User, ScramCredential Credential) ParseAddScram(string spec)
    {
        int eq = spec.IndexOf('=');
        if (eq <= 0 || !spec.EndsWith(']') || eq + 1 >= spec.Length || spec[eq + 1] != '[')
            throw new ArgumentException("--add-scram expects MECHANISM=[name=USER,password=PASSWORD(,iterations=N)(,salt=BASE64)]");
        string mechanismName = spec[..eq].Trim();
        var mechanism = ScramMechanism.Find(mechanismName)
            ?? throw new ArgumentException($"--add-scram: unknown SCRAM mechanism {mechanismName} (SCRAM-SHA-256 or SCRAM-SHA-512)");
        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var part in spec[(eq + 2)..^1].Split(','))
        {
            int e = part.IndexOf('=');
            if (e <= 0) throw new ArgumentException("--add-scram: each field must be key=value");
            string v = part[(e + 1)..].Trim();
            if (v.Length >= 2 && v[0] == '"' && v[^1] == '"') v = v[1..^1];
            fields[part[..e].Trim()] = v;
        }
        if (!fields.TryGetValue("name", out var user) || user.Length == 0) throw new ArgumentException("--add-scram: name= is required");
        if (!fields.TryGetValue("password", out var password)) throw new ArgumentException($"--add-scram: password= is required for {user}");
        int iterations = ScramMechanism.MinIterations;
        if (fields.TryGetValue("iterations", out var it) && (!int.TryParse(it, out iterations) || iterations < ScramMechanism.MinIterations || iterations > ScramMechanism.MaxIterations))
            throw new ArgumentException($"--add-scram: iterations must be between {ScramMechanism.MinIterations} and {ScramMechanism.MaxIterations}");
        byte[] salt;
        try { salt = fields.TryGetValue("salt", out var s) ? Convert.FromBase64String(s) : RandomNumberGenerator.GetBytes(32); }
        catch (FormatException) { throw new ArgumentException("--add-scram: salt must be base64"); }
        foreach (var k in fields.Keys)
            if (k is not ("name" or "password" or "iterations" or "salt")) throw new ArgumentException($"--add-scram: unknown field {k}");
        return (mechanism.Name, user, mechanism.Credential(password, salt, iterations));
    }
}
