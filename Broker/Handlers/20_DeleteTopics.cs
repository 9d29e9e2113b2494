// DeleteTopics (key 20), v0-6. v0-5 name topics, v6+ may name them by id (UNKNOWN_TOPIC_ID when absent).
// delete.topic.enable=false answers TOPIC_DELETION_DISABLED. Deletion is synchronous: the partition
// directories are renamed to "-delete" and removed by Storage, so the reply means the topic is gone.
// Internal topics are not protected (no ACLs here), as on a Kafka cluster without an authorizer.
// ACLs: DELETE on each topic (TOPIC_AUTHORIZATION_FAILED); by id, DESCRIBE first or the name stays untold.
using Kayak.Broker.Security;
// controller_mutation_rate (KIP-599): a deleted topic's partitions come from the client's token bucket; from v5 a topic
// arriving while it is empty gets THROTTLING_QUOTA_EXCEEDED and stays, older versions are deleted and throttled.
using Kayak.Broker.Quotas;
using Kayak.Broker.Services;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class DeleteTopicsHandler(ITopicCatalog catalog, TopicService topics, IControllerMutationQuotas quotas, IAuthorizer authorizer)
    : ApiHandler<DeleteTopicsRequest>
{
    public override ApiKey Key => ApiKey.DeleteTopics;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, DeleteTopicsRequest request)
    {
        var response = new DeleteTopicsResponse();
        if (context.ApiVersion < 6)
        {
            foreach (var name in request.TopicNames)
                response.Responses.Add(Delete(context, name, Uuid.Zero, byId: false));
        }
        else
        {
            foreach (var t in request.Topics)
            {
                string? name = t.Name;
                if (name is null)
                {
                    var byId = catalog.Find(t.TopicId);
                    if (byId is null)
                    {
                        response.Responses.Add(new DeleteTopicsResponse.DeletableTopicResult { Name = null, TopicId = t.TopicId }
                            .SetError(new(ErrorCode.UnknownTopicId, "This server does not host this topic ID.")));
                        continue;
                    }
                    name = byId.Name;
                }
                response.Responses.Add(Delete(context, name, t.TopicId, byId: t.Name is null));
            }
        }
        return Done(response);
    }

    private DeleteTopicsResponse.DeletableTopicResult Delete(RequestContext context, string name, Uuid requestedId, bool byId)
    {
        // KafkaApis.handleDeleteTopicsRequest: a topic named by id needs DESCRIBE before its name is told; then DELETE.
        if (byId && !authorizer.Topic(context, AclOperation.Describe, name))
            return new DeleteTopicsResponse.DeletableTopicResult { Name = null, TopicId = requestedId }.SetError(ErrorCode.TopicAuthorizationFailed);
        if (!authorizer.Topic(context, AclOperation.Delete, name))
            return new DeleteTopicsResponse.DeletableTopicResult { Name = name, TopicId = requestedId }.SetError(ErrorCode.TopicAuthorizationFailed);
        if (topics.TryGet(name, out var existing) && !quotas.TryRecordMutation(context, existing.Partitions.Count))
            return new DeleteTopicsResponse.DeletableTopicResult { Name = name, TopicId = existing.TopicId }
                .SetError(new(ErrorCode.ThrottlingQuotaExceeded, CreateTopicsHandler.ThrottledMessage));
        var result = topics.Delete(name);
        return new DeleteTopicsResponse.DeletableTopicResult { Name = name, TopicId = result.Topic?.TopicId ?? requestedId }.SetError(result.Failure);
    }
}
