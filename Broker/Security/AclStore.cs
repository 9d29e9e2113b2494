using Kayak.Protocol;

namespace Kayak.Broker.Security;

/// <summary>
/// The ACLs themselves, apart from who checks them: a single node's in its first log dir, a cluster's one set under
/// the cluster root held by the controller, so an ACL created through any member holds on all of them at once, as
/// Kafka's brokers all replay the controller's AccessControlEntryRecords (issue 14). Copy-on-write: checks read
/// <see cref="Current"/> without a lock; creates and deletes are serialised, stored, then published.
/// </summary>
internal sealed class AclStore(AclFile? file)
{
    private readonly object _writeLock = new();
    private volatile AclBinding[] _acls = [];
    private bool _loaded;

    /// <summary>The ACLs in force.</summary>
    public AclBinding[] Current => _acls;

    /// <summary>
    /// Reads the stored ACLs, once: every cluster member asks at its start, the first one reads. A file that cannot be
    /// read stops the start (ConfigException naming it) and is read again by the next start.
    /// </summary>
    public void Load()
    {
        lock (_writeLock)
        {
            if (_loaded) return;
            if (file is not null) _acls = file.Load();
            _loaded = true;
        }
    }

    /// <summary>Kafka's Authorizer.acls(filter).</summary>
    public List<AclBinding> Describe(AclBindingFilter filter)
    {
        var result = new List<AclBinding>();
        foreach (var acl in _acls)
            if (filter.Matches(acl)) result.Add(acl);
        return result;
    }

    /// <summary>
    /// CreateAcls: each binding validated as AclControlManager.validateNewAcl and AclApis do (INVALID_REQUEST), the valid
    /// ones added at once (an existing ACL is a success that adds nothing) and stored before the answer.
    /// </summary>
    public KafkaError[] Create(IReadOnlyList<AclBinding> bindings)
    {
        var results = new KafkaError[bindings.Count];
        lock (_writeLock)
        {
            var next = new List<AclBinding>(_acls);
            var existing = new HashSet<AclBinding>(next);
            for (int i = 0; i < bindings.Count; i++)
            {
                results[i] = StandardAuthorizer.Validate(bindings[i]);
                if (!results[i].IsError && existing.Add(bindings[i])) next.Add(bindings[i]);
            }
            Publish(next);
        }
        return results;
    }

    /// <summary>DeleteAcls: every filter matches against the ACLs as they were before the request (AclControlManager.deleteAcls).</summary>
    public (KafkaError Error, List<AclBinding> Deleted)[] Delete(IReadOnlyList<AclBindingFilter> filters)
    {
        var results = new (KafkaError, List<AclBinding>)[filters.Count];
        lock (_writeLock)
        {
            var current = _acls;
            var removed = new HashSet<AclBinding>();
            for (int i = 0; i < filters.Count; i++)
            {
                var deleted = new List<AclBinding>();
                if (filters[i].IsUnknown)
                {
                    results[i] = (new KafkaError(ErrorCode.InvalidRequest, filters[i].PatternType == AclPatternType.Unknown || filters[i].ResourceType == AclResourceType.Unknown
                        ? "Unknown patternFilter." : "Unknown entryFilter."), deleted);
                    continue;
                }
                foreach (var acl in current)
                    if (filters[i].Matches(acl)) { deleted.Add(acl); removed.Add(acl); }
                results[i] = (KafkaError.None, deleted);
            }
            if (removed.Count > 0)
            {
                var next = new List<AclBinding>(current.Length);
                foreach (var acl in current) if (!removed.Contains(acl)) next.Add(acl);
                Publish(next);
            }
        }
        return results;
    }

    /// <summary>Writes the file, then makes the ACLs current: an answered create or delete survives a crash.</summary>
    private void Publish(List<AclBinding> next)
    {
        var array = next.ToArray();
        file?.Store(array);
        _acls = array;
    }
}
