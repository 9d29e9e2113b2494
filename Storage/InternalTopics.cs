using System.Globalization;

namespace Kayak.Storage;

/// <summary>
/// Kafka's internal topics, named and configured once for every component (issue 10, step 6): the group
/// coordinator's <c>__consumer_offsets</c> (Kafka's GroupCoordinatorConfig / CoordinatorRuntime topic configs) and
/// the transaction coordinator's <c>__transaction_state</c> (TransactionLog / TransactionStateManager). Both are
/// compacted; offsets keep the producer's codec, transaction state is written uncompressed, as in Kafka.
/// </summary>
public static class InternalTopics
{
    public const string ConsumerOffsets = "__consumer_offsets";
    public const string TransactionState = "__transaction_state";

    /// <summary>Kafka's offsets.topic.segment.bytes and transaction.state.log.segment.bytes default (100 MiB).</summary>
    public const int DefaultSegmentBytes = 104_857_600;

    public static bool IsInternal(string name) => name is ConsumerOffsets or TransactionState;

    /// <summary>__consumer_offsets' topic configs; <paramref name="segmentBytes"/> is offsets.topic.segment.bytes.</summary>
    public static Dictionary<string, string> ConsumerOffsetsConfigs(int segmentBytes = DefaultSegmentBytes) => new(StringComparer.Ordinal)
    {
        [TopicConfig.CleanupPolicyConfig] = "compact",
        [TopicConfig.CompressionTypeConfig] = "producer",
        [TopicConfig.SegmentBytesConfig] = segmentBytes.ToString(CultureInfo.InvariantCulture),
    };

    /// <summary>__transaction_state's topic configs (transaction.state.log.segment.bytes is not configurable in Kayak).</summary>
    public static Dictionary<string, string> TransactionStateConfigs() => new(StringComparer.Ordinal)
    {
        [TopicConfig.CleanupPolicyConfig] = "compact",
        [TopicConfig.CompressionTypeConfig] = "uncompressed",
        [TopicConfig.SegmentBytesConfig] = DefaultSegmentBytes.ToString(CultureInfo.InvariantCulture),
    };
}
