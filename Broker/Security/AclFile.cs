using System.Text;
using System.Text.Json;
using Kayak.Storage;
using ConfigException = Kayak.Broker.Config.ConfigException;

namespace Kayak.Broker.Security;

/// <summary>
/// The ACLs on disk: kayak-acls.json in the first log dir, rewritten whole with Storage's AtomicFile (temp file,
/// fsync, rename, fsync of the dir) on every change, where Kafka keeps AccessControlEntryRecords in its metadata log.
/// Names are Kafka's enum names, so the file reads like kafka-acls.sh --list. A file that cannot be read stops the
/// start with an error naming it: silently dropping ACLs would open what they close.
/// </summary>
internal sealed class AclFile(string path)
{
    public const string FileName = "kayak-acls.json";

    public string Path { get; } = path;

    public AclBinding[] Load()
    {
        if (!File.Exists(Path)) return [];
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(Path));
            var list = new List<AclBinding>();
            foreach (var e in doc.RootElement.GetProperty("acls").EnumerateArray())
            {
                var acl = new AclBinding(
                    AclCodes.Parse<AclResourceType>(Str(e, "resourceType"), AclCodes.Name),
                    Str(e, "name"),
                    AclCodes.Parse<AclPatternType>(Str(e, "patternType"), AclCodes.Name),
                    Str(e, "principal"),
                    Str(e, "host"),
                    AclCodes.Parse<AclOperation>(Str(e, "operation"), AclCodes.Name),
                    AclCodes.Parse<AclPermissionType>(Str(e, "permissionType"), AclCodes.Name));
                var error = StandardAuthorizer.Validate(acl);
                if (error.IsError) throw new FormatException($"ACL {acl}: {error.Message}");
                list.Add(acl);
            }
            return list.ToArray();
        }
        catch (Exception e) when (e is JsonException or IOException or InvalidOperationException or KeyNotFoundException or FormatException)
        {
            throw new ConfigException("ACLs", Path, $"the file cannot be read ({e.Message}); fix or remove it");
        }
    }

    private static string Str(JsonElement e, string name) =>
        e.GetProperty(name).GetString() ?? throw new InvalidOperationException($"{name} is null");

    public void Store(IReadOnlyList<AclBinding> acls)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteNumber("version", 1);
            w.WriteStartArray("acls");
            foreach (var a in acls)
            {
                w.WriteStartObject();
                w.WriteString("resourceType", AclCodes.Name(a.ResourceType));
                w.WriteString("name", a.Name);
                w.WriteString("patternType", AclCodes.Name(a.PatternType));
                w.WriteString("principal", a.Principal);
                w.WriteString("host", a.Host);
                w.WriteString("operation", AclCodes.Name(a.Operation));
                w.WriteString("permissionType", AclCodes.Name(a.Permission));
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(Path))!);
        AtomicFile.Write(Path, Encoding.UTF8.GetString(ms.ToArray()));
    }
}
