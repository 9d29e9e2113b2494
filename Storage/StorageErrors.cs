using Kayak.Protocol;

namespace Kayak.Storage;

/// <summary>
/// Thrown by Storage for conditions the broker answers with a Kafka error code (OFFSET_OUT_OF_RANGE,
/// UNKNOWN_TOPIC_OR_PARTITION, TOPIC_ALREADY_EXISTS, INVALID_TOPIC_EXCEPTION, INVALID_PARTITIONS, CORRUPT_MESSAGE,
/// MESSAGE_TOO_LARGE, KAFKA_STORAGE_ERROR for I/O failures and unreadable logs): the one error type, with no
/// Storage-specific code beside it to map.
/// </summary>
public sealed class StorageErrorException : KafkaException
{
    public StorageErrorException(ErrorCode code, string message) : base(code, message) { }
    public StorageErrorException(ErrorCode code, string message, Exception inner) : base(code, message, inner) { }
}

/// <summary>
/// An invalid topic config name or value (Kafka's INVALID_CONFIG). <see cref="Key"/> names the offending
/// config so the broker can echo it in the error message like Kafka does.
/// </summary>
public sealed class ConfigException : KafkaException
{
    public string Key { get; }

    public ConfigException(string key, string message) : base(ErrorCode.InvalidConfig, message) => Key = key;
}

internal static class StorageThrow
{
    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    public static void OffsetOutOfRange(string partition, long offset, long start, long end) =>
        throw new StorageErrorException(ErrorCode.OffsetOutOfRange,
            $"Offset {offset} is out of range for partition {partition}: log start offset {start}, log end offset {end}.");

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    public static void Corrupt(string message) => throw new StorageErrorException(ErrorCode.CorruptMessage, message);

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    public static void StorageFailure(string message) => throw new StorageErrorException(ErrorCode.KafkaStorageError, message);
}
