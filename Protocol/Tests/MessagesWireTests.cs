using Kayak.Protocol.Messages;
using NUnit.Framework;

namespace Kayak.Protocol.Tests;

/// <summary>Byte-exact encodings: frames captured from real clients and encodings derived by hand from the specs.</summary>
[TestFixture]
public class MessagesWireTests
{
    private static byte[] Hex(string hex) => Convert.FromHexString(hex.Replace(" ", ""));

    /// <summary>Parses a request frame body (after the 4-byte size) into header + ApiVersions request, checks it re-encodes identically.</summary>
    private static (RequestHeader Header, ApiVersionsRequest Body) ParseApiVersions(byte[] frame)
    {
        var reader = new KafkaReader(frame);
        // The api key and version sit at fixed offsets in every header version, so the header version can be chosen first.
        short apiKey = (short)(frame[0] << 8 | frame[1]);
        short apiVersion = (short)(frame[2] << 8 | frame[3]);
        short headerVersion = ApiMessageTypes.RequestHeaderVersion((ApiKey)apiKey, apiVersion);
        var header = new RequestHeader();
        header.Read(ref reader, headerVersion);
        var body = (ApiVersionsRequest)ApiMessageTypes.CreateRequest((ApiKey)header.RequestApiKey);
        body.Read(ref reader, header.RequestApiVersion);
        Assert.That(reader.Remaining, Is.Zero);

        byte[] again = [.. MessageSerializer.Write(header, headerVersion), .. MessageSerializer.Write(body, apiVersion)];
        Assert.That(again, Is.EqualTo(frame), "re-encoding must reproduce the client's bytes exactly");
        Assert.That(header.Size(headerVersion) + body.Size(apiVersion), Is.EqualTo(frame.Length));
        return (header, body);
    }

    [Test]
    public void KcatApiVersionsV3()
    {
        // Captured from `kcat -b 127.0.0.1:PORT -L` (librdkafka 2.0.2): header v2 (flexible, but ClientId keeps its
        // INT16 length as RequestHeader.json's "flexibleVersions": "none" demands), compact strings in the body.
        var (h, b) = ParseApiVersions(Hex("0012000300000001000772646b61666b61000b6c696272646b61666b6106322e302e3200"));
        Assert.That(h.RequestApiKey, Is.EqualTo((short)ApiKey.ApiVersions));
        Assert.That(h.RequestApiVersion, Is.EqualTo(3));
        Assert.That(h.CorrelationId, Is.EqualTo(1));
        Assert.That(h.ClientId, Is.EqualTo("rdkafka"));
        Assert.That(h.UnknownTaggedFields, Is.Null);
        Assert.That(b.ClientSoftwareName, Is.EqualTo("librdkafka"));
        Assert.That(b.ClientSoftwareVersion, Is.EqualTo("2.0.2"));
    }

    [Test]
    public void KafkaPythonApiVersionsV0()
    {
        // Captured from kafka-python 2.0.2 KafkaClient bootstrap: ApiVersions v0, header v1, empty body.
        var (h, b) = ParseApiVersions(Hex("001200000000000100126b61666b612d707974686f6e2d322e302e32"));
        Assert.That(h.RequestApiVersion, Is.EqualTo(0));
        Assert.That(h.CorrelationId, Is.EqualTo(1));
        Assert.That(h.ClientId, Is.EqualTo("kafka-python-2.0.2"));
        Assert.That(b.ClientSoftwareName, Is.EqualTo(""));
    }

    [Test]
    public void KafkaJsApiVersionsV2()
    {
        // Captured from kafkajs 2.2.4 admin.connect() with clientId "kayak-test": ApiVersions v2, correlation id 0.
        var (h, b) = ParseApiVersions(Hex("0012000200000000000a6b6179616b2d74657374"));
        Assert.That(h.RequestApiVersion, Is.EqualTo(2));
        Assert.That(h.CorrelationId, Is.EqualTo(0));
        Assert.That(h.ClientId, Is.EqualTo("kayak-test"));
        Assert.That(b.ClientSoftwareVersion, Is.EqualTo(""));
    }

    [Test]
    public void ApiVersionsV3ResponseWithOneKeyMatchesHandDerivedBytes()
    {
        var response = new ApiVersionsResponse { ErrorCode = 0, ThrottleTimeMs = 0 };
        response.ApiKeys.Add(new ApiVersionsResponse.ApiVersion { ApiKey = 18, MinVersion = 0, MaxVersion = 4 });
        // ErrorCode int16 | ApiKeys compact array (N+1 = 2) of {int16 ApiKey, int16 Min, int16 Max, no tags}
        // | ThrottleTimeMs int32 | tagged fields: none (every tagged field is at its default, so none is written).
        byte[] expected = Hex("0000 02 0012 0000 0004 00 00000000 00");
        Assert.That(MessageSerializer.Write(response, 3), Is.EqualTo(expected));
        Assert.That(response.Size(3), Is.EqualTo(expected.Length));

        var back = MessageSerializer.Read<ApiVersionsResponse>(expected, 3);
        Assert.That(back.ApiKeys, Has.Count.EqualTo(1));
        Assert.That(back.ApiKeys[0].MaxVersion, Is.EqualTo(4));
        Assert.That(back.FinalizedFeaturesEpoch, Is.EqualTo(-1), "absent tagged field keeps the spec default");
    }

    [Test]
    public void ApiVersionsResponseTaggedFieldIsWrittenOnlyWhenNotDefault()
    {
        var response = new ApiVersionsResponse { FinalizedFeaturesEpoch = 7 };
        // Empty ApiKeys (01), throttle 0, one tagged field: tag 1, size 8, int64 7.
        byte[] expected = Hex("0000 01 00000000 01 01 08 0000000000000007");
        Assert.That(MessageSerializer.Write(response, 3), Is.EqualTo(expected));
        Assert.That(MessageSerializer.Read<ApiVersionsResponse>(expected, 3).FinalizedFeaturesEpoch, Is.EqualTo(7));
    }

    [Test]
    public void ApiVersionsV0ResponseUsesClassicEncoding()
    {
        var response = new ApiVersionsResponse();
        response.ApiKeys.Add(new ApiVersionsResponse.ApiVersion { ApiKey = 0, MinVersion = 3, MaxVersion = 9 });
        // v0: INT32 array length, no throttle time, no tagged fields.
        Assert.That(MessageSerializer.Write(response, 0), Is.EqualTo(Hex("0000 00000001 0000 0003 0009")));
    }

    [Test]
    public void IgnorableFieldIsDroppedButNonIgnorableThrows()
    {
        // ThrottleTimeMs is ignorable: v0 silently drops it, as Kafka does.
        Assert.That(MessageSerializer.Write(new ApiVersionsResponse { ThrottleTimeMs = 5 }, 0), Is.EqualTo(Hex("0000 00000000")));
        // MetadataRequest.AllowAutoTopicCreation (v4+, default true) is not ignorable.
        Assert.Throws<UnsupportedVersionException>(() => MessageSerializer.Write(new MetadataRequest { AllowAutoTopicCreation = false }, 3));
    }

    [Test]
    public void RequestHeaderV2KeepsNonCompactClientId()
    {
        var header = new RequestHeader { RequestApiKey = 3, RequestApiVersion = 12, CorrelationId = 42, ClientId = null };
        Assert.That(MessageSerializer.Write(header, 2), Is.EqualTo(Hex("0003 000c 0000002a ffff 00")));
        Assert.That(MessageSerializer.Read<RequestHeader>(Hex("0003 000c 0000002a ffff 00"), 2).ClientId, Is.Null);
    }

    [Test]
    public void ReadRejectsUnsupportedVersion()
    {
        Assert.Throws<UnsupportedVersionException>(() => MessageSerializer.Read<ApiVersionsRequest>(Array.Empty<byte>(), 99));
        Assert.Throws<UnsupportedVersionException>(() => MessageSerializer.Write(new ApiVersionsRequest(), -1));
    }
}
