using Kayak.Protocol;

namespace Kayak.Coordinator.Tests;

/// <summary>
/// Kafka error codes as the shorts the generated messages carry, for tests comparing response fields. The
/// coordinator itself works in <see cref="ErrorCode"/> only (issue 10) and casts where it fills a message field.
/// </summary>
internal static class GroupErrors
{
    public const short None = (short)ErrorCode.None;
    public const short UnknownTopicOrPartition = (short)ErrorCode.UnknownTopicOrPartition;
    public const short OffsetMetadataTooLarge = (short)ErrorCode.OffsetMetadataTooLarge;
    public const short CoordinatorLoadInProgress = (short)ErrorCode.CoordinatorLoadInProgress;
    public const short CoordinatorNotAvailable = (short)ErrorCode.CoordinatorNotAvailable;
    public const short NotCoordinator = (short)ErrorCode.NotCoordinator;
    public const short IllegalGeneration = (short)ErrorCode.IllegalGeneration;
    public const short InconsistentGroupProtocol = (short)ErrorCode.InconsistentGroupProtocol;
    public const short InvalidGroupId = (short)ErrorCode.InvalidGroupId;
    public const short UnknownMemberId = (short)ErrorCode.UnknownMemberId;
    public const short InvalidSessionTimeout = (short)ErrorCode.InvalidSessionTimeout;
    public const short RebalanceInProgress = (short)ErrorCode.RebalanceInProgress;
    public const short InvalidCommitOffsetSize = (short)ErrorCode.InvalidCommitOffsetSize;
    public const short InvalidRequest = (short)ErrorCode.InvalidRequest;
    public const short NonEmptyGroup = (short)ErrorCode.NonEmptyGroup;
    public const short GroupIdNotFound = (short)ErrorCode.GroupIdNotFound;
    public const short MemberIdRequired = (short)ErrorCode.MemberIdRequired;
    public const short GroupMaxSizeReached = (short)ErrorCode.GroupMaxSizeReached;
    public const short FencedInstanceId = (short)ErrorCode.FencedInstanceId;
    public const short GroupSubscribedToTopic = (short)ErrorCode.GroupSubscribedToTopic;
    public const short UnstableOffsetCommit = (short)ErrorCode.UnstableOffsetCommit;
}
