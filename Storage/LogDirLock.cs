using Kayak.Protocol;
namespace Kayak.Storage;

/// <summary>
/// Kafka's <c>.lock</c> file: one broker per log dir. Two brokers writing the same segments destroy each other's
/// data (issue 15, K2: 2,000 acknowledged records came back as 1,000 and a CRC-bad batch), so the second one must
/// refuse to start. The lock is an exclusive open of the file: on Unix .NET takes it with flock(LOCK_EX|LOCK_NB),
/// which the kernel releases when the process dies (a crash leaves no stale lock) and which two opens inside one
/// process also contend for (two embedded brokers on one dir are refused as well); on Windows it is a share-mode lock.
/// </summary>
internal sealed class LogDirLock : IDisposable
{
    public const string FileName = ".lock";

    private readonly List<FileStream> _held = [];

    /// <summary>Locks every dir or none: throws <see cref="StorageErrorException"/> with Kafka's message on the first one held elsewhere.</summary>
    public static LogDirLock Acquire(IReadOnlyList<string> dirs)
    {
        var locks = new LogDirLock();
        try
        {
            foreach (var dir in dirs)
            {
                Directory.CreateDirectory(dir);
                string path = Path.Combine(dir, FileName);
                try
                {
                    locks._held.Add(new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1));
                }
                catch (IOException e)
                {
                    throw new StorageErrorException(ErrorCode.KafkaStorageError,
                        $"Failed to acquire lock on file {FileName} in {Path.GetFullPath(dir)}. A Kafka instance in another process or thread is using this directory.", e);
                }
            }
            return locks;
        }
        catch
        {
            locks.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        foreach (var fs in _held) fs.Dispose();
        _held.Clear();
    }
}
