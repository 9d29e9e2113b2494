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
        Assert.That(c.AsSpan(0, 4).ToArray(), Is.EqualTo(new byte[] { 0x04, 0x22, 0x4D, 0x18 }));
        // FLG: version 01, block independence set, no checksums, no content size; BD: 64 KiB blocks.
        Assert.That(c[4], Is.EqualTo(0x60));
        Assert.That(c[5], Is.EqualTo(0x40));
        Assert.That(c[6], Is.EqualTo((byte)(XxHash32.Hash(c.AsSpan(4, 2)) >> 8)));
    }

    [Test]
    public void Lz4LegacyBrokenHeaderChecksum()
    {
        var data = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("legacy lz4 ", 300)));
        var broken = Compress(CompressionType.Lz4, data, new CompressionOptions { Lz4LegacyHeaderChecksum = true });
        Assert.That(broken[6], Is.EqualTo((byte)(XxHash32.Hash(broken.AsSpan(0, 6)) >> 8)), "KAFKA-1493: checksum over magic + descriptor");
        Assert.That(broken[6], Is.Not.EqualTo((byte)(XxHash32.Hash(broken.AsSpan(4, 2)) >> 8)));
        Assert.Throws<ProtocolException>(() => Decompress(CompressionType.Lz4, broken));
        Assert.That(Decompress(CompressionType.Lz4, broken, legacyLz4: true), Is.EqualTo(data));
        // The legacy mode also accepts correct headers (magic v0 data from fixed clients).
        Assert.That(Decompress(CompressionType.Lz4, Compress(CompressionType.Lz4, data), legacyLz4: true), Is.EqualTo(data));
    }

    [Test]
    public void XxHash32KnownVectors()
    {
        Assert.That(XxHash32.Hash([]), Is.EqualTo(0x02CC5D05u));
        Assert.That(XxHash32.Hash(Encoding.ASCII.GetBytes("abc")), Is.EqualTo(0x32D153FFu));
        Assert.That(XxHash32.Hash(Encoding.ASCII.GetBytes("Nobody inspects the spammish repetition")), Is.EqualTo(0xE2293B2Fu));
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
    public void MissingNativeLibraryMessageNamesLibraryAndPackage()
    {
        var ex = new NativeLibraryMissingException("liblz4.so.1", "liblz4-1", new DllNotFoundException("x"));
        Assert.That(ex.Message, Does.Contain("liblz4.so.1").And.Contain("apt-get install liblz4-1"));
        Assert.That(ex.InnerException, Is.InstanceOf<DllNotFoundException>());
    }
}
