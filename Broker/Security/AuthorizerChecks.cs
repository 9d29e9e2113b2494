using Kayak.Broker.Handlers;

namespace Kayak.Broker.Security;

/// <summary>The one-line checks handlers make, named by resource type (KafkaApis' authHelper.authorize calls).</summary>
internal static class AuthorizerChecks
{
    public static bool Topic(this IAuthorizer a, RequestContext c, AclOperation op, string name, bool logIfDenied = true) =>
        a.Authorize(c, op, AclResourceType.Topic, name, logIfDenied: logIfDenied);

    public static bool Group(this IAuthorizer a, RequestContext c, AclOperation op, string name, bool logIfDenied = true) =>
        a.Authorize(c, op, AclResourceType.Group, name, logIfDenied: logIfDenied);

    public static bool Cluster(this IAuthorizer a, RequestContext c, AclOperation op, bool logIfDenied = true) =>
        a.Authorize(c, op, AclResourceType.Cluster, StandardAuthorizer.ClusterName, logIfDenied: logIfDenied);

    public static bool TransactionalId(this IAuthorizer a, RequestContext c, AclOperation op, string name, bool logIfDenied = true) =>
        a.Authorize(c, op, AclResourceType.TransactionalId, name, logIfDenied: logIfDenied);

    /// <summary>KafkaApis.filterByAuthorized: the distinct names the principal may act on, each asked once.</summary>
    public static HashSet<string> AuthorizedTopics<T>(this IAuthorizer a, RequestContext c, AclOperation op, IEnumerable<T> items, Func<T, string> name)
    {
        var allowed = new HashSet<string>(StringComparer.Ordinal);
        var denied = new HashSet<string>(StringComparer.Ordinal);
        foreach (var item in items)
        {
            var n = name(item);
            if (allowed.Contains(n) || denied.Contains(n)) continue;
            (a.Topic(c, op, n) ? allowed : denied).Add(n);
        }
        return allowed;
    }
}
