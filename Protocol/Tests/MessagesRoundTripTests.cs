using Kayak.Protocol.Messages;
using Kayak.Protocol.Tests.Generated;
using NUnit.Framework;

namespace Kayak.Protocol.Tests;

/// <summary>Every generated message at every version it supports: write, size, read back, re-write identically.</summary>
[TestFixture]
public class MessagesRoundTripTests
{
    public static IEnumerable<TestCaseData> Cases()
    {
        foreach (var e in MessageSamples.All)
            for (int v = e.Lowest; v <= e.Highest; v++)
                yield return new TestCaseData(e, (short)v).SetName($"{e.Name}_v{v}");
    }

    private static void RoundTrip(MessageSamples.Entry entry, IKafkaMessage original, short version)
    {
        byte[] bytes = MessageSerializer.Write(original, version);
        Assert.That(original.Size(version), Is.EqualTo(bytes.Length), "Size must equal the bytes Write produced");

        var copy = entry.Create();
        var reader = new KafkaReader(bytes);
        copy.Read(ref reader, version);
        Assert.That(reader.Remaining, Is.Zero, "Read must consume exactly what Write produced");

        byte[] again = MessageSerializer.Write(copy, version);
        Assert.That(again, Is.EqualTo(bytes), "re-encoding the decoded message must give identical bytes");
        Assert.That(copy.Size(version), Is.EqualTo(again.Length));
    }

    [TestCaseSource(nameof(Cases))]
    public void SampleRoundTrips(MessageSamples.Entry entry, short version)
    {
        var sample = entry.Sample(version);
        RoundTrip(entry, sample, version);
        // The sample carries non-default values, so it cannot encode like an empty message
        // (unless this version has no fields at all, e.g. ApiVersionsRequest v0-2).
        byte[] full = MessageSerializer.Write(sample, version), empty = MessageSerializer.Write(entry.Create(), version);
        if (entry.FieldCount(version) == 0) Assert.That(full, Is.EqualTo(empty));
        else Assert.That(full, Is.Not.EqualTo(empty));
    }

    [TestCaseSource(nameof(Cases))]
    public void DefaultsRoundTrip(MessageSamples.Entry entry, short version) => RoundTrip(entry, entry.Create(), version);

    [Test]
    public void EveryApiHasRequestAndResponseFactories()
    {
        Assert.That(ApiMessageTypes.All, Is.Not.Empty);
        foreach (var info in ApiMessageTypes.All)
        {
            Assert.That(ApiMessageTypes.CreateRequest(info.Key).ApiKey, Is.EqualTo(info.Key));
            Assert.That(ApiMessageTypes.CreateResponse(info.Key).ApiKey, Is.EqualTo(info.Key));
            Assert.That(ApiMessageTypes.Find(info.Key), Is.SameAs(info));
            Assert.That(info.LowestVersion, Is.LessThanOrEqualTo(info.HighestVersion));
        }
    }

    [Test]
    public void HeaderVersionsFollowFlexibility()
    {
        Assert.That(ApiMessageTypes.RequestHeaderVersion(ApiKey.ApiVersions, 2), Is.EqualTo(1));
        Assert.That(ApiMessageTypes.RequestHeaderVersion(ApiKey.ApiVersions, 3), Is.EqualTo(2));
        Assert.That(ApiMessageTypes.ResponseHeaderVersion(ApiKey.ApiVersions, 3), Is.EqualTo(0), "ApiVersions responses always use header v0");
        Assert.That(ApiMessageTypes.RequestHeaderVersion(ApiKey.ControlledShutdown, 0), Is.EqualTo(0));
        Assert.That(ApiMessageTypes.RequestHeaderVersion(ApiKey.Produce, 8), Is.EqualTo(1));
        Assert.That(ApiMessageTypes.RequestHeaderVersion(ApiKey.Produce, 9), Is.EqualTo(2));
        Assert.That(ApiMessageTypes.ResponseHeaderVersion(ApiKey.Produce, 9), Is.EqualTo(1));
        Assert.That(ApiMessageTypes.ResponseHeaderVersion(ApiKey.Metadata, 8), Is.EqualTo(0));
        Assert.That(ApiMessageTypes.Find(ApiKey.Produce)!.BrokerListener, Is.True);
    }
}
