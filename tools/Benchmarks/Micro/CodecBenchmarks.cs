using System.Buffers;
using System.Text;
using BenchmarkDotNet.Attributes;
using Kayak.Protocol.Compression;
using Kayak.Protocol.Records;

namespace Kayak.Micro;

/// <summary>
/// Batch-body codecs on 1 MB of 100-byte records (the perf test's batch.size and record shape): compress, decompress,
/// and what a produce of a compressed batch costs the broker (<see cref="RecordBatch.Validate"/>: CRC-32C, decompress
/// into a pooled buffer, walk every record). GB/s is of the 1 MB uncompressed body in every case.
/// </summary>
public class CodecBenchmarks : IBytesPerOperation
{
    private byte[] _body = [];
    private byte[] _compressed = [];
    private byte[] _batch = [];
    private ArrayBufferWriter<byte> _out = new();

    [Params(CompressionType.Gzip, CompressionType.Snappy, CompressionType.Lz4, CompressionType.Zstd)]
    public CompressionType Codec { get; set; }

    public long BytesPerOperation => 1 << 20; // a constant: the column reads it from an instance that never ran Setup

    [GlobalSetup]
    public void Setup()
    {
        // The records section of an uncompressed batch is exactly what a producer compresses.
        var plain = Data.Batch(1 << 20);
        _body = plain.AsSpan(RecordBatchHeader.Size).ToArray();
        var w = new ArrayBufferWriter<byte>();
        Compressor.Compress(Codec, _body, w);
        _compressed = w.WrittenSpan.ToArray();
        _batch = Data.Batch(1 << 20, compression: Codec);
        _out = new ArrayBufferWriter<byte>(_body.Length * 2);
    }

    [Benchmark]
    public int Compress()
    {
        _out.ResetWrittenCount();
        Compressor.Compress(Codec, _body, _out);
        return _out.WrittenCount;
    }

    [Benchmark]
    public int Decompress()
    {
        _out.ResetWrittenCount();
        Compressor.Decompress(Codec, _compressed, _out, DecompressionOptions.DefaultMaxOutputBytes);
        return _out.WrittenCount;
    }

    [Benchmark]
    public int ValidateCompressedBatch()
    {
        var r = RecordBatch.Validate(_batch);
        if (!r.IsValid) throw new InvalidOperationException(r.Message);
        return r.RecordCount;
    }
}

/// <summary>CRC-32 (IEEE) of magic v0/v1 messages over 1 MB (a legacy producer's compressed wrapper covers the whole set).</summary>
public class Crc32Benchmarks : IBytesPerOperation
{
    private byte[] _data = [];

    public long BytesPerOperation => 1 << 20;

    [GlobalSetup]
    public void Setup()
    {
        _data = new byte[BytesPerOperation];
        new Random(1).NextBytes(_data);
    }

    [Benchmark]
    public uint Crc32_Compute() => Crc32.Compute(_data);
}

/// <summary>xxHash32 of an LZ4 frame descriptor (FLG, BD: 2 bytes), the header checksum computed once per frame.</summary>
public class XxHash32Benchmarks
{
    private readonly byte[] _descriptor = Encoding.ASCII.GetBytes("`@");

    [Benchmark]
    public uint XxHash32_FrameDescriptor() => System.IO.Hashing.XxHash32.HashToUInt32(_descriptor);
}
