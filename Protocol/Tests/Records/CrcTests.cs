using System.Text;
using Kayak.Protocol.Records;
using NUnit.Framework;

namespace Kayak.Protocol.Tests.Records;

public class CrcTests
{
    private static readonly byte[] Check = Encoding.ASCII.GetBytes("123456789");

    [Test]
    public void Crc32CCheckValue() => Assert.That(Crc32C.Compute(Check), Is.EqualTo(0xE3069283u));

    [Test]
    public void Crc32CheckValue() => Assert.That(Crc32.Compute(Check), Is.EqualTo(0xCBF43926u));

    [Test]
    public void EmptyInputIsZero()
    {
        Assert.That(Crc32C.Compute([]), Is.EqualTo(0u));
        Assert.That(Crc32.Compute([]), Is.EqualTo(0u));
    }

    // Bit-at-a-time references, independent of the table/hardware paths, across all tail lengths.
    private static uint Reference(ReadOnlySpan<byte> data, uint poly)
    {
        uint c = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            c ^= b;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? (c >> 1) ^ poly : c >> 1;
        }
        return ~c;
    }

    [Test]
    public void MatchBitwiseReferenceForManyLengths()
    {
        var rnd = new Random(1234);
        var data = new byte[300];
        rnd.NextBytes(data);
        for (int len = 0; len <= data.Length; len += 7)
        {
            var s = data.AsSpan(0, len);
            Assert.That(Crc32C.Compute(s), Is.EqualTo(Reference(s, 0x82F63B78)), $"crc32c len {len}");
            Assert.That(Crc32.Compute(s), Is.EqualTo(Reference(s, 0xEDB88320)), $"crc32 len {len}");
        }
    }

    [Test]
    public void AppendIsIncremental()
    {
        var data = Encoding.ASCII.GetBytes("hello, incremental crc world");
        uint state = Crc32C.Append(0xFFFFFFFF, data.AsSpan(0, 11));
        state = Crc32C.Append(state, data.AsSpan(11));
        Assert.That(~state, Is.EqualTo(Crc32C.Compute(data)));
    }
}
