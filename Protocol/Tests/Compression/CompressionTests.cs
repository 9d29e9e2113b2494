using System.Text;
using Kayak.Protocol.Compression;
using Kayak.Protocol.Records;
using Kayak.Protocol.Tests.Records;
using NUnit.Framework;

namespace Kayak.Protocol.Tests.Compression;

public class CompressionTests
{
    private static IEnumerable<byte[]> Payloads()
    {
        yield return [];
        yield return [42];
        yield return Encoding.ASCII.GetBytes("abcabcabcabcabcabcabcabcabcabcabcabcabcabc hello hello hello");
        var rnd = new Random(7);
        var random = new byte[100_000];
        rnd.NextBytes(random);
        yield return random;
        var text = new StringBuilder();
        for (int i = 0; i < 20_000; i++) text.Append("record-").Append(i % 97).Append(';');
        yield return Encoding.ASCII.GetBytes(text.ToString()); // > 64 KiB, crosses snappy fragments / lz4 blocks
        yield return new byte[300_000]; // long runs: overlapping copies
    }

    private static byte[] Compress(CompressionType c, ReadOnlySpan<byte> data, CompressionOptions? o = null)
    {
        using var w = new PooledBufferWriter();
        Compressor.Compress(c, data, w, o);
        return w.WrittenSpan.ToArray();
    }

    private static byte[] Decompress(CompressionType c, ReadOnlySpan<byte> data, long max = 10_000_000, bool legacyLz4 = false)
    {
        using var w = new PooledBufferWriter();
        Compressor.Decompress(c, data, w, new DecompressionOptions { MaxOutputBytes = max, Lz4LegacyHeaderChecksum = legacyLz4 });
        return w.WrittenSpan.ToArray();
    }

    [Test]
    public void RoundTripsEveryCodec([ValueSource(typeof(RecordBatchTests), nameof(RecordBatchTests.AllCodecs))] CompressionType codec)
    {
        foreach (var p in Payloads())
        {
            var c = Compress(codec, p);
            Assert.That(Decompress(codec, c), Is.EqualTo(p), $"{codec} len {p.Length}");
            if (codec != CompressionType.None && p.Length == 300_000)
                Assert.That(c.Length, Is.LessThan(p.Length / 20), $"{codec} should compress zeros");
        }
    }

    [Test]
    public void SnappyUsesXerialFramingAndReadsRawBlocks()
    {
        var data = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("snappy snappy snappy ", 5000)));
        var framed = Compress(CompressionType.Snappy, data);
        Assert.That(framed.AsSpan(0, 8).ToArray(), Is.EqualTo(new byte[] { 0x82, (byte)'S', (byte)'N', (byte)'A', (byte)'P', (byte)'P', (byte)'Y', 0 }));
        Assert.That(Snappy.IsXerialFramed(framed));
        // Raw (librdkafka-style) blocks decode through the same entry point.
        var raw = new byte[Snappy.MaxCompressedLength(data.Length)];
        int n = Snappy.CompressBlock(data, raw);
        Assert.That(Snappy.IsXerialFramed(raw.AsSpan(0, n)), Is.False);
        Assert.That(Decompress(CompressionType.Snappy, raw.AsSpan(0, n)), Is.EqualTo(data));
    }

    [Test]
    public void SnappyDecodesReferenceEncoding()
    {
        // Hand-assembled block: preamble 11, literal "abc" (tag 0x08), copy len 8 offset 3 (1-byte-offset copy: tag 0x11, 0x03).
        byte[] block = [0x0B, 0x08, (byte)'a', (byte)'b', (byte)'c', 0x11, 0x03];
        Assert.That(Encoding.ASCII.GetString(Decompress(CompressionType.Snappy, block)), Is.EqualTo("abcabcabcab"));
    }

    [Test]
    public void SnappyRejectsBadCopiesAndLengths()
    {
        Assert.Throws<ProtocolException>(() => Decompress(CompressionType.Snappy, [0x0B, 0x11, 0x03])); // copy before any output
        Assert.Throws<ProtocolException>(() => Decompress(CompressionType.Snappy, [0x05, 0x08, (byte)'a', (byte)'b', (byte)'c'])); // short output
        Assert.Throws<ProtocolException>(() => Decompress(CompressionType.Snappy, [0x02, 0x08, (byte)'a'])); // literal overruns
        Assert.Throws<ProtocolException>(() => Decompress(CompressionType.Snappy, [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])); // bad preamble
    }

    [Test]
    public void Lz4WritesJavaCompatibleFrameHeader()
    {
        var c = Compress(CompressionType.Lz4, Encoding.ASCII.GetBytes("hello lz4 hello lz4 hello lz4"));
        // Magic, FLG (version 01, block independence, no checksums, no content size), BD (64 KiB blocks), and HC:
        // 0x82 is xxh32(60 40) >> 8, the header every Java producer writes.
        Assert.That(c.AsSpan(0, 7).ToArray(), Is.EqualTo(new byte[] { 0x04, 0x22, 0x4D, 0x18, 0x60, 0x40, 0x82 }));
        Assert.That(c.AsSpan(c.Length - 4).ToArray(), Is.EqualTo(new byte[4]), "end mark");
    }

    [Test]
    public void Lz4LegacyBrokenHeaderChecksum()
    {
        var data = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("legacy lz4 ", 300)));
        var broken = Compress(CompressionType.Lz4, data, new CompressionOptions { Lz4LegacyHeaderChecksum = true });
        // KAFKA-1493: xxh32 over magic + descriptor (04 22 4D 18 60 40) >> 8 is 0x1A (python3-xxhash gives the same).
        Assert.That(broken[6], Is.EqualTo(0x1A));
        Assert.Throws<ProtocolException>(() => Decompress(CompressionType.Lz4, broken));
        Assert.That(Decompress(CompressionType.Lz4, broken, legacyLz4: true), Is.EqualTo(data));
        // The legacy mode also accepts correct headers (magic v0 data from fixed clients).
        Assert.That(Decompress(CompressionType.Lz4, Compress(CompressionType.Lz4, data), legacyLz4: true), Is.EqualTo(data));
    }

    // python3-lz4 4.0.2 (what kafka-python compresses with): lz4.frame.compress(b"kayak lz4 frame " * 100, ...).
    private static readonly byte[] PythonLz4Input = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("kayak lz4 frame ", 100)));
    // block_linked=False, content_checksum=True, block_checksum=True, store_size=True: FLG 0x7C, content size 1600.
    private static readonly byte[] PythonLz4Checksummed = Convert.FromHexString(
        "04224d187c404006000000000000ce21000000ff016b6179616b206c7a34206672616d65201000ffffffffffff1e5072616d652002e0c75c00000000571843f1");

    [Test]
    public void Lz4ReadsContentSizeAndChecksums()
    {
        Assert.That(Decompress(CompressionType.Lz4, PythonLz4Checksummed), Is.EqualTo(PythonLz4Input));
        var badBlockChecksum = (byte[])PythonLz4Checksummed.Clone();
        badBlockChecksum[^12] ^= 1; // first byte of the block checksum (then 4 of end mark, 4 of content checksum)
        Assert.That(Assert.Throws<ProtocolException>(() => Decompress(CompressionType.Lz4, badBlockChecksum))!.Message, Does.Contain("block checksum"));
        var badContentChecksum = (byte[])PythonLz4Checksummed.Clone();
        badContentChecksum[^1] ^= 1;
        Assert.That(Assert.Throws<ProtocolException>(() => Decompress(CompressionType.Lz4, badContentChecksum))!.Message, Does.Contain("content checksum"));
        // The declared 1600 bytes exceed a 1000-byte limit: refused before a block is decoded.
        Assert.That(Assert.Throws<ProtocolException>(() => Decompress(CompressionType.Lz4, PythonLz4Checksummed, max: 1000))!.Message, Does.Contain("limit"));
    }

    [Test]
    public void Lz4RefusesDependentBlocksAsKafkaDoes()
    {
        // python-lz4's default is linked blocks (kafka-python turns that off, as Kafka refuses them), but liblz4 marks a
        // one-block frame independent anyway, so the frame is ours with the flag cleared and HC recomputed.
        var linked = Compress(CompressionType.Lz4, PythonLz4Input);
        linked[4] &= 0xDF;
        linked[6] = (byte)(System.IO.Hashing.XxHash32.HashToUInt32(linked.AsSpan(4, 2)) >> 8);
        var ex = Assert.Throws<ProtocolException>(() => Decompress(CompressionType.Lz4, linked));
        Assert.That(ex!.Message, Does.Contain("dependent"));
    }

    [Test]
    public void Lz4ReadsConcatenatedFramesAndRawBlocks()
    {
        var random = new byte[70_000]; // incompressible: both blocks are stored raw (size high bit set)
        new Random(5).NextBytes(random);
        var a = Compress(CompressionType.Lz4, random);
        Assert.That(BitConverter.ToUInt32(a, 7) & 0x80000000u, Is.Not.Zero, "first block stored raw");
        var b = Compress(CompressionType.Lz4, PythonLz4Input);
        Assert.That(Decompress(CompressionType.Lz4, [.. a, .. b]), Is.EqualTo(random.Concat(PythonLz4Input).ToArray()));
    }

    [Test]
    public void DecompressionBombsHitTheLimit([ValueSource(typeof(RecordBatchTests), nameof(RecordBatchTests.AllCodecs))] CompressionType codec)
    {
        var zeros = new byte[2_000_000];
        var c = Compress(codec, zeros);
        var ex = Assert.Throws<ProtocolException>(() => Decompress(codec, c, max: 100_000));
        Assert.That(ex!.Message, Does.Contain("limit"));
        Assert.That(Decompress(codec, c, max: zeros.Length), Has.Length.EqualTo(zeros.Length));
    }

    [Test]
    public void SnappyBombDeclaredSizeRejectedBeforeAllocating()
    {
        // Preamble claims ~4 GiB; must fail on the declared size without trying to allocate it.
        byte[] block = [0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0x00, 0x00];
        var ex = Assert.Throws<ProtocolException>(() => Decompress(CompressionType.Snappy, block, max: 1 << 20));
        Assert.That(ex!.Message, Does.Contain("limit"));
    }

    [Test]
    public void TruncatedStreamsThrow([ValueSource(typeof(RecordBatchTests), nameof(RecordBatchTests.AllCodecs))] CompressionType codec)
    {
        if (codec == CompressionType.None) return;
        var data = new byte[50_000];
        new Random(3).NextBytes(data);
        var c = Compress(codec, data);
        foreach (int cut in new[] { 1, 7, c.Length / 2, c.Length - 1 })
            Assert.Throws<ProtocolException>(() => Decompress(codec, c.AsSpan(0, cut)), $"{codec} cut at {cut}");
    }

    [Test]
    public void GarbageInputThrowsProtocolException([ValueSource(typeof(RecordBatchTests), nameof(RecordBatchTests.AllCodecs))] CompressionType codec)
    {
        if (codec == CompressionType.None) return;
        var rnd = new Random(11);
        for (int i = 0; i < 50; i++)
        {
            var g = new byte[1 + rnd.Next(200)];
            rnd.NextBytes(g);
            try { Decompress(codec, g, max: 1 << 20); }
            catch (ProtocolException) { }
        }
        Assert.Pass();
    }

    [Test]
    public void CorruptedStreamsThrowOnlyProtocolException([ValueSource(typeof(RecordBatchTests), nameof(RecordBatchTests.AllCodecs))] CompressionType codec)
    {
        // Random garbage rarely gets past a header; flipped bytes in a valid stream reach the libraries' block decoders
        // (K4os, Snappier, ZstdSharp), which must fail with our exception (CORRUPT_MESSAGE), never another one.
        if (codec == CompressionType.None) return;
        var text = new StringBuilder();
        for (int i = 0; i < 3000; i++) text.Append("record-").Append(i % 31).Append(';');
        var valid = Compress(codec, Encoding.ASCII.GetBytes(text.ToString()));
        var rnd = new Random(13);
        int failures = 0;
        for (int i = 0; i < 300; i++)
        {
            var c = (byte[])valid.Clone();
            for (int k = 1 + rnd.Next(3); k > 0; k--) c[rnd.Next(c.Length)] ^= (byte)(1 + rnd.Next(255));
            try { Decompress(codec, c, max: 1 << 20); }
            catch (ProtocolException) { failures++; }
        }
        Assert.That(failures, Is.GreaterThan(0), "some corruptions must be detected");
    }

    /// <summary>Hands out spans of exactly the size asked for, so a decoder can fill one to the last byte.</summary>
    private sealed class ExactSpanWriter : System.Buffers.IBufferWriter<byte>
    {
        private byte[] _buffer = new byte[16];
        public int Written { get; private set; }
        public ReadOnlySpan<byte> WrittenSpan => _buffer.AsSpan(0, Written);
        public void Advance(int count) => Written += count;
        public Memory<byte> GetMemory(int sizeHint = 0) { Ensure(sizeHint); return _buffer.AsMemory(Written, Math.Max(sizeHint, 1)); }
        public Span<byte> GetSpan(int sizeHint = 0) => GetMemory(sizeHint).Span;
        private void Ensure(int hint)
        {
            if (_buffer.Length - Written < Math.Max(hint, 1)) Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, Written + Math.Max(hint, 1)));
        }
    }

    [Test]
    public void OutputEndingExactlyAtASpanBoundaryDecodes([ValueSource(typeof(RecordBatchTests), nameof(RecordBatchTests.AllCodecs))] CompressionType codec)
    {
        // zstd used to report such a frame truncated: its last call ended the frame and filled the span, so the loop
        // called again, which starts a new frame and asks for a header (a 1 MiB batch of 100-byte records hit it).
        var data = new byte[3 * 64 * 1024];
        for (int i = 0; i < data.Length; i++) data[i] = (byte)('A' + (i * 7 + i / 13) % 26);
        var c = Compress(codec, data);
        var w = new ExactSpanWriter();
        Compressor.Decompress(codec, c, w, DecompressionOptions.DefaultMaxOutputBytes);
        Assert.That(w.WrittenSpan.ToArray(), Is.EqualTo(data));
    }
}
