using System.Globalization;
using Kayak.Protocol;
using Microsoft.Extensions.Logging;

namespace Kayak.Storage;

/// <summary>Loading a log dir: every partition dir's metadata files read and checked per topic (issue 15, K1).</summary>
public sealed partial class LogManager
{
    /// <summary>One partition dir found at load, with what its two metadata files said.</summary>
    private sealed class FoundPartition(string path, string topic, int partition)
    {
        public string Path { get; } = path;
        public string Topic { get; } = topic;
        public int Partition { get; } = partition;
        public MetadataFileState Json, Meta;
        public string JsonName = "";
        public Uuid JsonId, MetaId;
        public Dictionary<string, string> Overrides = null!;
        public int Partitions;
        public string? JsonProblem, MetaProblem;
    }

    /// <summary>
    /// Loads one log dir. Every partition dir's metadata is read first and checked per topic, so that one torn
    /// <c>kayak-topic.json</c> is repaired from a sibling partition's copy (the same file is kept in every partition
    /// dir), and a topic whose metadata cannot be recovered stops the load with an error naming the file instead of
    /// the topic silently vanishing (issue 15, K1; Kafka takes such a log dir offline rather than lose data).
    /// </summary>
    private void LoadDirectory(LogDirectory ld)
    {
        bool clean = File.Exists(System.IO.Path.Combine(ld.Path, LogDirectory.CleanShutdownFile));
        var recoveryPoints = ld.ReadCheckpoint(LogDirectory.RecoveryPointFile);
        var logStarts = ld.ReadCheckpoint(LogDirectory.LogStartOffsetFile);
        var highWatermarks = _options.Replicated ? ld.ReadCheckpoint(LogDirectory.ReplicationOffsetFile) : null;
        var byTopic = new Dictionary<string, List<FoundPartition>>(StringComparer.Ordinal);
        foreach (var sub in Directory.EnumerateDirectories(ld.Path))
        {
            string dirName = System.IO.Path.GetFileName(sub);
            if (dirName.EndsWith("-delete", StringComparison.Ordinal)) { TryDeleteDirectory(sub); continue; }
            int dash = dirName.LastIndexOf('-');
            if (dash <= 0 || !int.TryParse(dirName.AsSpan(dash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int partition)) continue;
            var found = new FoundPartition(sub, dirName[..dash], partition);
            found.Json = TopicMetadataFiles.ReadTopicFile(sub, out found.JsonName, out found.JsonId, out found.Overrides, out found.Partitions, out found.JsonProblem);
            found.Meta = TopicMetadataFiles.ReadPartitionMetadata(sub, out found.MetaId, out found.MetaProblem);
            if (found.Json == MetadataFileState.Missing && found.Meta == MetadataFileState.Missing)
            {
                // Neither file: a create or delete a crash interrupted (the metadata is written before any segment),
                // or a directory that is not ours. Remove it only if it holds no record bytes.
                if (!TopicMetadataFiles.HoldsNoData(sub))
                    throw new StorageErrorException(ErrorCode.KafkaStorageError,
                        $"Partition directory {sub} holds log data but has neither {PartitionMetadataFile} nor {TopicConfigFile}; " +
                        "refusing to load it (its data is kept). Restore the files, or move the directory out of the log dir.");
                _log.LogWarning("Removing partition directory {Dir}: it has no metadata and no data (a topic create or delete interrupted by a crash)", sub);
                TryDeleteDirectory(sub);
                continue;
            }
            if (!byTopic.TryGetValue(found.Topic, out var list)) byTopic[found.Topic] = list = [];
            list.Add(found);
        }

        var loads = new List<(TopicLog Topic, int Partition, PartitionLog Log)>();
        foreach (var (topicName, found) in byTopic)
        {
            var (id, overrides) = ResolveTopicMetadata(topicName, found);
            if (!_byName.TryGetValue(topicName, out var topic))
            {
                TopicConfig cfg;
                try { cfg = new TopicConfig(overrides, _options); }
                catch (ConfigException e)
                {
                    // A config this version no longer accepts: say so instead of changing the topic's behaviour silently.
                    _log.LogWarning("Topic {Topic}: ignoring its stored config overrides ({Error}); using broker defaults", topicName, e.Message);
                    cfg = new TopicConfig(null, _options);
                }
                topic = new TopicLog(topicName, id, cfg);
                _byName[topicName] = topic;
                _byId[id] = topic;
            }
            else if (topic.TopicId != id)
                throw new StorageErrorException(ErrorCode.KafkaStorageError, $"Partitions of {topicName} disagree on the topic id");

            // The partition count the topic files record (the largest: adding partitions raises it): partitions a
            // crash kept from being created are completed, empty, by Open (issue 15, K10 across a crash).
            int recorded = 0;
            foreach (var f in found) recorded = Math.Max(recorded, f.Partitions);
            if (recorded > topic.PartitionArray.Length)
            {
                var grown = topic.PartitionArray;
                Array.Resize(ref grown, recorded);
                topic.SetPartitions(grown);
            }

            foreach (var f in found)
            {
                var parts = topic.PartitionArray;
                if (f.Partition >= parts.Length)
                {
                    Array.Resize(ref parts, f.Partition + 1);
                    topic.SetPartitions(parts);
                }
                if (parts[f.Partition] is not null) throw new StorageErrorException(ErrorCode.KafkaStorageError, $"Duplicate directory for {System.IO.Path.GetFileName(f.Path)}");
                loads.Add((topic, f.Partition, new PartitionLog(topic, f.Partition, f.Path, ld, _options, _cache)));
            }
        }
        LoadPartitions(ld, loads, clean, recoveryPoints, logStarts);
        // Kafka's replication-offset-checkpoint: a restarted replica starts from the high watermark it had, not from
        // its log start offset (clamped to what the log holds after recovery).
        if (highWatermarks is not null)
            foreach (var (topic, partition, log) in loads)
                if (highWatermarks.TryGetValue((topic.Name, partition), out long hw)) log.RestoreHighWatermark(hw);
    }

    /// <summary>
    /// Loads (after a crash: recovers) the partitions of one log dir on num.recovery.threads.per.data.dir threads, as
    /// Kafka's LogManager.loadLogs does with its per-dir thread pool: a partition's segments stay in order on one thread,
    /// different partitions share nothing but thread-safe structures (the map cache, the logger). Only then are they
    /// published to their topics and the log dir, in directory order; a failure stops the remaining loads and is
    /// rethrown after the loaded partitions are published, so that Open's failure path releases them.
    /// </summary>
    private void LoadPartitions(LogDirectory ld, List<(TopicLog Topic, int Partition, PartitionLog Log)> loads, bool clean,
        Dictionary<(string, int), long> recoveryPoints, Dictionary<(string, int), long> logStarts)
    {
        var loaded = new bool[loads.Count];
        Exception? failure = null;
        var options = new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, _options.RecoveryThreadsPerDataDir) };
        Parallel.For(0, loads.Count, options, (i, state) =>
        {
            if (Volatile.Read(ref failure) is not null) { state.Stop(); return; }
            var (topic, partition, log) = loads[i];
            var key = (topic.Name, partition);
            try
            {
                log.Load(clean, recoveryPoints.GetValueOrDefault(key, 0), logStarts.GetValueOrDefault(key, 0));
                loaded[i] = true;
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref failure, e, null);
                state.Stop();
            }
        });
        for (int i = 0; i < loads.Count; i++)
        {
            if (!loaded[i]) continue;
            var (topic, partition, log) = loads[i];
            topic.PartitionArray[partition] = log;
            ld.Add(log);
        }
        if (failure is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
    }

    /// <summary>
    /// The topic id and config overrides of one topic's partition dirs: every readable file must agree; a torn or
    /// missing file is rewritten from a readable sibling (WARN); no readable topic file at all, while one exists
    /// but is unreadable, fails the load naming it — the overrides (cleanup.policy, retention) are not guessed.
    /// </summary>
    private (Uuid Id, Dictionary<string, string> Overrides) ResolveTopicMetadata(string topicName, List<FoundPartition> found)
    {
        Uuid? id = null;
        Dictionary<string, string>? overrides = null;
        FoundPartition? corruptJson = null;
        foreach (var f in found)
        {
            if (f.Json == MetadataFileState.Ok)
            {
                if (f.JsonName != topicName)
                    throw new StorageErrorException(ErrorCode.KafkaStorageError,
                        $"{System.IO.Path.Combine(f.Path, TopicConfigFile)} names topic '{f.JsonName}', but its directory is a partition of '{topicName}'; refusing to load it");
                Agree(ref id, f.JsonId, f, TopicConfigFile);
                overrides ??= f.Overrides;
            }
            else if (f.Json == MetadataFileState.Corrupt) corruptJson ??= f;
            if (f.Meta == MetadataFileState.Ok) Agree(ref id, f.MetaId, f, PartitionMetadataFile);
        }
        if (corruptJson is not null && overrides is null)
            throw new StorageErrorException(ErrorCode.KafkaStorageError,
                $"Cannot load topic '{topicName}': {System.IO.Path.Combine(corruptJson.Path, TopicConfigFile)} is unreadable ({corruptJson.JsonProblem}) " +
                "and no other partition of the topic has a readable copy. Refusing to start so that the topic's data is not lost; " +
                "restore the file (or delete the topic's directories to drop the topic).");
        if (id is not { } topicId)
        {
            var f = found[0];
            throw new StorageErrorException(ErrorCode.KafkaStorageError,
                $"Cannot load topic '{topicName}': {System.IO.Path.Combine(f.Path, PartitionMetadataFile)} is unreadable ({f.MetaProblem}) and no file names the topic id. " +
                "Refusing to start so that the topic's data is not lost; restore the file.");
        }
        overrides ??= new Dictionary<string, string>(StringComparer.Ordinal); // plain Kafka dirs: partition.metadata only
        bool haveTopicFile = found.Exists(static f => f.Json == MetadataFileState.Ok);
        foreach (var f in found)
        {
            if (f.Meta != MetadataFileState.Ok)
            {
                if (f.Meta == MetadataFileState.Corrupt)
                    _log.LogWarning("Rewriting unreadable {File} ({Problem}) from the topic's other metadata", System.IO.Path.Combine(f.Path, PartitionMetadataFile), f.MetaProblem);
                TopicMetadataFiles.WritePartitionMetadata(f.Path, topicId);
            }
            if (haveTopicFile && f.Json != MetadataFileState.Ok)
            {
                if (f.Json == MetadataFileState.Corrupt)
                    _log.LogWarning("Rewriting unreadable {File} ({Problem}) from another partition's copy", System.IO.Path.Combine(f.Path, TopicConfigFile), f.JsonProblem);
                TopicMetadataFiles.WriteTopicFile(f.Path, topicName, topicId, overrides, PartitionCount(found));
            }
        }
        return (topicId, overrides);
    }

    private static int PartitionCount(List<FoundPartition> found)
    {
        int n = 0;
        foreach (var f in found) n = Math.Max(n, Math.Max(f.Partitions, f.Partition + 1));
        return n;
    }

    private static void Agree(ref Uuid? id, Uuid candidate, FoundPartition f, string file)
    {
        if (id is { } known && known != candidate)
            throw new StorageErrorException(ErrorCode.KafkaStorageError,
                $"Topic id mismatch in {System.IO.Path.Combine(f.Path, file)}: {candidate}, other metadata of topic '{f.Topic}' says {known}");
        id = candidate;
    }
}
