// ApiVersions (key 18), v0-4. Answers with ApiVersionTable.Served, the single list of what this broker
// serves. v3+ carries client software name/version (KIP-511) and the tagged feature lists (KIP-584, KIP-1022),
// built as Kafka 4.0's ApiVersionManager builds them from BrokerFeatures below. A request newer than v4 is
// answered by the connection at v0 with UNSUPPORTED_VERSION and our ranges, as Kafka does.
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class ApiVersionsHandler : ApiHandler<ApiVersionsRequest>
{
    public override ApiKey Key => ApiKey.ApiVersions;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, ApiVersionsRequest request)
    {
        // v3+: Kafka validates the client software name and version (KIP-511) and answers INVALID_REQUEST.
        if (context.ApiVersion >= 3 && (!IsValidSoftwareToken(request.ClientSoftwareName) || !IsValidSoftwareToken(request.ClientSoftwareVersion)))
        {
            return Done(Build(context.ApiVersion).SetError(ErrorCode.InvalidRequest));
        }
        return Done(Build(context.ApiVersion));
    }

    /// <summary>KIP-511: [a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?</summary>
    private static bool IsValidSoftwareToken(string s)
    {
        if (s.Length == 0) return false;
        if (!char.IsAsciiLetterOrDigit(s[0]) || !char.IsAsciiLetterOrDigit(s[^1])) return false;
        foreach (char c in s)
            if (!char.IsAsciiLetterOrDigit(c) && c != '-' && c != '.') return false;
        return true;
    }

    private static ApiVersionsResponse Build(short version = 0)
    {
        var response = new ApiVersionsResponse();
        foreach (var api in ApiVersionTable.Served)
            response.ApiKeys.Add(new ApiVersionsResponse.ApiVersion { ApiKey = (short)api.Key, MinVersion = api.MinVersion, MaxVersion = api.MaxVersion });
        foreach (var f in BrokerFeatures.All)
        {
            // Kafka's BrokerFeatures.defaultSupportedFeatures lists no feature whose highest level is 0, and
            // ApiVersionsResponse omits features with minimum 0 below v4 (older clients fail to parse them, KAFKA-17492).
            if (f.SupportedMax > 0 && !(version < 4 && f.SupportedMin == 0))
                response.SupportedFeatures.Add(new ApiVersionsResponse.SupportedFeatureKey { Name = f.Name, MinVersion = f.SupportedMin, MaxVersion = f.SupportedMax });
            // createFinalizedFeatureKeys: level 0 means "not enabled" and is left out; min level = max level.
            if (f.Finalized != 0)
                response.FinalizedFeatures.Add(new ApiVersionsResponse.FinalizedFeatureKey { Name = f.Name, MinVersionLevel = f.Finalized, MaxVersionLevel = f.Finalized });
        }
        response.FinalizedFeaturesEpoch = BrokerFeatures.FinalizedEpoch;
        return response;
    }

    /// <summary>The v0 answer to an ApiVersions request newer than we serve (KIP-511).</summary>
    internal static ApiVersionsResponse UnsupportedVersionResponse()
    {
        return Build().SetError(ErrorCode.UnsupportedVersion);
    }
}

/// <summary>A feature flag (KIP-584): the levels this broker can run and the level it runs at.</summary>
internal sealed record BrokerFeature(string Name, short SupportedMin, short SupportedMax, short Finalized);

/// <summary>
/// The feature levels Kayak advertises, named and numbered as Kafka 4.0's (server-common MetadataVersion,
/// GroupVersion, TransactionVersion, KRaftVersion, EligibleLeaderReplicasVersion), each only as far as Kayak
/// implements it. What clients act on: a Java producer uses the KIP-890 part 2 protocol only when
/// transaction.version >= 2 is finalized, and consumers look for group.version >= 1 before KIP-848. group.version
/// is at 1 (KIP-848 consumer groups are served); transaction.version stays at 0 (not listed), so producers keep
/// KIP-890 part 1.
/// </summary>
internal static class BrokerFeatures
{
    /// <summary>
    /// metadata.version runs at 3.9-IV0 (level 21), the highest level whose client-facing protocol Kayak serves in
    /// full: Kafka maps it to Fetch v17 and ListOffsets v9, exactly our maxima. The 4.0 levels gate what Kayak
    /// lacks: 4.0-IV0 (22) KIP-848 groups, 4.0-IV1 (23) ELR (KIP-966), 4.0-IV2 (24) transaction.version 2
    /// (KIP-890), 4.0-IV3 (25) ListOffsets v10 (KIP-1075). The minimum, 3.3-IV3 (7), is Kafka 4.0's lowest.
    /// </summary>
    public const short MetadataVersionMinimum = 7, MetadataVersion3_9_IV0 = 21;

    /// <summary>
    /// Kafka reports the metadata log offset of the image the features come from; Kayak has no metadata log and
    /// its levels only change with a Kayak release, so the epoch is a constant to raise whenever a finalized level
    /// changes: Java clients (ApiVersions.update) only take finalized features from a higher epoch than they saw.
    /// </summary>
    public const long FinalizedEpoch = 1; // 1: group.version finalized at 1 (KIP-848)

    public static readonly BrokerFeature[] All =
    [
        new("metadata.version", MetadataVersionMinimum, MetadataVersion3_9_IV0, MetadataVersion3_9_IV0),
        // GV_1: KIP-848 consumer groups (ConsumerGroupHeartbeat, ConsumerGroupDescribe) are served, as in Kafka 4.0.
        new("group.version", 0, 1, 1),
        // KIP-890 part 2 (EndTxn v5, implicit AddPartitionsToTxn) is not implemented: TV_0 only.
        new("transaction.version", 0, 0, 0),
        // No Raft quorum to reconfigure (KIP-853) and no eligible leader replicas (KIP-966) on one node.
        new("kraft.version", 0, 0, 0),
        new("eligible.leader.replicas.version", 0, 0, 0),
    ];
}
