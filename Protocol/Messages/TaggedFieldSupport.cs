namespace Kayak.Protocol;

/// <summary>
/// Writes and sizes the unknown tagged fields a message kept on read (KIP-482). The tagged-field section
/// must list tags in ascending order, so generated code interleaves these with its known tags.
/// </summary>
internal static class TaggedFieldSupport
{
    private static readonly Comparison<TaggedField> ByTag = static (a, b) => a.Tag.CompareTo(b.Tag);

    /// <summary>Sorts by tag when someone added fields out of order; fields read off the wire are already sorted.</summary>
    public static void EnsureSorted(List<TaggedField>? fields)
    {
        if (fields is null) return;
        for (int i = 1; i < fields.Count; i++)
        {
            if (fields[i - 1].Tag > fields[i].Tag)
            {
                fields.Sort(ByTag);
                return;
            }
        }
    }

    /// <summary>Writes unknown fields from <paramref name="index"/> whose tag is below <paramref name="tagLimit"/>; returns the next index.</summary>
    public static int WriteUnknown(ref KafkaWriter writer, List<TaggedField>? fields, int index, int tagLimit)
    {
        if (fields is null) return index;
        while (index < fields.Count && fields[index].Tag < tagLimit)
        {
            var f = fields[index++];
            writer.WriteUnsignedVarInt((uint)f.Tag);
            writer.WriteUnsignedVarInt((uint)f.Data.Length);
            writer.WriteRaw(f.Data);
        }
        return index;
    }

    public static int Size(List<TaggedField>? fields)
    {
        if (fields is null) return 0;
        int size = 0;
        foreach (var f in fields)
            size += VarInt.SizeOfUnsigned((uint)f.Tag) + VarInt.SizeOfUnsigned((uint)f.Data.Length) + f.Data.Length;
        return size;
    }
}
