// AlterUserScramCredentials (key 51), v0 (KIP-554). As Kafka 4.0's ScramControlManager.alterCredentials: one result per
// user; a user named twice in the request (deletions and upsertions together) is DUPLICATE_RESOURCE ("A user credential
// cannot be altered twice in the same request") and none of its changes apply; an empty name is UNACCEPTABLE_CREDENTIAL,
// a mechanism other than SCRAM-SHA-256 (1) / SCRAM-SHA-512 (2) UNSUPPORTED_SASL_MECHANISM, iterations outside
// 4096..16384 UNACCEPTABLE_CREDENTIAL ("Too few iterations" / "Too many iterations"), deleting a credential that does not
// exist RESOURCE_NOT_FOUND. Valid changes apply together: the client sends Hi(password) (SaltedPassword), the broker
// stores salt, StoredKey, ServerKey and iterations durably, then new authentications use them; sessions already
// authenticated are not closed (Kafka does not either). Result order as Kafka's: deletions, upsertions, then errors.
// ACLs: as Kafka's ControllerApis, every user of the request is CLUSTER_AUTHORIZATION_FAILED unless the principal may
// ALTER the CLUSTER (with no authorizer configured every principal may).
using Kayak.Broker.Network.Sasl;
using Kayak.Broker.Security;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class AlterUserScramCredentialsHandler(ScramCredentialStore store, IAuthorizer authorizer) : ApiHandler<AlterUserScramCredentialsRequest>
{
    private const string Twice = "A user credential cannot be altered twice in the same request";

    public override ApiKey Key => ApiKey.AlterUserScramCredentials;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, AlterUserScramCredentialsRequest request)
    {
        if (!authorizer.Cluster(context, AclOperation.Alter))
        {
            var refused = new AlterUserScramCredentialsResponse();
            var named = new HashSet<string>(StringComparer.Ordinal);
            foreach (var d in request.Deletions)
                if (named.Add(d.Name)) refused.Results.Add(Refused(d.Name));
            foreach (var u in request.Upsertions)
                if (named.Add(u.Name)) refused.Results.Add(Refused(u.Name));
            return Done(refused);
        }
        var deletions = new Dictionary<string, AlterUserScramCredentialsRequest.ScramCredentialDeletion>(StringComparer.Ordinal);
        var upsertions = new Dictionary<string, AlterUserScramCredentialsRequest.ScramCredentialUpsertion>(StringComparer.Ordinal);
        var errors = new Dictionary<string, KafkaError>(StringComparer.Ordinal);
        foreach (var d in request.Deletions)
        {
            if (errors.ContainsKey(d.Name)) continue;
            if (deletions.Remove(d.Name)) errors[d.Name] = new(ErrorCode.DuplicateResource, Twice);
            else if (ValidateDeletion(d) is { } error) errors[d.Name] = error;
            else deletions[d.Name] = d;
        }
        foreach (var u in request.Upsertions)
        {
            if (errors.ContainsKey(u.Name)) continue;
            if (deletions.Remove(u.Name) | upsertions.Remove(u.Name)) errors[u.Name] = new(ErrorCode.DuplicateResource, Twice);
            else if (ValidateUpsertion(u) is { } error) errors[u.Name] = error;
            else upsertions[u.Name] = u;
        }
        var response = new AlterUserScramCredentialsResponse();
        var removed = new List<(string, string)>();
        var added = new List<(string, string, ScramCredential)>();
        foreach (var d in deletions.Values)
        {
            removed.Add((ScramMechanism.FromType(d.Mechanism)!.Name, d.Name));
            response.Results.Add(new() { User = d.Name, ErrorMessage = null });
        }
        foreach (var u in upsertions.Values)
        {
            var mechanism = ScramMechanism.FromType(u.Mechanism)!;
            added.Add((mechanism.Name, u.Name, mechanism.FromSaltedPassword(u.SaltedPassword, u.Salt, u.Iterations)));
            response.Results.Add(new() { User = u.Name, ErrorMessage = null });
        }
        foreach (var (user, error) in errors)
            response.Results.Add(new AlterUserScramCredentialsResponse.AlterUserScramCredentialsResult { User = user }.SetError(error));
        if (removed.Count + added.Count > 0) store.Apply(removed, added);
        return Done(response);
    }

    private static AlterUserScramCredentialsResponse.AlterUserScramCredentialsResult Refused(string user) =>
        new AlterUserScramCredentialsResponse.AlterUserScramCredentialsResult { User = user }.SetError(ErrorCode.ClusterAuthorizationFailed);

    private static KafkaError? ValidateName(string name, sbyte mechanism)
    {
        if (name.Length == 0) return new KafkaError(ErrorCode.UnacceptableCredential, "Username must not be empty");
        if (ScramMechanism.FromType(mechanism) is null) return new KafkaError(ErrorCode.UnsupportedSaslMechanism, "Unknown SCRAM mechanism");
        return null;
    }

    private KafkaError? ValidateDeletion(AlterUserScramCredentialsRequest.ScramCredentialDeletion d)
    {
        if (ValidateName(d.Name, d.Mechanism) is { } error) return error;
        if (store.Find(ScramMechanism.FromType(d.Mechanism)!.Name, d.Name) is null)
            return new KafkaError(ErrorCode.ResourceNotFound, "Attempt to delete a user credential that does not exist");
        return null;
    }

    private static KafkaError? ValidateUpsertion(AlterUserScramCredentialsRequest.ScramCredentialUpsertion u)
    {
        if (ValidateName(u.Name, u.Mechanism) is { } error) return error;
        if (u.Iterations < ScramMechanism.MinIterations) return new KafkaError(ErrorCode.UnacceptableCredential, "Too few iterations");
        if (u.Iterations > ScramMechanism.MaxIterations) return new KafkaError(ErrorCode.UnacceptableCredential, "Too many iterations");
        return null;
    }
}
