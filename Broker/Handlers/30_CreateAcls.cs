// CreateAcls (key 30), v0-3: adds ACLs (Kafka's AclApis.handleCreateAcls + AclControlManager.createAcls). Each creation
// answers on its own: INVALID_REQUEST for an ANY/UNKNOWN resource type, a pattern type other than LITERAL/PREFIXED, an
// ANY operation or permission, an empty name, a CLUSTER name other than kafka-cluster, a principal without "Type:";
// an ACL that exists already succeeds. An UNKNOWN code closes the connection (Kafka's CreateAclsRequest.validate fails
// the parse). Needs ALTER on CLUSTER (every result CLUSTER_AUTHORIZATION_FAILED); without an authorizer every result
// is SECURITY_DISABLED. The ACLs are on disk (kayak-acls.json) before the answer.
using Kayak.Broker.Security;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class CreateAclsHandler(IAuthorizer authorizer) : ApiHandler<CreateAclsRequest>
{
    public override ApiKey Key => ApiKey.CreateAcls;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, CreateAclsRequest request)
    {
        var bindings = new List<AclBinding>(request.Creations.Count);
        foreach (var c in request.Creations) bindings.Add(AclRequests.Binding(c, context.ApiVersion));
        var response = new CreateAclsResponse();
        KafkaError? all = !authorizer.Authorize(context, AclOperation.Alter, AclResourceType.Cluster, StandardAuthorizer.ClusterName)
            ? AclRequests.ClusterDenied
            : authorizer.Acls is null ? new KafkaError(ErrorCode.SecurityDisabled, "No Authorizer is configured.") : null;
        var results = all is null ? authorizer.Acls!.Create(bindings) : null;
        for (int i = 0; i < bindings.Count; i++)
            {
            var e = all ?? results![i];
            response.Results.Add(new CreateAclsResponse.AclCreationResult().SetError(e));
        }
        return Done(response);
    }
}
