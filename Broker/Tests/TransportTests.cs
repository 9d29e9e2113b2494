using Kayak.Broker.Network;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using Microsoft.Extensions.Logging.Abstractions;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>
/// Issue 10, step 2: request processing does not depend on a socket. The same Connection runs over an in-memory
/// stream transport (the shape TLS will have): requests are answered in order, and large fetched records — sent by
/// reference from the mapping on a socket — arrive byte-exact, copied once into the stream.
/// </summary>
[CancelAfter(30_000)]
public class TransportTests
{
    [Test]
    public async Task ConnectionOverAnInMemoryStream_ServesProduceAndALargeFetch()
    {
        await using var fx = await BrokerFixture.StartAsync();
        var topic = fx.CreateTopic("mem", 1);
        var values = new List<byte[]>();
        for (int i = 0; i < 3; i++)
        {
            var v = new byte[40_000];
            new Random(i).NextBytes(v);
            values.Add(v);
        }

        var stream = InMemoryTransport.Connect(fx.State, NullLogger.Instance, out var done);
        using (var client = RawClient.Over(stream))
        {
            var versions = await client.SendAsync<ApiVersionsResponse>(new ApiVersionsRequest { ClientSoftwareName = "kayak-test", ClientSoftwareVersion = "1.0" }, 3);
            Assert.That(versions.ErrorCode, Is.EqualTo(0));
            foreach (var v in values)
            {
                using var builder = new Kayak.Protocol.Records.RecordBatchBuilder(new Kayak.Protocol.Records.RecordBatchOptions());
                builder.Append(1_700_000_000_000, null, v);
                var produced = await client.SendAsync<ProduceResponse>(new ProduceRequest
                {
                    Acks = 1,
                    TimeoutMs = 5000,
                    TopicData = [new() { Name = "mem", PartitionData = [new() { Index = 0, Records = builder.ToArray() }] }],
                }, 9);
                Assert.That(produced.Responses[0].PartitionResponses[0].ErrorCode, Is.EqualTo(0));
            }
            Assert.That(topic.Partitions[0].LogEndOffset, Is.EqualTo(3));

            // > 32 KB of records: the response owns its segments and the stream transport copies them in.
            var fetched = await client.SendAsync<FetchResponse>(new FetchRequest
            {
                MaxWaitMs = 0,
                MinBytes = 1,
                MaxBytes = 1 << 20,
                Topics = [new() { Topic = "mem", Partitions = [new() { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 1 << 20 }] }],
            }, 11);
            var records = fetched.Responses[0].Partitions[0].Records!.Value;
            Assert.That(records.Length, Is.GreaterThanOrEqualTo(IByReferenceBufferWriter.MinimumLength));
            int n = 0;
            foreach (var (_, _, batch) in SplitBatches(records.ToArray()))
                foreach (var record in Kayak.Protocol.Records.RecordBatch.EnumerateUncompressed(batch))
                    Assert.That(record.Value.SequenceEqual(values[n++]), $"value {n - 1}");
            Assert.That(n, Is.EqualTo(3));
        }
        await done; // the client's close ends the broker's connection
    }

    private static IEnumerable<(long BaseOffset, int Length, byte[] Batch)> SplitBatches(byte[] data)
    {
        int pos = 0;
        while (pos + 12 <= data.Length)
        {
            int len = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(data.AsSpan(pos + 8)) + 12;
            yield return (System.Buffers.Binary.BinaryPrimitives.ReadInt64BigEndian(data.AsSpan(pos)), len, data[pos..(pos + len)]);
            pos += len;
        }
    }
}
