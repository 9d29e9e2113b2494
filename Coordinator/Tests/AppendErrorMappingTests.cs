using Kayak.Protocol;
using NUnit.Framework;

namespace Kayak.Coordinator.Tests;

/// <summary>
/// A refused append answers Kafka's coordinator error for the refusal (GroupCoordinatorService.normalizeException):
/// a lost leadership or a storage error sends the client to look the coordinator up again (NOT_COORDINATOR), a
/// timeout or too few replicas makes it retry here (COORDINATOR_NOT_AVAILABLE), an oversized batch is not retriable.
/// </summary>
public class AppendErrorMappingTests
{
    [TestCase(ErrorCode.NotLeaderOrFollower, ErrorCode.NotCoordinator)]
    [TestCase(ErrorCode.KafkaStorageError, ErrorCode.NotCoordinator)]
    [TestCase(ErrorCode.RequestTimedOut, ErrorCode.CoordinatorNotAvailable)]
    [TestCase(ErrorCode.NotEnoughReplicas, ErrorCode.CoordinatorNotAvailable)]
    [TestCase(ErrorCode.MessageTooLarge, ErrorCode.UnknownServerError)]
    public void GroupWritesAnswerTheMappedError(ErrorCode reported, ErrorCode answered)
    {
        var log = new FaultyGroupLog(new InMemoryGroupLog()) { WriteThenTimeOut = true, Reported = reported };
        using var h = new Harness(t => Harness.Options(t), log);
        var (member, generation) = h.StableSingle();
        log.Fail = true;
        Assert.That((ErrorCode)Harness.CommitError(h.Commit("t1", 0, 6, member, generation)), Is.EqualTo(answered), "OffsetCommit");
        Assert.That((ErrorCode)Harness.CommitError(h.Commit("t1", 0, 6, group: "simple")), Is.EqualTo(answered), "simple OffsetCommit");
        log.Fail = false;
        Assert.That(h.Fetched("t1", 0), Is.EqualTo(-1), "nothing committed");
    }
}
