// DescribeClientQuotas (key 48), v0-1 (KIP-257, KIP-546). Lists the stored client quotas whose entity matches the
// filter as Kafka 4.0's ClientQuotasImage.describe does: each component names an entity type (user, client-id, ip) and
// matches an exact name (0), the default entity (1) or any entity of that type (2); strict excludes entities with
// types the filter does not name. A bad filter (empty or repeated type, a match string where none belongs, ip mixed with
// user/client-id) answers INVALID_REQUEST with Kafka's message, an unknown type UNSUPPORTED_VERSION; entries are then
// null.
// ACLs: DESCRIBE_CONFIGS on the CLUSTER, else CLUSTER_AUTHORIZATION_FAILED (KafkaApis.handleDescribeClientQuotasRequest).
using Kayak.Broker.Quotas;
using Kayak.Broker.Security;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class DescribeClientQuotasHandler(ClientQuotaStore store, IAuthorizer authorizer) : ApiHandler<DescribeClientQuotasRequest>
{
    public override ApiKey Key => ApiKey.DescribeClientQuotas;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, DescribeClientQuotasRequest request)
    {
        // ACLs: DESCRIBE_CONFIGS on the CLUSTER, else CLUSTER_AUTHORIZATION_FAILED with no entries
        // (KafkaApis.handleDescribeClientQuotasRequest).
        var response = new DescribeClientQuotasResponse();
        if (!authorizer.Cluster(context, AclOperation.DescribeConfigs))
        {
            response.SetError(new(ErrorCode.ClusterAuthorizationFailed, "")); // the generated default message, as before
            response.Entries = null;
            return Done(response);
        }
        var components = new List<ClientQuotaStore.Component>(request.Components.Count);
        foreach (var c in request.Components) components.Add(new(c.EntityType, c.MatchType, c.Match));
        List<(ClientQuotaEntity Entity, Dictionary<string, double> Values)> found;
        try
        {
            found = store.Describe(components, request.Strict);
        }
        catch (KafkaException e)
        {
            response.SetError(e.KafkaError);
            response.Entries = null;
            return Done(response);
        }
        response.Entries = new(found.Count);
        foreach (var (entity, values) in found)
        {
            var entry = new DescribeClientQuotasResponse.EntryData();
            foreach (var (type, name) in entity.Entries())
                entry.Entity.Add(new DescribeClientQuotasResponse.EntityData { EntityType = type, EntityName = name });
            foreach (var (key, value) in values)
                entry.Values.Add(new DescribeClientQuotasResponse.ValueData { Key = key, Value = value });
            response.Entries.Add(entry);
        }
        return Done(response);
    }
}
