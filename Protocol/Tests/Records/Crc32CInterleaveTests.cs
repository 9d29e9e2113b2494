using System.Runtime.Intrinsics.X86;
using System.Text;
using Kayak.Protocol.Records;
using NUnit.Framework;

namespace Kayak.Protocol.Tests.Records;

/// <summary>
/// The three-chain CRC-32C (with carry-less-multiply or table merges) must equal the single-chain loop for every length
/// and alignment, and both must equal an independent bit-at-a-time reference.
/// </summary>
[TestFixture]
public sealed class Crc32CInterleaveTests
{
    private static readonly byte[] Data = RandomBytes(80 * 1024, 99);

    private static byte[] RandomBytes(int n, int seed)
    {
        var b = new byte[n];
        new Random(seed).NextBytes(b);
        return b;
    }

    private static uint BitwiseReference(ReadOnlySpan<byte> data)
    {
        uint c = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            c ^= b;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? (c >> 1) ^ 0x82F63B78 : c >> 1;
        }
        return ~c;
    }

    [Test]
    public void CheckValue() => Assert.That(Crc32C.Compute(Encoding.ASCII.GetBytes("123456789")), Is.EqualTo(0xE3069283u));

    // RFC 3720 (iSCSI) appendix B.4 vectors: 32 bytes of 0x00, of 0xFF, and ascending 0..31.
    [TestCase((byte)0x00, 0x8A9136AAu)]
    [TestCase((byte)0xFF, 0x62A8AB43u)]
    public void Rfc3720Vectors(byte fill, uint expected)
    {
        var b = new byte[32];
        Array.Fill(b, fill);
        Assert.That(Crc32C.Compute(b), Is.EqualTo(expected));
    }

    [Test]
    public void Rfc3720AscendingVector()
    {
        var b = new byte[32];
        for (int i = 0; i < b.Length; i++) b[i] = (byte)i;
        Assert.That(Crc32C.Compute(b), Is.EqualTo(0x46DD794Eu));
    }

    [Test]
    public void PowersOfXMatchThePolynomial()
    {
        Assert.That(Crc32C.XPow(0), Is.EqualTo(0x80000000u)); // 1
        Assert.That(Crc32C.XPow(31), Is.EqualTo(1u)); // x^31 is bit 0 in the reflected form
        Assert.That(Crc32C.XPow(32), Is.EqualTo(0x82F63B78u)); // x^32 ≡ P − x^32
        Assert.That(Crc32C.MulMod(Crc32C.XPow(1000), Crc32C.XPow(2345)), Is.EqualTo(Crc32C.XPow(3345)));
    }

    [Test]
    public void LongInputsMatchTheBitwiseReference()
    {
        foreach (int len in new[] { 3 * Crc32C.ShortBlock, 3 * Crc32C.LongBlock, 3 * Crc32C.LongBlock + 3 * Crc32C.ShortBlock + 7, Data.Length - 5 })
        {
            var s = Data.AsSpan(5, len);
            Assert.That(Crc32C.Compute(s), Is.EqualTo(BitwiseReference(s)), $"length {len}");
        }
    }

    [TestCase(true)]
    [TestCase(false)]
    public void InterleavedEqualsSerialForRandomLengthsAndOffsets(bool clmul)
    {
        // Without CRC instructions BitOperations computes in software, so both merges stay testable; the carry-less
        // multiply needs PCLMULQDQ, without it this case repeats the table merge.
        clmul &= Pclmulqdq.IsSupported;
        var rng = new Random(clmul ? 5 : 6);
        for (int n = 0; n < 3000; n++)
        {
            int len = n < 400 ? BoundaryLength(rng) : rng.Next(0, 70 * 1024 + 1);
            int offset = rng.Next(0, Data.Length - len + 1);
            var s = Data.AsSpan(offset, len);
            uint start = rng.Next(2) == 0 ? 0xFFFFFFFFu : (uint)rng.Next() * 2654435761u;
            Assert.That(Crc32C.AppendInterleaved(start, s, clmul), Is.EqualTo(Crc32C.AppendSerial(start, s)), $"length {len}, offset {offset}, state {start:X8}");
        }
    }

    /// <summary>Lengths next to where the block tiers change (multiples of three long / short blocks).</summary>
    private static int BoundaryLength(Random rng)
    {
        int unit = rng.Next(2) == 0 ? 3 * Crc32C.LongBlock : 3 * Crc32C.ShortBlock;
        int len = unit * rng.Next(0, 5) + rng.Next(-9, 10);
        return Math.Clamp(len, 0, 70 * 1024);
    }

    [Test]
    public void ComputeEqualsSerialAndIsIncrementalAcrossSplits()
    {
        var rng = new Random(8);
        for (int n = 0; n < 300; n++)
        {
            int len = rng.Next(0, 70 * 1024 + 1);
            var s = Data.AsSpan(rng.Next(0, Data.Length - len + 1), len);
            uint whole = Crc32C.Compute(s);
            Assert.That(whole, Is.EqualTo(~Crc32C.AppendSerial(0xFFFFFFFFu, s)), $"length {len}");
            int split = rng.Next(0, len + 1);
            Assert.That(~Crc32C.Append(Crc32C.Append(0xFFFFFFFFu, s[..split]), s[split..]), Is.EqualTo(whole), $"length {len} split {split}");
        }
    }
}
