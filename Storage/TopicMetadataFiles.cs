using System.Text;
using System.Text.Json;
using Kayak.Protocol;

namespace Kayak.Storage;

/// <summary>What a partition dir's metadata file said: absent, readable, or present but unreadable (torn, garbage).</summary>
internal enum MetadataFileState { Missing, Ok, Corrupt }

/// <summary>
/// The two small metadata files of a partition dir: Kafka's <c>partition.metadata</c> (topic id) and Kayak's
/// <c>kayak-topic.json</c> (name, id, config overrides). Both are written atomically (temp, fsync, rename, fsync of
/// the dir). Reading tells "missing" from "unreadable": a torn file must never be taken for an absent one, because a
/// topic whose metadata is lost would otherwise vanish on restart and the next create of its name would reuse (and
/// wipe) its data (issue 15, K1).
/// </summary>
internal static class TopicMetadataFiles
{
    public const string PartitionMetadataFile = "partition.metadata";
    public const string TopicConfigFile = "kayak-topic.json";

    /// <summary>Kafka's partition.metadata: "version: 0" and "topic_id: &lt;base64 uuid&gt;".</summary>
    public static void WritePartitionMetadata(string dir, Uuid id) =>
        AtomicFile.Write(Path.Combine(dir, PartitionMetadataFile), $"version: 0\ntopic_id: {id}\n");

    public static MetadataFileState ReadPartitionMetadata(string dir, out Uuid id, out string? problem)
    {
        id = default;
        problem = null;
        string path = Path.Combine(dir, PartitionMetadataFile);
        if (!File.Exists(path)) return MetadataFileState.Missing;
        try
        {
            bool version = false;
            foreach (var line in File.ReadAllLines(path))
            {
                if (line.Trim() == "version: 0") version = true;
                else if (line.StartsWith("topic_id:", StringComparison.Ordinal) && Uuid.TryParse(line[9..].Trim(), out id) && version)
                    return MetadataFileState.Ok;
            }
            problem = "no \"version: 0\" and \"topic_id\" lines";
        }
        catch (IOException e) { problem = e.Message; }
        catch (UnauthorizedAccessException e) { problem = e.Message; }
        return MetadataFileState.Corrupt;
    }

    /// <summary>
    /// Writes kayak-topic.json. <paramref name="partitions"/> is the topic's partition count as of this write: a crash
    /// in the middle of a create (or of adding partitions) leaves some partition dirs missing, and the load completes
    /// them from this count instead of bringing the topic back with fewer partitions.
    /// </summary>
    public static void WriteTopicFile(string dir, string name, Uuid id, IReadOnlyDictionary<string, string> overrides, int partitions)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteNumber("version", 0);
            w.WriteString("topic", name);
            w.WriteString("topic_id", id.ToString());
            w.WriteNumber("partitions", partitions);
            w.WriteStartObject("configs");
            foreach (var (k, v) in overrides) w.WriteString(k, v);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        AtomicFile.Write(Path.Combine(dir, TopicConfigFile), Encoding.UTF8.GetString(ms.ToArray()));
    }

    public static MetadataFileState ReadTopicFile(string dir, out string name, out Uuid id, out Dictionary<string, string> overrides, out int partitions, out string? problem)
    {
        name = ""; id = default; problem = null; partitions = 0;
        overrides = new Dictionary<string, string>(StringComparer.Ordinal);
        string path = Path.Combine(dir, TopicConfigFile);
        if (!File.Exists(path)) return MetadataFileState.Missing;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object
                || !root.TryGetProperty("topic", out var topic) || topic.ValueKind != JsonValueKind.String
                || !root.TryGetProperty("topic_id", out var tid) || tid.ValueKind != JsonValueKind.String
                || !Uuid.TryParse(tid.GetString(), out id)
                || !root.TryGetProperty("configs", out var configs) || configs.ValueKind != JsonValueKind.Object)
            {
                problem = "missing or mistyped \"topic\", \"topic_id\" or \"configs\"";
                return MetadataFileState.Corrupt;
            }
            name = topic.GetString()!;
            // Absent in files written before the count was kept: 0, the dirs found decide.
            if (root.TryGetProperty("partitions", out var count) && (count.ValueKind != JsonValueKind.Number || !count.TryGetInt32(out partitions) || partitions < 0))
            {
                problem = "\"partitions\" is not a non-negative number";
                return MetadataFileState.Corrupt;
            }
            foreach (var prop in configs.EnumerateObject())
            {
                if (prop.Value.ValueKind != JsonValueKind.String) { problem = $"config {prop.Name} is not a string"; return MetadataFileState.Corrupt; }
                overrides[prop.Name] = prop.Value.GetString()!;
            }
            return MetadataFileState.Ok;
        }
        catch (JsonException e) { problem = e.Message; }
        catch (IOException e) { problem = e.Message; }
        catch (UnauthorizedAccessException e) { problem = e.Message; }
        return MetadataFileState.Corrupt;
    }

    /// <summary>
    /// True when a partition dir holds no record data: no segment file with a non-zero byte. Such a dir without
    /// metadata is the leftover of a create or delete interrupted by a crash and may be removed; any other dir
    /// without readable metadata is kept and refused.
    /// </summary>
    public static bool HoldsNoData(string dir)
    {
        Span<byte> buf = stackalloc byte[4096];
        foreach (var f in Directory.EnumerateFiles(dir, "*.log"))
        {
            using var fs = new FileStream(f, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1);
            int n;
            while ((n = fs.Read(buf)) > 0)
                if (buf[..n].ContainsAnyExcept((byte)0)) return false;
        }
        return true;
    }
}
