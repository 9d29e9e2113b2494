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
