// RenewDelegationToken (key 39), v0-2 (KIP-48). As a Kafka 4.0 cluster without delegation.token.secret.key: PLAINTEXT and one-way SSL
// connections are refused with DELEGATION_TOKEN_REQUEST_NOT_ALLOWED (KafkaApis.allowTokenRequests), everything else
// reaches the controller, whose DelegationTokenControlManager answers DELEGATION_TOKEN_AUTH_DISABLED.
using Kayak.Broker.Config;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class RenewDelegationTokenHandler(BrokerConfig config) : ApiHandler<RenewDelegationTokenRequest>
{
    public override ApiKey Key => ApiKey.RenewDelegationToken;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, RenewDelegationTokenRequest request) =>
        Done(new RenewDelegationTokenResponse().SetError(DelegationTokens.Refusal(config, context)));
}
