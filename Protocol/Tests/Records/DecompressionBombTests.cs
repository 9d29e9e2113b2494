using Kayak.Protocol.Compression;
using Kayak.Protocol.Records;
using NUnit.Framework;

namespace Kayak.Protocol.Tests.Records;

/// <summary>
/// Batches that decompress past the validation limit (issue 15, K13): refused with MESSAGE_TOO_LARGE (what Kafka
/// answers for a batch it will not take; CORRUPT_MESSAGE stays for real corruption), with the work bounded by the
/// limit and nothing kept afterwards: the shared pool used to keep every 64 and 128 MiB buffer a bomb grew.
/// </summary>
[NonParallelizable]
public class DecompressionBombTests
{
    private const long Limit = 16L << 20;

    /// <summary>One record of <paramref name="valueBytes"/> zeros, compressed: a few KB on the wire.</summary>
    private static byte[] ZeroBatch(CompressionType codec, int valueBytes)
    {
        using var b = new RecordBatchBuilder(new RecordBatchOptions { Compression = codec });
        b.Append(1_700_000_000_000, null, new byte[valueBytes]);
        return b.ToArray();
    }

    private static readonly ValidationOptions Options = new() { MaxDecompressedBytes = Limit };

    [TestCase(CompressionType.Gzip)]
    [TestCase(CompressionType.Snappy)]
    [TestCase(CompressionType.Lz4)]
    [TestCase(CompressionType.Zstd)]
    public void BatchDecompressingPastTheLimitIsMessageTooLarge(CompressionType codec)
    {
        var bomb = ZeroBatch(codec, (int)Limit + 1024);
        Assert.That(bomb.Length, Is.LessThan(Limit / 16), "the test batch is a bomb");
        var r = RecordBatch.Validate(bomb, Options);
        Assert.That(r.Error, Is.EqualTo(ErrorCode.MessageTooLarge), r.Message);
    }

    [TestCase(CompressionType.Gzip)]
    [TestCase(CompressionType.Zstd)]
    public void BatchJustUnderTheLimitIsValid(CompressionType codec)
    {
        // The record's framing (length, attributes, deltas, key and value lengths) takes a few bytes of the limit.
        var r = RecordBatch.Validate(ZeroBatch(codec, (int)Limit - 64), Options);
        Assert.That(r.Error, Is.EqualTo(ErrorCode.None), r.Message);
        Assert.That(r.RecordCount, Is.EqualTo(1));
    }

    [Test]
    public void CorruptCompressedDataIsStillCorruptMessage()
    {
        var batch = ZeroBatch(CompressionType.Gzip, 4096);
        batch[RecordBatchHeader.Size + 12] ^= 0xFF; // inside the deflate stream
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(batch.AsSpan(17), RecordBatch.ComputeCrc(batch));
        Assert.That(RecordBatch.Validate(batch, Options).Error, Is.EqualTo(ErrorCode.CorruptMessage));
    }

    [Test]
    public void TwentyBombsAllocateBoundedWorkAndKeepNothing()
    {
        var bomb = ZeroBatch(CompressionType.Gzip, (int)Limit * 4);
        var errors = new List<ErrorCode> { RecordBatch.Validate(bomb, Options).Error };
        long before = GC.GetTotalMemory(forceFullCollection: true);
        long maxAllocated = 0;
        for (int i = 0; i < 20; i++)
        {
            long a = GC.GetAllocatedBytesForCurrentThread();
            errors.Add(RecordBatch.Validate(bomb, Options).Error);
            maxAllocated = Math.Max(maxAllocated, GC.GetAllocatedBytesForCurrentThread() - a);
        }
        long after = GC.GetTotalMemory(forceFullCollection: true);
        // Growing by doubling up to the limit allocates at most twice the limit; the buffer never outgrows it (it
        // grew to 2x the limit before the codec noticed), so a 4x bomb costs what a 1x one does.
        Assert.That(maxAllocated, Is.LessThanOrEqualTo(2 * Limit + (1 << 20)), "bytes allocated by one bomb");
        // What stays reachable after a full collection: no pool holding the bombs' buffers.
        Assert.That(after - before, Is.LessThan(4L << 20), $"retained after 20 bombs: {(after - before) >> 20} MiB");
        // And the shared pool was handed none of the bombs' large buffers: renting one of their sizes allocates.
        for (long size = 2L << 20; size <= 2 * Limit; size *= 2)
        {
            long a = GC.GetAllocatedBytesForCurrentThread();
            var rented = System.Buffers.ArrayPool<byte>.Shared.Rent((int)size);
            Assert.That(GC.GetAllocatedBytesForCurrentThread() - a, Is.GreaterThanOrEqualTo(size), $"the pool held a {size >> 20} MiB array");
            GC.KeepAlive(rented); // not returned: the pool keeps what it is given
        }
        Assert.That(errors, Has.All.EqualTo(ErrorCode.MessageTooLarge));
    }

    [Test]
    public void DecompressionBufferReturnsOnlySmallArraysToThePool()
    {
        long before = GC.GetTotalMemory(forceFullCollection: true);
        for (int i = 0; i < 5; i++) FillDecompressionBuffer();
        long after = GC.GetTotalMemory(forceFullCollection: true);
        Assert.That(after - before, Is.LessThan(4L << 20));
    }

    [Test]
    public void PooledBufferWriterKeepsNoLargeArrays()
    {
        long before = GC.GetTotalMemory(forceFullCollection: true);
        for (int i = 0; i < 5; i++) FillPooledBufferWriter();
        long after = GC.GetTotalMemory(forceFullCollection: true);
        Assert.That(after - before, Is.LessThan(4L << 20));
    }

    // Separate methods: a Debug build keeps a method's locals alive to its end, which would hold the last buffer.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void FillDecompressionBuffer()
    {
        using var b = new DecompressionBuffer(256, Limit);
        for (int n = 0; n < 8 << 20; n += 64 * 1024)
        {
            b.GetSpan(64 * 1024);
            b.Advance(64 * 1024);
        }
        Assert.Throws<DecompressedTooLargeException>(() => b.GetSpan((int)Limit));
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void FillPooledBufferWriter()
    {
        using var w = new PooledBufferWriter();
        for (int n = 0; n < 12 << 20; n += 64 * 1024)
        {
            w.GetSpan(64 * 1024);
            w.Advance(64 * 1024);
        }
    }
}
