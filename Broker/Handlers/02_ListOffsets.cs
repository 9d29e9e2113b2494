// ListOffsets (key 2), v0-9. Special timestamps: -1 latest (log end offset; the last stable offset under
// read_committed), -2 earliest (log start offset), -3 the record with the largest timestamp (v7+, KIP-734),
// -4 earliest local (v8+, KIP-405) and -5 earliest pending upload (v9+): with no tiered storage both are the
// log start offset. Otherwise the first offset whose timestamp is >= the one asked for, or -1/-1 when none.
// v0 answers with OldStyleOffsets. Leader epoch is always 0 (one leader, never re-elected). In an in-process cluster
// (issue 14) a partition this broker does not lead is NOT_LEADER_OR_FOLLOWER.
// ACLs: each topic needs DESCRIBE (TOPIC_AUTHORIZATION_FAILED with offset/timestamp -1, KafkaApis.handleListOffsetRequest).
using Kayak.Broker.Security;
using Kayak.Broker.Services;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using Kayak.Storage;

namespace Kayak.Broker.Handlers;

internal sealed class ListOffsetsHandler(ITopicCatalog catalog, IPartitionLeadership leadership, IAuthorizer? authorizer = null) : ApiHandler<ListOffsetsRequest>
{
    // Optional so unit tests that build the handler alone run it without ACLs.
    private readonly IAuthorizer _authorizer = authorizer ?? AllowAllAuthorizer.Instance;

    private const long Latest = -1, Earliest = -2, MaxTimestamp = -3, EarliestLocal = -4, EarliestPendingUpload = -5;

    public override ApiKey Key => ApiKey.ListOffsets;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, ListOffsetsRequest request)
    {
        var response = new ListOffsetsResponse();
        bool readCommitted = context.ApiVersion >= 2 && request.IsolationLevel == 1;
        foreach (var t in request.Topics)
        {
            var rt = new ListOffsetsResponse.ListOffsetsTopicResponse { Name = t.Name };
            response.Topics.Add(rt);
            if (!_authorizer.Topic(context, AclOperation.Describe, t.Name))
            {
                foreach (var p in t.Partitions)
                    rt.Partitions.Add(new ListOffsetsResponse.ListOffsetsPartitionResponse
                    {
                        PartitionIndex = p.PartitionIndex, Offset = -1, Timestamp = -1, LeaderEpoch = -1,
                    }.SetError(ErrorCode.TopicAuthorizationFailed));
                continue;
            }
            catalog.AnswerPartitions(t.Name, t.Partitions, rt.Partitions, (context.ApiVersion, readCommitted, leadership),
                static (s, topic, p) => Answer(s.ApiVersion, s.readCommitted, s.leadership, topic, p));
        }
        return Done(response);
    }

    private static ListOffsetsResponse.ListOffsetsPartitionResponse Answer(short version, bool readCommitted, IPartitionLeadership leadership,
        TopicLookup topic, ListOffsetsRequest.ListOffsetsPartition p)
    {
        var rp = new ListOffsetsResponse.ListOffsetsPartitionResponse { PartitionIndex = p.PartitionIndex };
        if (!topic.TryGetPartition(p.PartitionIndex, out var log, out var missing)) return rp.SetError(missing);
        if (!leadership.IsLocalLeader(log.TopicName, p.PartitionIndex)) return rp.SetError(ErrorCode.NotLeaderOrFollower);
        long offset = -1, timestamp = -1;
        try
        {
            switch (p.Timestamp)
            {
                case Latest:
                    // isolation_level 1 (read_committed, v2+) stops at the last stable offset (KIP-98).
                    offset = readCommitted ? log.LastStableOffset : log.HighWatermark;
                    break;
                case Earliest:
                case EarliestLocal:
                case EarliestPendingUpload:
                    offset = log.LogStartOffset;
                    break;
                case MaxTimestamp:
                    if (log.LogEndOffset > log.LogStartOffset)
                        (offset, timestamp) = log.MaxTimestamp();
                    break;
                default:
                    if (p.Timestamp < 0) return rp.SetError(ErrorCode.InvalidRequest);
                    var found = log.FindOffsetByTimestamp(p.Timestamp);
                    if (found is { } f) (offset, timestamp) = (f.Offset, f.Timestamp);
                    break;
            }
        }
        catch (StorageErrorException e)
        {
            // A corrupt batch on the timestamp search path: this partition's error, not a closed connection (issue 15, K9).
            return rp.SetError(e.KafkaError);
        }
        if (version == 0)
        {
            if (offset >= 0) rp.OldStyleOffsets.Add(offset);
        }
        else
        {
            rp.Offset = offset;
            rp.Timestamp = timestamp;
            if (version >= 4) rp.LeaderEpoch = offset >= 0 ? 0 : -1;
        }
        return rp;
    }
}
