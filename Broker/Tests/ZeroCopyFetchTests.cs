using Kayak.Protocol;
using Kayak.Protocol.Messages;
using Kayak.Protocol.Records;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>
/// Fetch responses whose records field is large are sent straight from the log mapping (Network/SplicedResponse)
/// rather than copied into the connection's pipe: the bytes on the wire and the response order must not change.
/// </summary>
[TestFixture]
public sealed class ZeroCopyFetchTests
{
    [TestCase((short)11)]
    [TestCase((short)12)]
    public async Task LargeFetchResponsesKeepTheirBytesAndTheirOrder(short fetchVersion)
    {
        await using var fx = await BrokerFixture.StartAsync();
        var topic = fx.CreateTopic("zc", 1);
        var log = topic.Partitions[0];
        var values = new List<byte[]>();
        for (int i = 0; i < 4; i++)
        {
            // 40 KB values: every fetch below carries well over IByReferenceBufferWriter.MinimumLength of records.
            var value = new byte[40_000];
            new Random(i).NextBytes(value);
            values.Add(value);
            using var builder = new RecordBatchBuilder(new RecordBatchOptions { PartitionLeaderEpoch = 0 });
            builder.Append(1_700_000_000_000 + i, null, value);
            log.Append(builder.ToArray(), 1, 0);
        }

        // Pipelined: small responses around and between the large ones must come back in request order.
        var sent = new List<(int Id, ApiKey Key, short Version, long FetchOffset)>();
        for (int round = 0; round < 3; round++)
        {
            sent.Add((await fx.Client.SendOnlyAsync(new ApiVersionsRequest { ClientSoftwareName = "t", ClientSoftwareVersion = "1" }, 3), ApiKey.ApiVersions, 3, -1));
            sent.Add((await fx.Client.SendOnlyAsync(Fetch(round), fetchVersion), ApiKey.Fetch, fetchVersion, round));
            sent.Add((await fx.Client.SendOnlyAsync(Fetch(0), fetchVersion), ApiKey.Fetch, fetchVersion, 0));
        }

        foreach (var (id, key, version, fetchOffset) in sent)
        {
            var (correlationId, frame) = await fx.Client.ReadFrameAsync();
            Assert.That(correlationId, Is.EqualTo(id), $"response for {key} out of order");
            var reader = new KafkaReader(frame);
            new ResponseHeader().Read(ref reader, ApiMessageTypes.ResponseHeaderVersion(key, version));
            var response = ApiMessageTypes.CreateResponse(key);
            response.Read(ref reader, version);
            Assert.That(reader.Position, Is.EqualTo(frame.Length), $"{key}: bytes left after the response");
            if (key != ApiKey.Fetch) continue;

            var partition = ((FetchResponse)response).Responses[0].Partitions[0];
            Assert.That(partition.ErrorCode, Is.EqualTo(0));
            var records = partition.Records!.Value;
            Assert.That(records.Length, Is.GreaterThanOrEqualTo(IByReferenceBufferWriter.MinimumLength));
            long expectedOffset = fetchOffset;
            foreach (var batch in new BatchEnumerator(records.Span))
            {
                Assert.That(RecordBatch.Validate(batch, new ValidationOptions { RequireContiguousOffsets = false }).IsValid, Is.True);
                Assert.That(System.Buffers.Binary.BinaryPrimitives.ReadInt64BigEndian(batch), Is.EqualTo(expectedOffset));
                foreach (var record in RecordBatch.EnumerateUncompressed(batch))
                    Assert.That(record.Value.SequenceEqual(values[(int)expectedOffset]), Is.True, $"value of offset {expectedOffset}");
                expectedOffset++;
            }
            Assert.That(expectedOffset, Is.EqualTo(4), "every batch from the fetch offset to the log end");
        }
    }

    private static FetchRequest Fetch(long offset) => new()
    {
        MaxWaitMs = 0,
        MinBytes = 1,
        MaxBytes = 1 << 20,
        Topics = [new FetchRequest.FetchTopic { Topic = "zc", Partitions = [new FetchRequest.FetchPartition { Partition = 0, FetchOffset = offset, PartitionMaxBytes = 1 << 20 }] }],
    };
}
