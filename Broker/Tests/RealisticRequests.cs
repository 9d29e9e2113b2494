using System.Text;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using Kayak.Protocol.Records;

namespace Kayak.Broker.Tests;

/// <summary>
/// One valid, realistic request per served API and version, naming topics, groups and transactions the fuzz tests
/// create (<see cref="Topic"/> with 2 partitions and some records, "fuzz-grow" with 1): WireFuzzTests mutates them,
/// LongStringTests lengthens their strings.
/// </summary>
internal static class RealisticRequests
{
    public const string Topic = "fuzz-topic";
    public const string Group = "fuzz-group";
    public const string TransactionalId = "fuzz-txn";

    public static byte[] BuildBatch(int records)
    {
        using var builder = new RecordBatchBuilder(new RecordBatchOptions());
        for (int i = 0; i < records; i++)
            builder.Append(1_700_000_000_000 + i, Encoding.UTF8.GetBytes($"k{i}"), Encoding.UTF8.GetBytes($"value-{i}"),
                [new RecordHeader("h", [1, 2])]);
        return builder.ToArray();
    }

    public static ProduceRequest ProduceTo(string topic, int partition, byte[] batch, short acks) => new()
    {
        Acks = acks,
        TimeoutMs = 5000,
        TopicData = [new ProduceRequest.TopicProduceData { Name = topic, PartitionData = [new ProduceRequest.PartitionProduceData { Index = partition, Records = batch }] }],
    };

    /// <summary>A realistic request of <paramref name="key"/> valid at <paramref name="v"/>; null when the default one covers it.</summary>
    public static IApiMessage? For(ApiKey key, short v, int unique, Func<string, Uuid> topicIdOf)
    {
        switch (key)
        {
            case ApiKey.Produce:
                // v0-2 carry magic 0/1 message sets in Kafka; a v2 batch is what current clients send at v3+.
                return ProduceTo(Topic, 1, BuildBatch(2), acks: 1);
            case ApiKey.Fetch:
                return new FetchRequest
                {
                    ReplicaId = -1, MaxWaitMs = 0, MinBytes = 0, MaxBytes = 1 << 20, IsolationLevel = 0,
                    SessionEpoch = v >= 7 ? -1 : 0,
                    Topics = [new FetchRequest.FetchTopic { Topic = v < 13 ? Topic : "", TopicId = v < 13 ? default : topicIdOf(Topic), Partitions = [new FetchRequest.FetchPartition { Partition = 0, FetchOffset = 1, PartitionMaxBytes = 1 << 16 }] }],
                };
            case ApiKey.ListOffsets:
                return new ListOffsetsRequest
                {
                    ReplicaId = -1,
                    Topics = [new ListOffsetsRequest.ListOffsetsTopic { Name = Topic, Partitions = [new ListOffsetsRequest.ListOffsetsPartition { PartitionIndex = 0, Timestamp = -1}] }],
                };
            case ApiKey.Metadata:
                return new MetadataRequest { Topics = [new MetadataRequest.MetadataRequestTopic { Name = Topic }, new MetadataRequest.MetadataRequestTopic { Name = "fuzz-absent" }], AllowAutoTopicCreation = v < 4 || unique % 2 == 0 };
            case ApiKey.OffsetCommit:
                return new OffsetCommitRequest
                {
                    GroupId = Group,
                    Topics = [new OffsetCommitRequest.OffsetCommitRequestTopic { Name = Topic, Partitions = [new OffsetCommitRequest.OffsetCommitRequestPartition { PartitionIndex = 0, CommittedOffset = 1, CommittedMetadata = "m" }] }],
                };
            case ApiKey.OffsetFetch:
                return v < 8
                    ? new OffsetFetchRequest { GroupId = Group, Topics = [new OffsetFetchRequest.OffsetFetchRequestTopic { Name = Topic, PartitionIndexes = [0, 1] }] }
                    : new OffsetFetchRequest { Groups = [new OffsetFetchRequest.OffsetFetchRequestGroup { GroupId = Group, Topics = [new OffsetFetchRequest.OffsetFetchRequestTopics { Name = Topic, PartitionIndexes = [0, 1] }] }] };
            case ApiKey.FindCoordinator:
                return v < 4 ? new FindCoordinatorRequest { KeyValue = Group } : new FindCoordinatorRequest { KeyType = 1, CoordinatorKeys = [TransactionalId, "other"] };
            case ApiKey.JoinGroup:
                return new JoinGroupRequest
                {
                    GroupId = $"fuzz-join-{unique:D7}", SessionTimeoutMs = 10_000, RebalanceTimeoutMs = v >= 1 ? 10_000 : -1, ProtocolType = "consumer",
                    Protocols = [new JoinGroupRequest.JoinGroupRequestProtocol { Name = "range", Metadata = [0, 1, 0, 0, 0, 1, 0, 10, 102, 117, 122, 122, 45, 116, 111, 112, 105, 99, 0, 0, 0, 0] }],
                };
            case ApiKey.Heartbeat:
                return new HeartbeatRequest { GroupId = Group, GenerationId = 1, MemberId = "member-1" };
            case ApiKey.LeaveGroup:
                return v < 3 ? new LeaveGroupRequest { GroupId = Group, MemberId = "member-1" }
                    : new LeaveGroupRequest { GroupId = Group, Members = [new LeaveGroupRequest.MemberIdentity { MemberId = "member-1" }, new LeaveGroupRequest.MemberIdentity { MemberId = "", GroupInstanceId = v >= 3 ? "static-1" : null }] };
            case ApiKey.SyncGroup:
                return new SyncGroupRequest { GroupId = Group, GenerationId = 1, MemberId = "member-1", Assignments = [new SyncGroupRequest.SyncGroupRequestAssignment { MemberId = "member-1", Assignment = [0, 1, 0, 0, 0, 0] }] };
            case ApiKey.DescribeGroups:
                return new DescribeGroupsRequest { Groups = [Group, "fuzz-absent"] };
            case ApiKey.ApiVersions:
                return v >= 3 ? new ApiVersionsRequest { ClientSoftwareName = "fuzz-client", ClientSoftwareVersion = "1.0" } : null;
            case ApiKey.CreateTopics:
                return new CreateTopicsRequest
                {
                    TimeoutMs = 5000,
                    Topics = [new CreateTopicsRequest.CreatableTopic { Name = $"fuzz-created-{v}", NumPartitions = 1, ReplicationFactor = 1, Configs = [new CreateTopicsRequest.CreatableTopicConfig { Name = "retention.ms", Value = "86400000" }, new CreateTopicsRequest.CreatableTopicConfig { Name = "cleanup.policy", Value = "delete" }] }],
                    ValidateOnly = v >= 1 && unique % 2 == 0,
                };
            case ApiKey.DeleteTopics:
                return v < 6 ? new DeleteTopicsRequest { TopicNames = ["fuzz-doomed"], TimeoutMs = 5000 }
                    : new DeleteTopicsRequest { Topics = [new DeleteTopicsRequest.DeleteTopicState { Name = "fuzz-doomed" }], TimeoutMs = 5000 };
            case ApiKey.DeleteRecords:
                return new DeleteRecordsRequest { TimeoutMs = 5000, Topics = [new DeleteRecordsRequest.DeleteRecordsTopic { Name = Topic, Partitions = [new DeleteRecordsRequest.DeleteRecordsPartition { PartitionIndex = 1, Offset = 0 }] }] };
            case ApiKey.InitProducerId:
                return new InitProducerIdRequest { TransactionalId = unique % 2 == 0 ? null : TransactionalId, TransactionTimeoutMs = 60_000 };
            case ApiKey.OffsetForLeaderEpoch:
                return new OffsetForLeaderEpochRequest { ReplicaId = v >= 3 ? -1 : -2, Topics = [new OffsetForLeaderEpochRequest.OffsetForLeaderTopic { Topic = Topic, Partitions = [new OffsetForLeaderEpochRequest.OffsetForLeaderPartition { Partition = 0, CurrentLeaderEpoch = v >= 2 ? 0 : -1, LeaderEpoch = 0 }] }] };
            case ApiKey.AddPartitionsToTxn:
                return v < 4
                    ? new AddPartitionsToTxnRequest { V3AndBelowTransactionalId = TransactionalId, V3AndBelowProducerId = 1, V3AndBelowProducerEpoch = 0, V3AndBelowTopics = [new AddPartitionsToTxnRequest.AddPartitionsToTxnTopic { Name = Topic, Partitions = [0] }] }
                    : new AddPartitionsToTxnRequest { Transactions = [new AddPartitionsToTxnRequest.AddPartitionsToTxnTransaction { TransactionalId = TransactionalId, ProducerId = 1, ProducerEpoch = 0, VerifyOnly = true, Topics = [new AddPartitionsToTxnRequest.AddPartitionsToTxnTopic { Name = Topic, Partitions = [0] }] }] };
            case ApiKey.AddOffsetsToTxn:
                return new AddOffsetsToTxnRequest { TransactionalId = TransactionalId, ProducerId = 1, ProducerEpoch = 0, GroupId = Group };
            case ApiKey.EndTxn:
                return new EndTxnRequest { TransactionalId = TransactionalId, ProducerId = 1, ProducerEpoch = 0, Committed = true };
            case ApiKey.TxnOffsetCommit:
                return new TxnOffsetCommitRequest
                {
                    TransactionalId = TransactionalId, GroupId = Group, ProducerId = 1, ProducerEpoch = 0,
                    Topics = [new TxnOffsetCommitRequest.TxnOffsetCommitRequestTopic { Name = Topic, Partitions = [new TxnOffsetCommitRequest.TxnOffsetCommitRequestPartition { PartitionIndex = 0, CommittedOffset = 1 }] }],
                };
            case ApiKey.DescribeConfigs:
                return new DescribeConfigsRequest { Resources = [new DescribeConfigsRequest.DescribeConfigsResource { ResourceType = 2, ResourceName = Topic }, new DescribeConfigsRequest.DescribeConfigsResource { ResourceType = 4, ResourceName = "1", ConfigurationKeys = ["message.max.bytes"] }], IncludeSynonyms = v >= 1 };
            case ApiKey.AlterConfigs:
                return new AlterConfigsRequest { ValidateOnly = unique % 2 == 0, Resources = [new AlterConfigsRequest.AlterConfigsResource { ResourceType = 2, ResourceName = Topic, Configs = [new AlterConfigsRequest.AlterableConfig { Name = "retention.ms", Value = "604800000" }] }] };
            case ApiKey.DescribeLogDirs:
                return new DescribeLogDirsRequest { Topics = [new DescribeLogDirsRequest.DescribableLogDirTopic { Topic = Topic, Partitions = [0, 1] }] };
            case ApiKey.CreatePartitions:
                return new CreatePartitionsRequest { TimeoutMs = 5000, ValidateOnly = true, Topics = [new CreatePartitionsRequest.CreatePartitionsTopic { Name = "fuzz-grow", Count = 3 }] };
            case ApiKey.DeleteGroups:
                return new DeleteGroupsRequest { GroupsNames = ["fuzz-gone", Group] };
            case ApiKey.IncrementalAlterConfigs:
                return new IncrementalAlterConfigsRequest { ValidateOnly = unique % 2 == 0, Resources = [new IncrementalAlterConfigsRequest.AlterConfigsResource { ResourceType = 2, ResourceName = Topic, Configs = [new IncrementalAlterConfigsRequest.AlterableConfig { Name = "retention.ms", ConfigOperation = 0, Value = "604800000" }] }] };
            case ApiKey.OffsetDelete:
                return new OffsetDeleteRequest { GroupId = Group, Topics = [new OffsetDeleteRequest.OffsetDeleteRequestTopic { Name = Topic, Partitions = [new OffsetDeleteRequest.OffsetDeleteRequestPartition { PartitionIndex = 1 }] }] };
            case ApiKey.DescribeClientQuotas:
                return new DescribeClientQuotasRequest { Components = [new DescribeClientQuotasRequest.ComponentData { EntityType = "user", MatchType = 0, Match = "fuzz" }], Strict = unique % 2 == 0 };
            case ApiKey.AlterClientQuotas:
                return new AlterClientQuotasRequest
                {
                    ValidateOnly = unique % 2 == 0,
                    Entries = [new AlterClientQuotasRequest.EntryData
                    {
                        Entity = [new AlterClientQuotasRequest.EntityData { EntityType = "client-id", EntityName = "fuzz" }],
                        Ops = [new AlterClientQuotasRequest.OpData { Key = "consumer_byte_rate", Value = 1e12 }],
                    }],
                };
            case ApiKey.DescribeProducers:
                return new DescribeProducersRequest { Topics = [new DescribeProducersRequest.TopicRequest { Name = Topic, PartitionIndexes = [0, 1] }] };
            case ApiKey.DescribeTransactions:
                return new DescribeTransactionsRequest { TransactionalIds = [TransactionalId] };
            case ApiKey.ListTransactions:
                return new ListTransactionsRequest { StateFilters = ["Ongoing"], ProducerIdFilters = [1], DurationFilter = v >= 1 ? 1000 : -1 };
            case ApiKey.DescribeTopicPartitions:
                return new DescribeTopicPartitionsRequest { ResponsePartitionLimit = 1, Topics = [new DescribeTopicPartitionsRequest.TopicRequest { Name = Topic }], Cursor = new DescribeTopicPartitionsRequest.CursorData { TopicName = Topic, PartitionIndex = 1 } };
            case ApiKey.DescribeAcls:
                return new DescribeAclsRequest { ResourceTypeFilter = 2, ResourceNameFilter = Topic, PatternTypeFilter = v >= 1 ? (sbyte)2 : (sbyte)3, PrincipalFilter = null, HostFilter = null, Operation = 1, PermissionType = 1 };
            case ApiKey.CreateAcls:
                return new CreateAclsRequest { Creations = [new CreateAclsRequest.AclCreation { ResourceType = 2, ResourceName = Topic, ResourcePatternType = 3, Principal = "User:fuzz", Host = "*", Operation = 3, PermissionType = 3 }] };
            case ApiKey.DeleteAcls:
                return new DeleteAclsRequest { Filters = [new DeleteAclsRequest.DeleteAclsFilter { ResourceTypeFilter = 2, ResourceNameFilter = Topic, PatternTypeFilter = 3, PrincipalFilter = "User:fuzz", HostFilter = null, Operation = 1, PermissionType = 1 }] };
            default:
                return null;
        }
    }
}
