using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;

namespace Kayak.Broker.Network.Sasl;

/// <summary>SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), as Kafka's ScramMechanism: minimum 4096 iterations.</summary>
internal sealed record ScramMechanism(string Name, HashAlgorithmName Hash, int KeyLength)
{
    public const int MinIterations = 4096;
    public static readonly ScramMechanism Sha256 = new("SCRAM-SHA-256", HashAlgorithmName.SHA256, 32);
    public static readonly ScramMechanism Sha512 = new("SCRAM-SHA-512", HashAlgorithmName.SHA512, 64);

    public static ScramMechanism? Find(string name) => name switch
    {
        "SCRAM-SHA-256" => Sha256,
        "SCRAM-SHA-512" => Sha512,
        _ => null,
    };

    // Kafka's ScramFormatter: Hi() is PBKDF2 with the HMAC; the password is its UTF-8 bytes (no SASLprep, as Kafka).
    public byte[] SaltedPassword(string password, byte[] salt, int iterations) =>
        Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), salt, iterations, Hash, KeyLength);

    public byte[] Hmac(byte[] key, byte[] data) => Hash == HashAlgorithmName.SHA256 ? HMACSHA256.HashData(key, data) : HMACSHA512.HashData(key, data);

    public byte[] H(byte[] data) => Hash == HashAlgorithmName.SHA256 ? SHA256.HashData(data) : SHA512.HashData(data);

    public byte[] ClientKey(byte[] saltedPassword) => Hmac(saltedPassword, "Client Key"u8.ToArray());

    public byte[] ServerKey(byte[] saltedPassword) => Hmac(saltedPassword, "Server Key"u8.ToArray());

    /// <summary>Kafka's ScramCredential from a password: what is stored instead of it.</summary>
    public ScramCredential Credential(string password, byte[] salt, int iterations)
    {
        var salted = SaltedPassword(password, salt, iterations);
        return new ScramCredential(salt, H(ClientKey(salted)), ServerKey(salted), iterations);
    }
}

/// <summary>Kafka's ScramCredential: salt, StoredKey = H(ClientKey), ServerKey, iterations. Never the password.</summary>
internal sealed record ScramCredential(byte[] Salt, byte[] StoredKey, byte[] ServerKey, int Iterations);

/// <summary>
/// SCRAM credentials by mechanism and user, seeded at start-up from <see cref="KafkaBrokerOptions.ScramCredentials"/>
/// (Kayak's stand-in for the credentials kafka-storage format --add-scram writes to the metadata log).
/// </summary>
internal sealed class ScramCredentialStore
{
    private readonly ConcurrentDictionary<(string Mechanism, string User), ScramCredential> _credentials = new();

    public ScramCredential? Find(string mechanism, string user) => _credentials.GetValueOrDefault((mechanism, user));

    public void Add(string mechanism, string user, ScramCredential credential) => _credentials[(mechanism, user)] = credential;

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
        if (fields.TryGetValue("iterations", out var it) && (!int.TryParse(it, out iterations) || iterations < ScramMechanism.MinIterations || iterations > 16384))
            throw new ArgumentException($"--add-scram: iterations must be between {ScramMechanism.MinIterations} and 16384");
        byte[] salt;
        try { salt = fields.TryGetValue("salt", out var s) ? Convert.FromBase64String(s) : RandomNumberGenerator.GetBytes(32); }
        catch (FormatException) { throw new ArgumentException("--add-scram: salt must be base64"); }
        foreach (var k in fields.Keys)
            if (k is not ("name" or "password" or "iterations" or "salt")) throw new ArgumentException($"--add-scram: unknown field {k}");
        return (mechanism.Name, user, mechanism.Credential(password, salt, iterations));
    }
}
