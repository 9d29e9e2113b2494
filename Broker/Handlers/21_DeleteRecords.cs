// DeleteRecords (key 21), v0-2. Moves each partition's log start offset forward (Kafka's
// ReplicaManager.deleteRecords / UnifiedLog.maybeIncrementLogStartOffset): offset -1 means "up to the high
// watermark"; any other negative offset or one above the high watermark is OFFSET_OUT_OF_RANGE. An offset at
// or below the current log start offset changes nothing and answers the current one. Compacted-only topics
// refuse with POLICY_VIOLATION, as Kafka does for cleanup.policy without "delete". The low watermark answered
// is the new log start offset (one replica, so there is nothing to wait for and timeoutMs is unused);
// failed partitions answer -1. No ACLs, so no TOPIC_AUTHORIZATION_FAILED.
// ACLs: DELETE on each topic (TOPIC_AUTHORIZATION_FAILED, low watermark -1).
using Kayak.Broker.Security;
using Kayak.Broker.Services;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using Kayak.Storage;

namespace Kayak.Broker.Handlers;

internal sealed class DeleteRecordsHandler(ITopicCatalog catalog, IAuthorizer authorizer) : ApiHandler<DeleteRecordsRequest>
{
    /// <summary>DeleteRecordsRequest.HIGH_WATERMARK in Kafka.</summary>
    private const long HighWatermark = -1;
    /// <summary>DeleteRecordsResponse.INVALID_LOW_WATERMARK in Kafka.</summary>
    private const long InvalidLowWatermark = -1;

    public override ApiKey Key => ApiKey.DeleteRecords;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, DeleteRecordsRequest request)
    {
        var response = new DeleteRecordsResponse();
        foreach (var t in request.Topics)
        {
            var rt = new DeleteRecordsResponse.DeleteRecordsTopicResult { Name = t.Name };
            response.Topics.Add(rt);
            if (!authorizer.Topic(context, AclOperation.Delete, t.Name))
            {
                foreach (var p in t.Partitions)
                    rt.Partitions.Add(new DeleteRecordsResponse.DeleteRecordsPartitionResult { PartitionIndex = p.PartitionIndex, LowWatermark = InvalidLowWatermark }
                        .SetError(ErrorCode.TopicAuthorizationFailed));
                continue;
            }
            catalog.AnswerPartitions(t.Name, t.Partitions, rt.Partitions, 0, static (_, topic, p) => Delete(topic, p));
        }
        return Done(response);
    }

    private static DeleteRecordsResponse.DeleteRecordsPartitionResult Delete(TopicLookup topic, DeleteRecordsRequest.DeleteRecordsPartition p)
    {
        var rp = new DeleteRecordsResponse.DeleteRecordsPartitionResult { PartitionIndex = p.PartitionIndex, LowWatermark = InvalidLowWatermark };
        if (!topic.TryGetPartition(p.PartitionIndex, out var log, out var missing)) return rp.SetError(missing);
        if (!topic.Topic!.Config.Delete) return rp.SetError(ErrorCode.PolicyViolation);
        long offset = p.Offset == HighWatermark ? log.HighWatermark : p.Offset;
        if (offset < 0 || offset > log.HighWatermark) return rp.SetError(ErrorCode.OffsetOutOfRange);
        try
        {
            rp.LowWatermark = log.DeleteRecordsBefore(offset);
        }
        catch (StorageErrorException e) when (e.Code == ErrorCode.OffsetOutOfRange)
        {
            // The log can only have grown since the check above, but it may have been truncated
            // by a concurrent topic deletion; report what Kafka would for the offset.
            rp.SetError(ErrorCode.OffsetOutOfRange);
        }
        return rp;
    }
}
