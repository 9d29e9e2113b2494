namespace Kayak.Protocol;

/// <summary>
/// A Kafka error as every layer reports it: the wire code and, where Kafka sends one, the message. Storage,
/// the coordinators and the broker's services all answer with this (or throw <see cref="KafkaException"/>), so a
/// handler writes any failure into its response the same way (<see cref="ErrorFields.SetError{T}"/>) instead of
/// translating each layer's own error type.
/// </summary>
public readonly record struct KafkaError(ErrorCode Code, string? Message = null)
{
    public static KafkaError None => default;

    public bool IsError => Code != ErrorCode.None;

    public static implicit operator KafkaError(ErrorCode code) => new(code);

    public override string ToString() => Message is null ? ErrorCodes.KafkaName(Code) : $"{ErrorCodes.KafkaName(Code)}: {Message}";
}

/// <summary>
/// A failure that carries its Kafka error: Storage's <c>StorageErrorException</c> and <c>ProducerStateException</c>
/// derive from it and are thrown with the wire code itself (no Storage-only code beside it), so callers catch one type.
/// </summary>
public class KafkaException : Exception
{
    public KafkaException(ErrorCode code, string message) : base(message) => Code = code;
    public KafkaException(ErrorCode code, string message, Exception inner) : base(message, inner) => Code = code;

    public ErrorCode Code { get; }

    public KafkaError KafkaError => new(Code, Message);
}
