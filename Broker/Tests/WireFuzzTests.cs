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

/// <summary>
/// Wire-level fuzzing of every served API and version. Each test starts from valid requests (a default one and a
/// realistic one naming existing topics, groups, transactions), sends mutated copies (bit flips, magic bytes,
/// truncations, inflated length fields, insertions, deletions) and checks Kafka's contract for each: a request
/// that does not parse closes the connection (Kafka's RequestContext.parseRequest fails and the socket server
/// closes it), a request that parses gets a well-formed response for its correlation id. Nothing may hang, crash,
/// log an Error, allocate without bound or damage the log of a control topic. Seeds are fixed per API so a
/// failure reproduces; its message names the version, mutation and bytes.
/// </summary>
[TestFixture, NonParallelizable]
public class WireFuzzTests
{
    /// <summary>Mutated copies per base request and version; KAYAK_FUZZ_MUTATIONS raises it for a deeper (still seeded) run.</summary>
    private static readonly int MutationsPerBase =
        int.TryParse(Environment.GetEnvironmentVariable("KAYAK_FUZZ_MUTATIONS"), out int n) && n > 0 ? n : 100;
    private const string ControlTopic = "fuzz-control";
    private const string Topic = RealisticRequests.Topic;
    private const string Group = RealisticRequests.Group;
    private const string TransactionalId = RealisticRequests.TransactionalId;
    /// <summary>Base seed; KAYAK_FUZZ_SEED explores other mutation sequences (the failure message names the request bytes).</summary>
    private static readonly int Seed =
        int.TryParse(Environment.GetEnvironmentVariable("KAYAK_FUZZ_SEED"), out int s) ? s : 0x5EED;
    private static readonly TimeSpan ResponseTimeout = TimeSpan.FromSeconds(5);

    private BrokerFixture _fx = null!;
    private CapturingLoggerFactory _logs = null!;
    private readonly List<byte[]> _controlValues = new();

    [OneTimeSetUp]
    public async Task StartBroker()
    {
        _logs = new CapturingLoggerFactory();
        _fx = await BrokerFixture.StartAsync(o =>
        {
            o.LoggerFactory = _logs;
            // A fresh group's first join would otherwise wait 3 s for more members (Kafka's default).
            o.Properties["group.initial.rebalance.delay.ms"] = "0";
            // Mutated Metadata/Produce must not fill the data dir with auto-created topics.
            o.Properties["auto.create.topics.enable"] = "false";
        });
        _fx.CreateTopic(ControlTopic, 1);
        var topic = _fx.CreateTopic(Topic, 2);
        BrokerFixture.Produce(topic.Partitions[0], 3);
        _fx.CreateTopic("fuzz-grow", 1);
        await ControlRoundTripAsync();
    }

    [OneTimeTearDown]
    public async Task StopBroker()
    {
        await _fx.DisposeAsync();
        _logs.Dispose();
    }

    private static IEnumerable<TestCaseData> ServedApis()
    {
        foreach (var s in ApiVersionTable.Served)
            yield return new TestCaseData(s.Key).SetName($"MutatedRequestsAreAnsweredOrClose({s.Key})");
    }

    [TestCaseSource(nameof(ServedApis))]
    [CancelAfter(60_000)]
    public async Task MutatedRequestsAreAnsweredOrClose(ApiKey key)
    {
        var served = ApiVersionTable.Find(key)!;
        var rng = new Random(Seed + 7919 * (int)key);
        var failures = new List<string>();
        var stats = new FuzzStats();
        int logMark = _logs.Count;
        long heapBefore = GC.GetTotalMemory(forceFullCollection: true);
        long allocatedBefore = GC.GetTotalAllocatedBytes(precise: false);

        long maxCost = 0;
        string maxCostRequest = "";
        using (var session = new FuzzSession(_fx.Broker.BootstrapServers))
        {
            for (short v = served.MinVersion; v <= served.MaxVersion; v++)
            {
                // Bases: 0 = default request, 1 = realistic request, both with their bytes mutated; 2 = the realistic
                // (or default) request with field values mutated and re-encoded, so it parses and reaches the handler.
                for (int b = 0; b < 3; b++)
                {
                    for (int i = 0; i < MutationsPerBase; i++)
                    {
                        // JoinGroup gets a fresh group per copy: a second member joining the same group would
                        // legitimately wait for the first one's rebalance timeout.
                        var request = b == 0 ? ApiMessageTypes.CreateRequest(key) : Realistic(key, v, rng.Next(1_000_000));
                        if (request is null)
                        {
                            if (b == 1) continue;
                            request = ApiMessageTypes.CreateRequest(key);
                        }
                        byte[] body;
                        string description;
                        if (b < 2)
                        {
                            body = EncodeHeaderAndBody(request, v, correlationId: 1000 + i);
                            description = Mutate(rng, ref body);
                        }
                        else
                        {
                            var encoded = MutateValues(rng, request, v, 1000 + i, out description);
                            if (encoded is null) { stats.Skipped++; continue; }
                            body = encoded;
                        }
                        long before = GC.GetTotalAllocatedBytes(precise: false);
                        string? failure = await session.ExchangeAsync(key, v, body, stats);
                        long cost = GC.GetTotalAllocatedBytes(precise: false) - before;
                        if (cost > maxCost) (maxCost, maxCostRequest) = (cost, $"v{v} [{description}]");
                        if (failure is not null && failures.Count < 8)
                            failures.Add($"{key} v{v} base {(b == 0 ? "default" : b == 1 ? "realistic" : "values")} #{i} [{description}]: {failure}\n    bytes {Hex(body)}");
                    }
                }
            }
        }

        long allocated = GC.GetTotalAllocatedBytes(precise: false) - allocatedBefore;
        long heapAfter = GC.GetTotalMemory(forceFullCollection: true);
        var errors = _logs.ErrorsSince(logMark);
        TestContext.Out.WriteLine($"{key}: {stats}; allocated {allocated / 1024 / 1024} MB (one exchange at most {maxCost / 1024} KB), heap {heapBefore / 1024 / 1024} -> {heapAfter / 1024 / 1024} MB");

        Assert.That(failures, Is.Empty, string.Join("\n", failures) + "\nbroker errors:\n" + string.Join("\n", errors.Take(3)));
        Assert.That(errors, Is.Empty, "broker logged errors:\n" + string.Join("\n", errors.Take(5)));
        Assert.That(stats.Answered + stats.Closed, Is.GreaterThan(0));
        // A request can claim 2 GB in a length field; honouring it would show up here. Measured per exchange
        // (broker and this client share the process): requests are at most a few KB, responses too, except
        // listings of everything the fuzzer created (ListGroups after thousands of JoinGroups).
        Assert.That(maxCost, Is.LessThan(64L * 1024 * 1024), $"bytes allocated by one exchange: {maxCostRequest}");
        Assert.That(heapAfter - heapBefore, Is.LessThan(64L * 1024 * 1024), "live managed heap growth");
        await ControlRoundTripAsync();
    }

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

    // ---------------------------------------------------------------------------------------------------------
    // Control round trip: the broker still serves and the control topic's log holds exactly what was produced.

    private async Task ControlRoundTripAsync()
    {
        using var client = await RawClient.ConnectAsync(_fx.Broker.BootstrapServers);
        var versions = await client.SendAsync<ApiVersionsResponse>(new ApiVersionsRequest { ClientSoftwareName = "fuzz", ClientSoftwareVersion = "1" }, 3);
        Assert.That(versions.ErrorCode, Is.EqualTo(0));
        var metadata = await client.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [new MetadataRequest.MetadataRequestTopic { Name = ControlTopic }] }, 12);
        Assert.That(metadata.Topics[0].ErrorCode, Is.EqualTo(0));
        Assert.That(metadata.Topics[0].Partitions, Has.Count.EqualTo(1));

        var value = Encoding.UTF8.GetBytes($"control-{_controlValues.Count}");
        using (var builder = new RecordBatchBuilder(new RecordBatchOptions()))
        {
            builder.Append(1_700_000_000_000 + _controlValues.Count, null, value);
            var produced = await client.SendAsync<ProduceResponse>(ProduceTo(ControlTopic, 0, builder.ToArray(), acks: -1), 9);
            var p = produced.Responses[0].PartitionResponses[0];
            Assert.That(p.ErrorCode, Is.EqualTo(0));
            Assert.That(p.BaseOffset, Is.EqualTo(_controlValues.Count), "control topic offsets are contiguous");
        }
        _controlValues.Add(value);

        var fetch = await client.SendAsync<FetchResponse>(new FetchRequest
        {
            MaxWaitMs = 0,
            MinBytes = 0,
            MaxBytes = 1 << 20,
            Topics = [new FetchRequest.FetchTopic { Topic = ControlTopic, Partitions = [new FetchRequest.FetchPartition { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 1 << 20 }] }],
        }, 11);
        var fp = fetch.Responses[0].Partitions[0];
        Assert.That(fp.ErrorCode, Is.EqualTo(0));
        Assert.That(fp.HighWatermark, Is.EqualTo(_controlValues.Count));
        Assert.That(CheckControlRecords(fp.Records!.Value.ToArray()), Is.EqualTo(_controlValues.Count), "every control record read back");
    }

    /// <summary>Checks each stored control batch (offset, CRC, value) and returns how many records were read.</summary>
    private int CheckControlRecords(byte[] records)
    {
        int offset = 0, index = 0;
        while (RecordBatch.TryReadBatch(records.AsSpan(offset), out var header, out int size))
        {
            var span = records.AsSpan(offset, size);
            Assert.That(header.BaseOffset, Is.EqualTo(index));
            Assert.That(RecordBatch.ComputeCrc(span), Is.EqualTo(header.Crc), "stored batch CRC");
            foreach (var record in RecordBatch.EnumerateUncompressed(span))
            {
                Assert.That(record.Value.ToArray(), Is.EqualTo(_controlValues[index]), $"control record {index}");
                index++;
            }
            offset += size;
        }
        return index;
    }

    private Uuid TopicIdOf(string name) => _fx.State.Topics.TryGet(name, out var t) ? t.TopicId : default;

    // ---------------------------------------------------------------------------------------------------------
    // Requests

    private static byte[] BuildBatch(int records) => RealisticRequests.BuildBatch(records);

    private static ProduceRequest ProduceTo(string topic, int partition, byte[] batch, short acks) =>
        RealisticRequests.ProduceTo(topic, partition, batch, acks);

    private IApiMessage? Realistic(ApiKey key, short v, int unique) => RealisticRequests.For(key, v, unique, TopicIdOf);

    private static byte[] EncodeHeaderAndBody(IApiMessage request, short version, int correlationId) =>
        RawClient.Encode(request, version, correlationId).AsSpan(4).ToArray();

    // ---------------------------------------------------------------------------------------------------------
    // Mutations. The api key and version (first 4 bytes) are mostly kept so each API's batch fuzzes that API.

    private const int Protected = 4;
    private static readonly byte[] Magic = [0x00, 0xFF, 0x7F, 0x80];

    private static string Mutate(Random rng, ref byte[] data)
    {
        int count = 1 + (rng.Next(4) == 0 ? rng.Next(3) : 0);
        var parts = new List<string>(count);
        for (int m = 0; m < count && data.Length > Protected; m++)
            parts.Add(MutateOnce(rng, ref data));
        return string.Join("; ", parts);
    }

    private static string MutateOnce(Random rng, ref byte[] data)
    {
        // Now and then the api key or version itself.
        int pos = rng.Next(16) == 0 ? rng.Next(0, Protected) : rng.Next(Protected, data.Length);
        switch (rng.Next(8))
        {
            case 0:
            {
                int bit = rng.Next(8);
                data[pos] ^= (byte)(1 << bit);
                return $"flip bit {bit} at {pos}";
            }
            case 1:
            {
                byte b = Magic[rng.Next(Magic.Length)];
                data[pos] = b;
                return $"byte {pos} = 0x{b:X2}";
            }
            case 2:
            {
                int len = rng.Next(Protected, data.Length);
                data = data.AsSpan(0, len).ToArray();
                return $"truncate to {len}";
            }
            case 3:
            case 4:
                return InflateLength(rng, ref data);
            case 5:
            {
                var insert = new byte[1 + rng.Next(16)];
                for (int i = 0; i < insert.Length; i++) insert[i] = rng.Next(3) == 0 ? Magic[rng.Next(Magic.Length)] : (byte)rng.Next(256);
                data = [.. data.AsSpan(0, pos), .. insert, .. data.AsSpan(pos)];
                return $"insert {Convert.ToHexString(insert)} at {pos}";
            }
            case 6:
            {
                int len = Math.Min(1 + rng.Next(8), data.Length - pos);
                data = [.. data.AsSpan(0, pos), .. data.AsSpan(pos + len)];
                return $"delete {len} at {pos}";
            }
            default:
            {
                if (data.Length - pos < 4) goto case 0;
                int value = rng.Next(4) switch { 0 => 0, 1 => -1, 2 => int.MinValue, _ => int.MaxValue };
                BinaryPrimitives.WriteInt32BigEndian(data.AsSpan(pos), value);
                return $"int32 {value} at {pos}";
            }
        }
    }

    /// <summary>
    /// Finds a field that looks like a length or count (an INT16/INT32 or uvarint whose value fits in what follows)
    /// and makes it claim far more: huge, negative, or just past the end.
    /// </summary>
    private static string InflateLength(Random rng, ref byte[] data)
    {
        var candidates = new List<(int Pos, int Width)>();
        for (int p = Protected; p < data.Length; p++)
        {
            int rest = data.Length - p;
            if (rest >= 4)
            {
                int v32 = BinaryPrimitives.ReadInt32BigEndian(data.AsSpan(p));
                if (v32 >= 0 && v32 <= rest - 4) candidates.Add((p, 4));
            }
            if (rest >= 2)
            {
                short v16 = BinaryPrimitives.ReadInt16BigEndian(data.AsSpan(p));
                if (v16 > 0 && v16 <= rest - 2) candidates.Add((p, 2));
            }
            if (data[p] > 0 && data[p] < 0x80 && data[p] - 1 <= rest - 1) candidates.Add((p, 1));
        }
        if (candidates.Count == 0) return "no length field";
        var (pos, width) = candidates[rng.Next(candidates.Count)];
        int remaining = data.Length - pos - width;
        switch (width)
        {
            case 4:
            {
                int value = rng.Next(4) switch { 0 => int.MaxValue, 1 => int.MinValue, 2 => -2, _ => remaining + 1 };
                BinaryPrimitives.WriteInt32BigEndian(data.AsSpan(pos), value);
                return $"int32 length at {pos} = {value}";
            }
            case 2:
            {
                short value = rng.Next(3) switch { 0 => short.MaxValue, 1 => (short)-2, _ => (short)Math.Min(short.MaxValue, remaining + 1) };
                BinaryPrimitives.WriteInt16BigEndian(data.AsSpan(pos), value);
                return $"int16 length at {pos} = {value}";
            }
            default:
            {
                byte[] varint = rng.Next(3) switch
                {
                    0 => [0xFF, 0xFF, 0xFF, 0xFF, 0x0F], // uint.MaxValue: N+1 overflows to 0 in careless code
                    1 => [0xFF, 0xFF, 0xFF, 0xFF, 0x07], // int.MaxValue
                    _ => [0x80, 0x80, 0x80, 0x80, 0x80, 0x01], // over-long: never ends within 5 bytes
                };
                data = [.. data.AsSpan(0, pos), .. varint, .. data.AsSpan(pos + 1)];
                return $"varint length at {pos} = {Convert.ToHexString(varint)}";
            }
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // Value mutations: well-formed requests carrying hostile values (extreme numbers, odd or huge strings, nulls,
    // empty or duplicated lists), which is where handlers, not the reader, must hold.

    private static readonly string[] OddStrings =
    [
        // No existing topic names: DeleteTopics would legitimately delete them and later batches need them.
        "", " ", ".", "..", "fuzz-absent", new string('x', 300), new string('y', 249), "fuzz\u0000topic", "t\u00e9st-\u2603",
        "../../etc/passwd", "-1", "2147483648",
    ];

    /// <summary>Mutates 1-3 field values of <paramref name="request"/> and encodes it; null when no mutation encodes at this version.</summary>
    private static byte[]? MutateValues(Random rng, IApiMessage request, short version, int correlationId, out string description)
    {
        var fields = new List<(object Owner, System.Reflection.PropertyInfo Property)>();
        CollectFields(request, fields, depth: 0);
        var parts = new List<string>();
        int count = 1 + rng.Next(3);
        for (int m = 0; m < count && fields.Count > 0; m++)
        {
            var (owner, property) = fields[rng.Next(fields.Count)];
            object? value = InterestingValue(rng, property.PropertyType, property.GetValue(owner));
            if (value is NoValue) continue;
            property.SetValue(owner, value);
            parts.Add($"{owner.GetType().Name}.{property.Name} = {Describe(value)}");
        }
        description = string.Join("; ", parts);
        try
        {
            return EncodeHeaderAndBody(request, version, correlationId);
        }
        catch (Exception e) when (e is ProtocolException or NullReferenceException or ArgumentException or InvalidOperationException)
        {
            // A value this version cannot carry (a field it lacks, a null where it has no nulls): not sendable.
            return null;
        }
    }

    private static void CollectFields(object message, List<(object, System.Reflection.PropertyInfo)> fields, int depth)
    {
        if (depth > 4) return;
        foreach (var p in message.GetType().GetProperties())
        {
            if (!p.CanWrite || p.Name == "UnknownTaggedFields" || p.GetIndexParameters().Length > 0) continue;
            fields.Add((message, p));
            var value = p.GetValue(message);
            if (value is IKafkaMessage nested) CollectFields(nested, fields, depth + 1);
            else if (value is System.Collections.IList list)
                foreach (var e in list)
                    if (e is IKafkaMessage element) CollectFields(element, fields, depth + 1);
        }
    }

    private sealed class NoValue { public static readonly NoValue Instance = new(); }

    private static object? InterestingValue(Random rng, Type type, object? current)
    {
        if (type == typeof(int)) return rng.Next(7) switch { 0 => 0, 1 => -1, 2 => int.MinValue, 3 => int.MaxValue, 4 => -2, 5 => 1 << 20, _ => rng.Next() };
        if (type == typeof(long)) return rng.Next(6) switch { 0 => 0L, 1 => -1L, 2 => long.MinValue, 3 => long.MaxValue, 4 => -2L, _ => (long)rng.Next() << 16 };
        if (type == typeof(short)) return rng.Next(5) switch { 0 => (short)0, 1 => (short)-1, 2 => short.MinValue, 3 => short.MaxValue, _ => (short)rng.Next(-5, 20) };
        if (type == typeof(sbyte)) return rng.Next(4) switch { 0 => (sbyte)0, 1 => (sbyte)-1, 2 => sbyte.MinValue, _ => (sbyte)rng.Next(-3, 10) };
        if (type == typeof(bool)) return !(bool)current!;
        if (type == typeof(string)) return rng.Next(8) == 0 ? null : OddStrings[rng.Next(OddStrings.Length)];
        if (type == typeof(Uuid)) return rng.Next(3) switch { 0 => Uuid.Zero, 1 => Uuid.One, _ => new Uuid(rng.NextInt64(), rng.NextInt64()) };
        if (type == typeof(byte[])) return rng.Next(3) switch { 0 => null, 1 => Array.Empty<byte>(), _ => RandomBytes(rng, rng.Next(1, 64)) };
        if (type == typeof(ReadOnlyMemory<byte>?)) return rng.Next(3) switch { 0 => null, 1 => (ReadOnlyMemory<byte>?)ReadOnlyMemory<byte>.Empty, _ => (ReadOnlyMemory<byte>?)RandomBytes(rng, rng.Next(1, 80)) };
        if (current is System.Collections.IList list && type.IsGenericType)
        {
            switch (rng.Next(3))
            {
                case 0: return null;
                case 1: return Activator.CreateInstance(type);
                default:
                    if (list.Count == 0) return NoValue.Instance;
                    list.Add(list[rng.Next(list.Count)]); // a duplicate entry (same topic/partition/group twice)
                    return list;
            }
        }
        return NoValue.Instance;
    }

    private static byte[] RandomBytes(Random rng, int n)
    {
        var b = new byte[n];
        rng.NextBytes(b);
        return b;
    }

    private static string Describe(object? value) => value switch
    {
        null => "null",
        string { Length: > 20 } s => $"string({s.Length})",
        byte[] b => $"bytes({b.Length})",
        System.Collections.IList l => $"list({l.Count})",
        _ => value.ToString() ?? "?",
    };

    private static string Hex(byte[] data) =>
        data.Length <= 256 ? Convert.ToHexString(data) : Convert.ToHexString(data.AsSpan(0, 256)) + $"...({data.Length} bytes)";

    private async Task<TcpClient> ConnectAsync()
    {
        var bootstrap = _fx.Broker.BootstrapServers;
        int colon = bootstrap.LastIndexOf(':');
        var tcp = new TcpClient();
        await tcp.ConnectAsync(bootstrap[..colon], int.Parse(bootstrap[(colon + 1)..]));
        return tcp;
    }

    private sealed class FuzzStats
    {
        public int Answered, Closed, NoResponse, Skipped;
        public override string ToString() => $"{Answered} answered, {Closed} closed, {NoResponse} acks=0, {Skipped} skipped";
    }

    /// <summary>
    /// One connection at a time to the broker, reopened after each close. Judges each mutated request against a
    /// local parse with the same generated reader the broker uses.
    /// </summary>
    private sealed class FuzzSession : IDisposable
    {
        private readonly string _bootstrap;
        private TcpClient? _tcp;
        private NetworkStream? _stream;
        private int _pingId = 1_000_000;
        private readonly HashSet<string> _joinedGroups = new(StringComparer.Ordinal);

        public FuzzSession(string bootstrap) { _bootstrap = bootstrap; }

        private async Task<NetworkStream> StreamAsync()
        {
            if (_stream is not null) return _stream;
            int colon = _bootstrap.LastIndexOf(':');
            // NoDelay: after an acks=0 produce (no response to piggyback an ACK on) Nagle would hold the ping for
            // the peer's delayed ACK, 40 ms each.
            _tcp = new TcpClient { NoDelay = true };
            await _tcp.ConnectAsync(_bootstrap[..colon], int.Parse(_bootstrap[(colon + 1)..]));
            _stream = _tcp.GetStream();
            return _stream;
        }

        private void Reset()
        {
            _stream?.Dispose();
            _tcp?.Dispose();
            _stream = null;
            _tcp = null;
        }

        public void Dispose() => Reset();

        /// <summary>Sends one mutated header+body; returns null when the broker behaved, else what went wrong.</summary>
        public async Task<string?> ExchangeAsync(ApiKey key, short version, byte[] payload, FuzzStats stats)
        {
            // What Kafka would do: a body that does not parse closes the connection; one that parses is answered,
            // except Produce with acks=0 (no response, or a close when it failed).
            bool parses;
            int correlationId = 0;
            bool acksZero = false;
            // Mutations may hit the api key and version too: an unknown key or an unsupported version closes the
            // connection, except ApiVersions, which KIP-511 answers at v0 with UNSUPPORTED_VERSION.
            bool unsupportedApiVersions = false;
            if (payload.Length >= 4)
            {
                key = (ApiKey)BinaryPrimitives.ReadInt16BigEndian(payload);
                version = BinaryPrimitives.ReadInt16BigEndian(payload.AsSpan(2));
            }
            var served = ApiVersionTable.Find(key);
            bool supported = served is not null && version >= served.MinVersion && version <= served.MaxVersion;
            try
            {
                if (payload.Length < 8 || served is null) ThrowHelper.Malformed("unknown api key or short header");
                var reader = new KafkaReader(payload);
                var header = new RequestHeader();
                if (!supported)
                {
                    if (key != ApiKey.ApiVersions) ThrowHelper.Malformed("unsupported version");
                    header.Read(ref reader, 1);
                    correlationId = header.CorrelationId;
                    unsupportedApiVersions = true;
                    version = 0;
                    throw new ParsedEnough();
                }
                header.Read(ref reader, ApiMessageTypes.RequestHeaderVersion(key, version));
                correlationId = header.CorrelationId;
                var request = ApiMessageTypes.CreateRequest(key);
                request.Read(ref reader, version);
                parses = true;
                acksZero = request is ProduceRequest { Acks: 0 };
                // Long polls that legitimately wait: Fetch's max wait, bounded by the response timeout here.
                if (request is FetchRequest { MaxWaitMs: > 1000, MinBytes: > 0 }) { stats.Skipped++; return null; }
                // A second member joining a group (a mutation can turn two group ids into the same one) legitimately
                // waits for the first member's rebalance timeout: each group is joined once.
                if (request is JoinGroupRequest join && !_joinedGroups.Add(join.GroupId)) { stats.Skipped++; return null; }
            }
            catch (ParsedEnough)
            {
                parses = true;
            }
            catch (ProtocolException)
            {
                parses = false;
            }
            catch (Exception e)
            {
                // The generated reader must only throw ProtocolException for bad input; anything else is a bug
                // the broker logs as an unexpected error.
                return $"local parse threw {e.GetType().Name}: {e.Message}";
            }

            var stream = await StreamAsync();
            var frame = new byte[4 + payload.Length];
            BinaryPrimitives.WriteInt32BigEndian(frame, payload.Length);
            payload.CopyTo(frame, 4);
            try
            {
                await stream.WriteAsync(frame);
            }
            catch (IOException)
            {
                // The broker may close while a large mutated frame is still being written; only acceptable if the
                // request cannot be answered.
                Reset();
                stats.Closed++;
                return parses && !acksZero ? "connection closed while sending a request that parses" : null;
            }

            if (!parses)
            {
                var (closed, _, _) = await ReadAsync(stream);
                Reset();
                if (closed == ReadOutcome.Closed) { stats.Closed++; return null; }
                return closed == ReadOutcome.Timeout ? "hang: unparseable request neither answered nor closed" : "answered a request that does not parse";
            }

            if (acksZero)
            {
                // No response; prove the connection still works (or was closed, as Kafka does on an acks=0 error).
                int ping = ++_pingId;
                var pingFrame = RawClient.Encode(new ApiVersionsRequest(), 0, ping);
                try { await stream.WriteAsync(pingFrame); } catch (IOException) { Reset(); stats.Closed++; return null; }
                var (outcome, id, _) = await ReadAsync(stream);
                if (outcome == ReadOutcome.Closed) { Reset(); stats.Closed++; return null; }
                if (outcome == ReadOutcome.Timeout) { Reset(); return "hang after acks=0 produce"; }
                stats.NoResponse++;
                return id == ping ? null : $"acks=0 produce was answered (correlation id {id})";
            }

            var (result, correlation, body) = await ReadAsync(stream);
            if (result == ReadOutcome.Closed) { Reset(); return "connection closed for a request that parses"; }
            if (result == ReadOutcome.Timeout) { Reset(); return "hang: no response within the timeout"; }
            if (correlation != correlationId) { Reset(); return $"response correlation id {correlation}, expected {correlationId}"; }
            try
            {
                var reader = new KafkaReader(body);
                new ResponseHeader().Read(ref reader, ApiMessageTypes.ResponseHeaderVersion(key, version));
                var response = ApiMessageTypes.CreateResponse(key);
                response.Read(ref reader, version);
                if (reader.Remaining != 0) { Reset(); return $"{reader.Remaining} bytes left after the v{version} response"; }
                if (unsupportedApiVersions && ((ApiVersionsResponse)response).ErrorCode != (short)ErrorCode.UnsupportedVersion)
                    return "ApiVersions at an unsupported version was not answered with UNSUPPORTED_VERSION";
            }
            catch (Exception e)
            {
                Reset();
                return $"garbled response: {e.GetType().Name}: {e.Message}";
            }
            stats.Answered++;
            return null;
        }

        private enum ReadOutcome { Frame, Closed, Timeout }

        /// <summary>The local parse got as far as the broker will (the KIP-511 ApiVersions fallback reads only the header).</summary>
        private sealed class ParsedEnough : Exception;

        private static async Task<(ReadOutcome, int CorrelationId, byte[] Body)> ReadAsync(NetworkStream stream)
        {
            using var cts = new CancellationTokenSource(ResponseTimeout);
            try
            {
                var size = new byte[4];
                int got = 0;
                while (got < 4)
                {
                    int n = await stream.ReadAsync(size.AsMemory(got), cts.Token);
                    if (n == 0) return (ReadOutcome.Closed, 0, []);
                    got += n;
                }
                int length = BinaryPrimitives.ReadInt32BigEndian(size);
                if (length < 4 || length > 64 * 1024 * 1024) return (ReadOutcome.Frame, -1, []);
                var body = new byte[length];
                await stream.ReadExactlyAsync(body, cts.Token);
                return (ReadOutcome.Frame, BinaryPrimitives.ReadInt32BigEndian(body), body);
            }
            catch (OperationCanceledException)
            {
                return (ReadOutcome.Timeout, 0, []);
            }
            catch (Exception e) when (e is IOException or EndOfStreamException or SocketException)
            {
                return (ReadOutcome.Closed, 0, []);
            }
        }
    }
}

/// <summary>Keeps the broker's log entries so tests can assert nothing was logged as an error.</summary>
internal sealed class CapturingLoggerFactory : ILoggerFactory
{
    private readonly List<(LogLevel Level, string Category, string Message)> _entries = new();

    public readonly record struct Entry(LogLevel Level, string Message, bool HasException);

    private readonly List<bool> _hasException = new();

    public List<Entry> EntriesSince(int mark)
    {
        var result = new List<Entry>();
        lock (_entries)
            for (int i = mark; i < _entries.Count; i++) result.Add(new Entry(_entries[i].Level, _entries[i].Message, _hasException[i]));
        return result;
    }

    public int Count { get { lock (_entries) return _entries.Count; } }

    public List<string> ErrorsSince(int mark)
    {
        var result = new List<string>();
        lock (_entries)
            for (int i = mark; i < _entries.Count; i++)
                if (_entries[i].Level >= LogLevel.Error) result.Add($"{_entries[i].Category}: {_entries[i].Message}");
        return result;
    }

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);
    public void AddProvider(ILoggerProvider provider) { }
    public void Dispose() { }

    private sealed class Logger(CapturingLoggerFactory owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel)) return;
            string message = formatter(state, exception) + (exception is null ? "" : "\n" + exception);
            lock (owner._entries)
            {
                owner._entries.Add((logLevel, category, message));
                owner._hasException.Add(exception is not null);
            }
        }
    }
}
