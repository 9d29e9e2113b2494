using System.Text;
using System.Text.Json;
using Kayak.Protocol;
using Kayak.Storage;

namespace Kayak.Broker.Cluster;

/// <summary>
/// One partition as the controller records it (Kafka's PartitionRecord / PartitionChangeRecord): the assigned
/// replicas in preference order, the leader, its epoch and the in-sync replicas. Immutable: a change replaces it, so
/// handlers read a consistent value without a lock.
/// </summary>
internal sealed record PartitionAssignment(int[] Replicas, int Leader, int LeaderEpoch, int[] Isr)
{
    /// <summary>Replicas an ongoing reassignment adds (KIP-455's adding_replicas); empty when none is in progress.</summary>
    public int[] Adding { get; init; } = [];

    /// <summary>Replicas an ongoing reassignment removes once the adding ones are in the ISR (removing_replicas).</summary>
    public int[] Removing { get; init; } = [];

    public bool Reassigning => Adding.Length > 0 || Removing.Length > 0;
}

/// <summary>A topic in the cluster metadata: name, topic id (the same on every broker) and its partitions.</summary>
internal sealed record TopicAssignment(string Name, Uuid TopicId, PartitionAssignment[] Partitions);

/// <summary>
/// The cluster metadata the in-process controller owns (what KRaft keeps in __cluster_metadata): the cluster id and
/// every topic's assignment. Persisted as one JSON file under the cluster root, written with <see cref="AtomicFile"/>
/// after every change, so a restarted cluster comes back with the same ids, leaders and epochs.
/// </summary>
internal sealed class ClusterMetadata
{
    public const string FileName = "kayak-cluster-metadata.json";

    public ClusterMetadata(string clusterId, IReadOnlyDictionary<string, TopicAssignment> topics)
    {
        ClusterId = clusterId;
        Topics = topics;
    }

    public string ClusterId { get; }
    public IReadOnlyDictionary<string, TopicAssignment> Topics { get; }

    public ClusterMetadata With(TopicAssignment topic)
    {
        var copy = new Dictionary<string, TopicAssignment>(Topics, StringComparer.Ordinal) { [topic.Name] = topic };
        return new ClusterMetadata(ClusterId, copy);
    }

    public ClusterMetadata Without(string name)
    {
        var copy = new Dictionary<string, TopicAssignment>(Topics, StringComparer.Ordinal);
        copy.Remove(name);
        return new ClusterMetadata(ClusterId, copy);
    }

    /// <summary>The stored metadata, or a new cluster (fresh cluster id, no topics) when the file does not exist.</summary>
    public static ClusterMetadata LoadOrCreate(string path)
    {
        if (!File.Exists(path))
            return new ClusterMetadata(Uuid.NewRandom().ToString(), new Dictionary<string, TopicAssignment>(StringComparer.Ordinal));
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            var root = doc.RootElement;
            string clusterId = root.GetProperty("clusterId").GetString() ?? throw new FormatException("clusterId is null");
            var topics = new Dictionary<string, TopicAssignment>(StringComparer.Ordinal);
            foreach (var t in root.GetProperty("topics").EnumerateArray())
            {
                string name = t.GetProperty("name").GetString() ?? throw new FormatException("topic name is null");
                if (!Uuid.TryParse(t.GetProperty("topicId").GetString(), out var id)) throw new FormatException($"bad topic id of {name}");
                var parts = new List<PartitionAssignment>();
                foreach (var p in t.GetProperty("partitions").EnumerateArray())
                    parts.Add(new PartitionAssignment(Ints(p.GetProperty("replicas")), p.GetProperty("leader").GetInt32(),
                        p.GetProperty("leaderEpoch").GetInt32(), Ints(p.GetProperty("isr")))
                    {
                        // Only written while a reassignment is in progress (metadata from before reassignments has none).
                        Adding = p.TryGetProperty("adding", out var adding) ? Ints(adding) : [],
                        Removing = p.TryGetProperty("removing", out var removing) ? Ints(removing) : [],
                    });
                topics[name] = new TopicAssignment(name, id, parts.ToArray());
            }
            return new ClusterMetadata(clusterId, topics);
        }
        catch (Exception e) when (e is JsonException or FormatException or KeyNotFoundException or InvalidOperationException)
        {
            // Kafka refuses to start on an unreadable metadata log rather than forgetting every topic.
            throw new StorageErrorException(ErrorCode.KafkaStorageError, $"The cluster metadata file {path} is unreadable: {e.Message}");
        }
    }

    private static int[] Ints(JsonElement array)
    {
        var list = new int[array.GetArrayLength()];
        int i = 0;
        foreach (var e in array.EnumerateArray()) list[i++] = e.GetInt32();
        return list;
    }

    public void Save(string path)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("clusterId", ClusterId);
            w.WriteStartArray("topics");
            foreach (var t in Topics.Values.OrderBy(t => t.Name, StringComparer.Ordinal))
            {
                w.WriteStartObject();
                w.WriteString("name", t.Name);
                w.WriteString("topicId", t.TopicId.ToString());
                w.WriteStartArray("partitions");
                foreach (var p in t.Partitions)
                {
                    w.WriteStartObject();
                    WriteInts(w, "replicas", p.Replicas);
                    w.WriteNumber("leader", p.Leader);
                    w.WriteNumber("leaderEpoch", p.LeaderEpoch);
                    WriteInts(w, "isr", p.Isr);
                    if (p.Adding.Length > 0) WriteInts(w, "adding", p.Adding);
                    if (p.Removing.Length > 0) WriteInts(w, "removing", p.Removing);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        AtomicFile.Write(path, Encoding.UTF8.GetString(ms.ToArray()));
    }

    private static void WriteInts(Utf8JsonWriter w, string name, int[] values)
    {
        w.WriteStartArray(name);
        foreach (int v in values) w.WriteNumberValue(v);
        w.WriteEndArray();
    }
}
