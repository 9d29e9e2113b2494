using System.Buffers;
using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using Kayak.Protocol.Records;
using Microsoft.Extensions.Logging;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>Targeted malformed-input cases of the wire fuzzing (frames, batches, huge counts).</summary>
public partial class WireFuzzTests
{
    // ---------------------------------------------------------------------------------------------------------
    // Hostile patterns

    [Test]
    [CancelAfter(30_000)]
    public async Task MaxSizeFrameTrickledThenAbandonedLeavesBrokerServing()
    {
        long heapBefore = GC.GetTotalMemory(forceFullCollection: true);
        using (var tcp = await ConnectAsync())
        {
            var stream = tcp.GetStream();
            var size = new byte[4];
            BinaryPrimitives.WriteInt32BigEndian(size, _fx.State.Config.SocketRequestMaxBytes);
            await stream.WriteAsync(size);
            // A valid-looking Produce header, then a byte at a time.
            byte[] start = [0, 0, 0, 9, 0, 0, 0, 1, 0, 0];
            foreach (byte x in start)
            {
                await stream.WriteAsync(new[] { x });
                await Task.Delay(20);
            }
        }
        await ControlRoundTripAsync();
        // The broker must not have reserved socket.request.max.bytes (100 MB) per trickling client for long.
        long heapAfter = GC.GetTotalMemory(forceFullCollection: true);
        Assert.That(heapAfter - heapBefore, Is.LessThan(32L * 1024 * 1024));
    }

    // Found by review of the fuzzer's length inflation: an array count is checked against the bytes left in the frame,
    // but the reader sized its list by the count up front, so a 16 MB frame claiming 16 million topics allocated a
    // 128 MB reference array before the first (malformed) element failed. Lists now grow with what parses.
    [Test]
    [CancelAfter(30_000)]
    public async Task ArrayCountClaimingTheWholeFrameDoesNotPreallocate()
    {
        const int padding = 16 << 20;
        var head = RawClient.Encode(new ProduceRequest { Acks = 1, TimeoutMs = 1000 }, 3, 9);
        // Produce v3 ends with the topics array length (INT32, here 0): claim one element per byte that follows,
        // and make those bytes 0xFF so the first topic name is a null string and parsing fails at once.
        var frame = new byte[head.Length + padding];
        head.CopyTo(frame, 0);
        BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(head.Length - 4), padding);
        frame.AsSpan(head.Length).Fill(0xFF);
        BinaryPrimitives.WriteInt32BigEndian(frame, frame.Length - 4);

        using var tcp = await ConnectAsync();
        var stream = tcp.GetStream();
        long before = GC.GetTotalAllocatedBytes(precise: true);
        await stream.WriteAsync(frame);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        Assert.That(await stream.ReadAsync(new byte[8], cts.Token), Is.EqualTo(0), "malformed request closes the connection");
        long allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
        // The broker's frame buffer is the only large allocation allowed: pooled arrays round up to a power of two
        // and grow by doubling from 4 MB (4+8+16+32 MB on first use). The presized list alone was 128 MB.
        Assert.That(allocated, Is.LessThan(5L * padding), $"allocated {allocated / 1024 / 1024} MB for a {padding / 1024 / 1024} MB frame");
        await ControlRoundTripAsync();
    }

    // The fix for the test above receives large requests into a buffer that grows with the bytes that arrive;
    // a request larger than the first buffer (4 MB), sent in uneven pieces, must still arrive intact.
    [Test]
    [CancelAfter(30_000)]
    public async Task LargeProduceSentInPiecesIsAppendedIntact()
    {
        var topic = _fx.CreateTopic("fuzz-large", 1, new Dictionary<string, string> { ["max.message.bytes"] = (16 << 20).ToString() });
        var value = new byte[9 << 20];
        new Random(42).NextBytes(value);
        byte[] batch;
        using (var builder = new RecordBatchBuilder(new RecordBatchOptions()))
        {
            builder.Append(1_700_000_000_000, null, value);
            batch = builder.ToArray();
        }
        var frame = RawClient.Encode(ProduceTo("fuzz-large", 0, batch, acks: -1), 9, 5);
        using var tcp = await ConnectAsync();
        tcp.NoDelay = true;
        var stream = tcp.GetStream();
        var rng = new Random(7);
        for (int sent = 0; sent < frame.Length;)
        {
            int n = Math.Min(frame.Length - sent, rng.Next(1, 3 << 20));
            await stream.WriteAsync(frame.AsMemory(sent, n));
            sent += n;
        }
        var size = new byte[4];
        await stream.ReadExactlyAsync(size);
        var body = new byte[BinaryPrimitives.ReadInt32BigEndian(size)];
        await stream.ReadExactlyAsync(body);
        var reader = new KafkaReader(body);
        new ResponseHeader().Read(ref reader, ApiMessageTypes.ResponseHeaderVersion(ApiKey.Produce, 9));
        var response = new ProduceResponse();
        response.Read(ref reader, 9);
        Assert.That(response.Responses[0].PartitionResponses[0].ErrorCode, Is.EqualTo(0));
        Assert.That(topic.Partitions[0].LogEndOffset, Is.EqualTo(1));

        using var client = await RawClient.ConnectAsync(_fx.Broker.BootstrapServers);
        var fetch = await client.SendAsync<FetchResponse>(new FetchRequest
        {
            MaxWaitMs = 0, MinBytes = 0, MaxBytes = 32 << 20,
            Topics = [new FetchRequest.FetchTopic { Topic = "fuzz-large", Partitions = [new FetchRequest.FetchPartition { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 32 << 20 }] }],
        }, 11);
        var records = fetch.Responses[0].Partitions[0].Records!.Value.ToArray();
        Assert.That(records.AsSpan(RecordBatchHeader.CrcOffset + 4).SequenceEqual(batch.AsSpan(RecordBatchHeader.CrcOffset + 4)), Is.True,
            "stored batch equals the produced one from the attributes on");
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task ManyConnectionsWithPartialFramesThenDisconnect()
    {
        int logMark = _logs.Count;
        var clients = new List<TcpClient>();
        try
        {
            for (int i = 0; i < 100; i++)
            {
                var tcp = await ConnectAsync();
                clients.Add(tcp);
                var frame = RawClient.Encode(new MetadataRequest { Topics = [new MetadataRequest.MetadataRequestTopic { Name = Topic }] }, 9, i);
                // Cut at a different point each time: inside the size, the header, the body.
                int cut = 1 + i * 7 % (frame.Length - 1);
                await tcp.GetStream().WriteAsync(frame.AsMemory(0, cut));
            }
            // One more client is served normally while 100 partial frames are outstanding.
            await ControlRoundTripAsync();
        }
        finally
        {
            foreach (var c in clients) c.Dispose();
        }
        await ControlRoundTripAsync();
        Assert.That(_logs.ErrorsSince(logMark), Is.Empty);
    }

    // A malformed request behind pipelined valid ones: the valid ones are answered, in order, before the close.
    [Test]
    [CancelAfter(30_000)]
    public async Task MalformedRequestAfterPipelinedValidOnesClosesAfterTheirResponses()
    {
        using var client = await RawClient.ConnectAsync(_fx.Broker.BootstrapServers);
        int first = await client.SendOnlyAsync(new MetadataRequest { Topics = [new MetadataRequest.MetadataRequestTopic { Name = Topic }] }, 12);
        int second = await client.SendOnlyAsync(new ListOffsetsRequest
        {
            ReplicaId = -1,
            Topics = [new ListOffsetsRequest.ListOffsetsTopic { Name = Topic, Partitions = [new ListOffsetsRequest.ListOffsetsPartition { PartitionIndex = 0, Timestamp = -1 }] }],
        }, 7);
        // Fetch v4 header, then a body cut inside its replica id.
        await client.WriteRawAsync([0, 0, 0, 11, 0, 1, 0, 4, 0, 0, 0, 99, 0xFF, 0xFF, 0]);
        Assert.That((await client.ReadFrameAsync()).CorrelationId, Is.EqualTo(first));
        Assert.That((await client.ReadFrameAsync()).CorrelationId, Is.EqualTo(second));
        Assert.That(await client.IsClosedByPeerAsync(TimeSpan.FromSeconds(10)), Is.True);
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task MalformedRequestIsLoggedOnceWithoutStackTrace()
    {
        int logMark = _logs.Count;
        using (var tcp = await ConnectAsync())
        {
            // Metadata v9 whose topics array claims 0x7FFFFFFF entries in a 20-byte body.
            var frame = RawClient.Encode(new MetadataRequest { Topics = [new MetadataRequest.MetadataRequestTopic { Name = Topic }] }, 9, 77);
            // size, key, version, correlation id, client id (INT16 length + "kayak-broker-tests"), header tags
            int arrayAt = 4 + 2 + 2 + 4 + 2 + "kayak-broker-tests".Length + 1;
            Assert.That(frame[arrayAt], Is.EqualTo(2), "compact array of one topic");
            byte[] hostile = [.. frame.AsSpan(0, arrayAt), 0xFF, 0xFF, 0xFF, 0xFF, 0x07, .. frame.AsSpan(arrayAt + 1)];
            BinaryPrimitives.WriteInt32BigEndian(hostile, hostile.Length - 4);
            var stream = tcp.GetStream();
            await stream.WriteAsync(hostile);
            var buffer = new byte[16];
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            Assert.That(await stream.ReadAsync(buffer, cts.Token), Is.EqualTo(0), "connection closed");
        }
        await ControlRoundTripAsync();
        var entries = _logs.EntriesSince(logMark);
        var aboutIt = entries.FindAll(e => e.Message.Contains("Closing connection", StringComparison.Ordinal));
        Assert.That(aboutIt, Has.Count.EqualTo(1), string.Join("\n", entries.Select(e => e.Message)));
        Assert.That(aboutIt[0].Level, Is.EqualTo(LogLevel.Information).Or.EqualTo(LogLevel.Warning));
        Assert.That(aboutIt[0].HasException, Is.False, "no stack trace for a client's malformed request");
        Assert.That(_logs.ErrorsSince(logMark), Is.Empty);
    }

    [TestCase("batchLengthTooLarge", (short)ErrorCode.CorruptMessage)]
    [TestCase("batchLengthTooSmall", (short)ErrorCode.CorruptMessage)]
    [TestCase("recordCountHuge", (short)ErrorCode.InvalidRecord)]
    [TestCase("recordCountNegative", (short)ErrorCode.InvalidRecord)]
    [TestCase("recordLengthHuge", (short)ErrorCode.InvalidRecord)]
    [TestCase("recordLengthNegative", (short)ErrorCode.InvalidRecord)]
    [TestCase("recordVarintOverlong", (short)ErrorCode.InvalidRecord)]
    [CancelAfter(30_000)]
    public async Task ProduceBatchWhoseInternalLengthsLieIsRejectedAndNothingAppended(string lie, short expected)
    {
        string topicName = "fuzz-lie-" + lie.ToLowerInvariant();
        var topic = _fx.CreateTopic(topicName, 1);
        byte[] batch = BuildBatch(3);
        // Layout (KIP-98): baseOffset 0..8, batchLength 8..12, ..., crc 17..21, attributes 21.., recordCount 57..61,
        // then records, each a varint length first.
        switch (lie)
        {
            case "batchLengthTooLarge": BinaryPrimitives.WriteInt32BigEndian(batch.AsSpan(8), batch.Length + 100); break;
            case "batchLengthTooSmall": BinaryPrimitives.WriteInt32BigEndian(batch.AsSpan(8), 40); break;
            case "recordCountHuge": BinaryPrimitives.WriteInt32BigEndian(batch.AsSpan(57), int.MaxValue); break;
            case "recordCountNegative": BinaryPrimitives.WriteInt32BigEndian(batch.AsSpan(57), -5); break;
            case "recordLengthHuge": batch = ReplaceFirstRecordLength(batch, [0xFE, 0xFF, 0xFF, 0xFF, 0x0F]); break;
            case "recordLengthNegative": batch = ReplaceFirstRecordLength(batch, [0x01]); break;
            case "recordVarintOverlong": batch = ReplaceFirstRecordLength(batch, [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]); break;
        }
        if (lie is not ("batchLengthTooLarge" or "batchLengthTooSmall"))
            BinaryPrimitives.WriteUInt32BigEndian(batch.AsSpan(17), RecordBatch.ComputeCrc(batch)); // only the lie is wrong

        using var client = await RawClient.ConnectAsync(_fx.Broker.BootstrapServers);
        var response = await client.SendAsync<ProduceResponse>(ProduceTo(topicName, 0, batch, acks: -1), 9);
        var partition = response.Responses[0].PartitionResponses[0];
        Assert.That(partition.ErrorCode, Is.EqualTo(expected), $"error for {lie}");
        Assert.That(topic.Partitions[0].LogEndOffset, Is.EqualTo(0), "nothing appended");
        await ControlRoundTripAsync();
    }

    // Record batches whose bytes are mutated but whose CRC is recomputed, so the broker's batch and record
    // validation (not the CRC) must decide: each produce either appends exactly the batch's records or fails
    // without appending, and whatever was appended reads back as valid batches with contiguous offsets.
    [Test]
    [CancelAfter(60_000)]
    public async Task MutatedBatchesWithValidCrcAreAppendedWholeOrNotAtAll()
    {
        var topic = _fx.CreateTopic("fuzz-batches", 1);
        var log = topic.Partitions[0];
        var rng = new Random(Seed + 1);
        int logMark = _logs.Count;
        var codecs = new[] { CompressionType.None, CompressionType.Gzip, CompressionType.Snappy, CompressionType.Lz4, CompressionType.Zstd };
        using var client = await RawClient.ConnectAsync(_fx.Broker.BootstrapServers);
        int appended = 0, refused = 0;
        for (int i = 0; i < 8 * MutationsPerBase; i++)
        {
            var codec = codecs[rng.Next(codecs.Length)];
            int records = 1 + rng.Next(3);
            byte[] batch;
            using (var builder = new RecordBatchBuilder(new RecordBatchOptions { Compression = codec }))
            {
                for (int r = 0; r < records; r++)
                    builder.Append(1_700_000_000_000 + r, rng.Next(3) == 0 ? null : RandomBytes(rng, rng.Next(1, 12)), RandomBytes(rng, rng.Next(0, 40)),
                        rng.Next(2) == 0 ? null : [new RecordHeader("h" + r, rng.Next(3) == 0 ? null : RandomBytes(rng, 3))]);
                batch = builder.ToArray();
            }
            // Anything from the partition leader epoch on (base offset and length are the framing ConnectionTests
            // and the lying-length test cover); the CRC itself is recomputed below.
            int flips = 1 + rng.Next(2);
            for (int f = 0; f < flips; f++)
            {
                int pos = rng.Next(RecordBatchHeader.PartitionLeaderEpochOffset, batch.Length);
                if (pos is >= RecordBatchHeader.CrcOffset and < RecordBatchHeader.AttributesOffset) pos = RecordBatchHeader.AttributesOffset + 1;
                batch[pos] = rng.Next(2) == 0 ? Magic[rng.Next(Magic.Length)] : (byte)(batch[pos] ^ (1 << rng.Next(8)));
            }
            BinaryPrimitives.WriteUInt32BigEndian(batch.AsSpan(RecordBatchHeader.CrcOffset), RecordBatch.ComputeCrc(batch));

            long leoBefore = log.LogEndOffset;
            var response = await client.SendAsync<ProduceResponse>(ProduceTo("fuzz-batches", 0, batch, acks: -1), 9);
            var p = response.Responses[0].PartitionResponses[0];
            long leoAfter = log.LogEndOffset;
            if (p.ErrorCode == 0)
            {
                appended++;
                Assert.That(p.BaseOffset, Is.EqualTo(leoBefore), $"#{i} base offset");
                Assert.That(leoAfter - leoBefore, Is.EqualTo(RecordBatchHeader.TryRead(batch, out var h) ? h.RecordsCount : -1), $"#{i} appended exactly the batch's records");
            }
            else
            {
                refused++;
                Assert.That(leoAfter, Is.EqualTo(leoBefore), $"#{i} refused with {p.ErrorCode} but the log grew");
            }
        }
        TestContext.Out.WriteLine($"{appended} appended, {refused} refused");
        Assert.That(appended, Is.GreaterThan(0));
        Assert.That(refused, Is.GreaterThan(0));

        // Read the whole partition back: every stored batch is valid and offsets are contiguous up to the end.
        var fetch = await client.SendAsync<FetchResponse>(new FetchRequest
        {
            MaxWaitMs = 0, MinBytes = 0, MaxBytes = 64 << 20,
            Topics = [new FetchRequest.FetchTopic { Topic = "fuzz-batches", Partitions = [new FetchRequest.FetchPartition { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 64 << 20 }] }],
        }, 11);
        Assert.That(StoredBatchesEnd(fetch.Responses[0].Partitions[0].Records!.Value.ToArray()), Is.EqualTo(log.LogEndOffset));
        Assert.That(_logs.ErrorsSince(logMark), Is.Empty);
        await ControlRoundTripAsync();
    }

    /// <summary>Validates each stored batch as the produce path would and returns the offset after the last one.</summary>
    private static long StoredBatchesEnd(byte[] records)
    {
        long next = 0;
        int offset = 0;
        var options = new ValidationOptions { RequireContiguousOffsets = false };
        while (offset < records.Length && RecordBatch.TryReadBatch(records.AsSpan(offset), out var header, out int size))
        {
            Assert.That(header.BaseOffset, Is.EqualTo(next), "stored batches are contiguous");
            var validation = RecordBatch.Validate(records.AsSpan(offset, size), options);
            Assert.That(validation.IsValid, Is.True, $"stored batch at {header.BaseOffset}: {validation.Error} {validation.Message}");
            next = header.LastOffset + 1;
            offset += size;
        }
        Assert.That(offset, Is.EqualTo(records.Length), "no partial batch at the end");
        return next;
    }

    // Found by the fuzzer: a CreateTopics/CreatePartitions count of 0x7FFFFFFF made the broker allocate a partition
    // table of two billion entries and the process died of OutOfMemory. Kafka's controller refuses operations
    // needing more than 10,000 metadata records with POLICY_VIOLATION.
    [TestCase(int.MaxValue)]
    [TestCase(10_000)]
    [CancelAfter(30_000)]
    public async Task CreateTopicsWithHugePartitionCountIsPolicyViolation(int partitions)
    {
        using var client = await RawClient.ConnectAsync(_fx.Broker.BootstrapServers);
        string name = $"fuzz-huge-{partitions}";
        var r = await client.SendAsync<CreateTopicsResponse>(new CreateTopicsRequest
        {
            TimeoutMs = 5000,
            Topics =
            [
                new CreateTopicsRequest.CreatableTopic { Name = name, NumPartitions = partitions, ReplicationFactor = 1 },
                new CreateTopicsRequest.CreatableTopic { Name = name + "-small", NumPartitions = 1, ReplicationFactor = 1 },
            ],
        }, 7);
        Assert.That(r.Topics.Select(t => t.ErrorCode), Is.EqualTo(new[] { (short)ErrorCode.PolicyViolation, (short)ErrorCode.PolicyViolation }));
        Assert.That(r.Topics[0].ErrorMessage, Is.EqualTo("Unable to perform excessively large batch operation."));
        Assert.That(_fx.State.Topics.TryGet(name, out _) || _fx.State.Topics.TryGet(name + "-small", out _), Is.False, "nothing created");

        var grow = await client.SendAsync<CreatePartitionsResponse>(new CreatePartitionsRequest
        {
            TimeoutMs = 5000,
            Topics = [new CreatePartitionsRequest.CreatePartitionsTopic { Name = "fuzz-grow", Count = partitions == int.MaxValue ? partitions : partitions + 2 }],
        }, 3);
        Assert.That(grow.Results[0].ErrorCode, Is.EqualTo((short)ErrorCode.PolicyViolation));
        Assert.That(_fx.State.Topics.TryGet("fuzz-grow", out var t) ? t.Partitions.Count : -1, Is.EqualTo(1), "fuzz-grow unchanged");
        await ControlRoundTripAsync();
    }

    // Found by the fuzzer: a Metadata v10/v11 topic with a null name (the field is nullable from v10 but only usable
    // from v12) was answered with a null name the v10/v11 response cannot encode; the write failed, the connection
    // closed and an error was logged. Kafka answers INVALID_REQUEST for every topic, a null name as "".
    [TestCase((short)10, true)]
    [TestCase((short)11, false)]
    [CancelAfter(30_000)]
    public async Task MetadataWithNullNameOrTopicIdBeforeV12IsInvalidRequest(short version, bool nullName)
    {
        int logMark = _logs.Count;
        using var client = await RawClient.ConnectAsync(_fx.Broker.BootstrapServers);
        var id = TopicIdOf(Topic);
        var r = await client.SendAsync<MetadataResponse>(new MetadataRequest
        {
            Topics =
            [
                new MetadataRequest.MetadataRequestTopic { Name = Topic },
                nullName ? new MetadataRequest.MetadataRequestTopic { Name = null } : new MetadataRequest.MetadataRequestTopic { Name = Topic, TopicId = id },
            ],
        }, version);
        Assert.That(r.Topics.Select(t => t.ErrorCode), Is.EqualTo(new[] { (short)ErrorCode.InvalidRequest, (short)ErrorCode.InvalidRequest }));
        Assert.That(r.Topics[1].Name, Is.EqualTo(nullName ? "" : Topic));
        Assert.That(_logs.ErrorsSince(logMark), Is.Empty);
    }

    private static byte[] ReplaceFirstRecordLength(byte[] batch, byte[] replacement)
    {
        const int recordsStart = 61;
        int oldLen = 0;
        while ((batch[recordsStart + oldLen] & 0x80) != 0) oldLen++;
        oldLen++;
        var result = new byte[batch.Length - oldLen + replacement.Length];
        batch.AsSpan(0, recordsStart).CopyTo(result);
        replacement.CopyTo(result.AsSpan(recordsStart));
        batch.AsSpan(recordsStart + oldLen).CopyTo(result.AsSpan(recordsStart + replacement.Length));
        BinaryPrimitives.WriteInt32BigEndian(result.AsSpan(8), result.Length - 12);
        return result;
    }
}
