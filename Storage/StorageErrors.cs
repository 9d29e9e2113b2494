namespace Kayak.Storage;

/// <summary>
/// Error codes Storage reports to the broker. Each maps 1:1 onto the Kafka protocol error of the
/// same name, so the broker can translate <see cref="StorageErrorException.Error"/> directly.
/// </summary>
public enum StorageError
{
    /// <summary>Fetch/DeleteRecords offset below the log start offset or above the log end offset (OFFSET_OUT_OF_RANGE).</summary>
    OffsetOutOfRange,
    /// <summary>No such topic or partition (UNKNOWN_TOPIC_OR_PARTITION).</summary>
    UnknownTopicOrPartition,
    /// <summary>CreateTopics on an existing name (TOPIC_ALREADY_EXISTS).</summary>
    TopicAlreadyExists,
    /// <summary>Illegal topic name, or one colliding with an existing topic once '.' and '_' are equated (INVALID_TOPIC_EXCEPTION).</summary>
    InvalidTopic,
    /// <summary>Partition count below 1 or not larger than the current count (INVALID_PARTITIONS).</summary>
    InvalidPartitions,
    /// <summary>Bytes handed to Append that are not well-formed v2 batches (CORRUPT_MESSAGE).</summary>
    CorruptRecord,
    /// <summary>An append larger than the topic's max.message.bytes (MESSAGE_TOO_LARGE).</summary>
    MessageTooLarge,
    /// <summary>I/O failure or a corrupt on-disk log (KAFKA_STORAGE_ERROR).</summary>
    KafkaStorageError,
}

/// <summary>
/// Thrown by Storage for conditions the broker answers with a Kafka error code: a <see cref="Kayak.Protocol.KafkaException"/>
/// whose <c>Code</c> is <see cref="StorageErrorCodes.ToErrorCode"/> of <see cref="Error"/>, mapped here once.
/// </summary>
public sealed class StorageErrorException : Kayak.Protocol.KafkaException
{
    public StorageError Error { get; }

    public StorageErrorException(StorageError error, string message) : base(error.ToErrorCode(), message) => Error = error;
    public StorageErrorException(StorageError error, string message, Exception inner) : base(error.ToErrorCode(), message, inner) => Error = error;
}

/// <summary>
/// An invalid topic config name or value (Kafka's INVALID_CONFIG). <see cref="Key"/> names the offending
/// config so the broker can echo it in the error message like Kafka does.
/// </summary>
public sealed class ConfigException : Kayak.Protocol.KafkaException
{
    public string Key { get; }

    public ConfigException(string key, string message) : base(Kayak.Protocol.ErrorCode.InvalidConfig, message) => Key = key;
}

/// <summary>Kafka's wire codes for Storage's errors (the one place they are mapped for reads).</summary>
public static class StorageErrorCodes
{
    public static Kayak.Protocol.ErrorCode ToErrorCode(this StorageError error) => error switch
    {
        StorageError.OffsetOutOfRange => Kayak.Protocol.ErrorCode.OffsetOutOfRange,
        StorageError.UnknownTopicOrPartition => Kayak.Protocol.ErrorCode.UnknownTopicOrPartition,
        StorageError.TopicAlreadyExists => Kayak.Protocol.ErrorCode.TopicAlreadyExists,
        StorageError.InvalidTopic => Kayak.Protocol.ErrorCode.InvalidTopicException,
        StorageError.InvalidPartitions => Kayak.Protocol.ErrorCode.InvalidPartitions,
        StorageError.CorruptRecord => Kayak.Protocol.ErrorCode.CorruptMessage,
        StorageError.MessageTooLarge => Kayak.Protocol.ErrorCode.MessageTooLarge,
        _ => Kayak.Protocol.ErrorCode.KafkaStorageError,
    };
}

internal static class StorageThrow
{
    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    public static void OffsetOutOfRange(string partition, long offset, long start, long end) =>
        throw new StorageErrorException(StorageError.OffsetOutOfRange,
            $"Offset {offset} is out of range for partition {partition}: log start offset {start}, log end offset {end}.");

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    public static void Corrupt(string message) => throw new StorageErrorException(StorageError.CorruptRecord, message);

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    public static void StorageFailure(string message) => throw new StorageErrorException(StorageError.KafkaStorageError, message);
}
