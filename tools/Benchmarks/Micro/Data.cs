using Kayak.Protocol.Records;

namespace Kayak.Micro;

/// <summary>Test data shaped like librdkafka's traffic in the perf test: 100-byte values, no keys.</summary>
internal static class Data
{
    /// <summary>One uncompressed v2 batch of 100-byte records, as close to <paramref name="targetBytes"/> as fits.</summary>
    public static byte[] Batch(int targetBytes, int valueSize = 100, CompressionType compression = CompressionType.None)
    {
        var rng = new Random(7);
        var value = new byte[valueSize];
        // A 100-byte record is ~108 bytes framed (length, attributes, deltas, key/value lengths, header count).
        int records = Math.Max(1, (targetBytes - 61) / (valueSize + 8));
        using var builder = new RecordBatchBuilder(new RecordBatchOptions { Compression = compression });
        long ts = 1_700_000_000_000;
        for (int i = 0; i < records; i++)
        {
            for (int j = 0; j < value.Length; j++) value[j] = (byte)('A' + rng.Next(26));
            builder.Append(ts + i / 1000, ReadOnlySpan<byte>.Empty, true, value, false);
        }
        return builder.ToArray();
    }
}
