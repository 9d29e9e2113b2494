using System.Buffers.Binary;
using System.Net.Sockets;
using Kayak.Broker.Network;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using Kayak.Protocol.Records;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>
/// Large fetch responses send their records with sendfile(2) from the segment file (Network/SplicedResponse,
/// SendFile). A slow client with a tiny receive buffer keeps the broker's socket buffer full, so sendfile keeps
/// hitting EAGAIN and the send alternates between sendfile and awaited chunks from the mapping; the bytes, their
/// order among pipelined responses, and their survival when retention or topic deletion removes the segment
/// mid-send are checked against what the log holds.
/// </summary>
[TestFixture]
public sealed class SendFileTests
{
    private const int ValueSize = 1_000_000;
    private const int FetchMax = 16 << 20;

    private SendFilePolicy _savedPolicy;

    [SetUp]
    public void UseSendFileOnLoopback()
    {
        if (!SendFile.IsSupported) Assert.Ignore("sendfile(2) is Linux-only; other systems keep the mapped send");
        // The default (RemoteOnly) keeps loopback clients, i.e. these tests, on the mapped send.
        _savedPolicy = SendFile.Policy;
        SendFile.Policy = SendFilePolicy.Always;
    }

    [TearDown]
    public void RestorePolicy() => SendFile.Policy = _savedPolicy;

    [Test]
    public async Task DefaultPolicy_LoopbackClient_GetsTheMappedSend_WithTheSameBytes()
    {
        SendFile.Policy = SendFile.ParsePolicy(null);
        Assert.That(SendFile.Policy, Is.EqualTo(SendFilePolicy.RemoteOnly));
        await using var fx = await BrokerFixture.StartAsync();
        var log = fx.CreateTopic("sf", 1).Partitions[0];
        AppendLargeBatches(log, 3);
        var expected = ReadLog(log, 0);
        long sendfileBefore = Interlocked.Read(ref SendFile.SendfileBytes);
        using var client = await SlowClient.ConnectAsync(fx.Broker.BootstrapServers);
        int id = await client.SendAsync(Fetch("sf", 0), 12);
        Assert.That(await client.ReadFetchRecordsAsync(id, 12), Is.EqualTo(expected));
        Assert.That(Interlocked.Read(ref SendFile.SendfileBytes), Is.EqualTo(sendfileBefore), "no sendfile for a client on this host");
    }

    [TestCase("never", "Never")]
    [TestCase("ALWAYS", "Always")]
    [TestCase("remote", "RemoteOnly")]
    [TestCase("", "RemoteOnly")]
    public void PolicyFromEnvironmentValue(string value, string expected) =>
        Assert.That(SendFile.ParsePolicy(value).ToString(), Is.EqualTo(expected));

    [TestCase("127.0.0.1", "127.0.0.1", true)]
    [TestCase("127.0.0.5", "127.0.0.1", true)]
    [TestCase("::1", "::1", true)]
    [TestCase("::ffff:127.0.0.1", "::ffff:127.0.0.1", true)]
    [TestCase("10.1.2.3", "10.1.2.3", true)]
    [TestCase("::ffff:10.1.2.3", "10.1.2.3", true)]
    [TestCase("10.1.2.4", "10.1.2.3", false)]
    [TestCase("2001:db8::1", "2001:db8::2", false)]
    public void SameHostDetection(string remote, string local, bool sameHost) =>
        Assert.That(SendFile.IsSameHost(new System.Net.IPEndPoint(System.Net.IPAddress.Parse(remote), 50000), new System.Net.IPEndPoint(System.Net.IPAddress.Parse(local), 9092)), Is.EqualTo(sameHost));

    [Test]
    public async Task MultiMegabyteRecords_ToASlowClient_ArriveByteIdentical_ThroughSendfileAndItsFallback()
    {
        await using var fx = await BrokerFixture.StartAsync();
        var log = fx.CreateTopic("sf", 1).Partitions[0];
        // ~10 MB: more than the broker's socket buffer can ever hold (tcp_wmem max, 4 MB by default), so the send
        // must wait for the slow client.
        AppendLargeBatches(log, 11);
        var expected = ReadLog(log, 1);
        Assert.That(expected.Length, Is.GreaterThan(9 * ValueSize));

        long sendfileBefore = Interlocked.Read(ref SendFile.SendfileBytes);
        long chunksBefore = Interlocked.Read(ref SendFile.WouldBlockChunks);
        long fallbacksBefore = Interlocked.Read(ref SendFile.MemoryFallbacks);

        using var client = await SlowClient.ConnectAsync(fx.Broker.BootstrapServers);
        int id = await client.SendAsync(Fetch("sf", 1), 12);
        var records = await client.ReadFetchRecordsAsync(id, 12);

        Assert.That(records, Is.EqualTo(expected), "records field byte-identical to the log");
        AssertValidBatches(records, firstOffset: 1, count: 10);
        long viaSendfile = Interlocked.Read(ref SendFile.SendfileBytes) - sendfileBefore;
        long chunks = Interlocked.Read(ref SendFile.WouldBlockChunks) - chunksBefore;
        Assert.That(viaSendfile, Is.GreaterThan(0), "part of the records went out with sendfile");
        Assert.That(chunks, Is.GreaterThan(0), "sendfile hit EAGAIN and the send waited with a chunk from the mapping");
        Assert.That(viaSendfile + chunks * SendFile.FallbackChunk, Is.GreaterThanOrEqualTo(expected.Length), "every byte by one of the two paths");
        Assert.That(Interlocked.Read(ref SendFile.MemoryFallbacks) - fallbacksBefore, Is.EqualTo(0), "no sendfile error on a regular segment file");
    }

    [Test]
    public async Task PipelinedRequests_KeepTheirOrder_AroundSendfileResponses()
    {
        await using var fx = await BrokerFixture.StartAsync();
        var log = fx.CreateTopic("sf", 1).Partitions[0];
        AppendLargeBatches(log, 3);
        var fromZero = ReadLog(log, 0);
        var fromTwo = ReadLog(log, 2);

        using var client = await SlowClient.ConnectAsync(fx.Broker.BootstrapServers);
        var apiVersions = new ApiVersionsRequest { ClientSoftwareName = "t", ClientSoftwareVersion = "1" };
        int a = await client.SendAsync(apiVersions, 3);
        int f0 = await client.SendAsync(Fetch("sf", 0), 12);
        int b = await client.SendAsync(apiVersions, 3);
        int f2 = await client.SendAsync(Fetch("sf", 2), 11);
        int f0again = await client.SendAsync(Fetch("sf", 0), 12);
        int c = await client.SendAsync(new MetadataRequest { Topics = [] }, 1);

        Assert.That((await client.ReadFrameAsync()).CorrelationId, Is.EqualTo(a));
        Assert.That(await client.ReadFetchRecordsAsync(f0, 12), Is.EqualTo(fromZero));
        Assert.That((await client.ReadFrameAsync()).CorrelationId, Is.EqualTo(b));
        Assert.That(await client.ReadFetchRecordsAsync(f2, 11), Is.EqualTo(fromTwo));
        Assert.That(await client.ReadFetchRecordsAsync(f0again, 12), Is.EqualTo(fromZero));
        Assert.That((await client.ReadFrameAsync()).CorrelationId, Is.EqualTo(c));
    }

    [TestCase(false, TestName = "RetentionDeletesTheSegment_DuringASlowSend_TheBytesStayCorrect")]
    [TestCase(true, TestName = "TopicDeleted_DuringASlowSend_TheBytesStayCorrect")]
    public async Task SegmentRemovedMidSend(bool deleteTopic)
    {
        await using var fx = await BrokerFixture.StartAsync();
        // Ten 1 MB batches per segment (more than the broker's socket buffer can hold, so most of the slice is still
        // to be sent when the segment goes); old timestamps and retention.ms=1000, so RunRetention deletes the rolled
        // segment (and the active one, everything being expired) — but only when the test calls it.
        var log = fx.CreateTopic("gone", 1, new Dictionary<string, string> { ["segment.bytes"] = (10 * ValueSize + 1000).ToString(), ["retention.ms"] = "1000" }).Partitions[0];
        AppendLargeBatches(log, 12);
        Assert.That(log.SegmentCount, Is.GreaterThan(1));
        var expected = ReadLog(log, 0);
        Assert.That(expected.Length, Is.GreaterThan(9 * ValueSize));

        using var client = await SlowClient.ConnectAsync(fx.Broker.BootstrapServers);
        int id = await client.SendAsync(Fetch("gone", 0), 12);
        // Read the header and the first 64 KB of the records, then remove the segment under the send.
        var (correlationId, head, frameLength) = await client.ReadFrameStartAsync(64 * 1024);
        Assert.That(correlationId, Is.EqualTo(id));
        if (deleteTopic) Assert.That(fx.State.Topics.Delete("gone").Error, Is.EqualTo(ErrorCode.None));
        else Assert.That(fx.State.Logs.RunRetention(), Is.GreaterThanOrEqualTo(1));
        Assert.That(log.LogStartOffset > 0 || deleteTopic, Is.True, "segment 0 is gone from the log");
        long sendfileAfterDelete = Interlocked.Read(ref SendFile.SendfileBytes);

        var frame = await client.ReadFrameRestAsync(head, frameLength);
        Assert.That(Interlocked.Read(ref SendFile.SendfileBytes), Is.GreaterThan(sendfileAfterDelete), "sendfile still reading the removed segment's file");
        var records = DecodeFetchRecords(frame, 12);
        Assert.That(records, Is.EqualTo(expected), "the removed segment's bytes, unchanged");
        AssertValidBatches(records, firstOffset: 0, count: 10);

        // The connection still works afterwards.
        var versions = await client.SendAsync(new ApiVersionsRequest { ClientSoftwareName = "t", ClientSoftwareVersion = "1" }, 3);
        Assert.That((await client.ReadFrameAsync()).CorrelationId, Is.EqualTo(versions));
    }

    // ---------------------------------------------------------------- helpers

    private static void AppendLargeBatches(Kayak.Storage.PartitionLog log, int count)
    {
        for (int i = 0; i < count; i++)
        {
            var value = new byte[ValueSize];
            new Random(100 + i).NextBytes(value);
            using var builder = new RecordBatchBuilder(new RecordBatchOptions { PartitionLeaderEpoch = 0 });
            builder.Append(1_600_000_000_000 + i, null, value);
            log.Append(builder.ToArray(), 1, 0);
        }
    }

    private static byte[] ReadLog(Kayak.Storage.PartitionLog log, long offset)
    {
        using var slice = log.Read(offset, FetchMax);
        return slice.Data.ToArray();
    }

    private static void AssertValidBatches(byte[] records, long firstOffset, int count)
    {
        long next = firstOffset;
        foreach (var batch in new BatchEnumerator(records))
        {
            Assert.That(RecordBatch.Validate(batch, new ValidationOptions { RequireContiguousOffsets = false }).IsValid, Is.True);
            Assert.That(BinaryPrimitives.ReadInt64BigEndian(batch), Is.EqualTo(next));
            next++;
        }
        Assert.That(next - firstOffset, Is.EqualTo(count));
    }

    private static FetchRequest Fetch(string topic, long offset) => new()
    {
        MaxWaitMs = 0,
        MinBytes = 1,
        MaxBytes = FetchMax,
        Topics = [new FetchRequest.FetchTopic { Topic = topic, Partitions = [new FetchRequest.FetchPartition { Partition = 0, FetchOffset = offset, PartitionMaxBytes = FetchMax }] }],
    };

    private static byte[] DecodeFetchRecords(byte[] frame, short version)
    {
        var reader = new KafkaReader(frame);
        new ResponseHeader().Read(ref reader, ApiMessageTypes.ResponseHeaderVersion(ApiKey.Fetch, version));
        var response = new FetchResponse();
        response.Read(ref reader, version);
        Assert.That(reader.Position, Is.EqualTo(frame.Length), "no bytes after the response");
        var partition = response.Responses[0].Partitions[0];
        Assert.That(partition.ErrorCode, Is.EqualTo(0));
        return partition.Records!.Value.ToArray();
    }

    /// <summary>
    /// A client socket with a tiny receive buffer that reads in small pieces with pauses, so the broker's socket
    /// buffer stays full for most of a multi-MB response.
    /// </summary>
    private sealed class SlowClient : IDisposable
    {
        private const int Piece = 4096;
        private readonly Socket _socket;
        private int _correlationId;
        private int _reads;

        private SlowClient(Socket socket) => _socket = socket;

        public static async Task<SlowClient> ConnectAsync(string bootstrap)
        {
            int colon = bootstrap.LastIndexOf(':');
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 4096 };
            await socket.ConnectAsync(bootstrap[..colon], int.Parse(bootstrap[(colon + 1)..]));
            return new SlowClient(socket);
        }

        public async Task<int> SendAsync(IApiMessage request, short version)
        {
            int id = ++_correlationId;
            var bytes = RawClient.Encode(request, version, id);
            int sent = 0;
            while (sent < bytes.Length) sent += await _socket.SendAsync(bytes.AsMemory(sent), SocketFlags.None);
            return id;
        }

        public async Task<(int CorrelationId, byte[] Frame)> ReadFrameAsync()
        {
            var (id, head, length) = await ReadFrameStartAsync(0);
            return (id, await ReadFrameRestAsync(head, length));
        }

        public async Task<byte[]> ReadFetchRecordsAsync(int expectedId, short version)
        {
            var (id, frame) = await ReadFrameAsync();
            Assert.That(id, Is.EqualTo(expectedId), "response out of order");
            return DecodeFetchRecords(frame, version);
        }

        /// <summary>Reads the size prefix and up to <paramref name="atLeast"/> bytes (at least the correlation id) of the next frame.</summary>
        public async Task<(int CorrelationId, byte[] Frame, int Read)> ReadFrameStartAsync(int atLeast)
        {
            var size = new byte[4];
            await ReadExactlyAsync(size, 0, 4);
            int length = BinaryPrimitives.ReadInt32BigEndian(size);
            Assert.That(length, Is.InRange(4, 64 << 20), "plausible frame size");
            var frame = new byte[length];
            int first = Math.Clamp(atLeast, 4, length);
            await ReadExactlyAsync(frame, 0, first);
            return (BinaryPrimitives.ReadInt32BigEndian(frame), frame, first);
        }

        public async Task<byte[]> ReadFrameRestAsync(byte[] frame, int read)
        {
            await ReadExactlyAsync(frame, read, frame.Length - read);
            return frame;
        }

        private async Task ReadExactlyAsync(byte[] buffer, int offset, int count)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            while (count > 0)
            {
                int n = await _socket.ReceiveAsync(buffer.AsMemory(offset, Math.Min(count, Piece)), SocketFlags.None, timeout.Token);
                if (n == 0) throw new EndOfStreamException("broker closed the connection");
                offset += n;
                count -= n;
                // Pause now and then: the broker's send buffer fills and sendfile returns EAGAIN.
                if (++_reads % 8 == 0) await Task.Delay(1);
            }
        }

        public void Dispose() => _socket.Dispose();
    }
}
