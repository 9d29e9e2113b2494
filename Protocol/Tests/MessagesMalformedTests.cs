using Kayak.Protocol.Messages;
using Kayak.Protocol.Tests.Generated;
using NUnit.Framework;

namespace Kayak.Protocol.Tests;

/// <summary>Unknown tagged fields survive, and hostile or truncated input fails with ProtocolException only.</summary>
[TestFixture]
public class MessagesMalformedTests
{
    private static byte[] Hex(string hex) => Convert.FromHexString(hex.Replace(" ", ""));

    [Test]
    public void UnknownTaggedFieldsSurviveReadWrite()
    {
        // ApiVersionsRequest v3: "a", "1", then two tags the spec does not know (5: AA BB, 7: empty).
        byte[] bytes = Hex("02 61 02 31 02 05 02 aabb 07 00");
        var m = MessageSerializer.Read<ApiVersionsRequest>(bytes, 3);
        Assert.That(m.UnknownTaggedFields, Has.Count.EqualTo(2));
        Assert.That(m.UnknownTaggedFields![0].Tag, Is.EqualTo(5));
        Assert.That(m.UnknownTaggedFields[0].Data, Is.EqualTo(new byte[] { 0xaa, 0xbb }));
        Assert.That(MessageSerializer.Write(m, 3), Is.EqualTo(bytes));
        Assert.That(m.Size(3), Is.EqualTo(bytes.Length));
    }

    [Test]
    public void UnknownTagsMergeWithKnownTagsInTagOrder()
    {
        // ApiVersionsResponse v3, empty ApiKeys, one element-free body; tags: known 1 (epoch 7), unknown 9 (FF),
        // and inside a struct: ApiVersion element with unknown tag 4.
        byte[] bytes = Hex("0000 02 0012 0000 0004 01 04 01 ee 00000000 02 01 08 0000000000000007 09 01 ff");
        var m = MessageSerializer.Read<ApiVersionsResponse>(bytes, 3);
        Assert.That(m.FinalizedFeaturesEpoch, Is.EqualTo(7));
        Assert.That(m.UnknownTaggedFields!.Single().Tag, Is.EqualTo(9));
        Assert.That(m.ApiKeys[0].UnknownTaggedFields!.Single().Data, Is.EqualTo(new byte[] { 0xee }));
        Assert.That(MessageSerializer.Write(m, 3), Is.EqualTo(bytes));

        // An unknown tag below a known one is written before it, and added-out-of-order tags are sorted.
        m.UnknownTaggedFields!.Add(new TaggedField(0x7f, [1]));
        m.UnknownTaggedFields.Add(new TaggedField(0, [2]));
        m.ApiKeys.Clear();
        byte[] expected = Hex("0000 01 00000000 04 00 01 02 01 08 0000000000000007 09 01 ff 7f 01 01");
        Assert.That(MessageSerializer.Write(m, 3), Is.EqualTo(expected));
        Assert.That(m.Size(3), Is.EqualTo(expected.Length));
    }

    public static IEnumerable<TestCaseData> TruncationCases()
    {
        foreach (var e in MessageSamples.All)
        {
            yield return new TestCaseData(e, e.Lowest).SetName($"Truncated_{e.Name}_v{e.Lowest}");
            if (e.Highest != e.Lowest) yield return new TestCaseData(e, e.Highest).SetName($"Truncated_{e.Name}_v{e.Highest}");
        }
    }

    [TestCaseSource(nameof(TruncationCases))]
    public void EveryTruncationThrowsProtocolException(MessageSamples.Entry entry, short version)
    {
        byte[] full = MessageSerializer.Write(entry.Sample(version), version);
        for (int len = 0; len < full.Length; len++)
        {
            var prefix = new ReadOnlyMemory<byte>(full, 0, len);
            Assert.Throws(Is.InstanceOf<ProtocolException>(), () =>
            {
                var reader = new KafkaReader(prefix);
                entry.Create().Read(ref reader, version);
            }, $"prefix of {len}/{full.Length} bytes");
        }
    }

    [Test]
    public void NullForNonNullableArrayIsRejected()
    {
        // ApiVersionsResponse v0 with ApiKeys length -1.
        Assert.Throws<ProtocolException>(() => MessageSerializer.Read<ApiVersionsResponse>(Hex("0000 ffffffff"), 0));
        // Compact null (0) at v3.
        Assert.Throws<ProtocolException>(() => MessageSerializer.Read<ApiVersionsResponse>(Hex("0000 00 00000000 00"), 3));
    }

    [Test]
    public void NullForNonNullableStringIsRejected()
    {
        // ApiVersionsRequest v3 ClientSoftwareName compact null.
        Assert.Throws<ProtocolException>(() => MessageSerializer.Read<ApiVersionsRequest>(Hex("00 02 31 00"), 3));
        // FindCoordinatorRequest v0 Key with INT16 -1.
        Assert.Throws<ProtocolException>(() => MessageSerializer.Read<FindCoordinatorRequest>(Hex("ffff"), 0));
    }

    [TestCase("0000 7fffffff", (short)0, TestName = "Array length far beyond the frame")]
    [TestCase("0000 fffffffe", (short)0, TestName = "Negative array length other than -1")]
    [TestCase("0000 ffffffff0f 00000000 00", (short)3, TestName = "Compact array length beyond the frame")]
    [TestCase("0000 ffffffffff 00000000 00", (short)3, TestName = "Varint longer than five bytes")]
    [TestCase("0000 01 00000000 01 01 09 0000000000000007", (short)3, TestName = "Tagged field size disagrees with its content")]
    [TestCase("0000 01 00000000 01 05 7f 00", (short)3, TestName = "Unknown tagged field size beyond the frame")]
    public void BadLengthsInApiVersionsResponseThrow(string hex, short version) =>
        Assert.Throws(Is.InstanceOf<ProtocolException>(), () => MessageSerializer.Read<ApiVersionsResponse>(Hex(hex), version));

    [Test]
    public void StringLengthBeyondFrameThrows() =>
        Assert.Throws<ProtocolException>(() => MessageSerializer.Read<FindCoordinatorRequest>(Hex("0100 6162"), 0));

    [Test]
    public void RecordsAreSlicedWithoutCopy()
    {
        var produce = new ProduceRequest { Acks = 1, TimeoutMs = 1000 };
        var topic = new ProduceRequest.TopicProduceData { Name = "t" };
        topic.PartitionData.Add(new ProduceRequest.PartitionProduceData { Index = 0, Records = new byte[] { 9, 8, 7 } });
        produce.TopicData.Add(topic);
        byte[] bytes = MessageSerializer.Write(produce, 9);
        var back = MessageSerializer.Read<ProduceRequest>(bytes, 9);
        var records = back.TopicData[0].PartitionData[0].Records!.Value;
        Assert.That(records.ToArray(), Is.EqualTo(new byte[] { 9, 8, 7 }));
        Assert.That(System.Runtime.InteropServices.MemoryMarshal.TryGetArray(records, out var segment), Is.True);
        Assert.That(segment.Array, Is.SameAs(bytes), "records must slice the frame, not copy it");
    }
}
