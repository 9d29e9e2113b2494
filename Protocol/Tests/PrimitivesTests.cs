using System.Buffers;
using NUnit.Framework;

namespace Kayak.Protocol.Tests;

public class PrimitivesTests
{
    [TestCase(0), TestCase(1), TestCase(-1), TestCase(63), TestCase(-64), TestCase(300), TestCase(int.MaxValue), TestCase(int.MinValue)]
    public void VarIntRoundTrips(int v)
    {
        var buf = new ArrayBufferWriter<byte>();
        var w = new KafkaWriter(buf);
        w.WriteVarInt(v);
        w.Flush();
        Assert.That(buf.WrittenCount, Is.EqualTo(VarInt.SizeOf(v)));
        var r = new KafkaReader(buf.WrittenMemory);
        Assert.That(r.ReadVarInt(), Is.EqualTo(v));
        Assert.That(r.End);
    }

    [Test]
    public void OverlongVarIntIsRejected()
    {
        var bytes = new byte[] { 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 };
        Assert.Throws<ProtocolException>(() => { var r = new KafkaReader(bytes); r.ReadUnsignedVarInt(); });
    }

    [Test]
    public void HugeArrayLengthIsRejectedBeforeAllocation()
    {
        var bytes = new byte[] { 0x7f, 0xff, 0xff, 0xff, 0, 0 };
        Assert.Throws<ProtocolException>(() => { var r = new KafkaReader(bytes); r.ReadArrayLength(); });
    }

    [Test]
    public void TruncatedStringIsRejected()
    {
        var bytes = new byte[] { 0x00, 0x10, (byte)'a' };
        Assert.Throws<ProtocolException>(() => { var r = new KafkaReader(bytes); r.ReadString(); });
    }

    [Test]
    public void UuidPrintsLikeKafka()
    {
        Assert.That(Uuid.One.ToString(), Is.EqualTo("AAAAAAAAAAAAAAAAAAAAAQ"));
        Assert.That(Uuid.TryParse("AAAAAAAAAAAAAAAAAAAAAQ", out var u) && u == Uuid.One);
    }
}
