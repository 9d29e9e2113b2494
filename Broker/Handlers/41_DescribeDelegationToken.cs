// DescribeDelegationToken (key 41), v0-3 (KIP-48). As Kafka 4.0's KafkaApis.handleDescribeTokensRequest on a broker
// without delegation.token.secret.key: DELEGATION_TOKEN_REQUEST_NOT_ALLOWED on PLAINTEXT and one-way SSL connections,
// DELEGATION_TOKEN_AUTH_DISABLED otherwise, with no tokens.
using Kayak.Broker.Config;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class DescribeDelegationTokenHandler(BrokerConfig config) : ApiHandler<DescribeDelegationTokenRequest>
{
    public override ApiKey Key => ApiKey.DescribeDelegationToken;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, DescribeDelegationTokenRequest request) =>
        Done(new DescribeDelegationTokenResponse().SetError(DelegationTokens.Refusal(config, context)));
}
