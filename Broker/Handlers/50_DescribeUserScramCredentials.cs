// DescribeUserScramCredentials (key 50), v0 (KIP-554). As Kafka 4.0's ScramImage.describe: Users null or empty lists
// every user with credentials; a listed user appears once, with one CredentialInfo (mechanism, iterations) per SCRAM
// mechanism it has — never the salt or keys. A user named twice is DUPLICATE_RESOURCE, one without credentials
// RESOURCE_NOT_FOUND, each with Kafka's message; the top-level error is NONE.
// ACLs: as Kafka's KafkaApis, the whole request is CLUSTER_AUTHORIZATION_FAILED unless the principal may DESCRIBE the
// CLUSTER (with no authorizer configured every principal may).
using Kayak.Broker.Network.Sasl;
using Kayak.Broker.Security;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class DescribeUserScramCredentialsHandler(ScramCredentialStore store, IAuthorizer authorizer) : ApiHandler<DescribeUserScramCredentialsRequest>
{
    public override ApiKey Key => ApiKey.DescribeUserScramCredentials;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, DescribeUserScramCredentialsRequest request)
    {
        var response = new DescribeUserScramCredentialsResponse { ErrorMessage = null };
        if (!authorizer.Cluster(context, AclOperation.Describe))
        {
            return Done(response.SetError(ErrorCode.ClusterAuthorizationFailed));
        }
        var snapshot = store.Snapshot();
        // User name → named more than once; request order for listed users, name order for "all users".
        var users = new Dictionary<string, bool>(StringComparer.Ordinal);
        if (request.Users is null || request.Users.Count == 0)
        {
            var all = new SortedSet<string>(StringComparer.Ordinal);
            foreach (var c in snapshot) all.Add(c.User);
            foreach (var u in all) users[u] = false;
        }
        else
        {
            foreach (var u in request.Users) users[u.Name] = users.ContainsKey(u.Name);
        }
        foreach (var (user, duplicate) in users)
        {
            var result = new DescribeUserScramCredentialsResponse.DescribeUserScramCredentialsResult { User = user, ErrorMessage = null };
            if (duplicate)
            {
                result.SetError(new(ErrorCode.DuplicateResource, "Cannot describe SCRAM credentials for the same user twice in a single request: " + user));
            }
            else
            {
                // Kafka lists SCRAM-SHA-256 before SCRAM-SHA-512 (its ScramMechanism enum order).
                foreach (var mechanism in (ReadOnlySpan<ScramMechanism>)[ScramMechanism.Sha256, ScramMechanism.Sha512])
                    foreach (var c in snapshot)
                        if (c.User == user && c.Mechanism == mechanism.Name)
                            result.CredentialInfos.Add(new() { Mechanism = mechanism.Type, Iterations = c.Iterations });
                if (result.CredentialInfos.Count == 0)
                {
                    result.SetError(new(ErrorCode.ResourceNotFound, "Attempt to describe a user credential that does not exist: " + user));
                }
            }
            response.Results.Add(result);
        }
        return Done(response);
    }
}
