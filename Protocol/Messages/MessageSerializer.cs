using System.Buffers;

namespace Kayak.Protocol.Messages;

/// <summary>Whole-message convenience for tests and tools; the broker's hot path writes straight into its pipe.</summary>
public static class MessageSerializer
{
    /// <summary>Reads a message that must occupy exactly <paramref name="bytes"/>; trailing bytes are malformed input.</summary>
    public static T Read<T>(ReadOnlyMemory<byte> bytes, short version) where T : IKafkaMessage, new()
    {
        var reader = new KafkaReader(bytes);
        var message = new T();
        message.Read(ref reader, version);
        if (!reader.End) ThrowHelper.Malformed($"{typeof(T).Name} v{version}: {reader.Remaining} unexpected trailing bytes.");
        return message;
    }

    public static byte[] Write(IKafkaMessage message, short version)
    {
        var buffer = new ArrayBufferWriter<byte>(Math.Max(16, message.Size(version)));
        var writer = new KafkaWriter(buffer);
        message.Write(ref writer, version);
        writer.Flush();
        return buffer.WrittenSpan.ToArray();
    }
}
