// CreatePartitions (key 37), v0-3. Grows a topic to Count partitions; a count not above the current one
// is INVALID_PARTITIONS with Kafka's message. Assignments, when given, must name only this broker.
// ValidateOnly checks and changes nothing. Duplicate topics in one request get INVALID_REQUEST. As in Kafka's
// controller, one request may add at most MaxRecordsPerUserOp partitions in total; beyond that every topic gets
// POLICY_VIOLATION (a Count of two billion must not allocate a two-billion-entry partition table).
// ACLs: ALTER on each topic (TOPIC_AUTHORIZATION_FAILED).
using Kayak.Broker.Security;
// controller_mutation_rate (KIP-599): the added partitions come from the client's token bucket; from v3 a topic arriving
// while it is empty gets THROTTLING_QUOTA_EXCEEDED, older versions grow and are throttled.
using Kayak.Broker.Quotas;
using Kayak.Broker.Services;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class CreatePartitionsHandler(TopicService topics, IControllerMutationQuotas quotas, IAuthorizer authorizer) : ApiHandler<CreatePartitionsRequest>
{
    public override ApiKey Key => ApiKey.CreatePartitions;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, CreatePartitionsRequest request)
    {
        var response = new CreatePartitionsResponse();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var duplicates = new HashSet<string>(StringComparer.Ordinal);
        foreach (var t in request.Topics)
            if (!seen.Add(t.Name)) duplicates.Add(t.Name);
        if (PartitionsAdded(request) > CreateTopicsHandler.MaxRecordsPerUserOp)
        {
            foreach (var t in request.Topics)
                response.Results.Add(new CreatePartitionsResponse.CreatePartitionsTopicResult { Name = t.Name }
                    .SetError(new(ErrorCode.PolicyViolation, CreateTopicsHandler.ExcessiveBatchMessage)));
            return Done(response);
        }
        foreach (var t in request.Topics)
        {
            var error = duplicates.Contains(t.Name)
                ? new KafkaError(ErrorCode.InvalidRequest, "Duplicate topic in request.")
                : !authorizer.Topic(context, AclOperation.Alter, t.Name)
                    ? new KafkaError(ErrorCode.TopicAuthorizationFailed, "The topic authorization is failed.")
                    : Grow(context, t, request.ValidateOnly);
            response.Results.Add(new CreatePartitionsResponse.CreatePartitionsTopicResult { Name = t.Name }.SetError(error));
        }
        return Done(response);
    }

    private KafkaError Grow(RequestContext context, CreatePartitionsRequest.CreatePartitionsTopic t, bool validateOnly)
    {
        if (validateOnly) return topics.AddPartitions(t.Name, t.Count, t.Assignments, validateOnly: true);
        var check = topics.AddPartitions(t.Name, t.Count, t.Assignments, validateOnly: true);
        if (check.IsError) return check;
        int added = topics.TryGet(t.Name, out var topic) ? Math.Max(0, t.Count - topic.Partitions.Count) : 0;
        if (!quotas.TryRecordMutation(context, added))
            return new KafkaError(ErrorCode.ThrottlingQuotaExceeded, CreateTopicsHandler.ThrottledMessage);
        return topics.AddPartitions(t.Name, t.Count, t.Assignments, validateOnly: false);
    }

    /// <summary>The partition records Kafka's controller would write: the growth of each existing topic.</summary>
    private long PartitionsAdded(CreatePartitionsRequest request)
    {
        long added = 0;
        foreach (var t in request.Topics)
            if (topics.TryGet(t.Name, out var topic))
                added += Math.Max(0, (long)t.Count - topic.Partitions.Count);
        return added;
    }
}
