namespace Kayak.Protocol;

/// <summary>A served API and the version range the broker advertises in ApiVersions.</summary>
public sealed record ServedApi(ApiKey Key, short MinVersion, short MaxVersion);

/// <summary>
/// The single place that says which APIs the broker serves and at which versions. ApiVersions is
/// built from it, the connection rejects what it does not list, and the broker refuses to start if
/// a listed API has no handler. Ranges are the spec's validVersions minus versions marked
/// latestVersionUnstable. Produce starts at 0: librdkafka refuses compressed produce to brokers whose
/// Produce range does not start at 0 (KAFKA-18659).
/// </summary>
public static class ApiVersionTable
{
    public static readonly ServedApi[] Served =
    [
        new(ApiKey.Produce, 0, 11),
        new(ApiKey.Fetch, 0, 17),
        new(ApiKey.ListOffsets, 0, 9),
        new(ApiKey.Metadata, 0, 12),
        new(ApiKey.OffsetCommit, 0, 9),
        new(ApiKey.OffsetFetch, 0, 9),
        new(ApiKey.FindCoordinator, 0, 6),
        new(ApiKey.JoinGroup, 0, 9),
        new(ApiKey.Heartbeat, 0, 4),
        new(ApiKey.LeaveGroup, 0, 5),
        new(ApiKey.SyncGroup, 0, 5),
        new(ApiKey.DescribeGroups, 0, 5),
        new(ApiKey.ListGroups, 0, 5),
        new(ApiKey.SaslHandshake, 0, 1),
        new(ApiKey.ApiVersions, 0, 4),
        new(ApiKey.CreateTopics, 0, 7),
        new(ApiKey.DeleteTopics, 0, 6),
        new(ApiKey.DeleteRecords, 0, 2),
        new(ApiKey.InitProducerId, 0, 5),
        new(ApiKey.OffsetForLeaderEpoch, 0, 4),
        new(ApiKey.AddPartitionsToTxn, 0, 4),
        new(ApiKey.AddOffsetsToTxn, 0, 4),
        new(ApiKey.EndTxn, 0, 4),
        // Broker to broker (issue 14): the transaction coordinator's markers to partition leaders (CLUSTER_ACTION).
        new(ApiKey.WriteTxnMarkers, 0, 1),
        new(ApiKey.TxnOffsetCommit, 0, 4),
        new(ApiKey.DescribeAcls, 0, 3),
        new(ApiKey.CreateAcls, 0, 3),
        new(ApiKey.DeleteAcls, 0, 3),
        new(ApiKey.DescribeConfigs, 0, 4),
        new(ApiKey.AlterConfigs, 0, 2),
        new(ApiKey.DescribeLogDirs, 0, 4),
        new(ApiKey.SaslAuthenticate, 0, 2),
        new(ApiKey.CreatePartitions, 0, 3),
        // KIP-48: answered as Kafka 4.0 without delegation.token.secret.key (DELEGATION_TOKEN_AUTH_DISABLED).
        new(ApiKey.CreateDelegationToken, 0, 3),
        new(ApiKey.RenewDelegationToken, 0, 2),
        new(ApiKey.ExpireDelegationToken, 0, 2),
        new(ApiKey.DescribeDelegationToken, 0, 3),
        new(ApiKey.DeleteGroups, 0, 2),
        new(ApiKey.ElectLeaders, 0, 2),
        new(ApiKey.AlterPartitionReassignments, 0, 0),
        new(ApiKey.ListPartitionReassignments, 0, 0),
        new(ApiKey.IncrementalAlterConfigs, 0, 1),
        new(ApiKey.OffsetDelete, 0, 0),
        new(ApiKey.DescribeClientQuotas, 0, 1),
        new(ApiKey.AlterClientQuotas, 0, 1),
        new(ApiKey.DescribeUserScramCredentials, 0, 0),
        new(ApiKey.AlterUserScramCredentials, 0, 0),
        new(ApiKey.DescribeCluster, 0, 1),
        new(ApiKey.DescribeProducers, 0, 0),
        new(ApiKey.DescribeTransactions, 0, 0),
        new(ApiKey.ListTransactions, 0, 1),
        new(ApiKey.DescribeTopicPartitions, 0, 0),
        // KIP-848. v1 (SubscribedTopicRegex, client-made member ids) is Kafka 4.0's default even though this spec copy
        // still marks it unstable; librdkafka 2.16 speaks it.
        new(ApiKey.ConsumerGroupHeartbeat, 0, 1),
        new(ApiKey.ConsumerGroupDescribe, 0, 0),
    ];

    private static readonly ServedApi?[] ByKey = BuildIndex();

    private static ServedApi?[] BuildIndex()
    {
        short max = 0;
        foreach (var s in Served) max = Math.Max(max, (short)s.Key);
        var index = new ServedApi?[max + 1];
        foreach (var s in Served) index[(short)s.Key] = s;
        return index;
    }

    public static ServedApi? Find(ApiKey key)
    {
        short k = (short)key;
        return k >= 0 && k < ByKey.Length ? ByKey[k] : null;
    }
}
