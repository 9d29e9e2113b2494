using System.Text;
using Kayak.Coordinator.Transactions;

namespace Kayak.Coordinator.Tests.Transactions;

/// <summary>
/// A canonical text dump of a transaction coordinator's state, for comparing a coordinator with one loaded from its
/// log (the group side's <see cref="CanonicalState"/>): live transactional ids in id order with every field a
/// TransactionLogValue carries (producer id, previous producer id, epoch, timeout, state, partitions in order, start
/// and last-update timestamps), then the produce path's producer id index, which must point at the same metadata.
/// </summary>
internal static class TxnCanonicalState
{
    public static string Dump(TransactionCoordinator coordinator)
    {
        var txns = new List<TransactionMetadata>(coordinator.AllTransactions);
        txns.Sort((a, b) => string.CompareOrdinal(a.TransactionalId, b.TransactionalId));
        var sb = new StringBuilder();
        foreach (var t in txns)
        {
            lock (t.Sync)
            {
                if (!t.Live) continue;
                var parts = new List<TxnPartition>(t.Partitions);
                parts.Sort((a, b) => a.Topic != b.Topic ? string.CompareOrdinal(a.Topic, b.Topic) : a.Partition.CompareTo(b.Partition));
                sb.Append("txn ").Append(t.TransactionalId)
                  .Append(" pid=").Append(t.ProducerId).Append(" prev=").Append(t.PreviousProducerId)
                  .Append(" epoch=").Append(t.ProducerEpoch).Append(" timeout=").Append(t.TimeoutMs)
                  .Append(" state=").Append(t.State).Append(" start=").Append(t.StartTimestampMs)
                  .Append(" updated=").Append(t.LastUpdateTimestampMs)
                  .Append(" partitions=[").Append(string.Join(",", parts.Select(p => $"{p.Topic}-{p.Partition}"))).Append("]\n");
            }
        }
        var index = new List<KeyValuePair<long, TransactionMetadata>>(coordinator.ProducerIndex);
        index.Sort((a, b) => a.Key.CompareTo(b.Key));
        foreach (var (pid, t) in index) sb.Append("pid ").Append(pid).Append(" -> ").Append(t.TransactionalId).Append(t.Live ? "\n" : " (gone)\n");
        return sb.ToString();
    }

    /// <summary>A copy of every batch of the log, so a coordinator can load it without writing into the original.</summary>
    public static InMemoryTransactionLog Copy(ITransactionLog log, int partitions)
    {
        var copy = new InMemoryTransactionLog();
        for (int p = 0; p < partitions; p++) log.Replay(p, chunk => copy.Append(p, chunk.Span));
        return copy;
    }
}

/// <summary>A transaction log that refuses appends while <see cref="Fail"/> is set (as a full disk or a closed log would).</summary>
internal sealed class FaultyTransactionLog(InMemoryTransactionLog inner) : ITransactionLog
{
    public InMemoryTransactionLog Inner { get; } = inner;
    public bool Fail { get; set; }
    public int Refused { get; private set; }
    /// <summary>What a refused append throws (an IOException unless set).</summary>
    public Func<Exception>? Error { get; set; }

    public void Append(int partition, ReadOnlySpan<byte> batch)
    {
        if (Fail)
        {
            Refused++;
            throw Error?.Invoke() ?? new IOException("simulated refused append to __transaction_state");
        }
        Inner.Append(partition, batch);
    }

    public void Replay(int partition, Action<ReadOnlyMemory<byte>> onBatches) => Inner.Replay(partition, onBatches);

    public int Batches(int partitions)
    {
        int n = 0;
        for (int p = 0; p < partitions; p++) n += Inner.BatchCount(p);
        return n;
    }
}
