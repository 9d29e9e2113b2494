namespace Kayak.Protocol;

/// <summary>Every generated message and struct: versioned read, write and exact size, no reflection.</summary>
public interface IKafkaMessage
{
    void Read(ref KafkaReader reader, short version);
    void Write(ref KafkaWriter writer, short version);
    /// <summary>Exact number of bytes <see cref="Write"/> produces at this version.</summary>
    int Size(short version);
}

/// <summary>A request or response body of one API.</summary>
public interface IApiMessage : IKafkaMessage
{
    ApiKey ApiKey { get; }
}

/// <summary>
/// A response with a top-level throttle_time_ms (generated for every response that has one). Client quotas
/// (KIP-13, KIP-219) set it after the handler ran, so handlers need not know about quotas.
/// </summary>
public interface IThrottledResponse
{
    int ThrottleTimeMs { get; set; }
}
