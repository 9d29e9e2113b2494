using System.Buffers.Binary;
using System.Numerics;

namespace Kayak.Storage;

/// <summary>
/// CRC-32C (Castagnoli) as used by the v2 record batch (KIP-98): init 0xFFFFFFFF, final xor 0xFFFFFFFF,
/// computed over the batch from the attributes field to its end. Storage only needs it for recovery
/// checks and for re-stamping LogAppendTime batches; the lead will swap it for the Protocol one.
/// </summary>
internal static class Crc32C
{
    public static uint Compute(ReadOnlySpan<byte> data) => Update(0xFFFFFFFFu, data) ^ 0xFFFFFFFFu;

    /// <summary>Runs the raw CRC register over <paramref name="data"/> (no init / final xor).</summary>
    public static uint Update(uint crc, ReadOnlySpan<byte> data)
    {
        int i = 0;
        // BitOperations.Crc32C uses the SSE4.2 / ARMv8 instruction when available.
        for (; i + 8 <= data.Length; i += 8)
            crc = BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data[i..]));
        for (; i < data.Length; i++)
            crc = BitOperations.Crc32C(crc, data[i]);
        return crc;
    }
}
