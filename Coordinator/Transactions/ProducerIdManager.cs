using System.Buffers.Binary;

namespace Kayak.Coordinator.Transactions;

/// <summary>
/// Producer id allocation that survives restarts. Kafka's controller hands out blocks of 1000 ids and
/// records each block in the metadata log; here the end of the current block is persisted in a small file
/// before any id of the block is used, so a restart (clean or not) continues after it and never repeats one.
/// </summary>
public sealed class ProducerIdManager : IProducerIdAllocator
{
    public const int BlockSize = 1000;
    private readonly string? _path;
    private readonly object _lock = new();
    private long _next;
    private long _blockEnd;

    /// <param name="path">The file holding the next block start; null keeps ids in memory only (tests).</param>
    public ProducerIdManager(string? path)
    {
        _path = path;
        if (path is not null && File.Exists(path))
        {
            var bytes = File.ReadAllBytes(path);
            if (bytes.Length >= 8) _next = _blockEnd = BinaryPrimitives.ReadInt64BigEndian(bytes);
        }
    }

    public long NextProducerId()
    {
        lock (_lock)
        {
            if (_next >= _blockEnd)
            {
                long end = _next + BlockSize;
                Persist(end);
                _blockEnd = end;
            }
            return _next++;
        }
    }

    private void Persist(long end)
    {
        if (_path is null) return;
        var buf = new byte[8];
        BinaryPrimitives.WriteInt64BigEndian(buf, end);
        string tmp = _path + ".tmp";
        using (var f = new FileStream(tmp, FileMode.Create, FileAccess.Write))
        {
            f.Write(buf);
            f.Flush(flushToDisk: true);
        }
        File.Move(tmp, _path, overwrite: true);
    }
}

/// <summary>Batches per partition in memory, for tests.</summary>
public sealed class InMemoryTransactionLog : ITransactionLog
{
    private readonly Dictionary<int, List<byte[]>> _partitions = new();
    private readonly object _lock = new();

    public void Append(int partition, ReadOnlySpan<byte> batch)
    {
        lock (_lock)
        {
            if (!_partitions.TryGetValue(partition, out var list)) _partitions[partition] = list = new();
            list.Add(batch.ToArray());
        }
    }

    public void Replay(int partition, Action<ReadOnlyMemory<byte>> onBatches)
    {
        byte[][] copy;
        lock (_lock)
        {
            if (!_partitions.TryGetValue(partition, out var list)) return;
            copy = list.ToArray();
        }
        foreach (var b in copy) onBatches(b);
    }

    public int BatchCount(int partition)
    {
        lock (_lock) return _partitions.TryGetValue(partition, out var l) ? l.Count : 0;
    }
}
