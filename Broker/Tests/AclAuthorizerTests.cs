using System.Net;
using Kayak.Broker.Handlers;
using Kayak.Broker.Security;
using Kayak.Protocol;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>
/// Issue 12, part 5: StandardAuthorizer's matching as Kafka's StandardAuthorizerData decides it — patterns, principals,
/// hosts, DENY over ALLOW, implied operations, super users, allow.everyone.if.no.acl.found, authorizeByResourceType —
/// and the ACL store's create/delete/describe rules.
/// </summary>
public class AclAuthorizerTests
{
    private static RequestContext As(string principal, string ip = "10.0.0.5") => new()
    {
        ApiKey = ApiKey.Metadata, ApiVersion = 12, CorrelationId = 1, Principal = principal,
        ClientAddress = new IPEndPoint(IPAddress.Parse(ip), 40000),
    };

    private static AclBinding Acl(AclResourceType type, string name, AclPatternType pattern, string principal, AclOperation op,
        AclPermissionType permission = AclPermissionType.Allow, string host = "*") => new(type, name, pattern, principal, host, op, permission);

    private static StandardAuthorizer With(params AclBinding[] acls) => WithOptions([], false, acls);

    private static StandardAuthorizer WithOptions(string[] superUsers, bool allowIfNoAcl, params AclBinding[] acls)
    {
        var a = new StandardAuthorizer(superUsers, allowIfNoAcl, file: null);
        var results = a.Create(acls);
        Assert.That(results.Where(r => r.IsError), Is.Empty);
        return a;
    }

    private static readonly RequestContext Bob = As("User:bob");

    [Test]
    public void NoAcls_DenyByDefault_AllowEveryoneIfNoAclFound_AllowsOnlyResourcesWithoutAcls()
    {
        Assert.That(With().Authorize(Bob, AclOperation.Read, AclResourceType.Topic, "orders"), Is.False);
        var open = WithOptions([], true, Acl(AclResourceType.Topic, "orders", AclPatternType.Literal, "User:alice", AclOperation.Read));
        Assert.That(open.Authorize(Bob, AclOperation.Read, AclResourceType.Topic, "payments"), Is.True, "no ACL on payments");
        Assert.That(open.Authorize(Bob, AclOperation.Read, AclResourceType.Topic, "orders"), Is.False, "orders has ACLs, none for bob");
    }

    [Test]
    public void Literal_Prefixed_AndWildcardPatterns()
    {
        var a = With(
            Acl(AclResourceType.Topic, "orders", AclPatternType.Literal, "User:bob", AclOperation.Read),
            Acl(AclResourceType.Topic, "pay-", AclPatternType.Prefixed, "User:bob", AclOperation.Write),
            Acl(AclResourceType.Group, "*", AclPatternType.Literal, "User:bob", AclOperation.Read));
        Assert.That(a.Authorize(Bob, AclOperation.Read, AclResourceType.Topic, "orders"), Is.True);
        Assert.That(a.Authorize(Bob, AclOperation.Read, AclResourceType.Topic, "orders2"), Is.False, "a literal is not a prefix");
        Assert.That(a.Authorize(Bob, AclOperation.Write, AclResourceType.Topic, "pay-eu"), Is.True);
        Assert.That(a.Authorize(Bob, AclOperation.Write, AclResourceType.Topic, "pay"), Is.False);
        Assert.That(a.Authorize(Bob, AclOperation.Read, AclResourceType.Group, "any-group"), Is.True);
        Assert.That(a.Authorize(Bob, AclOperation.Read, AclResourceType.TransactionalId, "orders"), Is.False, "other resource type");
    }

    [Test]
    public void Deny_BeatsAllow_AndImpliedOperationsApplyToAllowOnly()
    {
        var a = With(
            Acl(AclResourceType.Topic, "*", AclPatternType.Literal, "User:*", AclOperation.All),
            Acl(AclResourceType.Topic, "secret", AclPatternType.Literal, "User:bob", AclOperation.Read, AclPermissionType.Deny));
        Assert.That(a.Authorize(Bob, AclOperation.Read, AclResourceType.Topic, "secret"), Is.False);
        Assert.That(a.Authorize(Bob, AclOperation.Describe, AclResourceType.Topic, "secret"), Is.True, "a DENY of READ does not deny DESCRIBE");
        Assert.That(a.Authorize(As("User:carol"), AclOperation.Read, AclResourceType.Topic, "secret"), Is.True);

        var implied = With(
            Acl(AclResourceType.Topic, "t", AclPatternType.Literal, "User:bob", AclOperation.Write),
            Acl(AclResourceType.Topic, "c", AclPatternType.Literal, "User:bob", AclOperation.AlterConfigs));
        Assert.That(implied.Authorize(Bob, AclOperation.Describe, AclResourceType.Topic, "t"), Is.True, "WRITE implies DESCRIBE");
        Assert.That(implied.Authorize(Bob, AclOperation.Read, AclResourceType.Topic, "t"), Is.False);
        Assert.That(implied.Authorize(Bob, AclOperation.DescribeConfigs, AclResourceType.Topic, "c"), Is.True, "ALTER_CONFIGS implies DESCRIBE_CONFIGS");
        Assert.That(implied.Authorize(Bob, AclOperation.Describe, AclResourceType.Topic, "c"), Is.False, "ALTER_CONFIGS does not imply DESCRIBE");
    }

    [Test]
    public void DenyAll_DeniesEveryOperation_IncludingImpliedOnes()
    {
        var a = With(
            Acl(AclResourceType.Topic, "t", AclPatternType.Literal, "User:bob", AclOperation.Read),
            Acl(AclResourceType.Topic, "t", AclPatternType.Prefixed, "User:*", AclOperation.All, AclPermissionType.Deny));
        Assert.That(a.Authorize(Bob, AclOperation.Describe, AclResourceType.Topic, "t"), Is.False);
        Assert.That(a.Authorize(Bob, AclOperation.Read, AclResourceType.Topic, "t"), Is.False);
    }

    [Test]
    public void Host_MustBeWildcardOrTheClientIp_IPv4MappedAddressesCountAsIPv4()
    {
        var a = With(Acl(AclResourceType.Topic, "t", AclPatternType.Literal, "User:bob", AclOperation.Read, host: "10.0.0.5"));
        Assert.That(a.Authorize(As("User:bob", "10.0.0.5"), AclOperation.Read, AclResourceType.Topic, "t"), Is.True);
        Assert.That(a.Authorize(As("User:bob", "::ffff:10.0.0.5"), AclOperation.Read, AclResourceType.Topic, "t"), Is.True);
        Assert.That(a.Authorize(As("User:bob", "10.0.0.6"), AclOperation.Read, AclResourceType.Topic, "t"), Is.False);
    }

    [Test]
    public void SuperUsers_AreAllowedEverything_DespiteDenyAcls()
    {
        var a = WithOptions(["User:alice", "User:CN=admin"], false,
            Acl(AclResourceType.Topic, "*", AclPatternType.Literal, "User:*", AclOperation.All, AclPermissionType.Deny));
        Assert.That(a.Authorize(As("User:alice"), AclOperation.Write, AclResourceType.Topic, "t"), Is.True);
        Assert.That(a.Authorize(As("User:CN=admin"), AclOperation.Alter, AclResourceType.Cluster, "kafka-cluster"), Is.True);
        Assert.That(a.AuthorizeByResourceType(As("User:alice"), AclOperation.Write, AclResourceType.Topic), Is.True);
        Assert.That(a.Authorize(Bob, AclOperation.Write, AclResourceType.Topic, "t"), Is.False);
    }

    [Test]
    public void AuthorizeByResourceType_AllowOnSomeTopic_UnlessADenyDominatesIt()
    {
        Assert.That(With().AuthorizeByResourceType(Bob, AclOperation.Write, AclResourceType.Topic), Is.False);
        Assert.That(With(Acl(AclResourceType.Topic, "orders", AclPatternType.Literal, "User:bob", AclOperation.Write))
            .AuthorizeByResourceType(Bob, AclOperation.Write, AclResourceType.Topic), Is.True);
        Assert.That(With(
                Acl(AclResourceType.Topic, "orders", AclPatternType.Literal, "User:bob", AclOperation.Write),
                Acl(AclResourceType.Topic, "ord", AclPatternType.Prefixed, "User:bob", AclOperation.Write, AclPermissionType.Deny))
            .AuthorizeByResourceType(Bob, AclOperation.Write, AclResourceType.Topic), Is.False, "the prefixed DENY dominates the literal ALLOW");
        Assert.That(With(
                Acl(AclResourceType.Topic, "orders", AclPatternType.Literal, "User:bob", AclOperation.Write),
                Acl(AclResourceType.Topic, "*", AclPatternType.Literal, "User:bob", AclOperation.Write, AclPermissionType.Deny))
            .AuthorizeByResourceType(Bob, AclOperation.Write, AclResourceType.Topic), Is.False, "a wildcard DENY denies");
        Assert.That(With(Acl(AclResourceType.Topic, "orders", AclPatternType.Literal, "User:bob", AclOperation.Read))
            .AuthorizeByResourceType(Bob, AclOperation.Write, AclResourceType.Topic), Is.False, "READ is not WRITE");
    }

    [Test]
    public void AuthorizedOperations_AreTheSupportedOperationsAllowed()
    {
        var a = With(Acl(AclResourceType.Topic, "t", AclPatternType.Literal, "User:bob", AclOperation.Read));
        Assert.That(a.AuthorizedOperations(Bob, AclResourceType.Topic, "t"), Is.EqualTo(1 << 3 | 1 << 8), "READ and the DESCRIBE it implies");
        Assert.That(AllowAllAuthorizer.Instance.AuthorizedOperations(Bob, AclResourceType.Topic, "t"), Is.EqualTo(AuthorizedOperations.Topic));
        Assert.That(AllowAllAuthorizer.Instance.AuthorizedOperations(Bob, AclResourceType.Cluster, "kafka-cluster"), Is.EqualTo(AuthorizedOperations.Cluster));
        Assert.That(AllowAllAuthorizer.Instance.AuthorizedOperations(Bob, AclResourceType.Group, "g"), Is.EqualTo(AuthorizedOperations.Group));
    }

    [Test]
    public void Create_ValidatesEachBinding_AsKafkasAclControlManager_AndDedupes()
    {
        var a = With();
        var results = a.Create([
            Acl(AclResourceType.Any, "t", AclPatternType.Literal, "User:bob", AclOperation.Read),
            Acl(AclResourceType.Topic, "t", AclPatternType.Match, "User:bob", AclOperation.Read),
            Acl(AclResourceType.Topic, "t", AclPatternType.Literal, "User:bob", AclOperation.Any),
            Acl(AclResourceType.Topic, "t", AclPatternType.Literal, "User:bob", AclOperation.Read, AclPermissionType.Any),
            Acl(AclResourceType.Topic, "", AclPatternType.Literal, "User:bob", AclOperation.Read),
            Acl(AclResourceType.Cluster, "other", AclPatternType.Literal, "User:bob", AclOperation.Alter),
            Acl(AclResourceType.Topic, "t", AclPatternType.Literal, "bob", AclOperation.Read),
            Acl(AclResourceType.Topic, "t", AclPatternType.Literal, "User:bob", AclOperation.Read),
            Acl(AclResourceType.Topic, "t", AclPatternType.Literal, "User:bob", AclOperation.Read),
        ]);
        Assert.That(results.Take(7).Select(r => r.Code), Is.All.EqualTo(ErrorCode.InvalidRequest));
        Assert.That(results[0].Message, Is.EqualTo("Invalid resourceType ANY"));
        Assert.That(results[5].Message, Is.EqualTo("The only valid name for the CLUSTER resource is kafka-cluster"));
        Assert.That(results.Skip(7).Select(r => r.Code), Is.All.EqualTo(ErrorCode.None));
        Assert.That(a.Count, Is.EqualTo(1), "a duplicate adds nothing");
    }

    [Test]
    public void Filters_MatchFindsEveryPatternThatApplies_AnyNeedsTheExactName()
    {
        var a = With(
            Acl(AclResourceType.Topic, "orders", AclPatternType.Literal, "User:bob", AclOperation.Read),
            Acl(AclResourceType.Topic, "*", AclPatternType.Literal, "User:bob", AclOperation.Read),
            Acl(AclResourceType.Topic, "ord", AclPatternType.Prefixed, "User:bob", AclOperation.Read),
            Acl(AclResourceType.Topic, "x", AclPatternType.Prefixed, "User:bob", AclOperation.Read),
            Acl(AclResourceType.Group, "orders", AclPatternType.Literal, "User:carol", AclOperation.Read, AclPermissionType.Deny));
        AclBindingFilter F(AclResourceType t, string? name, AclPatternType p, string? principal = null, AclOperation op = AclOperation.Any,
            AclPermissionType perm = AclPermissionType.Any) => new(t, name, p, principal, null, op, perm);
        Assert.That(a.Describe(F(AclResourceType.Topic, "orders", AclPatternType.Match)), Has.Count.EqualTo(3));
        Assert.That(a.Describe(F(AclResourceType.Any, "orders", AclPatternType.Any)), Has.Count.EqualTo(2));
        Assert.That(a.Describe(F(AclResourceType.Any, null, AclPatternType.Prefixed)), Has.Count.EqualTo(2));
        Assert.That(a.Describe(F(AclResourceType.Any, null, AclPatternType.Any, "User:carol")), Has.Count.EqualTo(1));
        Assert.That(a.Describe(F(AclResourceType.Any, null, AclPatternType.Any, perm: AclPermissionType.Deny)), Has.Count.EqualTo(1));
        Assert.That(a.Describe(F(AclResourceType.Any, null, AclPatternType.Any, op: AclOperation.Write)), Is.Empty);

        var deleted = a.Delete([F(AclResourceType.Topic, "orders", AclPatternType.Match), F(AclResourceType.Topic, "*", AclPatternType.Literal)]);
        Assert.That(deleted[0].Deleted, Has.Count.EqualTo(3));
        Assert.That(deleted[1].Deleted, Has.Count.EqualTo(1), "both filters see the ACLs as before the request");
        Assert.That(a.Count, Is.EqualTo(2));
    }
}
