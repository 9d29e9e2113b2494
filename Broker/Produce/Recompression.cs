using System.Buffers;
using Kayak.Protocol.Compression;
using Kayak.Protocol.Records;

namespace Kayak.Broker.Produce;

/// <summary>
/// A topic's compression.type other than "producer" makes the broker store batches in that codec, as Kafka's
/// LogValidator does: the batch is rebuilt with the same producer id/epoch/sequence, transactional flag, offset
/// deltas, timestamps and headers, only the records section is re-encoded. Costs a decompress + compress per
/// produce, so it only runs when the codecs differ.
/// </summary>
internal static class Recompression
{
    /// <summary>The codec a topic forces, or null for "producer" (keep what the client sent).</summary>
    public static CompressionType? TargetFor(string topicCompressionType) => topicCompressionType switch
    {
        "uncompressed" => CompressionType.None,
        "gzip" => CompressionType.Gzip,
        "snappy" => CompressionType.Snappy,
        "lz4" => CompressionType.Lz4,
        "zstd" => CompressionType.Zstd,
        _ => null,
    };

    /// <summary>Writes <paramref name="batch"/> (one validated v2 batch) re-encoded with <paramref name="target"/>.</summary>
    public static void Recompress(ReadOnlySpan<byte> batch, CompressionType target, IBufferWriter<byte> output)
    {
        RecordBatchHeader.TryRead(batch, out var h);
        // Not a PooledBufferWriter: its growth through the shared pool would keep arrays of up to 64 MiB (issue 15, K13).
        using var decompressed = new DecompressionBuffer(h.Compression == CompressionType.None ? 1 : batch.Length * 4, DecompressionOptions.DefaultMaxOutputBytes);
        ReadOnlySpan<byte> records;
        if (h.Compression == CompressionType.None) records = RecordBatch.RecordsSection(batch);
        else
        {
            RecordBatch.DecompressRecords(batch, decompressed);
            records = decompressed.WrittenSpan;
        }
        using var builder = new RecordBatchBuilder(new RecordBatchOptions
        {
            Compression = target,
            PartitionLeaderEpoch = h.PartitionLeaderEpoch,
            ProducerId = h.ProducerId,
            ProducerEpoch = h.ProducerEpoch,
            BaseSequence = h.BaseSequence,
            IsTransactional = h.IsTransactional,
            LastOffsetDelta = h.LastOffsetDelta,
        });
        var e = new RecordEnumerator(records, h.RecordsCount);
        while (e.MoveNext()) builder.Append(e.Current, h.BaseTimestamp);
        builder.Build(output);
    }
}
