// DeleteRecords (key 21), v0-2. Moves each partition's log start offset forward (Kafka's
// ReplicaManager.deleteRecords / UnifiedLog.maybeIncrementLogStartOffset): offset -1 means "up to the high
// watermark"; any other negative offset or one above the high watermark is OFFSET_OUT_OF_RANGE. An offset at
// or below the current log start offset changes nothing and answers the current one. Compacted-only topics
// refuse with POLICY_VIOLATION, as Kafka does for cleanup.policy without "delete". The low watermark answered
// is the new log start offset (one replica, so there is nothing to wait for and timeoutMs is unused);
// failed partitions answer -1. No ACLs, so no TOPIC_AUTHORIZATION_FAILED.
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using Kayak.Storage;

namespace Kayak.Broker.Handlers;

public sealed class DeleteRecordsHandler : ApiHandler<DeleteRecordsRequest>
{
    /// <summary>DeleteRecordsRequest.HIGH_WATERMARK in Kafka.</summary>
    private const long HighWatermark = -1;
    /// <summary>DeleteRecordsResponse.INVALID_LOW_WATERMARK in Kafka.</summary>
    private const long InvalidLowWatermark = -1;

    public override ApiKey Key => ApiKey.DeleteRecords;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, DeleteRecordsRequest request)
    {
        var broker = context.Broker;
        var response = new DeleteRecordsResponse();
        foreach (var t in request.Topics)
        {
            var rt = new DeleteRecordsResponse.DeleteRecordsTopicResult { Name = t.Name };
            response.Topics.Add(rt);
            broker.Logs.TryGetTopic(t.Name, out var topic);
            foreach (var p in t.Partitions)
            {
                var rp = new DeleteRecordsResponse.DeleteRecordsPartitionResult { PartitionIndex = p.PartitionIndex, LowWatermark = InvalidLowWatermark };
                rt.Partitions.Add(rp);
                var log = topic?.GetPartition(p.PartitionIndex);
                if (log is null)
                {
                    rp.ErrorCode = (short)ErrorCode.UnknownTopicOrPartition;
                    continue;
                }
                if (!topic!.Config.Delete)
                {
                    rp.ErrorCode = (short)ErrorCode.PolicyViolation;
                    continue;
                }
                long offset = p.Offset == HighWatermark ? log.HighWatermark : p.Offset;
                if (offset < 0 || offset > log.HighWatermark)
                {
                    rp.ErrorCode = (short)ErrorCode.OffsetOutOfRange;
                    continue;
                }
                try
                {
                    rp.LowWatermark = log.DeleteRecordsBefore(offset);
                }
                catch (StorageErrorException e) when (e.Error == StorageError.OffsetOutOfRange)
                {
                    // The log can only have grown since the check above, but it may have been truncated
                    // by a concurrent topic deletion; report what Kafka would for the offset.
                    rp.ErrorCode = (short)ErrorCode.OffsetOutOfRange;
                }
            }
        }
        return Done(response);
    }
}
