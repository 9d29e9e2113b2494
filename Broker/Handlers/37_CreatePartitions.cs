// CreatePartitions (key 37), v0-3. Grows a topic to Count partitions; a count not above the current one
// is INVALID_PARTITIONS with Kafka's message. Assignments, when given, must name only this broker.
// ValidateOnly checks and changes nothing. Duplicate topics in one request get INVALID_REQUEST. As in Kafka's
// controller, one request may add at most MaxRecordsPerUserOp partitions in total; beyond that every topic gets
// POLICY_VIOLATION (a Count of two billion must not allocate a two-billion-entry partition table).
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

public sealed class CreatePartitionsHandler : ApiHandler<CreatePartitionsRequest>
{
    public override ApiKey Key => ApiKey.CreatePartitions;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, CreatePartitionsRequest request)
    {
        var broker = context.Broker;
        var response = new CreatePartitionsResponse();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var duplicates = new HashSet<string>(StringComparer.Ordinal);
        foreach (var t in request.Topics)
            if (!seen.Add(t.Name)) duplicates.Add(t.Name);
        if (PartitionsAdded(broker, request) > CreateTopicsHandler.MaxRecordsPerUserOp)
        {
            foreach (var t in request.Topics)
                response.Results.Add(new CreatePartitionsResponse.CreatePartitionsTopicResult
                {
                    Name = t.Name,
                    ErrorCode = (short)ErrorCode.PolicyViolation,
                    ErrorMessage = CreateTopicsHandler.ExcessiveBatchMessage,
                });
            return Done(response);
        }
        foreach (var t in request.Topics)
        {
            var r = new CreatePartitionsResponse.CreatePartitionsTopicResult { Name = t.Name };
            response.Results.Add(r);
            (ErrorCode error, string? message) = duplicates.Contains(t.Name)
                ? (ErrorCode.InvalidRequest, "Duplicate topic in request.")
                : broker.Topics.AddPartitions(t.Name, t.Count, t.Assignments, request.ValidateOnly);
            r.ErrorCode = (short)error;
            r.ErrorMessage = message;
        }
        return Done(response);
    }

    /// <summary>The partition records Kafka's controller would write: the growth of each existing topic.</summary>
    private static long PartitionsAdded(BrokerState broker, CreatePartitionsRequest request)
    {
        long added = 0;
        foreach (var t in request.Topics)
            if (broker.Topics.TryGet(t.Name, out var topic))
                added += Math.Max(0, (long)t.Count - topic.Partitions.Count);
        return added;
    }
}
