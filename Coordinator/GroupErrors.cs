namespace Kayak.Coordinator;

/// <summary>
/// Kafka error codes the group coordinator returns, as plain shorts so Coordinator does not depend on
/// the shared ErrorCode enum's timing. Values are Kafka's (org.apache.kafka.common.protocol.Errors).
/// </summary>
internal static class GroupErrors
{
    public const short None = 0;
    public const short UnknownTopicOrPartition = 3;
    public const short OffsetMetadataTooLarge = 12;
    public const short CoordinatorLoadInProgress = 14;
    public const short CoordinatorNotAvailable = 15;
    public const short NotCoordinator = 16;
    public const short IllegalGeneration = 22;
    public const short InconsistentGroupProtocol = 23;
    public const short InvalidGroupId = 24;
    public const short UnknownMemberId = 25;
    public const short InvalidSessionTimeout = 26;
    public const short RebalanceInProgress = 27;
    public const short InvalidCommitOffsetSize = 28;
    public const short InvalidRequest = 42;
    public const short NonEmptyGroup = 68;
    public const short GroupIdNotFound = 69;
    public const short MemberIdRequired = 79;
    public const short GroupMaxSizeReached = 81;
    public const short FencedInstanceId = 82;
    public const short GroupSubscribedToTopic = 86;
    public const short UnstableOffsetCommit = 88;
}
