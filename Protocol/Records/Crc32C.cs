using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Kayak.Protocol.Records;

/// <summary>
/// CRC-32C (Castagnoli), the checksum of magic v2 record batches (KIP-98; Java's Crc32C).
/// <see cref="BitOperations.Crc32C(uint, ulong)"/> is the raw reflected step (SSE4.2 / ARM CRC
/// instructions when present) without the standard pre/post inversion, so we add both here.
/// </summary>
/// <remarks>
/// One chain of CRC instructions is bound by their latency (3 cycles per 8 bytes on x86) while the unit can start one
/// per cycle, so inputs of at least <see cref="InterleaveThreshold"/> bytes are cut into three equal blocks whose CRCs
/// run as three independent chains and are then merged: the CRC register is linear over GF(2), so
/// crc(A‖B) = crc(A)·x^(8|B|) ⊕ crc₀(B) (crc₀ = started from 0), and multiplying by the fixed power of x for the block
/// length is one carry-less multiply plus one CRC step (or four table lookups without PCLMULQDQ). Every produced batch
/// pays this check (Kafka's LogValidator verifies the CRC of each v2 batch from a client), hence the effort, and why
/// this stays instead of System.IO.Hashing's <c>Crc32ParameterSet.Crc32C</c>, which measured half as fast at 1 KiB and
/// 1 MiB (tools/Benchmarks/RESULTS.md, 2026-12-01).
/// </remarks>
public static class Crc32C
{
    /// <summary>Reflected Castagnoli polynomial.</summary>
    private const uint Poly = 0x82F63B78u;
    /// <summary>Per-stream block lengths (bytes, multiples of 8): long blocks for the bulk, short ones for what remains.</summary>
    internal const int LongBlock = 4096, ShortBlock = 256;
    /// <summary>Below three short blocks the single chain is as fast and needs no merge.</summary>
    internal const int InterleaveThreshold = 3 * ShortBlock;

    // Carry-less multiplying the 32-bit reflected state by a constant k yields state·k·x (bit 63 of the product is
    // always 0), and the CRC step over that 64-bit word multiplies by x^32 more: so k = x^(8n-33) shifts by n bytes.
    private static readonly ulong ClmulLong = XPow(8L * LongBlock - 33), ClmulShort = XPow(8L * ShortBlock - 33);
    private static uint[]? s_shiftTables;

    /// <summary>Whether the three-chain path is used on this machine (hardware CRC-32C instructions present).</summary>
    internal static bool CanInterleave => BitConverter.IsLittleEndian && (Sse42.X64.IsSupported || System.Runtime.Intrinsics.Arm.Crc32.Arm64.IsSupported);

    public static uint Compute(ReadOnlySpan<byte> data) => ~Append(0xFFFFFFFFu, data);

    /// <summary>Continues a running (non-inverted) state; start with 0xFFFFFFFF and invert the final result.</summary>
    public static uint Append(uint state, ReadOnlySpan<byte> data)
    {
        if (data.Length >= InterleaveThreshold && CanInterleave)
            return AppendInterleaved(state, data, Pclmulqdq.IsSupported);
        return AppendSerial(state, data);
    }

    /// <summary>The single-chain loop: short inputs, and machines without CRC instructions (BitOperations then falls back to software).</summary>
    internal static uint AppendSerial(uint state, ReadOnlySpan<byte> data)
    {
        int i = 0;
        // Little-endian loads: the reflected CRC consumes the lowest byte first.
        for (; i + 8 <= data.Length; i += 8)
            state = BitOperations.Crc32C(state, BinaryPrimitives.ReadUInt64LittleEndian(data[i..]));
        for (; i < data.Length; i++)
            state = BitOperations.Crc32C(state, data[i]);
        return state;
    }

    /// <summary>Three chains over long then short blocks, the rest serially. <paramref name="clmul"/> = false merges with tables (tests use it to cover that path).</summary>
    internal static uint AppendInterleaved(uint state, ReadOnlySpan<byte> data, bool clmul)
    {
        ref byte p = ref MemoryMarshal.GetReference(data);
        nuint offset = 0;
        nuint remaining = (nuint)data.Length;
        uint[]? tables = clmul ? null : ShiftTables();
        while (remaining >= 3 * LongBlock)
        {
            state = ThreeChains(state, ref Unsafe.Add(ref p, offset), LongBlock, clmul, ClmulLong, tables, 0);
            offset += 3 * LongBlock;
            remaining -= 3 * LongBlock;
        }
        while (remaining >= 3 * ShortBlock)
        {
            state = ThreeChains(state, ref Unsafe.Add(ref p, offset), ShortBlock, clmul, ClmulShort, tables, 4 * 256);
            offset += 3 * ShortBlock;
            remaining -= 3 * ShortBlock;
        }
        return AppendSerial(state, data[(int)offset..]);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint ThreeChains(uint c0, ref byte p, nuint block, bool clmul, ulong k, uint[]? tables, int table)
    {
        uint c1 = 0, c2 = 0;
        ref byte p1 = ref Unsafe.Add(ref p, block);
        ref byte p2 = ref Unsafe.Add(ref p, 2 * block);
        for (nuint i = 0; i < block; i += 8)
        {
            c0 = BitOperations.Crc32C(c0, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, i)));
            c1 = BitOperations.Crc32C(c1, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p1, i)));
            c2 = BitOperations.Crc32C(c2, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p2, i)));
        }
        if (clmul)
        {
            // c0·x^(16·block) ⊕ c1·x^(8·block) ⊕ c2 as ((c0 shifted by a block) ⊕ c1) shifted by a block ⊕ c2, so one
            // constant per block length suffices.
            uint t = BitOperations.Crc32C(0u, ClMul(c0, k)) ^ c1;
            return BitOperations.Crc32C(0u, ClMul(t, k)) ^ c2;
        }
        uint u = Shift(tables!, table, c0) ^ c1;
        return Shift(tables!, table, u) ^ c2;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong ClMul(uint a, ulong k) =>
        Pclmulqdq.CarrylessMultiply(Vector128.CreateScalar((ulong)a), Vector128.CreateScalar(k), 0x00).ToScalar();

    /// <summary>state·x^(8·block) mod P by bytes: the shift is linear, so it is the XOR of each byte's shifted value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Shift(uint[] t, int table, uint s) =>
        t[table + (int)(s & 0xFF)] ^ t[table + 256 + (int)((s >> 8) & 0xFF)] ^
        t[table + 512 + (int)((s >> 16) & 0xFF)] ^ t[table + 768 + (int)(s >> 24)];

    private static uint[] ShiftTables()
    {
        var t = s_shiftTables;
        if (t != null) return t;
        t = new uint[8 * 256];
        BuildShiftTable(t, 0, XPow(8L * LongBlock));
        BuildShiftTable(t, 4 * 256, XPow(8L * ShortBlock));
        return s_shiftTables = t; // racing builders produce equal tables
    }

    private static void BuildShiftTable(uint[] t, int at, uint xn)
    {
        for (int b = 0; b < 4; b++)
            for (uint v = 0; v < 256; v++)
                t[at + b * 256 + (int)v] = MulMod(v << (8 * b), xn);
    }

    /// <summary>x^n mod P in the reflected representation (bit 31 is x^0, bit 0 is x^31).</summary>
    internal static uint XPow(long n)
    {
        // Square-and-multiply over the bits of n, starting from x^1.
        uint result = 0x80000000u, power = 0x40000000u;
        for (; n != 0; n >>= 1)
        {
            if ((n & 1) != 0) result = MulMod(result, power);
            power = MulMod(power, power);
        }
        return result;
    }

    /// <summary>a·b mod P, reflected, bit by bit (only used to build constants).</summary>
    internal static uint MulMod(uint a, uint b)
    {
        uint product = 0;
        for (uint m = 0x80000000u; m != 0; m >>= 1)
        {
            if ((a & m) != 0) product ^= b;
            b = (b & 1) != 0 ? (b >> 1) ^ Poly : b >> 1; // b·x
        }
        return product;
    }
}

/// <summary>
/// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), the checksum of magic v0/v1 messages (computed over
/// magic..end of each message). System.IO.Hashing's, which folds with carry-less multiplies; this name stays so
/// callers need not know where it comes from.
/// </summary>
public static class Crc32
{
    public static uint Compute(ReadOnlySpan<byte> data) => System.IO.Hashing.Crc32.HashToUInt32(data);
}
