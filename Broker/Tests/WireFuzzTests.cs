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
public partial class WireFuzzTests
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

}
