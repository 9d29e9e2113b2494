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

public partial class WireFuzzTests
{
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
                // Kafka's parse also validates ACL requests' codes (UNKNOWN closes the connection).
                parses = !Kayak.Broker.Handlers.AclRequests.FailsKafkaParse(request, version);
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
