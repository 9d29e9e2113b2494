using System.Collections.Concurrent;
using System.Globalization;
using Kayak.Protocol;
using Microsoft.Extensions.Logging;

namespace Kayak.Storage;

/// <summary>
/// All partition logs of this broker, laid out like Kafka's: <c>&lt;logdir&gt;/&lt;topic&gt;-&lt;partition&gt;/</c>
/// with segment files, Kafka's <c>partition.metadata</c> (topic id) and <c>kayak-topic.json</c> (topic name,
/// id and config overrides, written atomically), so topics survive restarts without a metadata log.
/// Thread-safe; topic-level mutations are serialized by one lock.
/// </summary>
public sealed partial class LogManager : IDisposable
{
    public const string PartitionMetadataFile = TopicMetadataFiles.PartitionMetadataFile;
    public const string TopicConfigFile = TopicMetadataFiles.TopicConfigFile;
    /// <summary>Kafka's limit (leaves room for "-partition" and the ".uuid-delete" suffix in 255-byte dir names).</summary>
    public const int MaxTopicNameLength = 249;

    // Replaced whole by UpdateDefaults when a dynamic broker config changes a log.* default (Kafka's DynamicLogConfig).
    private volatile LogOptions _options;
    private readonly ILogger _log;
    private readonly SegmentMapCache _cache;
    private readonly object _lock = new();
    private readonly ConcurrentDictionary<string, TopicLog> _byName = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<Uuid, TopicLog> _byId = new();
    private readonly List<LogDirectory> _dirs = [];
    private LogDirLock? _dirLock;
    private bool _opened;
    private bool _disposed;

    public LogManager(LogOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.LogDirs.Count == 0) throw new ArgumentException("LogOptions.LogDirs is empty", nameof(options));
        _options = options;
        _log = options.Logger;
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
            AcquireLocks();
            _opened = true;
            try
            {
                OpenDirectories();
            }
            catch
            {
                // A refused load writes nothing more: no checkpoints listing only the partitions loaded so far and no
                // clean-shutdown marker (which would make the next start skip recovery of everything not loaded).
                _disposed = true;
                foreach (var topic in _byName.Values)
                    foreach (var p in topic.PartitionArray)
                        p?.Abandon();
                ReleaseLocks();
                throw;
            }
        }
    }

    private void OpenDirectories()
    {
        foreach (var path in _options.LogDirs)
        {
            Directory.CreateDirectory(path);
            var ld = new LogDirectory(path);
            _dirs.Add(ld);
            LoadDirectory(ld);
        }
        // In a replicated cluster a partition without a directory is one this broker is not a replica of (its cluster
        // controller creates the ones it should host, ClusterController.Attach); on a single broker it was lost.
        foreach (var topic in _byName.Values)
        {
            if (_options.Replicated) break;
            // A partition whose directory vanished (lost log dir) comes back empty rather than leaving a hole.
            var parts = topic.PartitionArray;
            for (int i = 0; i < parts.Length; i++)
            {
                if (parts[i] is not null) continue;
                _log.LogWarning("Creating missing partition {Partition} of topic {Topic} (of {Count}): its creation was interrupted, or its directory is gone", i, topic.Name, parts.Length);
                parts[i] = CreatePartition(topic, i, parts.Length);
            }
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
                if (_options.Replicated) ld.WriteHighWatermarks();
            }
            File.Delete(System.IO.Path.Combine(ld.Path, LogDirectory.CleanShutdownFile));
        }
        // Segments recovered after a crash are fsynced only now, one queue per log dir (PartitionLog.FlushRecoveredSegments).
        foreach (var ld in _dirs)
        {
            var parts = ld.Partitions;
            _ = Task.Run(() => { foreach (var p in parts) p.FlushRecoveredSegments(); });
        }
    }

    /// <summary>
    /// Takes every log dir's <c>.lock</c> (see <see cref="LogDirLock"/>); <see cref="Open"/> does it first, a broker
    /// calls it earlier to hold the dirs before it writes anything else there (meta.properties). Throws
    /// <see cref="StorageErrorException"/> naming the dir another broker holds.
    /// </summary>
    public void AcquireLocks()
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _dirLock ??= LogDirLock.Acquire(_options.LogDirs);
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
    private static void Invalid(string message) => throw new StorageErrorException(ErrorCode.InvalidTopicException, message);

    /// <summary>
    /// Creates a topic with empty partitions spread over the log dirs.
    /// Throws <see cref="StorageErrorException"/> (InvalidTopic, TopicAlreadyExists, InvalidPartitions) or
    /// <see cref="ConfigException"/> for a bad config. <paramref name="hosted"/> (a cluster member, issue 14): only the
    /// partitions i with hosted[i] get a log here; null creates them all.
    /// </summary>
    public TopicLog CreateTopic(string name, int partitions, IReadOnlyDictionary<string, string> configs, Uuid? topicId = null, bool[]? hosted = null)
    {
        ValidateTopicName(name);
        if (partitions < 1) throw new StorageErrorException(ErrorCode.InvalidPartitions, "Number of partitions must be larger than 0.");
        var cfg = new TopicConfig(configs, _options);
        lock (_lock)
        {
            EnsureOpen();
            if (_byName.ContainsKey(name)) throw new StorageErrorException(ErrorCode.TopicAlreadyExists, $"Topic '{name}' already exists.");
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
            CreatePartitions(topic, parts, 0, partitions, hosted);
            _byName[name] = topic;
            _byId[id] = topic;
            TryWriteCheckpoints();
            return topic;
        }
    }

    /// <summary>
    /// Creates partitions [from, to) or none: on an I/O failure (no space, too many open files) the ones made so
    /// far are removed again and the error is KAFKA_STORAGE_ERROR, so a topic is never left half-created to come
    /// back after a restart (issue 15, K10).
    /// </summary>
    private void CreatePartitions(TopicLog topic, PartitionLog[] parts, int from, int to, bool[]? hosted)
    {
        int i = from;
        try
        {
            for (; i < to; i++)
                if (hosted is null || (i < hosted.Length && hosted[i])) parts[i] = CreatePartition(topic, i, to);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            for (int j = from; j < i; j++)
            {
                var p = parts[j];
                if (p is null) continue; // not hosted here
                p.CloseForDelete();
                p.LogDirectory.Remove(p);
                parts[j] = null!;
                TryDeleteDirectory(p.Dir);
            }
            _log.LogError(e, "Error while creating partitions {From}..{To} of topic {Topic}; none was created: {Message}", from, to - 1, topic.Name, e.Message);
            throw new StorageErrorException(ErrorCode.KafkaStorageError,
                $"Error while creating partition {i} of topic {topic.Name}: {e.Message}", e);
        }
    }

    /// <summary>Checkpoints after a topic change; their failure only widens the next recovery, so it is logged, not thrown.</summary>
    private void TryWriteCheckpoints()
    {
        try { WriteCheckpoints(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _log.LogError(e, "Error writing the checkpoint files: {Message}", e.Message);
        }
    }

    /// <summary>Test hook: called with the partition between its two metadata files; throwing there simulates a kill.</summary>
    internal Action<int>? CreateStep;

    private PartitionLog CreatePartition(TopicLog topic, int partition, int total)
    {
        // Like Kafka: the log dir currently holding the fewest partitions.
        var ld = _dirs[0];
        foreach (var d in _dirs) if (d.PartitionCount < ld.PartitionCount) ld = d;
        string dir = System.IO.Path.Combine(ld.Path, topic.Name + "-" + partition.ToString(CultureInfo.InvariantCulture));
        if (Directory.Exists(dir))
        {
            // Never reuse a directory that holds data (issue 15, K1: a re-create once wiped a topic whose metadata
            // had been lost); an empty leftover of an interrupted create or delete is removed.
            if (!TopicMetadataFiles.HoldsNoData(dir))
                throw new StorageErrorException(ErrorCode.KafkaStorageError,
                    $"Cannot create partition {partition} of '{topic.Name}': directory {dir} already exists and holds log data");
            Directory.Delete(dir, recursive: true);
        }
        // Metadata before segments: a crash in between leaves a dir that names its topic, or one with no data. The
        // topic file (name, id, overrides, partition count) before partition.metadata: a kill between the two leaves a
        // dir the load completes from the topic file — the whole topic with its configs — where the other order left
        // one with partition.metadata only, which loads as a plain Kafka dir: one partition, broker defaults (found by
        // the fault campaign's kill -9 during creates).
        var log = new PartitionLog(topic, partition, dir, ld, _options, _cache);
        try
        {
            Directory.CreateDirectory(dir);
            TopicMetadataFiles.WriteTopicFile(dir, topic.Name, topic.TopicId, topic.Config.Overrides, total);
            CreateStep?.Invoke(partition);
            TopicMetadataFiles.WritePartitionMetadata(dir, topic.TopicId);
            log.InitializeEmpty();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            log.CloseForDelete();
            TryDeleteDirectory(dir); // ours: it did not exist or held no data
            throw;
        }
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
                throw new StorageErrorException(ErrorCode.UnknownTopicOrPartition, $"Topic '{name}' does not exist.");
            _byId.TryRemove(topic.TopicId, out _);
            foreach (var p in topic.PartitionArray)
            {
                if (p is null) continue; // not a replica here
                TryDeleteDirectory(Retire(p));
            }
            WriteCheckpoints();
        }
    }

    /// <summary>
    /// A partition log leaves this broker (topic deleted, replica moved away): it stops accepting appends, leaves its log
    /// dir and its directory is renamed <c>&lt;topic&gt;-&lt;p&gt;.&lt;uuid&gt;-delete</c>. Returns the directory to
    /// remove: the renamed one, or the original when the rename failed. Under <see cref="_lock"/>.
    /// </summary>
    private string Retire(PartitionLog p)
    {
        p.CloseForDelete();
        p.LogDirectory.Remove(p);
        string target = p.Dir + "." + Guid.NewGuid().ToString("N") + "-delete";
        try
        {
            Directory.Move(p.Dir, target);
            return target;
        }
        catch (IOException e)
        {
            _log.LogWarning(e, "Could not rename {Dir} for deletion; deleting it in place: {Message}", p.Dir, e.Message);
            return p.Dir;
        }
    }

    /// <summary>
    /// CreatePartitions: grows the topic to <paramref name="newTotal"/> partitions (must be larger than now); with
    /// <paramref name="hosted"/> (indexed by partition) only the new partitions this broker replicates get a log.
    /// </summary>
    public void AddPartitions(string name, int newTotal, bool[]? hosted = null)
    {
        lock (_lock)
        {
            EnsureOpen();
            if (!_byName.TryGetValue(name, out var topic))
                throw new StorageErrorException(ErrorCode.UnknownTopicOrPartition, $"Topic '{name}' does not exist.");
            var old = topic.PartitionArray;
            if (newTotal <= old.Length)
                throw new StorageErrorException(ErrorCode.InvalidPartitions,
                    $"Topic currently has {old.Length} partitions, which is higher than the requested {newTotal}.");
            var parts = new PartitionLog[newTotal];
            Array.Copy(old, parts, old.Length);
            CreatePartitions(topic, parts, old.Length, newTotal, hosted);
            topic.SetPartitions(parts);
            TryWriteCheckpoints();
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
                throw new StorageErrorException(ErrorCode.UnknownTopicOrPartition, $"Topic '{name}' does not exist.");
            var cfg = topic.Config.With(newOverrides);
            foreach (var p in topic.PartitionArray)
                if (p is not null) TopicMetadataFiles.WriteTopicFile(p.Dir, name, topic.TopicId, cfg.Overrides, topic.PartitionArray.Length);
            topic.SetConfig(cfg);
        }
    }

    /// <summary>
    /// New broker-level defaults (a dynamic log.* broker config changed, as Kafka's DynamicLogConfig.reconfigure):
    /// every topic's config is re-resolved against them, its overrides kept, so e.g. a new log.retention.ms applies
    /// at the next retention run to topics without retention.ms. Log dirs, clock and logger must stay the same.
    /// </summary>
    public void UpdateDefaults(LogOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (!options.LogDirs.SequenceEqual(_options.LogDirs))
            throw new ArgumentException("log.dirs cannot change while the broker runs", nameof(options));
        lock (_lock)
        {
            _options = options;
            foreach (var topic in _byName.Values) topic.SetConfig(new TopicConfig(topic.Config.Overrides, options));
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
                if (p is not null) deleted += p.ApplyRetention(now);
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
                    if (p is not null) removed += p.Compact(now);
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
                if (p is not null && p.FlushIfDue(now)) flushed++;
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
            foreach (var ld in _dirs)
            {
                ld.WriteRecoveryPoints();
                if (_options.Replicated) ld.WriteHighWatermarks(); // replica.high.watermark.checkpoint.interval.ms's job in Kafka
            }
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
        foreach (var topic in _byName.Values)
            foreach (var p in topic.PartitionArray)
                if (p is not null) all.Add(p);
        return all;
    }

    /// <summary>Clean shutdown: flush, trim preallocated files, write checkpoints and the clean shutdown marker.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
            if (!_opened) { ReleaseLocks(); return; }
            try
            {
                // fsyncs dominate shutdown with many partitions; issuing them in parallel lets the disk batch them.
                int failed = 0;
                Parallel.ForEach(AllPartitions(), ParallelIo, p => { if (!p.Close()) Interlocked.Increment(ref failed); });
                // A full disk or failing device must not abort the shutdown (issue 15, K6): every file is still
                // closed, and without the clean-shutdown marker the next start recovers what was not made durable.
                try { WriteCheckpoints(); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    _log.LogError(e, "Error writing the checkpoint files of {Dirs}: {Message}", string.Join(",", _options.LogDirs), e.Message);
                    failed++;
                }
                if (failed > 0)
                {
                    _log.LogError("Shut down with {Failed} I/O failures; not marking the log dirs as cleanly shut down, the next start recovers them", failed);
                    return;
                }
                foreach (var ld in _dirs)
                {
                    try { AtomicFile.Write(System.IO.Path.Combine(ld.Path, LogDirectory.CleanShutdownFile), ""); }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                    {
                        _log.LogError(e, "Error writing {File} in {Dir}; the next start recovers it: {Message}", LogDirectory.CleanShutdownFile, ld.Path, e.Message);
                    }
                }
            }
            finally
            {
                ReleaseLocks();
            }
        }
    }

    private void ReleaseLocks()
    {
        _dirLock?.Dispose();
        _dirLock = null;
    }

    /// <summary>
    /// A crash, for fault injection (the broker's CrashAsync, tests): unmaps everything without flushing, trimming,
    /// checkpoints or clean-shutdown marker, and releases the log dirs' locks as a dead process's are released, so the
    /// same dirs can be opened again and recovered.
    /// </summary>
    public void SimulateCrash()
    {
        lock (_lock)
        {
            _disposed = true;
            foreach (var topic in _byName.Values)
                foreach (var p in topic.PartitionArray)
                    p?.Abandon();
            ReleaseLocks(); // a dead process's flock is gone too
        }
    }

    private void WriteCheckpoints()
    {
        foreach (var ld in _dirs)
        {
            ld.WriteRecoveryPoints();
            ld.WriteLogStartOffsets();
            if (_options.Replicated) ld.WriteHighWatermarks();
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
}
