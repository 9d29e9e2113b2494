namespace Kayak.Protocol;

/// <summary>
/// Malformed bytes on the wire: truncated frames, negative or oversized lengths, bad varints,
/// wrong CRCs. The broker answers with CORRUPT_MESSAGE where Kafka does, otherwise closes the connection.
/// </summary>
public class ProtocolException : Exception
{
    public ProtocolException(string message) : base(message) { }
    public ProtocolException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>A record batch failed its CRC check.</summary>
public sealed class CorruptRecordException : ProtocolException
{
    public CorruptRecordException(string message) : base(message) { }
}

/// <summary>A message was written at a version that cannot carry one of its non-default, non-ignorable fields.</summary>
public sealed class UnsupportedVersionException : ProtocolException
{
    public UnsupportedVersionException(string message) : base(message) { }
}

/// <summary>
/// A message to be written holds a string longer than the protocol's 32,767 bytes. Thrown by <c>Size</c>, before
/// anything is written; for a response it is the broker's bug (what it echoes must have fit), not the client's.
/// </summary>
public sealed class StringTooLongException : ProtocolException
{
    public StringTooLongException(string message) : base(message) { }
}

/// <summary>Throw helpers keep the hot paths small and inlinable.</summary>
public static class ThrowHelper
{
    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    public static void Truncated(int needed, int available) =>
        throw new ProtocolException($"Truncated input: needed {needed} bytes, {available} available.");

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    public static void BadLength(long length, int remaining) =>
        throw new ProtocolException($"Invalid length {length} (remaining {remaining} bytes).");

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    public static void BadVarint() =>
        throw new ProtocolException("Malformed varint: more than the allowed number of bytes.");

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    public static void Malformed(string what) => throw new ProtocolException(what);
}
