namespace Kayak.Protocol.Messages;

// The generated parts the broker writes errors into. Declared here rather than by the generator so the
// generated files stay as they are; the properties already exist with these exact types.
public sealed partial class ProduceResponse { public sealed partial class PartitionProduceResponse : IErrorMessageField { } }
public sealed partial class FetchResponse : IErrorCodeField { public sealed partial class PartitionData : IErrorCodeField { } }
public sealed partial class ListOffsetsResponse { public sealed partial class ListOffsetsPartitionResponse : IErrorCodeField { } }
public sealed partial class MetadataResponse { public sealed partial class MetadataResponseTopic : IErrorCodeField { } }
public sealed partial class DeleteRecordsResponse { public sealed partial class DeleteRecordsPartitionResult : IErrorCodeField { } }
public sealed partial class OffsetForLeaderEpochResponse { public sealed partial class EpochEndOffset : IErrorCodeField { } }
public sealed partial class DescribeProducersResponse { public sealed partial class PartitionResponse : IErrorMessageField { } }
public sealed partial class CreateTopicsResponse { public sealed partial class CreatableTopicResult : IErrorMessageField { } }
public sealed partial class CreatePartitionsResponse { public sealed partial class CreatePartitionsTopicResult : IErrorMessageField { } }
public sealed partial class DeleteTopicsResponse { public sealed partial class DeletableTopicResult : IErrorMessageField { } }
public sealed partial class AlterConfigsResponse { public sealed partial class AlterConfigsResourceResponse : IErrorMessageField { } }
public sealed partial class IncrementalAlterConfigsResponse { public sealed partial class AlterConfigsResourceResponse : IErrorMessageField { } }
public sealed partial class DescribeConfigsResponse { public sealed partial class DescribeConfigsResult : IErrorMessageField { } }
public sealed partial class ElectLeadersResponse : IErrorCodeField { public sealed partial class PartitionResult : IErrorMessageField { } }
public sealed partial class DescribeTopicPartitionsResponse { public sealed partial class DescribeTopicPartitionsResponseTopic : IErrorCodeField { } }
public sealed partial class TxnOffsetCommitResponse { public sealed partial class TxnOffsetCommitResponsePartition : IErrorCodeField { } }
public sealed partial class DescribeTransactionsResponse { public sealed partial class TransactionStateData : IErrorCodeField { } }
public sealed partial class FindCoordinatorResponse : IErrorMessageField { public sealed partial class Coordinator : IErrorMessageField { } }
public sealed partial class DescribeClusterResponse : IErrorMessageField { }
// Top-level and per-entry errors of the admin, security and coordinator APIs (issue 10: one place writes a
// KafkaError into a response). A part whose generated message defaults to "" keeps that default only when the
// caller passes "" — SetError writes exactly the KafkaError it is given.
public sealed partial class ApiVersionsResponse : IErrorCodeField { }
public sealed partial class SaslHandshakeResponse : IErrorCodeField { }
public sealed partial class SaslAuthenticateResponse : IErrorMessageField { }
public sealed partial class DescribeLogDirsResponse : IErrorCodeField { public sealed partial class DescribeLogDirsResult : IErrorCodeField { } }
public sealed partial class AlterPartitionReassignmentsResponse : IErrorMessageField { public sealed partial class ReassignablePartitionResponse : IErrorMessageField { } }
public sealed partial class ListPartitionReassignmentsResponse : IErrorMessageField { }
public sealed partial class DescribeClientQuotasResponse : IErrorMessageField { }
public sealed partial class AlterClientQuotasResponse { public sealed partial class EntryData : IErrorMessageField { } }
public sealed partial class DescribeUserScramCredentialsResponse : IErrorMessageField { public sealed partial class DescribeUserScramCredentialsResult : IErrorMessageField { } }
public sealed partial class AlterUserScramCredentialsResponse { public sealed partial class AlterUserScramCredentialsResult : IErrorMessageField { } }
public sealed partial class ConsumerGroupDescribeResponse { public sealed partial class DescribedGroup : IErrorMessageField { } }
public sealed partial class ConsumerGroupHeartbeatResponse : IErrorMessageField { }
public sealed partial class MetadataResponse { public sealed partial class MetadataResponsePartition : IErrorCodeField { } }
public sealed partial class DescribeTopicPartitionsResponse { public sealed partial class DescribeTopicPartitionsResponsePartition : IErrorCodeField { } }
public sealed partial class CreateAclsResponse { public sealed partial class AclCreationResult : IErrorMessageField { } }
public sealed partial class DeleteAclsResponse { public sealed partial class DeleteAclsFilterResult : IErrorMessageField { } }
public sealed partial class DescribeAclsResponse : IErrorMessageField { }
public sealed partial class InitProducerIdResponse : IErrorCodeField { }
public sealed partial class CreateDelegationTokenResponse : IErrorCodeField { }
// The classic group APIs (none has a message field).
public sealed partial class JoinGroupResponse : IErrorCodeField { }
public sealed partial class SyncGroupResponse : IErrorCodeField { }
public sealed partial class HeartbeatResponse : IErrorCodeField { }
public sealed partial class LeaveGroupResponse : IErrorCodeField { public sealed partial class MemberResponse : IErrorCodeField { } }
public sealed partial class OffsetCommitResponse { public sealed partial class OffsetCommitResponsePartition : IErrorCodeField { } }
public sealed partial class OffsetFetchResponse : IErrorCodeField
{
    public sealed partial class OffsetFetchResponsePartition : IErrorCodeField { }
    public sealed partial class OffsetFetchResponseGroup : IErrorCodeField { }
    public sealed partial class OffsetFetchResponsePartitions : IErrorCodeField { }
}
public sealed partial class OffsetDeleteResponse : IErrorCodeField { public sealed partial class OffsetDeleteResponsePartition : IErrorCodeField { } }
public sealed partial class DescribeGroupsResponse { public sealed partial class DescribedGroup : IErrorCodeField { } }
public sealed partial class DeleteGroupsResponse { public sealed partial class DeletableGroupResult : IErrorCodeField { } }
public sealed partial class ListGroupsResponse : IErrorCodeField { }
// Delegation tokens (KIP-48; none has a message field).
public sealed partial class RenewDelegationTokenResponse : IErrorCodeField { }
public sealed partial class ExpireDelegationTokenResponse : IErrorCodeField { }
public sealed partial class DescribeDelegationTokenResponse : IErrorCodeField { }
// The transaction APIs (the handlers 24-27 write their errors through SetError too).
public sealed partial class AddPartitionsToTxnResponse : IErrorCodeField
{
    // The per-partition code has its own generated name; the interface maps it so it is written like every other.
    public sealed partial class AddPartitionsToTxnPartitionResult : IErrorCodeField
    {
        short IErrorCodeField.ErrorCode { get => PartitionErrorCode; set => PartitionErrorCode = value; }
    }
}
public sealed partial class AddOffsetsToTxnResponse : IErrorCodeField { }
public sealed partial class EndTxnResponse : IErrorCodeField { }
public sealed partial class WriteTxnMarkersResponse { public sealed partial class WritableTxnMarkerPartitionResult : IErrorCodeField { } }
