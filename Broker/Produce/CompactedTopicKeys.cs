using Kayak.Protocol.Compression;
using Kayak.Protocol.Records;

namespace Kayak.Broker.Produce;

/// <summary>
/// A compacted topic keeps the last record per key, so a record without a key has no place in it: Kafka's
/// LogValidator.validateKey refuses each such record with a per-record error (KIP-467) and the whole partition's
/// append fails with INVALID_RECORD. An empty key is a key; only a null one (length -1) is refused.
/// </summary>
internal static class CompactedTopicKeys
{
    /// <summary>Indexes (within the batch) of the records of one validated v2 batch whose key is null.</summary>
    public static List<int>? FindKeyless(ReadOnlySpan<byte> batch)
    {
        RecordBatchHeader.TryRead(batch, out var h);
        if (h.IsControl) return null;
        List<int>? keyless = null;
        using var decompressed = new PooledBufferWriter(h.Compression == CompressionType.None ? 1 : Math.Max(256, batch.Length * 4));
        ReadOnlySpan<byte> records;
        if (h.Compression == CompressionType.None) records = RecordBatch.RecordsSection(batch);
        else
        {
            RecordBatch.DecompressRecords(batch, decompressed);
            records = decompressed.WrittenSpan;
        }
        int index = 0;
        foreach (var record in new RecordEnumerator(records, h.RecordsCount))
        {
            if (record.KeyIsNull) (keyless ??= new List<int>()).Add(index);
            index++;
        }
        return keyless;
    }

    /// <summary>
    /// Kafka's per-record message ("... in topic partition topic-0", TopicPartition.toString) and the partition's
    /// error message from LogValidator.processRecordErrors, which shows at most the first three record errors in
    /// RecordError.toString form.
    /// </summary>
    public static (string Message, List<(int BatchIndex, string Message)> RecordErrors) Describe(string topic, int partition, List<int> keyless)
    {
        string perRecord = $"Compacted topic cannot accept message without key in topic partition {topic}-{partition}";
        var errors = new List<(int, string)>(keyless.Count);
        foreach (int i in keyless) errors.Add((i, perRecord));
        var shown = string.Join(", ", keyless.Take(3).Select(i => $"RecordError(batchIndex={i}, message='{perRecord}')"));
        return ($"One or more records have been rejected due to {keyless.Count} record errors in total, and only showing the first three errors at most: [{shown}]", errors);
    }
}
