namespace Kayak.Broker.Fetching;

/// <summary>A partition as a fetch session remembers it (KIP-227): what the client asked for and what it was last told.</summary>
internal sealed class CachedPartition
{
    public required string? TopicName;
    public required Protocol.Uuid TopicId;
    public required int Partition;
    public long FetchOffset;
    public int MaxBytes;
    public long LogStartOffset;
    // Last values sent to the client; an incremental response includes the partition when any changed.
    public long SentHighWatermark = -1;
    public long SentLastStableOffset = -1;
    public long SentLogStartOffset = -1;
}

/// <summary>One client's incremental fetch session: partitions in insertion order, and the next expected epoch.</summary>
internal sealed class FetchSession
{
    public FetchSession(int id) { Id = id; }

    public int Id { get; }
    /// <summary>The epoch the next incremental request must carry.</summary>
    public int NextEpoch { get; set; } = 1;
    public long LastUsedTicks { get; set; }
    public readonly List<CachedPartition> Partitions = new();

    public CachedPartition? Find(string? topicName, Protocol.Uuid topicId, int partition)
    {
        foreach (var p in Partitions)
            if (p.Partition == partition && p.TopicId == topicId && p.TopicName == topicName) return p;
        return null;
    }
}

/// <summary>
/// Broker-wide fetch sessions (KIP-227), bounded like Kafka's max.incremental.fetch.session.cache.slots
/// (1000): when full, the least recently used session is evicted and its client falls back to a full fetch
/// after FETCH_SESSION_ID_NOT_FOUND.
/// </summary>
internal sealed class FetchSessionCache
{
    public const int MaxSessions = 1000;
    private readonly Dictionary<int, FetchSession> _sessions = new();
    private readonly object _lock = new();

    public FetchSession Create(long nowTicks)
    {
        lock (_lock)
        {
            if (_sessions.Count >= MaxSessions)
            {
                FetchSession? oldest = null;
                foreach (var s in _sessions.Values)
                    if (oldest is null || s.LastUsedTicks < oldest.LastUsedTicks) oldest = s;
                _sessions.Remove(oldest!.Id);
            }
            int id;
            do { id = Random.Shared.Next(1, int.MaxValue); } while (_sessions.ContainsKey(id));
            var session = new FetchSession(id) { LastUsedTicks = nowTicks };
            _sessions[id] = session;
            return session;
        }
    }

    public FetchSession? Get(int id)
    {
        lock (_lock) return _sessions.GetValueOrDefault(id);
    }

    public void Remove(int id)
    {
        lock (_lock) _sessions.Remove(id);
    }
}
