// CreateDelegationToken (key 38), v0-3 (KIP-48). Kayak has no delegation tokens (Kafka enables them with
// delegation.token.secret.key, which Kayak does not have), so it answers as a Kafka 4.0 cluster without that key:
// KafkaApis.handleCreateTokenRequest refuses PLAINTEXT and one-way SSL connections with
// DELEGATION_TOKEN_REQUEST_NOT_ALLOWED, a token for another owner without CREATE_TOKENS on that USER with
// DELEGATION_TOKEN_AUTHORIZATION_FAILED, a renewer that is not a User with INVALID_PRINCIPAL_TYPE; everything else
// reaches the controller, whose DelegationTokenControlManager answers DELEGATION_TOKEN_AUTH_DISABLED.
using Kayak.Broker.Config;
using Kayak.Broker.Security;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class CreateDelegationTokenHandler(BrokerConfig config, IAuthorizer authorizer) : ApiHandler<CreateDelegationTokenRequest>
{
    public override ApiKey Key => ApiKey.CreateDelegationToken;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, CreateDelegationTokenRequest request)
    {
        var (requesterType, requesterName) = DelegationTokens.Split(context.Principal);
        string ownerType = requesterType, ownerName = requesterName;
        if (!string.IsNullOrEmpty(request.OwnerPrincipalName))
        {
            ownerType = request.OwnerPrincipalType ?? "";
            ownerName = request.OwnerPrincipalName;
        }
        var response = new CreateDelegationTokenResponse { PrincipalType = ownerType, PrincipalName = ownerName };
        if (context.ApiVersion >= 3)
        {
            // The requester fields exist from v3 (KIP-373).
            response.TokenRequesterPrincipalType = requesterType;
            response.TokenRequesterPrincipalName = requesterName;
        }
        string owner = ownerType + ":" + ownerName;
        ErrorCode error = !DelegationTokens.Allowed(config, context) ? ErrorCode.DelegationTokenRequestNotAllowed
            : owner != context.Principal && !authorizer.Authorize(context, AclOperation.CreateTokens, AclResourceType.User, owner)
                ? ErrorCode.DelegationTokenAuthorizationFailed
            : request.Renewers.Exists(r => r.PrincipalType != "User") ? ErrorCode.InvalidPrincipalType
            : ErrorCode.DelegationTokenAuthDisabled;
        return Done(response.SetError(error));
    }
}

/// <summary>What the four delegation token handlers share.</summary>
internal static class DelegationTokens
{
    /// <summary>
    /// KafkaApis.allowTokenRequests: not on PLAINTEXT, not on SSL without a client certificate (principal ANONYMOUS),
    /// and not for a principal that authenticated with a delegation token (Kayak has none).
    /// </summary>
    public static bool Allowed(BrokerConfig config, RequestContext context)
    {
        string protocol = context.ListenerName is { } name && config.ListenerSecurityProtocols.TryGetValue(name, out var p) ? p : ListenerSecurity.Plaintext;
        return protocol switch
        {
            ListenerSecurity.Plaintext => false,
            ListenerSecurity.Ssl => context.Principal != "User:ANONYMOUS",
            _ => true,
        };
    }

    /// <summary>
    /// The error of Renew, Expire and Describe on a broker without delegation.token.secret.key (KafkaApis: the
    /// request is not allowed on this connection, else token authentication is disabled).
    /// </summary>
    public static ErrorCode Refusal(BrokerConfig config, RequestContext context) =>
        Allowed(config, context) ? ErrorCode.DelegationTokenAuthDisabled : ErrorCode.DelegationTokenRequestNotAllowed;

    /// <summary>KafkaPrincipal's type and name from "Type:name".</summary>
    public static (string Type, string Name) Split(string principal)
    {
        int colon = principal.IndexOf(':');
        return colon < 0 ? ("User", principal) : (principal[..colon], principal[(colon + 1)..]);
    }
}
