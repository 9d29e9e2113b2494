using Kayak.Protocol.Messages;
using NUnit.Framework;

namespace Kayak.Protocol.Tests.Errors;

/// <summary>
/// <see cref="ErrorFields.SetError{T}"/> is the one place a KafkaError reaches a response (issue 10); the handlers
/// moved to it from field-by-field writes, so it must put exactly the same bytes on the wire.
/// </summary>
public class ErrorFieldsTests
{
    [Test]
    public void SetError_OnAPartWithAMessage_WritesTheSameBytesAsTheFieldsSetByHand()
    {
        var byHand = new ListPartitionReassignmentsResponse { ErrorCode = (short)ErrorCode.ClusterAuthorizationFailed, ErrorMessage = "Cluster authorization failed." };
        var viaError = new ListPartitionReassignmentsResponse().SetError(new(ErrorCode.ClusterAuthorizationFailed, "Cluster authorization failed."));

        Assert.That(MessageSerializer.Write(viaError, 0), Is.EqualTo(MessageSerializer.Write(byHand, 0)));
        Assert.That(viaError.Error(), Is.EqualTo(ErrorCode.ClusterAuthorizationFailed));
    }

    [Test]
    public void SetError_KeepsAnEmptyMessageApartFromANullOne()
    {
        // Generated messages default to "", which a nullable string writes differently from null: a handler that
        // never set the message must pass "" to keep its old answer.
        var untouched = new DescribeClientQuotasResponse { ErrorCode = (short)ErrorCode.ClusterAuthorizationFailed };
        var empty = new DescribeClientQuotasResponse().SetError(new(ErrorCode.ClusterAuthorizationFailed, ""));
        var none = new DescribeClientQuotasResponse().SetError(ErrorCode.ClusterAuthorizationFailed);

        Assert.That(MessageSerializer.Write(empty, 0), Is.EqualTo(MessageSerializer.Write(untouched, 0)));
        Assert.That(none.ErrorMessage, Is.Null);
        Assert.That(MessageSerializer.Write(none, 0), Is.Not.EqualTo(MessageSerializer.Write(untouched, 0)));
    }

    [Test]
    public void SetError_WithoutAMessage_ClearsOneLeftFromBefore()
    {
        var result = new DeleteAclsResponse.DeleteAclsFilterResult { ErrorMessage = "stale" };

        result.SetError(ErrorCode.SecurityDisabled);

        Assert.That(result.ErrorCode, Is.EqualTo((short)ErrorCode.SecurityDisabled));
        Assert.That(result.ErrorMessage, Is.Null);
    }

    [Test]
    public void SetError_OnACodeOnlyPart_WritesTheCodeAndLeavesTheRest()
    {
        var partition = new FetchResponse.PartitionData { PartitionIndex = 3, HighWatermark = 42 }.SetError(new(ErrorCode.OffsetOutOfRange, "ignored: no message field"));

        Assert.That(partition.ErrorCode, Is.EqualTo((short)ErrorCode.OffsetOutOfRange));
        Assert.That(partition.Error(), Is.EqualTo(ErrorCode.OffsetOutOfRange));
        Assert.That((partition.PartitionIndex, partition.HighWatermark), Is.EqualTo((3, 42L)));
    }

    [Test]
    public void SetError_None_ClearsAnEarlierError()
    {
        var heartbeat = new HeartbeatResponse().SetError(ErrorCode.RebalanceInProgress);

        heartbeat.SetError(KafkaError.None);

        Assert.That(heartbeat.Error(), Is.EqualTo(ErrorCode.None));
    }
}
