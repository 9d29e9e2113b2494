using System.Buffers.Binary;
using Kayak.Protocol.Compression;
using Kayak.Protocol.Records;
using Kayak.Protocol;

namespace Kayak.Storage;

/// <summary>
/// The partition log's side of idempotent and transactional producers: the hooks Append calls, the
/// rebuild on load, transaction markers and the aborted-transaction index files.
/// </summary>
public sealed partial class PartitionLog
{
    /// <summary>
    /// A client's Produce (Kafka's appendAsLeader with origin CLIENT): as <see cref="Append"/>, and a transactional
    /// batch is appended only while its producer has a transaction in this partition at that epoch, or with the
    /// <paramref name="verificationGuard"/> that <see cref="MaybeStartTransactionVerification"/> handed out and the
    /// transaction coordinator then confirmed. Both are checked under the append lock, where the marker also clears
    /// them, so a batch whose transaction ended meanwhile is refused (INVALID_TXN_STATE) and never lands after the
    /// marker (KIP-890 part 1).
    /// </summary>
    public AppendResult AppendFromClient(ReadOnlySpan<byte> batches, int recordBatchCount, VerificationGuard? verificationGuard, int partitionLeaderEpoch = -1) =>
        AppendCore(batches, recordBatchCount, partitionLeaderEpoch, verifyTransactions: true, verificationGuard);

    /// <summary>
    /// Kafka's maybeStartTransactionVerification: null when <paramref name="producerId"/> already has a transaction
    /// in this partition at <paramref name="producerEpoch"/> (its coordinator knows the partition, nothing to ask),
    /// else the partition's guard for the producer, created on first use. The caller confirms with the transaction
    /// coordinator that the partition is in the producer's ongoing transaction, then passes the guard to
    /// <see cref="AppendFromClient"/>; a marker written in between clears it and the append is refused.
    /// </summary>
    public VerificationGuard? MaybeStartTransactionVerification(long producerId, short producerEpoch)
    {
        lock (_lock) return ProducerState.MaybeStartVerification(producerId, producerEpoch, NowMs());
    }

    /// <summary>
    /// Runs the producer checks for the batches about to be appended (under the append lock). True when the
    /// single batch is a retry of an already appended one: <paramref name="duplicate"/> has its offsets.
    /// </summary>
    private bool CheckProducers(ReadOnlySpan<byte> batches, int count, bool verifyTransactions, VerificationGuard? guard, out ProducerBatchMetadata duplicate)
    {
        duplicate = default;
        int pos = 0;
        var state = ProducerState;
        while (pos < batches.Length)
        {
            var b = batches[pos..];
            int total = BinaryPrimitives.ReadInt32BigEndian(b[RecordBatchHeader.BatchLengthOffset..]) + RecordBatchHeader.LogOverhead;
            pos += total;
            if (BinaryPrimitives.ReadInt64BigEndian(b[RecordBatchHeader.ProducerIdOffset..]) < 0) continue; // the common case
            RecordBatchHeader.TryRead(b, out var h);
            if (h.IsControl)
            {
                bool endsTransaction = ProducerStateManager.ReadMarkerType(b[..total], out int coordinatorEpoch) is ControlRecordType.Commit or ControlRecordType.Abort;
                state.CheckMarker(h.ProducerId, h.ProducerEpoch, endsTransaction ? coordinatorEpoch : -1);
                continue;
            }
            if (state.CheckClientBatch(h, verifyTransactions, guard, out duplicate))
            {
                if (count == 1) return true;
                throw new ProducerStateException(ErrorCode.DuplicateSequenceNumber,
                    $"Duplicate batch of producer {h.ProducerId} inside a multi-batch append");
            }
        }
        return false;
    }

    /// <summary>Records one appended batch (base offset already assigned); persists an abort in <c>.txnindex</c>.</summary>
    /// <param name="h">The batch header as stored (assigned base offset).</param>
    /// <param name="batch">The batch's bytes; only its records are read here.</param>
    private void UpdateProducerState(in RecordBatchHeader h, ReadOnlySpan<byte> batch, LogSegment active)
    {
        ControlRecordType? type = null;
        int coordinatorEpoch = -1;
        if (h.IsControl) type = ProducerStateManager.ReadMarkerType(batch, out coordinatorEpoch);
        if (ProducerState.OnAppended(h, h.LastOffset, type, coordinatorEpoch) is { } aborted)
            AppendTxnIndex(active.TxnIndexPath, aborted);
    }

    private static void AppendTxnIndex(string path, AbortedTransaction entry)
    {
        Span<byte> buf = stackalloc byte[AbortedTransaction.EntrySize];
        entry.Write(buf);
        try
        {
            using var f = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite);
            f.Write(buf);
        }
        catch (IOException e)
        {
            StorageThrow.StorageFailure($"Cannot write {path}: {e.Message}");
        }
    }

    /// <summary>
    /// Writes a transaction marker (control batch, KIP-98) for <paramref name="producerId"/>: what the
    /// transaction coordinator's WriteTxnMarkers asks the partition leader to append. Completes the
    /// producer's open transaction here, moving the last stable offset; an abort is added to the
    /// aborted-transaction index. Throws <see cref="ProducerStateException"/> (PRODUCER_FENCED) for a stale epoch.
    /// </summary>
    /// <param name="partitionLeaderEpoch">The partition's current leader epoch in a cluster (Kafka stamps markers like any
    /// leader append, so the leader-epoch lineage followers truncate by covers them); -1 on a single broker.</param>
    public AppendResult AppendEndTxnMarker(long producerId, short producerEpoch, int coordinatorEpoch, bool commit, int partitionLeaderEpoch = -1)
    {
        using var buffer = new PooledBufferWriter(128);
        ControlRecord.WriteEndTransactionMarker(buffer, commit ? ControlRecordType.Commit : ControlRecordType.Abort,
            producerId, producerEpoch, coordinatorEpoch, NowMs());
        return Append(buffer.WrittenSpan, 1, partitionLeaderEpoch);
    }

    /// <summary>Aborted transactions overlapping [fetchOffset, upperBoundOffset) for a read_committed fetch.</summary>
    public void CollectAbortedTransactions(long fetchOffset, long upperBoundOffset, List<AbortedTransaction> into) =>
        ProducerState.CollectAborted(fetchOffset, upperBoundOffset, into);

    /// <summary>producer.id.expiration.ms: forgets idle producers without an open transaction.</summary>
    public int RemoveExpiredProducers(long expirationMs)
    {
        lock (_lock) return _closed ? 0 : ProducerState.RemoveExpired(NowMs(), expirationMs);
    }

    /// <summary>DescribeProducers: a consistent copy of the active producers of this partition.</summary>
    public ProducerStateEntry[] ActiveProducers()
    {
        lock (_lock) return ProducerState.Snapshot();
    }
}
