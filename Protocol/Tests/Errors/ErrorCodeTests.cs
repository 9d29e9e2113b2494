using NUnit.Framework;

namespace Kayak.Protocol.Tests.Errors;

public class ErrorCodeTests
{
    [TestCase(ErrorCode.UnknownServerError, (short)-1, "UNKNOWN_SERVER_ERROR")]
    [TestCase(ErrorCode.None, (short)0, "NONE")]
    [TestCase(ErrorCode.CorruptMessage, (short)2, "CORRUPT_MESSAGE")]
    [TestCase(ErrorCode.UnknownTopicOrPartition, (short)3, "UNKNOWN_TOPIC_OR_PARTITION")]
    [TestCase(ErrorCode.NotLeaderOrFollower, (short)6, "NOT_LEADER_OR_FOLLOWER")]
    [TestCase(ErrorCode.UnsupportedVersion, (short)35, "UNSUPPORTED_VERSION")]
    [TestCase(ErrorCode.InvalidProducerEpoch, (short)47, "INVALID_PRODUCER_EPOCH")]
    [TestCase(ErrorCode.ProducerFenced, (short)90, "PRODUCER_FENCED")]
    [TestCase(ErrorCode.UnknownTopicId, (short)100, "UNKNOWN_TOPIC_ID")]
    [TestCase(ErrorCode.TransactionAbortable, (short)120, "TRANSACTION_ABORTABLE")]
    [TestCase(ErrorCode.ShareSessionLimitReached, (short)133, "SHARE_SESSION_LIMIT_REACHED")]
    public void CodesAndNamesMatchKafka(ErrorCode code, short value, string name)
    {
        Assert.That((short)code, Is.EqualTo(value));
        Assert.That(ErrorCodes.KafkaName(code), Is.EqualTo(name));
    }

    [TestCase(ErrorCode.NotLeaderOrFollower, true)]
    [TestCase(ErrorCode.UnknownTopicOrPartition, true)]
    [TestCase(ErrorCode.CorruptMessage, true)]
    [TestCase(ErrorCode.CoordinatorLoadInProgress, true)]
    [TestCase(ErrorCode.NotEnoughReplicas, true)]
    [TestCase(ErrorCode.UnsupportedVersion, false)]
    [TestCase(ErrorCode.TopicAuthorizationFailed, false)]
    [TestCase(ErrorCode.None, false)]
    [TestCase(ErrorCode.UnknownServerError, false)]
    public void Retriability(ErrorCode code, bool retriable) =>
        Assert.That(ErrorCodes.IsRetriable(code), Is.EqualTo(retriable));

    [Test]
    public void EveryEnumValueHasAConsistentKafkaNameAndMessage()
    {
        var values = Enum.GetValues<ErrorCode>();
        Assert.That(values, Has.Length.EqualTo(135)); // -1..133, no gaps
        foreach (var code in values)
        {
            string kafka = ErrorCodes.KafkaName(code);
            string pascal = string.Concat(kafka.Split('_').Select(w => w[..1] + w[1..].ToLowerInvariant()));
            Assert.That(pascal, Is.EqualTo(code.ToString()), kafka);
            Assert.That(ErrorCodes.IsKnown(code));
            if (code != ErrorCode.None) Assert.That(ErrorCodes.DefaultMessage(code), Is.Not.Empty, kafka);
        }
    }

    [Test]
    public void UnknownCodesAreReportedAsUnknown()
    {
        var code = (ErrorCode)999;
        Assert.That(ErrorCodes.IsKnown(code), Is.False);
        Assert.That(ErrorCodes.IsRetriable(code), Is.False);
        Assert.That(ErrorCodes.KafkaName(code), Is.EqualTo("UNKNOWN_ERROR_CODE_999"));
        Assert.That(ErrorCodes.DefaultMessage(code), Is.EqualTo(ErrorCodes.DefaultMessage(ErrorCode.UnknownServerError)));
        Assert.That(ErrorCodes.KafkaName((ErrorCode)(-2)), Is.EqualTo("UNKNOWN_ERROR_CODE_-2"));
    }
}
