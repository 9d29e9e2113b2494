// AlterClientQuotas (key 49), v0-1 (KIP-546). Sets or removes quota values of user, client-id and user+client-id
// entities (producer_byte_rate, consumer_byte_rate, request_percentage, controller_mutation_rate; a null name is the
// default entity) and of ip entities (connection_creation_rate, accepted and stored; Kayak has no connection-rate
// limiter, so it is not enforced). Validation is Kafka 4.0's ClientQuotaControlManager: unknown entity types and keys,
// invalid combinations, empty names, values not above 0 or fractional for integral keys, duplicate keys or entities get
// INVALID_REQUEST with Kafka's messages, one result per entity; the valid entries apply together and are written to
// kayak-client-quotas.json before the answer. validate_only checks and changes nothing.
// ACLs: ALTER_CONFIGS on the CLUSTER, else every entry CLUSTER_AUTHORIZATION_FAILED (KafkaApis.handleAlterClientQuotasRequest).
using Kayak.Broker.Quotas;
using Kayak.Broker.Security;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class AlterClientQuotasHandler(ClientQuotaStore store, IAuthorizer authorizer) : ApiHandler<AlterClientQuotasRequest>
{
    public override ApiKey Key => ApiKey.AlterClientQuotas;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, AlterClientQuotasRequest request)
    {
        if (!authorizer.Cluster(context, AclOperation.AlterConfigs))
        {
            // AlterClientQuotasRequest.getErrorResponse: every entry, with its entity, refused.
            var refused = new AlterClientQuotasResponse();
            foreach (var e in request.Entries)
            {
                var entry = new AlterClientQuotasResponse.EntryData().SetError(ErrorCode.ClusterAuthorizationFailed);
                foreach (var d in e.Entity) entry.Entity.Add(new AlterClientQuotasResponse.EntityData { EntityType = d.EntityType, EntityName = d.EntityName });
                refused.Entries.Add(entry);
            }
            return Done(refused);
        }
        var alterations = new List<ClientQuotaStore.Alteration>(request.Entries.Count);
        foreach (var e in request.Entries)
        {
            var entity = new List<(string, string?)>(e.Entity.Count);
            foreach (var d in e.Entity) entity.Add((d.EntityType, d.EntityName));
            var ops = new List<(string, double, bool)>(e.Ops.Count);
            foreach (var op in e.Ops) ops.Add((op.Key, op.Value, op.Remove));
            alterations.Add(new(entity, ops));
        }
        var response = new AlterClientQuotasResponse();
        foreach (var (entity, error) in store.Alter(alterations, request.ValidateOnly))
        {
            var entry = new AlterClientQuotasResponse.EntryData().SetError(error);
            foreach (var (type, name) in entity)
                entry.Entity.Add(new AlterClientQuotasResponse.EntityData { EntityType = type, EntityName = name });
            response.Entries.Add(entry);
        }
        return Done(response);
    }
}
