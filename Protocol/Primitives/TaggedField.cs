namespace Kayak.Protocol;

/// <summary>A tagged field this code does not know; kept on read and written back unchanged (KIP-482).</summary>
public readonly record struct TaggedField(int Tag, byte[] Data);
