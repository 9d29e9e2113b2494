using System.Globalization;
using System.Text;

namespace Kayak.Storage;

/// <summary>
/// One entry of log.dirs: owns the per-directory checkpoint files Kafka keeps there
/// (<c>recovery-point-offset-checkpoint</c>, <c>log-start-offset-checkpoint</c>) and the clean shutdown
/// marker (<c>.kafka_cleanshutdown</c>).
/// </summary>
internal sealed class LogDirectory
{
    public const string RecoveryPointFile = "recovery-point-offset-checkpoint";
    public const string LogStartOffsetFile = "log-start-offset-checkpoint";
    /// <summary>Kafka's high watermark checkpoint (ReplicaManager.checkpointHighWatermarks), written by cluster members.</summary>
    public const string ReplicationOffsetFile = "replication-offset-checkpoint";
    public const string CleanShutdownFile = ".kafka_cleanshutdown";

    private readonly object _checkpointLock = new();
    private readonly List<PartitionLog> _partitions = [];

    public string Path { get; }

    public LogDirectory(string path) { Path = path; }

    public int PartitionCount { get { lock (_partitions) return _partitions.Count; } }

    public void Add(PartitionLog p) { lock (_partitions) _partitions.Add(p); }
    public void Remove(PartitionLog p) { lock (_partitions) _partitions.Remove(p); }

    private PartitionLog[] Snapshot() { lock (_partitions) return [.. _partitions]; }

    public PartitionLog[] Partitions => Snapshot();

    public void WriteRecoveryPoints() => WriteCheckpoint(RecoveryPointFile, static p => p.RecoveryPoint);
    public void WriteLogStartOffsets() => WriteCheckpoint(LogStartOffsetFile, static p => p.LogStartOffset);
    public void WriteHighWatermarks() => WriteCheckpoint(ReplicationOffsetFile, static p => p.HighWatermark);

    // Kafka's OffsetCheckpointFile format: version line "0", entry count, then "topic partition offset" lines.
    private void WriteCheckpoint(string file, Func<PartitionLog, long> value)
    {
        lock (_checkpointLock)
        {
            var parts = Snapshot();
            var sb = new StringBuilder();
            sb.Append("0\n").Append(parts.Length.ToString(CultureInfo.InvariantCulture)).Append('\n');
            foreach (var p in parts)
                sb.Append(p.TopicName).Append(' ').Append(p.Partition.ToString(CultureInfo.InvariantCulture)).Append(' ')
                  .Append(value(p).ToString(CultureInfo.InvariantCulture)).Append('\n');
            AtomicFile.Write(System.IO.Path.Combine(Path, file), sb.ToString());
        }
    }

    public Dictionary<(string Topic, int Partition), long> ReadCheckpoint(string file)
    {
        var result = new Dictionary<(string, int), long>();
        string path = System.IO.Path.Combine(Path, file);
        if (!File.Exists(path)) return result;
        var lines = File.ReadAllLines(path);
        if (lines.Length < 2 || lines[0].Trim() != "0") return result; // unknown version: treat as missing (full recovery)
        for (int i = 2; i < lines.Length; i++)
        {
            var parts = lines[i].Split(' ');
            if (parts.Length == 3 && int.TryParse(parts[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out int p)
                && long.TryParse(parts[2], NumberStyles.Integer, CultureInfo.InvariantCulture, out long o))
                result[(parts[0], p)] = o;
        }
        return result;
    }
}

/// <summary>
/// Crash-safe small-file writes: temp file, fsync, rename over the target, fsync of the directory so the rename
/// itself survives a power loss (Kafka's checkpoint pattern, Utils.atomicMoveWithFallback + flushDir). Public for the
/// broker's dynamic config file.
/// </summary>
public static class AtomicFile
{
    public static void Write(string path, string content)
    {
        string tmp = path + ".tmp";
        using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            var bytes = Encoding.UTF8.GetBytes(content);
            fs.Write(bytes);
            fs.Flush(flushToDisk: true);
        }
        File.Move(tmp, path, overwrite: true);
        Posix.FsyncDirectory(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!);
    }
}

/// <summary>The one POSIX call .NET has no API for: fsync of a directory (its entries), a no-op on Windows.</summary>
internal static partial class Posix
{
    private const int O_RDONLY = 0;

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "open", StringMarshalling = System.Runtime.InteropServices.StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Open(string path, int flags);

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);

    /// <summary>Best effort as in Kafka's Utils.flushDir: a directory that cannot be opened is skipped.</summary>
    public static void FsyncDirectory(string dir)
    {
        if (OperatingSystem.IsWindows()) return;
        int fd = Open(dir, O_RDONLY);
        if (fd < 0) return;
        try
        {
            if (Fsync(fd) != 0)
            {
                int errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
                throw new IOException($"fsync of directory {dir} failed (errno {errno})", errno);
            }
        }
        finally { Close(fd); }
    }
}
