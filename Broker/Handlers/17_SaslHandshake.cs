// SaslHandshake (key 17), v0-1. On SASL listeners the handshake is the connection's SaslAuthenticator's (before any
// handler runs); a SaslHandshake that reaches a handler came on a PLAINTEXT/SSL listener or after authentication
// without re-authentication, and Kafka's KafkaApis.handleSaslHandshakeRequest answers it ILLEGAL_SASL_STATE.
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class SaslHandshakeHandler : ApiHandler<SaslHandshakeRequest>
{
    public override ApiKey Key => ApiKey.SaslHandshake;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, SaslHandshakeRequest request) =>
        Done(new SaslHandshakeResponse().SetError(ErrorCode.IllegalSaslState));
}
