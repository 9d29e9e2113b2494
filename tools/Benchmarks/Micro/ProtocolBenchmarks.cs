using System.Buffers;
using BenchmarkDotNet.Attributes;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using Kayak.Protocol.Records;

namespace Kayak.Micro;

/// <summary>
/// CRC-32C, the per-batch check of every produced v2 batch (KIP-98): 1 KB (below the three-chain threshold's
/// benefit), 16 KB (the Java producer's default batch.size) and 1 MB (the perf test's batch.size).
/// </summary>
public class Crc32CBenchmarks : IBytesPerOperation
{
    private byte[] _data = [];

    [Params(1 << 10, 1 << 14, 1 << 20)]
    public int Size { get; set; }

    public long BytesPerOperation => Size;

    [GlobalSetup]
    public void Setup()
    {
        _data = new byte[Size];
        new Random(1).NextBytes(_data);
    }

    [Benchmark]
    public uint Crc32C_Compute() => Crc32C.Compute(_data);

    /// <summary>System.IO.Hashing's parameterised CRC-32C, measured against ours (README keeps the faster).</summary>
    [Benchmark]
    public uint Crc32C_SystemIOHashing() => System.IO.Hashing.Crc32.HashToUInt32(System.IO.Hashing.Crc32ParameterSet.Crc32C, _data);
}

/// <summary>
/// What the broker does with a produce request before the append: decode the generated ProduceRequest (records stay a
/// zero-copy slice of the frame) and validate each batch (CRC-32C plus a walk over every record's framing).
/// v7 is what librdkafka 2.0.2 sends; v9 is the first flexible version.
/// </summary>
public class ProduceDecodeBenchmarks : IBytesPerOperation
{
    private byte[] _frame = [];

    [Params((short)7, (short)9)]
    public short Version { get; set; }

    public long BytesPerOperation => 1 << 20;

    [GlobalSetup]
    public void Setup()
    {
        var batch = Data.Batch(1 << 20);
        var request = new ProduceRequest
        {
            Acks = 1,
            TimeoutMs = 30_000,
            TopicData =
            [
                new ProduceRequest.TopicProduceData
                {
                    Name = "perf-topic",
                    PartitionData = [new ProduceRequest.PartitionProduceData { Index = 0, Records = batch }],
                },
            ],
        };
        var buffer = new ArrayBufferWriter<byte>(batch.Length + 256);
        var writer = new KafkaWriter(buffer);
        request.Write(ref writer, Version);
        writer.Flush();
        _frame = buffer.WrittenSpan.ToArray();
    }

    [Benchmark]
    public int DecodeAndValidate()
    {
        var reader = new KafkaReader(_frame);
        var request = new ProduceRequest();
        request.Read(ref reader, Version);
        int records = 0;
        foreach (var topic in request.TopicData)
        {
            foreach (var partition in topic.PartitionData)
            {
                if (partition.Records is not { } mem) continue;
                foreach (var batch in new BatchEnumerator(mem.Span))
                {
                    var result = RecordBatch.Validate(batch);
                    if (!result.IsValid) throw new InvalidOperationException(result.Message);
                    records += result.RecordCount;
                }
            }
        }
        return records;
    }
}

/// <summary>
/// Encoding a Fetch response whose records field is a 1 MB slice (the broker's zero-copy path hands the segment's
/// memory to the writer). v11 is what librdkafka 2.0.2 asks for; v12 is the first flexible version.
/// </summary>
public class FetchEncodeBenchmarks : IBytesPerOperation
{
    private FetchResponse _response = new();
    private ArrayBufferWriter<byte> _buffer = new();

    [Params((short)11, (short)12)]
    public short Version { get; set; }

    public long BytesPerOperation => 1 << 20;

    [GlobalSetup]
    public void Setup()
    {
        var records = new ReadOnlyMemory<byte>(Data.Batch(1 << 20));
        _response = new FetchResponse
        {
            Responses =
            [
                new FetchResponse.FetchableTopicResponse
                {
                    Topic = "perf-topic",
                    Partitions =
                    [
                        new FetchResponse.PartitionData
                        {
                            PartitionIndex = 0, HighWatermark = 1_000_000, LastStableOffset = 1_000_000, LogStartOffset = 0,
                            Records = records,
                        },
                    ],
                },
            ],
        };
        _buffer = new ArrayBufferWriter<byte>((1 << 20) + 4096);
    }

    [Benchmark]
    public long Encode()
    {
        _buffer.ResetWrittenCount();
        var writer = new KafkaWriter(_buffer);
        _response.Write(ref writer, Version);
        writer.Flush();
        return writer.BytesWritten;
    }
}
