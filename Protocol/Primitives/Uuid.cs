using System.Buffers.Binary;

namespace Kayak.Protocol;

/// <summary>
/// Kafka's 128-bit UUID (topic ids, etc.): two big-endian longs on the wire, printed as
/// URL-safe base64 without padding, as Kafka's <c>Uuid.toString()</c> does.
/// </summary>
public readonly record struct Uuid(long MostSignificantBits, long LeastSignificantBits)
{
    public static readonly Uuid Zero = default;

    /// <summary>Kafka's METADATA_TOPIC_ID (AAAAAAAAAAAAAAAAAAAAAQ).</summary>
    public static readonly Uuid One = new(0, 1);

    public bool IsZero => MostSignificantBits == 0 && LeastSignificantBits == 0;

    /// <summary>A random version-4 UUID, never Zero or One and never starting with '-' when printed (as Kafka's Uuid.randomUuid).</summary>
    public static Uuid NewRandom()
    {
        Span<byte> b = stackalloc byte[16];
        while (true)
        {
            Guid.NewGuid().TryWriteBytes(b);
            b[6] = (byte)((b[6] & 0x0f) | 0x40);
            b[8] = (byte)((b[8] & 0x3f) | 0x80);
            var u = new Uuid(BinaryPrimitives.ReadInt64BigEndian(b), BinaryPrimitives.ReadInt64BigEndian(b[8..]));
            if (!u.IsZero && u != One && !u.ToString().StartsWith('-')) return u;
        }
    }

    public void WriteTo(Span<byte> destination)
    {
        BinaryPrimitives.WriteInt64BigEndian(destination, MostSignificantBits);
        BinaryPrimitives.WriteInt64BigEndian(destination[8..], LeastSignificantBits);
    }

    public static Uuid Read(ReadOnlySpan<byte> source) =>
        new(BinaryPrimitives.ReadInt64BigEndian(source), BinaryPrimitives.ReadInt64BigEndian(source[8..]));

    public override string ToString()
    {
        Span<byte> b = stackalloc byte[16];
        WriteTo(b);
        return Convert.ToBase64String(b).TrimEnd('=').Replace('+', '-').Replace('/', '_');
    }

    public static bool TryParse(string? s, out Uuid uuid)
    {
        uuid = default;
        if (s is null || s.Length != 22) return false;
        var b64 = s.Replace('-', '+').Replace('_', '/') + "==";
        Span<byte> b = stackalloc byte[18];
        if (!Convert.TryFromBase64String(b64, b, out int n) || n != 16) return false;
        uuid = Read(b);
        return true;
    }
}
