// CreatePartitions (key 37), v0-3. Grows a topic to Count partitions; a count not above the current one
// is INVALID_PARTITIONS with Kafka's message. Assignments, when given, must name only this broker.
// ValidateOnly checks and changes nothing. Duplicate topics in one request get INVALID_REQUEST.
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
}
