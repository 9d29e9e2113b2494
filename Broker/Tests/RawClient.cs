using System.Buffers;
using System.Buffers.Binary;
using System.Net.Sockets;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Tests;

/// <summary>
/// A minimal Kafka client for tests: writes RequestHeader + request at any chosen version and parses the
/// size-prefixed response with the generated classes, so every version of a handler can be exercised.
/// </summary>
internal sealed class RawClient : IDisposable
{
    private readonly TcpClient? _tcp;
    private readonly Stream _stream;
    private int _correlationId;

    private RawClient(TcpClient tcp)
    {
        _tcp = tcp;
        _stream = tcp.GetStream();
    }

    private RawClient(Stream stream) { _stream = stream; }

    /// <summary>The client's local address (what the broker logs as the client).</summary>
    public System.Net.EndPoint? LocalEndPoint => _tcp?.Client.LocalEndPoint;

    /// <summary>A client over any stream (an in-memory transport).</summary>
    public static RawClient Over(Stream stream) => new(stream);

    public static async Task<RawClient> ConnectAsync(string bootstrap)
    {
        int colon = bootstrap.LastIndexOf(':');
        var tcp = new TcpClient();
        await tcp.ConnectAsync(bootstrap[..colon].Trim('[', ']'), int.Parse(bootstrap[(colon + 1)..]));
        return new RawClient(tcp);
    }

    /// <summary>Connects and authenticates with SASL PLAIN (SaslHandshake v1, SaslAuthenticate v2) as <paramref name="user"/>,
    /// whose password in the tests' JAAS entries is "&lt;user&gt;-secret".</summary>
    public static async Task<RawClient> LoginPlainAsync(string bootstrap, string user)
    {
        var c = await ConnectAsync(bootstrap);
        await c.SendAsync<SaslHandshakeResponse>(new SaslHandshakeRequest { Mechanism = "PLAIN" }, 1);
        var auth = await c.SendAsync<SaslAuthenticateResponse>(
            new SaslAuthenticateRequest { AuthBytes = System.Text.Encoding.UTF8.GetBytes($"\0{user}\0{user}-secret") }, 2);
        NUnit.Framework.Assert.That(auth.ErrorCode, NUnit.Framework.Is.EqualTo(0), auth.ErrorMessage);
        return c;
    }

    public async Task<TResponse> SendAsync<TResponse>(IApiMessage request, short version)
        where TResponse : class, IApiMessage
    {
        int correlationId = ++_correlationId;
        var frame = Encode(request, version, correlationId);
        await _stream.WriteAsync(frame);

        var sizeBytes = new byte[4];
        await _stream.ReadExactlyAsync(sizeBytes);
        int size = BinaryPrimitives.ReadInt32BigEndian(sizeBytes);
        var body = new byte[size];
        await _stream.ReadExactlyAsync(body);
        return Decode<TResponse>(request.ApiKey, version, correlationId, body);
    }

    /// <summary>Writes raw bytes (a hand-made or broken frame) to the connection.</summary>
    public Task WriteRawAsync(byte[] bytes) => _stream.WriteAsync(bytes).AsTask();

    /// <summary>Sends a request without waiting for its response (pipelining); returns its correlation id.</summary>
    public async Task<int> SendOnlyAsync(IApiMessage request, short version)
    {
        int correlationId = ++_correlationId;
        await _stream.WriteAsync(Encode(request, version, correlationId));
        return correlationId;
    }

    /// <summary>Reads the next response frame: correlation id and body bytes after the header.</summary>
    public async Task<(int CorrelationId, byte[] Frame)> ReadFrameAsync()
    {
        var sizeBytes = new byte[4];
        await _stream.ReadExactlyAsync(sizeBytes);
        var frame = new byte[BinaryPrimitives.ReadInt32BigEndian(sizeBytes)];
        await _stream.ReadExactlyAsync(frame);
        return (BinaryPrimitives.ReadInt32BigEndian(frame), frame);
    }

    /// <summary>Reads whatever bytes arrive (0: the broker closed).</summary>
    public async Task<int> ReadSomeAsync(byte[] buffer, CancellationToken cancellationToken)
    {
        try { return await _stream.ReadAsync(buffer, cancellationToken); }
        catch (IOException) { return 0; }
    }

    /// <summary>Reads one size-prefixed frame without a response header (the v0 SASL exchange).</summary>
    public async Task<byte[]> ReadSizePrefixedAsync()
    {
        var sizeBytes = new byte[4];
        await _stream.ReadExactlyAsync(sizeBytes);
        var frame = new byte[BinaryPrimitives.ReadInt32BigEndian(sizeBytes)];
        await _stream.ReadExactlyAsync(frame);
        return frame;
    }

    /// <summary>True when the broker closed the connection (read returns end of stream) within the timeout.</summary>
    public async Task<bool> IsClosedByPeerAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        var buffer = new byte[1];
        try
        {
            return await _stream.ReadAsync(buffer, cts.Token) == 0;
        }
        catch (IOException)
        {
            return true;
        }
    }

    internal static byte[] Encode(IApiMessage request, short version, int correlationId)
    {
        var buffer = new ArrayBufferWriter<byte>();
        var writer = new KafkaWriter(buffer);
        writer.WriteInt32(0); // size, patched below
        var header = new RequestHeader
        {
            RequestApiKey = (short)request.ApiKey,
            RequestApiVersion = version,
            CorrelationId = correlationId,
            ClientId = "kayak-broker-tests",
        };
        header.Write(ref writer, ApiMessageTypes.RequestHeaderVersion(request.ApiKey, version));
        request.Write(ref writer, version);
        writer.Flush();
        var frame = buffer.WrittenSpan.ToArray();
        BinaryPrimitives.WriteInt32BigEndian(frame, frame.Length - 4);
        return frame;
    }

    private static TResponse Decode<TResponse>(ApiKey key, short version, int correlationId, byte[] body)
        where TResponse : class, IApiMessage
    {
        var reader = new KafkaReader(body);
        var header = new ResponseHeader();
        header.Read(ref reader, ApiMessageTypes.ResponseHeaderVersion(key, version));
        if (header.CorrelationId != correlationId)
            throw new InvalidOperationException($"Correlation id {header.CorrelationId}, expected {correlationId}");
        var response = (TResponse)ApiMessageTypes.CreateResponse(key);
        response.Read(ref reader, version);
        if (reader.Position != body.Length)
            throw new InvalidOperationException($"{body.Length - reader.Position} bytes left after the {key} v{version} response");
        return response;
    }

    public void Dispose()
    {
        _stream.Dispose();
        _tcp?.Dispose();
    }
}

/// <summary>An in-process broker on a free port with a temporary data dir, plus a connected raw client.</summary>
internal sealed class BrokerFixture : IAsyncDisposable
{
    private BrokerFixture(KafkaBroker broker, string dataDir, RawClient client)
    {
        Broker = broker;
        DataDir = dataDir;
        Client = client;
    }

    public KafkaBroker Broker { get; }
    public string DataDir { get; }
    public RawClient Client { get; }
    public BrokerState State => Broker.State;

    public static async Task<BrokerFixture> StartAsync(Action<KafkaBrokerOptions>? configure = null)
    {
        var dir = Path.Combine(Path.GetTempPath(), "kayak-broker-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var options = new KafkaBrokerOptions { Port = 0, DataDir = dir };
        configure?.Invoke(options);
        var broker = new KafkaBroker(options);
        await broker.StartAsync();
        var client = await RawClient.ConnectAsync(broker.BootstrapServers);
        return new BrokerFixture(broker, dir, client);
    }

    /// <summary>Creates a topic through Storage directly (CreateTopics is not under test here).</summary>
    public Kayak.Storage.TopicLog CreateTopic(string name, int partitions, Dictionary<string, string>? configs = null)
    {
        var result = State.Topics.Create(name, partitions, 1, configs ?? new Dictionary<string, string>(), validateOnly: false);
        if (result.Topic is null) throw new InvalidOperationException($"{result.Error}: {result.Message}");
        return result.Topic;
    }

    /// <summary>Appends <paramref name="count"/> one-record batches to a partition.</summary>
    public static void Produce(Kayak.Storage.PartitionLog log, int count)
    {
        for (int i = 0; i < count; i++)
        {
            using var builder = new Kayak.Protocol.Records.RecordBatchBuilder(new Kayak.Protocol.Records.RecordBatchOptions { PartitionLeaderEpoch = 0 });
            builder.Append(1_700_000_000_000 + i, null, new byte[] { (byte)i, 1, 2, 3 });
            var batch = builder.ToArray();
            log.Append(batch, 1, 0);
        }
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await Broker.DisposeAsync();
        try { Directory.Delete(DataDir, recursive: true); }
        catch (IOException) { }
    }
}
