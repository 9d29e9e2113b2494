using System.Buffers.Binary;
using System.Numerics;

namespace Kayak.Protocol.Records;

/// <summary>
/// CRC-32C (Castagnoli), the checksum of magic v2 record batches (KIP-98; Java's Crc32C).
/// <see cref="BitOperations.Crc32C(uint, ulong)"/> is the raw reflected step (SSE4.2 / ARM CRC
/// instructions when present) without the standard pre/post inversion, so we add both here.
/// </summary>
public static class Crc32C
{
    public static uint Compute(ReadOnlySpan<byte> data) => ~Append(0xFFFFFFFFu, data);

    /// <summary>Continues a running (non-inverted) state; start with 0xFFFFFFFF and invert the final result.</summary>
    public static uint Append(uint state, ReadOnlySpan<byte> data)
    {
        int i = 0;
        // Little-endian loads: the reflected CRC consumes the lowest byte first.
        for (; i + 8 <= data.Length; i += 8)
            state = BitOperations.Crc32C(state, BinaryPrimitives.ReadUInt64LittleEndian(data[i..]));
        for (; i < data.Length; i++)
            state = BitOperations.Crc32C(state, data[i]);
        return state;
    }
}

/// <summary>
/// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), the checksum of magic v0/v1 messages
/// (computed over magic..end of each message). Slice-by-8 tables: System.IO.Hashing is not
/// available here and these messages are only on legacy paths.
/// </summary>
public static class Crc32
{
    private static readonly uint[] Table = BuildTable();

    private static uint[] BuildTable()
    {
        var t = new uint[8 * 256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[n] = c;
        }
        for (int n = 0; n < 256; n++)
            for (int s = 1; s < 8; s++)
                t[s * 256 + n] = (t[(s - 1) * 256 + n] >> 8) ^ t[t[(s - 1) * 256 + n] & 0xFF];
        return t;
    }

    public static uint Compute(ReadOnlySpan<byte> data) => ~Append(0xFFFFFFFFu, data);

    public static uint Append(uint crc, ReadOnlySpan<byte> data)
    {
        uint[] t = Table;
        int i = 0;
        for (; i + 8 <= data.Length; i += 8)
        {
            uint lo = crc ^ BinaryPrimitives.ReadUInt32LittleEndian(data[i..]);
            uint hi = BinaryPrimitives.ReadUInt32LittleEndian(data[(i + 4)..]);
            crc = t[7 * 256 + (lo & 0xFF)] ^ t[6 * 256 + ((lo >> 8) & 0xFF)] ^
                  t[5 * 256 + ((lo >> 16) & 0xFF)] ^ t[4 * 256 + (lo >> 24)] ^
                  t[3 * 256 + (hi & 0xFF)] ^ t[2 * 256 + ((hi >> 8) & 0xFF)] ^
                  t[1 * 256 + ((hi >> 16) & 0xFF)] ^ t[hi >> 24];
        }
        for (; i < data.Length; i++)
            crc = t[(crc ^ data[i]) & 0xFF] ^ (crc >> 8);
        return crc;
    }
}
