using System.Buffers.Binary;
using System.Text.Json;
using Kayak.Protocol.Messages;
using NUnit.Framework;

namespace Kayak.Protocol.Tests.Golden;

/// <summary>One captured request/response pair, as listed in a client's <c>index.json</c> (written by tools/capture/capture.py).</summary>
public sealed class GoldenExchange
{
    public required string Client { get; init; }
    public required string Name { get; init; }
    public required ApiKey Api { get; init; }
    public required short Version { get; init; }
    public required int CorrelationId { get; init; }
    public required string Directory { get; init; }

    public string RequestPath => Path.Combine(Directory, Name + ".request.bin");
    public string ResponsePath => Path.Combine(Directory, Name + ".response.bin");
    public bool HasResponse => File.Exists(ResponsePath);

    /// <summary>The scenario's topic, group and client id are all derived from the client's name (see capture.py's scenarios).</summary>
    public string Topic => "golden-" + Client;
    public string Group => "golden-" + Client + "-group";
    public string ClientId => "golden-" + Client;

    public override string ToString() => $"{Client}/{Name}";
}

public sealed record ParsedRequest(short HeaderVersion, RequestHeader Header, IApiMessage Body);
public sealed record ParsedResponse(short HeaderVersion, short BodyVersion, ResponseHeader Header, IApiMessage Body);

/// <summary>Loads the captured frames and parses them with the generated classes, asserting exact consumption and re-encoding.</summary>
public static class GoldenFrames
{
    public static string Root { get; } = FindRoot();

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Kayak.slnx"))) dir = dir.Parent;
        if (dir is null) throw new DirectoryNotFoundException("Kayak.slnx not found above the test directory");
        return Path.Combine(dir.FullName, "Protocol", "Tests", "TestData", "frames");
    }

    private static IReadOnlyList<GoldenExchange>? _all;

    public static IReadOnlyList<GoldenExchange> All => _all ??= Load();

    private static List<GoldenExchange> Load()
    {
        var list = new List<GoldenExchange>();
        if (!System.IO.Directory.Exists(Root)) return list;
        foreach (var dir in System.IO.Directory.GetDirectories(Root).Order(StringComparer.Ordinal))
        {
            string index = Path.Combine(dir, "index.json");
            if (!File.Exists(index)) continue;
            using var doc = JsonDocument.Parse(File.ReadAllBytes(index));
            foreach (var e in doc.RootElement.GetProperty("exchanges").EnumerateArray())
            {
                list.Add(new GoldenExchange
                {
                    Client = Path.GetFileName(dir),
                    Name = e.GetProperty("name").GetString()!,
                    Api = (ApiKey)e.GetProperty("apiKey").GetInt16(),
                    Version = e.GetProperty("version").GetInt16(),
                    CorrelationId = e.GetProperty("correlationId").GetInt32(),
                    Directory = dir,
                });
            }
        }
        return list;
    }

    /// <summary>The frame minus its 4-byte size prefix, after checking the prefix matches the file.</summary>
    public static byte[] ReadFrameBody(string path)
    {
        byte[] frame = File.ReadAllBytes(path);
        Assert.That(frame, Has.Length.GreaterThanOrEqualTo(8), $"{path}: too short for a frame");
        int size = BinaryPrimitives.ReadInt32BigEndian(frame);
        Assert.That(size, Is.EqualTo(frame.Length - 4), $"{path}: size prefix disagrees with the captured bytes");
        return frame[4..];
    }

    public static ParsedRequest ParseRequest(GoldenExchange ex)
    {
        byte[] body = ReadFrameBody(ex.RequestPath);
        // Api key and version sit at fixed offsets in every request header version, so the header version is known up front.
        var apiKey = (ApiKey)BinaryPrimitives.ReadInt16BigEndian(body);
        short version = BinaryPrimitives.ReadInt16BigEndian(body.AsSpan(2));
        short headerVersion = ApiMessageTypes.RequestHeaderVersion(apiKey, version);

        var reader = new KafkaReader(body);
        var header = new RequestHeader();
        header.Read(ref reader, headerVersion);
        int headerSize = reader.Position;
        var message = ApiMessageTypes.CreateRequest(apiKey);
        message.Read(ref reader, version);
        Assert.That(reader.Remaining, Is.Zero, $"{ex}: {reader.Remaining} request bytes left unread");

        AssertReencodes(ex + " request", body, headerSize, header, headerVersion, message, version);
        return new ParsedRequest(headerVersion, header, message);
    }

    public static ParsedResponse ParseResponse(GoldenExchange ex)
    {
        byte[] body = ReadFrameBody(ex.ResponsePath);
        short headerVersion = ApiMessageTypes.ResponseHeaderVersion(ex.Api, ex.Version);
        short bodyVersion = ex.Version;
        var reader = new KafkaReader(body);
        var header = new ResponseHeader();
        header.Read(ref reader, headerVersion);
        int headerSize = reader.Position;
        // KIP-511: a broker that does not support the requested ApiVersions version answers UNSUPPORTED_VERSION at
        // v0 so any client can read it; the error code is the first field of every version.
        if (ex.Api == ApiKey.ApiVersions && body.Length >= headerSize + 2
            && BinaryPrimitives.ReadInt16BigEndian(body.AsSpan(headerSize)) == (short)ErrorCode.UnsupportedVersion)
            bodyVersion = 0;
        var message = ApiMessageTypes.CreateResponse(ex.Api);
        message.Read(ref reader, bodyVersion);
        Assert.That(reader.Remaining, Is.Zero, $"{ex}: {reader.Remaining} response bytes left unread");

        AssertReencodes(ex + " response", body, headerSize, header, headerVersion, message, bodyVersion);
        return new ParsedResponse(headerVersion, bodyVersion, header, message);
    }

    private static void AssertReencodes(string what, byte[] captured, int headerSize, IKafkaMessage header, short headerVersion,
        IKafkaMessage message, short version)
    {
        byte[] again = [.. MessageSerializer.Write(header, headerVersion), .. MessageSerializer.Write(message, version)];
        int diff = FirstDifference(captured, again);
        if (diff >= 0)
        {
            string where = diff < headerSize ? $"header byte {diff}" : $"body byte {diff - headerSize}";
            Assert.Fail($"{what}: re-encoding differs from the captured bytes at frame byte {diff} ({where}); "
                + $"captured {captured.Length} bytes, re-encoded {again.Length}. Captured around it: {Around(captured, diff)}, "
                + $"re-encoded: {Around(again, diff)}");
        }
        Assert.That(header.Size(headerVersion) + message.Size(version), Is.EqualTo(captured.Length), $"{what}: Size() disagrees with the bytes");
    }

    public static int FirstDifference(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
    {
        int common = a.CommonPrefixLength(b);
        return common == a.Length && common == b.Length ? -1 : common;
    }

    private static string Around(byte[] bytes, int at)
    {
        int from = Math.Max(0, at - 8);
        int to = Math.Min(bytes.Length, at + 8);
        return from >= to ? "(end)" : Convert.ToHexString(bytes, from, to - from) + $" (from byte {from})";
    }

    /// <summary>Consumer protocol blobs (JoinGroup metadata, SyncGroup assignments) start with their own int16 version (KIP-429).</summary>
    public static T ReadVersionedBlob<T>(byte[] blob, string what) where T : IKafkaMessage, new()
    {
        Assert.That(blob, Has.Length.GreaterThanOrEqualTo(2), what);
        short version = BinaryPrimitives.ReadInt16BigEndian(blob);
        var value = MessageSerializer.Read<T>(blob.AsMemory(2), version);
        byte[] again = [.. blob.AsSpan(0, 2), .. MessageSerializer.Write(value, version)];
        Assert.That(FirstDifference(blob, again), Is.EqualTo(-1), $"{what}: v{version} blob does not re-encode identically");
        return value;
    }
}
