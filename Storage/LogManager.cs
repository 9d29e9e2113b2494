using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Kayak.Protocol;

namespace Kayak.Storage;

/// <summary>
/// All partition logs of this broker, laid out like Kafka's: <c>&lt;logdir&gt;/&lt;topic&gt;-&lt;partition&gt;/</c>
/// with segment files, Kafka's <c>partition.metadata</c> (topic id) and <c>kayak-topic.json</c> (topic name,
/// id and config overrides, written atomically), so topics survive restarts without a metadata log.
/// Thread-safe; topic-level mutations are serialized by one lock.
/// </summary>
public sealed class LogManager : IDisposable
{
    public const string PartitionMetadataFile = "partition.metadata";
    public const string TopicConfigFile = "kayak-topic.json";
    /// <summary>Kafka's limit (leaves room for "-partition" and the ".uuid-delete" suffix in 255-byte dir names).</summary>
    public const int MaxTopicNameLength = 249;

    private readonly LogOptions _options;
    private readonly SegmentMapCache _cache;
    private readonly object _lock = new();
    private readonly ConcurrentDictionary<string, TopicLog> _byName = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<Uuid, TopicLog> _byId = new();
    private readonly List<LogDirectory> _dirs = [];
    private bool _opened;
    private bool _disposed;

    public LogManager(LogOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.LogDirs.Count == 0) throw new ArgumentException("LogOptions.LogDirs is empty", nameof(options));
        _options = options;
        _cache = new SegmentMapCache(options.MaxMappedInactiveSegments);
    }

    public LogOptions Options => _options;
    public IReadOnlyCollection<TopicLog> Topics => (IReadOnlyCollection<TopicLog>)_byName.Values;

    /// <summary>Number of inactive segments currently memory-mapped (diagnostics / tests).</summary>
    internal int MappedInactiveSegments => _cache.Count;

    // ---------------------------------------------------------------- open / recovery

    /// <summary>
    /// Loads every topic found in the log dirs. Without a clean shutdown marker, partitions are recovered
    /// from their recovery-point checkpoint (see <see cref="PartitionLog"/>); the marker is deleted once
    /// loading finished, so a crash from here on triggers recovery next time. Leftover "-delete" dirs are removed.
    /// </summary>
    public void Open()
    {
        lock (_lock)
        {
            if (_opened) throw new InvalidOperationException("LogManager already opened");
            _opened = true;
            foreach (var path in _options.LogDirs)
            {
                Directory.CreateDirectory(path);
                var ld = new LogDirectory(path);
                _dirs.Add(ld);
                LoadDirectory(ld);
            }
            foreach (var topic in _byName.Values)
            {
                // A partition whose directory vanished (lost log dir) comes back empty rather than leaving a hole.
                var parts = topic.PartitionArray;
                for (int i = 0; i < parts.Length; i++)
                    parts[i] ??= CreatePartition(topic, i);
            }
            foreach (var ld in _dirs)
            {
                // A log dir without partitions and without checkpoint files (a fresh broker, the test-fixture case)
                // has nothing to checkpoint: skipping the two fsync'd writes takes milliseconds off the first start
                // (issue 6). The files appear with the first topic (CreateTopic writes them).
                if (ld.PartitionCount > 0
                    || File.Exists(System.IO.Path.Combine(ld.Path, LogDirectory.RecoveryPointFile))
                    || File.Exists(System.IO.Path.Combine(ld.Path, LogDirectory.LogStartOffsetFile)))
                {
                    ld.WriteRecoveryPoints();
                    ld.WriteLogStartOffsets();
                }
                File.Delete(System.IO.Path.Combine(ld.Path, LogDirectory.CleanShutdownFile));
            }
        }
    }

    private void LoadDirectory(LogDirectory ld)
    {
        bool clean = File.Exists(System.IO.Path.Combine(ld.Path, LogDirectory.CleanShutdownFile));
        var recoveryPoints = ld.ReadCheckpoint(LogDirectory.RecoveryPointFile);
        var logStarts = ld.ReadCheckpoint(LogDirectory.LogStartOffsetFile);
        foreach (var sub in Directory.EnumerateDirectories(ld.Path))
        {
            string dirName = System.IO.Path.GetFileName(sub);
            if (dirName.EndsWith("-delete", StringComparison.Ordinal)) { TryDeleteDirectory(sub); continue; }
            int dash = dirName.LastIndexOf('-');
            if (dash <= 0 || !int.TryParse(dirName.AsSpan(dash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int partition)) continue;
            string topicName = dirName[..dash];
            if (!TryReadTopicFile(sub, out var fileTopic, out var id, out var overrides) || fileTopic != topicName) continue;
            if (ReadPartitionMetadata(sub) is { } metaId && metaId != id)
                throw new StorageErrorException(StorageError.KafkaStorageError, $"Topic id mismatch in {sub}");

            if (!_byName.TryGetValue(topicName, out var topic))
            {
                TopicConfig cfg;
                try { cfg = new TopicConfig(overrides, _options); }
                catch (ConfigException) { cfg = new TopicConfig(null, _options); } // a config this version no longer accepts
                topic = new TopicLog(topicName, id, cfg);
                _byName[topicName] = topic;
                _byId[id] = topic;
            }
            else if (topic.TopicId != id)
                throw new StorageErrorException(StorageError.KafkaStorageError, $"Partitions of {topicName} disagree on the topic id");

            var parts = topic.PartitionArray;
            if (partition >= parts.Length)
            {
                Array.Resize(ref parts, partition + 1);
                topic.SetPartitions(parts);
            }
            if (parts[partition] is not null) throw new StorageErrorException(StorageError.KafkaStorageError, $"Duplicate directory for {dirName}");
            var log = new PartitionLog(topic, partition, sub, ld, _options, _cache);
            var key = (topicName, partition);
            log.Load(clean, recoveryPoints.GetValueOrDefault(key, 0), logStarts.GetValueOrDefault(key, 0));
            parts[partition] = log;
            ld.Add(log);
        }
    }

    // ---------------------------------------------------------------- topic admin

    /// <summary>Kafka's Topic.validate: non-empty, not "." or "..", at most 249 chars of [a-zA-Z0-9._-].</summary>
    public static void ValidateTopicName(string name)
    {
        if (string.IsNullOrEmpty(name)) Invalid("Topic name is illegal, it can't be empty");
        if (name is "." or "..") Invalid("Topic name cannot be \".\" or \"..\"");
        if (name.Length > MaxTopicNameLength) Invalid($"Topic name is illegal, it can't be longer than {MaxTopicNameLength} characters, topic name: {name}");
        foreach (char c in name)
            if (!(c is >= 'a' and <= 'z' or >= 'A' and <= 'Z' or >= '0' and <= '9' or '.' or '_' or '-'))
                Invalid($"Topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'");
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private static void Invalid(string message) => throw new StorageErrorException(StorageError.InvalidTopic, message);

    /// <summary>
    /// Creates a topic with empty partitions spread over the log dirs.
    /// Throws <see cref="StorageErrorException"/> (InvalidTopic, TopicAlreadyExists, InvalidPartitions) or
    /// <see cref="ConfigException"/> for a bad config.
    /// </summary>
    public TopicLog CreateTopic(string name, int partitions, IReadOnlyDictionary<string, string> configs, Uuid? topicId = null)
    {
        ValidateTopicName(name);
        if (partitions < 1) throw new StorageErrorException(StorageError.InvalidPartitions, "Number of partitions must be larger than 0.");
        var cfg = new TopicConfig(configs, _options);
        lock (_lock)
        {
            EnsureOpen();
            if (_byName.ContainsKey(name)) throw new StorageErrorException(StorageError.TopicAlreadyExists, $"Topic '{name}' already exists.");
            // Kafka rejects names that differ only by '.' vs '_' (they collide in metric names).
            string folded = name.Replace('.', '_');
            foreach (var existing in _byName.Keys)
                if (existing.Replace('.', '_') == folded)
                    Invalid($"Topic '{name}' collides with existing topic: {existing}");
            Uuid id = topicId ?? Uuid.NewRandom();
            if (id.IsZero || id == Uuid.One || _byId.ContainsKey(id)) Invalid($"Topic id {id} is reserved or in use");
            var topic = new TopicLog(name, id, cfg);
            var parts = new PartitionLog[partitions];
            topic.SetPartitions(parts);
            for (int i = 0; i < partitions; i++) parts[i] = CreatePartition(topic, i);
            _byName[name] = topic;
            _byId[id] = topic;
            WriteCheckpoints();
            return topic;
        }
    }

    private PartitionLog CreatePartition(TopicLog topic, int partition)
    {
        // Like Kafka: the log dir currently holding the fewest partitions.
        var ld = _dirs[0];
        foreach (var d in _dirs) if (d.PartitionCount < ld.PartitionCount) ld = d;
        string dir = System.IO.Path.Combine(ld.Path, topic.Name + "-" + partition.ToString(CultureInfo.InvariantCulture));
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); // stale leftover of a half-deleted topic
        var log = new PartitionLog(topic, partition, dir, ld, _options, _cache);
        log.InitializeEmpty();
        WritePartitionMetadata(dir, topic.TopicId);
        WriteTopicFile(dir, topic.Name, topic.TopicId, topic.Config.Overrides);
        ld.Add(log);
        return log;
    }

    public bool TryGetTopic(string name, out TopicLog topic) => _byName.TryGetValue(name, out topic!);

    public TopicLog? GetTopic(Uuid id) => _byId.TryGetValue(id, out var t) ? t : null;

    /// <summary>
    /// Deletes a topic: partitions stop accepting appends, their directories are renamed to
    /// <c>&lt;topic&gt;-&lt;p&gt;.&lt;uuid&gt;-delete</c> (Kafka's convention) and then removed. Fetches in flight keep
    /// their mapped bytes until they dispose their <see cref="FetchSlice"/>.
    /// </summary>
    public void DeleteTopic(string name)
    {
        lock (_lock)
        {
            EnsureOpen();
            if (!_byName.TryRemove(name, out var topic))
                throw new StorageErrorException(StorageError.UnknownTopicOrPartition, $"Topic '{name}' does not exist.");
            _byId.TryRemove(topic.TopicId, out _);
            foreach (var p in topic.PartitionArray)
            {
                p.CloseForDelete();
                p.LogDirectory.Remove(p);
                string target = p.Dir + "." + Guid.NewGuid().ToString("N") + "-delete";
                try
                {
                    Directory.Move(p.Dir, target);
                    TryDeleteDirectory(target);
                }
                catch (IOException)
                {
                    TryDeleteDirectory(p.Dir);
                }
            }
            WriteCheckpoints();
        }
    }

    /// <summary>CreatePartitions: grows the topic to <paramref name="newTotal"/> partitions (must be larger than now).</summary>
    public void AddPartitions(string name, int newTotal)
    {
        lock (_lock)
        {
            EnsureOpen();
            if (!_byName.TryGetValue(name, out var topic))
                throw new StorageErrorException(StorageError.UnknownTopicOrPartition, $"Topic '{name}' does not exist.");
            var old = topic.PartitionArray;
            if (newTotal <= old.Length)
                throw new StorageErrorException(StorageError.InvalidPartitions,
                    $"Topic currently has {old.Length} partitions, which is higher than the requested {newTotal}.");
            var parts = new PartitionLog[newTotal];
            Array.Copy(old, parts, old.Length);
            for (int i = old.Length; i < newTotal; i++) parts[i] = CreatePartition(topic, i);
            topic.SetPartitions(parts);
            WriteCheckpoints();
        }
    }

    /// <summary>
    /// Replaces the topic's config overrides (AlterConfigs semantics: keys absent from
    /// <paramref name="newOverrides"/> revert to defaults). Validates first; persists to every partition dir.
    /// </summary>
    public void AlterTopicConfig(string name, IReadOnlyDictionary<string, string> newOverrides)
    {
        lock (_lock)
        {
            EnsureOpen();
            if (!_byName.TryGetValue(name, out var topic))
                throw new StorageErrorException(StorageError.UnknownTopicOrPartition, $"Topic '{name}' does not exist.");
            var cfg = topic.Config.With(newOverrides);
            foreach (var p in topic.PartitionArray) WriteTopicFile(p.Dir, name, topic.TopicId, cfg.Overrides);
            topic.SetConfig(cfg);
        }
    }

    // ---------------------------------------------------------------- maintenance

    /// <summary>
    /// Deletes expired segments by time and size on every partition (call every
    /// <see cref="LogOptions.RetentionCheckIntervalMs"/>). Returns the number of segments deleted.
    /// </summary>
    public int RunRetention()
    {
        long now = _options.Time.GetUtcNow().ToUnixTimeMilliseconds();
        int deleted = 0;
        foreach (var topic in _byName.Values)
            foreach (var p in topic.PartitionArray)
                deleted += p.ApplyRetention(now);
        // Rolls since the last run advanced recovery points: persist them (cheap, one small file per dir).
        CheckpointRecoveryPoints();
        return deleted;
    }

    /// <summary>
    /// One log-cleaner pass over every cleanup.policy=compact topic (see PartitionLog.Compaction.cs for the
    /// exact semantics). Call from a background timer; returns the number of records removed.
    /// </summary>
    public long RunCompaction()
    {
        long now = _options.Time.GetUtcNow().ToUnixTimeMilliseconds();
        long removed = 0;
        foreach (var topic in _byName.Values)
            if (topic.Config.Compact)
                foreach (var p in topic.PartitionArray)
                    removed += p.Compact(now);
        return removed;
    }

    /// <summary>
    /// Kafka's log flusher (log.flush.scheduler.interval.ms): fsyncs partitions whose flush.ms elapsed with
    /// unflushed messages, then checkpoints recovery points. A no-op with the default (infinite) flush.ms.
    /// </summary>
    public int RunScheduledFlush()
    {
        long now = _options.Time.GetUtcNow().ToUnixTimeMilliseconds();
        int flushed = 0;
        foreach (var topic in _byName.Values)
            foreach (var p in topic.PartitionArray)
                if (p.FlushIfDue(now)) flushed++;
        if (flushed > 0) CheckpointRecoveryPoints();
        return flushed;
    }

    /// <summary>
    /// Writes recovery-point-offset-checkpoint for every log dir (Kafka does this every
    /// log.flush.offset.checkpoint.interval.ms = 60 s); limits how much a crash has to rescan.
    /// </summary>
    public void CheckpointRecoveryPoints()
    {
        lock (_lock)
            foreach (var ld in _dirs) ld.WriteRecoveryPoints();
    }

    /// <summary>fsyncs every partition and writes the recovery point checkpoints.</summary>
    public void FlushAll()
    {
        Parallel.ForEach(AllPartitions(), ParallelIo, static p => p.Flush());
        lock (_lock) WriteCheckpoints();
    }

    private static readonly ParallelOptions ParallelIo = new() { MaxDegreeOfParallelism = 8 };

    private List<PartitionLog> AllPartitions()
    {
        var all = new List<PartitionLog>();
        foreach (var topic in _byName.Values) all.AddRange(topic.PartitionArray);
        return all;
    }

    /// <summary>Clean shutdown: flush, trim preallocated files, write checkpoints and the clean shutdown marker.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
            if (!_opened) return;
            // fsyncs dominate shutdown with many partitions; issuing them in parallel lets the disk batch them.
            Parallel.ForEach(AllPartitions(), ParallelIo, static p => p.Close());
            WriteCheckpoints();
            foreach (var ld in _dirs)
                AtomicFile.Write(System.IO.Path.Combine(ld.Path, LogDirectory.CleanShutdownFile), "");
        }
    }

    /// <summary>Test hook simulating a crash: unmaps everything without flushing, trimming, checkpoints or marker.</summary>
    internal void SimulateCrash()
    {
        lock (_lock)
        {
            _disposed = true;
            foreach (var topic in _byName.Values)
                foreach (var p in topic.PartitionArray)
                    p.Abandon();
        }
    }

    private void WriteCheckpoints()
    {
        foreach (var ld in _dirs)
        {
            ld.WriteRecoveryPoints();
            ld.WriteLogStartOffsets();
        }
    }

    private void EnsureOpen()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!_opened) throw new InvalidOperationException("Call LogManager.Open() first");
    }

    private static void TryDeleteDirectory(string dir)
    {
        try { Directory.Delete(dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    // ---------------------------------------------------------------- metadata files

    /// <summary>Kafka's partition.metadata: "version: 0" and "topic_id: &lt;base64 uuid&gt;".</summary>
    private static void WritePartitionMetadata(string dir, Uuid id) =>
        AtomicFile.Write(System.IO.Path.Combine(dir, PartitionMetadataFile), $"version: 0\ntopic_id: {id}\n");

    private static Uuid? ReadPartitionMetadata(string dir)
    {
        string path = System.IO.Path.Combine(dir, PartitionMetadataFile);
        if (!File.Exists(path)) return null;
        foreach (var line in File.ReadAllLines(path))
            if (line.StartsWith("topic_id:", StringComparison.Ordinal) && Uuid.TryParse(line[9..].Trim(), out var id))
                return id;
        return null;
    }

    private static void WriteTopicFile(string dir, string name, Uuid id, IReadOnlyDictionary<string, string> overrides)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteNumber("version", 0);
            w.WriteString("topic", name);
            w.WriteString("topic_id", id.ToString());
            w.WriteStartObject("configs");
            foreach (var (k, v) in overrides) w.WriteString(k, v);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        AtomicFile.Write(System.IO.Path.Combine(dir, TopicConfigFile), Encoding.UTF8.GetString(ms.ToArray()));
    }

    private static bool TryReadTopicFile(string dir, out string name, out Uuid id, out Dictionary<string, string> overrides)
    {
        name = ""; id = default; overrides = new Dictionary<string, string>(StringComparer.Ordinal);
        string path = System.IO.Path.Combine(dir, TopicConfigFile);
        if (!File.Exists(path))
        {
            // A plain Kafka partition dir: take the id from partition.metadata and default configs.
            if (ReadPartitionMetadata(dir) is not { } metaId) return false;
            string dirName = System.IO.Path.GetFileName(dir);
            name = dirName[..dirName.LastIndexOf('-')];
            id = metaId;
            return true;
        }
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            var root = doc.RootElement;
            name = root.GetProperty("topic").GetString() ?? "";
            if (!Uuid.TryParse(root.GetProperty("topic_id").GetString(), out id)) return false;
            foreach (var prop in root.GetProperty("configs").EnumerateObject())
                overrides[prop.Name] = prop.Value.GetString() ?? "";
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }
}
