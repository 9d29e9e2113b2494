// SaslAuthenticate (key 36), v0-2. As SaslHandshake: the SaslAuthenticator handles it during authentication; one that
// reaches a handler gets ILLEGAL_SASL_STATE with Kafka's message (KafkaApis.handleSaslAuthenticateRequest).
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class SaslAuthenticateHandler : ApiHandler<SaslAuthenticateRequest>
{
    public override ApiKey Key => ApiKey.SaslAuthenticate;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, SaslAuthenticateRequest request) =>
        Done(new SaslAuthenticateResponse().SetError(new(ErrorCode.IllegalSaslState, "SaslAuthenticate request received after successful authentication")));
}
