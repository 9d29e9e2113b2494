using System.Buffers.Binary;
using System.Collections;
using System.Net.Sockets;
using System.Reflection;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>
/// Every served API and version with every string field of its request (nested ones too, one element per array) at
/// the longest length Kafka accepts: 32,767 UTF-8 bytes, compact or not (Kafka's generated readers refuse more). The
/// broker must answer each with a well-formed response: the names are invalid or unknown, and the errors it answers
/// may quote them, but a response string is held to the same 32,767 bytes (issue 15, K14: error messages quoting a
/// long name could not be encoded and the connection closed). One byte more in a compact string is a request Kafka
/// cannot parse, so it closes the connection.
/// </summary>
[TestFixture, NonParallelizable]
public class LongStringTests
{
    private BrokerFixture _fx = null!;
    private CapturingLoggerFactory _logs = null!;

    [OneTimeSetUp]
    public async Task StartBroker()
    {
        _logs = new CapturingLoggerFactory();
        _fx = await BrokerFixture.StartAsync(o =>
        {
            o.LoggerFactory = _logs;
            o.Properties["group.initial.rebalance.delay.ms"] = "0";
        });
        var topic = _fx.CreateTopic(RealisticRequests.Topic, 2);
        BrokerFixture.Produce(topic.Partitions[0], 3);
        _fx.CreateTopic("fuzz-grow", 1);
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
            yield return new TestCaseData(s.Key).SetName($"LongestStringsAreAnswered({s.Key})");
    }

    private static IEnumerable<TestCaseData> FlexibleApis()
    {
        // Only the APIs whose latest version has a non-tagged string to lengthen: a case for the others would test nothing.
        foreach (var s in ApiVersionTable.Served)
            if (s.MaxVersion >= FlexibleFrom(s.Key)
                && Filled(s.Key, s.MaxVersion, Longest, out int strings) is var request && strings > 0
                && LengthenFirstCompactString(RawClient.Encode(request, s.MaxVersion, 1)) is not null)
                yield return new TestCaseData(s.Key).SetName($"OverlongCompactStringClosesTheConnection({s.Key})");
    }

    [TestCaseSource(nameof(ServedApis))]
    [CancelAfter(120_000)]
    public async Task LongestStringsAreAnswered(ApiKey key)
    {
        var served = ApiVersionTable.Find(key)!;
        int mark = _logs.Count;
        var failures = new List<string>();
        int sent = 0;
        var client = await RawClient.ConnectAsync(_fx.Broker.BootstrapServers);
        try
        {
            for (short v = served.MinVersion; v <= served.MaxVersion; v++)
            {
                // Each string field alone at the limit (so each handler check that quotes it is reached), in the
                // default request with one element per array and in the realistic one (existing topics, groups,
                // valid numbers, so checks past "unknown topic" or "invalid partitions" are reached too); then all
                // of them at once.
                for (int b = 0; b < 2; b++)
                {
                    IApiMessage? request = b == 0 ? Structured(key, v) : RealisticRequests.For(key, v, ++_unique, TopicIdOf);
                    if (request is null || !Encodes(request, v)) continue;
                    var slots = new List<(object, PropertyInfo)>();
                    Collect(request, slots, 0);
                    foreach (var (owner, property) in slots)
                    {
                        object? old = property.GetValue(owner);
                        property.SetValue(owner, Longest);
                        if (Encodes(request, v))
                        {
                            sent++;
                            if (!await Exchange(client, request, v, $"{owner.GetType().Name}.{property.Name}", failures))
                            {
                                client.Dispose();
                                client = await RawClient.ConnectAsync(_fx.Broker.BootstrapServers);
                            }
                        }
                        property.SetValue(owner, old);
                    }
                }
                var all = Filled(key, v, Longest, out int strings);
                if (strings > 0 && !await Exchange(client, all, v, $"all {strings} strings", failures))
                {
                    client.Dispose();
                    client = await RawClient.ConnectAsync(_fx.Broker.BootstrapServers);
                }
            }
        }
        finally
        {
            client.Dispose();
        }
        TestContext.Out.WriteLine($"{key}: {sent} requests");
        Assert.That(failures, Is.Empty, string.Join("\n", failures.Take(10)) + "\nbroker errors:\n" + string.Join("\n", _logs.ErrorsSince(mark).Take(3)));
        Assert.That(_logs.ErrorsSince(mark), Is.Empty);
    }

    // Realistic JoinGroups each get a group of their own: a second member would wait for the first one's rebalance.
    private int _unique;

    private Uuid TopicIdOf(string name) => _fx.State.Topics.TryGet(name, out var t) ? t.TopicId : default;
    private static readonly string Longest = new('x', short.MaxValue);

    /// <summary>False (and a failure noted) when the request was not answered with a well-formed response.</summary>
    private static async Task<bool> Exchange(RawClient client, IApiMessage request, short version, string what, List<string> failures)
    {
        try
        {
            await client.SendAsync<IApiMessage>(request, version);
            return true;
        }
        catch (Exception e) when (e is IOException or EndOfStreamException or SocketException or InvalidOperationException or ProtocolException)
        {
            failures.Add($"{request.ApiKey} v{version} {what} of 32767 bytes: {e.GetType().Name}: {e.Message}");
            return false;
        }
    }

    [TestCaseSource(nameof(FlexibleApis))]
    [CancelAfter(30_000)]
    public async Task OverlongCompactStringClosesTheConnection(ApiKey key)
    {
        short v = ApiVersionTable.Find(key)!.MaxVersion;
        var request = Filled(key, v, Longest, out _);
        // Kayak's writer will not write a 32,768-byte string either: write 32,767 and lengthen the first one that
        // is not a tagged field's (whose size would then be wrong as well) by one byte. FlexibleApis lists only APIs that have one.
        byte[] frame = LengthenFirstCompactString(RawClient.Encode(request, v, 1))!;
        int mark = _logs.Count;
        using var client = await RawClient.ConnectAsync(_fx.Broker.BootstrapServers);
        await client.WriteRawAsync(frame!);
        // Kafka's generated reader throws "string field ... had invalid length" and the socket server closes.
        Assert.That(await client.IsClosedByPeerAsync(TimeSpan.FromSeconds(10)), Is.True);
        Assert.That(_logs.ErrorsSince(mark), Is.Empty);
        using var other = await RawClient.ConnectAsync(_fx.Broker.BootstrapServers);
        var r = await other.SendAsync<ApiVersionsResponse>(new ApiVersionsRequest(), 0);
        Assert.That(r.ErrorCode, Is.EqualTo(0));
    }

    /// <summary>The frame with its first non-tagged 32,767-byte compact string one byte longer; null when none.</summary>
    private static byte[]? LengthenFirstCompactString(byte[] frame)
    {
        // uvarint 32,768 (length + 1) is 80 80 02; as a tagged field its size, 32,770, comes just before (82 80 02).
        for (int i = 3; i + 3 < frame.Length; i++)
        {
            if (frame[i] != 0x80 || frame[i + 1] != 0x80 || frame[i + 2] != 0x02 || frame[i + 3] != (byte)'x') continue;
            if (frame[i - 3] == 0x82 && frame[i - 2] == 0x80 && frame[i - 1] == 0x02) continue;
            var longer = new byte[frame.Length + 1];
            frame.AsSpan(0, i + 3).CopyTo(longer);
            longer[i] = 0x81; // 32,769: a 32,768-byte string
            longer[i + 3] = (byte)'x';
            frame.AsSpan(i + 3).CopyTo(longer.AsSpan(i + 4));
            BinaryPrimitives.WriteInt32BigEndian(longer, longer.Length - 4);
            return longer;
        }
        return null;
    }

    // A multi-byte name at the limit: 16,383 two-byte characters are 32,766 bytes, and a message quoting it counts
    // bytes, not characters.
    [Test]
    [CancelAfter(30_000)]
    public async Task MultiByteNamesAreMeasuredInBytes()
    {
        var request = new CreateTopicsRequest { TimeoutMs = 1000 };
        request.Topics.Add(new CreateTopicsRequest.CreatableTopic { Name = new string('\u00e9', short.MaxValue / 2), NumPartitions = 1, ReplicationFactor = 1 });
        var r = await _fx.Client.SendAsync<CreateTopicsResponse>(request, 4);
        Assert.That(r.Topics[0].ErrorCode, Is.EqualTo((short)ErrorCode.InvalidTopicException));
    }

    private static int FlexibleFrom(ApiKey key) => (short)typeof(ApiMessageTypes).Assembly
        .GetType($"Kayak.Protocol.Messages.{key}Request")!.GetField("FlexibleFromVersion")!.GetValue(null)!;

    /// <summary>
    /// A request of <paramref name="key"/> at <paramref name="version"/> with every string field this version carries
    /// set to <paramref name="value"/> and one element in each array. A field is kept only when the request still
    /// encodes at this version (a field the version lacks cannot be written).
    /// </summary>
    internal static IApiMessage Filled(ApiKey key, short version, string value, out int strings)
    {
        var request = ApiMessageTypes.CreateRequest(key);
        if (request is ProduceRequest p) p.Acks = 1;
        strings = 0;
        Fill(request, request, version, value, ref strings, depth: 0);
        ValidAclCodes(request);
        return request;
    }

    /// <summary>
    /// The ACL APIs with the zero codes of a default request name UNKNOWN types, which close the connection as Kafka's
    /// request parsing does: give them valid ones (ANY filters, a LITERAL TOPIC READ ALLOW binding).
    /// </summary>
    private static void ValidAclCodes(IApiMessage request)
    {
        switch (request)
        {
            case DescribeAclsRequest d:
                (d.ResourceTypeFilter, d.Operation, d.PermissionType) = (1, 1, 1);
                break;
            case CreateAclsRequest c:
                foreach (var x in c.Creations) (x.ResourceType, x.Operation, x.PermissionType) = (2, 3, 3);
                break;
            case DeleteAclsRequest del:
                foreach (var f in del.Filters) (f.ResourceTypeFilter, f.Operation, f.PermissionType) = (1, 1, 1);
                break;
        }
    }

    private static void Fill(IApiMessage root, object message, short version, string value, ref int strings, int depth)
    {
        if (depth > 4) return;
        foreach (var p in message.GetType().GetProperties())
        {
            if (!p.CanWrite || p.Name == "UnknownTaggedFields") continue;
            object? old = p.GetValue(message);
            if (p.PropertyType == typeof(string))
            {
                p.SetValue(message, value);
                if (Encodes(root, version)) strings++;
                else p.SetValue(message, old);
            }
            else if (old is IList list && p.PropertyType.IsGenericType)
            {
                var elementType = p.PropertyType.GetGenericArguments()[0];
                if (elementType == typeof(string)) list.Add(value);
                else if (typeof(IKafkaMessage).IsAssignableFrom(elementType)) list.Add(Activator.CreateInstance(elementType));
                else continue;
                if (!Encodes(root, version)) { list.RemoveAt(list.Count - 1); continue; }
                if (elementType == typeof(string)) strings++;
                else Fill(root, list[0]!, version, value, ref strings, depth + 1);
            }
            else if (old is IKafkaMessage nested) Fill(root, nested, version, value, ref strings, depth + 1);
        }
    }

    /// <summary>The default request with one element in each array (nested too) this version carries.</summary>
    private static IApiMessage Structured(ApiKey key, short version) => Filled(key, version, "", out _);

    private static void Collect(object message, List<(object, PropertyInfo)> slots, int depth)
    {
        if (depth > 5) return;
        foreach (var p in message.GetType().GetProperties())
        {
            if (!p.CanWrite || p.Name == "UnknownTaggedFields") continue;
            object? value = p.GetValue(message);
            if (p.PropertyType == typeof(string)) slots.Add((message, p));
            else if (value is IKafkaMessage nested) Collect(nested, slots, depth + 1);
            else if (value is IList list)
                foreach (var e in list)
                    if (e is IKafkaMessage m) Collect(m, slots, depth + 1);
        }
    }

    private static bool Encodes(IApiMessage request, short version)
    {
        try
        {
            RawClient.Encode(request, version, 1);
            return true;
        }
        catch (ProtocolException)
        {
            return false;
        }
    }
}
