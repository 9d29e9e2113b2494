using Kayak.Broker.Network.Sasl;
using Kayak.Broker.Quotas;
using Kayak.Broker.Security;

namespace Kayak.Broker.Cluster;

/// <summary>
/// What Kafka keeps in the metadata log beside topics and is therefore the same on every broker of a cluster: ACLs
/// (AccessControlEntryRecord), SCRAM credentials (UserScramCredentialRecord), client quotas (ClientQuotaRecord) and the
/// default broker configs (ConfigRecord on the broker resource "").
/// One instance of each lives here, stored under the cluster root, and every member's handlers, authenticators and
/// quota managers use it, so a change made through any broker holds on all of them at once and after a restart
/// (issue 14). Before, each member kept its own copy in its broker-&lt;id&gt; dir: an ACL created through broker 1 did
/// not exist on broker 2.
/// </summary>
internal sealed partial class ClusterController
{
    /// <summary>The cluster's ACLs, read when the first member with an authorizer starts.</summary>
    public AclStore Acls { get; private set; } = null!;

    /// <summary>The cluster's SCRAM credentials (KIP-554), shared by every SASL listener of every member.</summary>
    public ScramCredentialStore Scram { get; private set; } = null!;

    /// <summary>The cluster's client quotas (KIP-546); each member enforces them on its own connections, as Kafka's brokers do.</summary>
    public ClientQuotaStore Quotas { get; private set; } = null!;

    /// <summary>The cluster-wide dynamic broker defaults (BROKER resource ""), followed by every member's config.</summary>
    public Config.ClusterDefaultConfigs BrokerDefaults { get; private set; } = null!;

    /// <summary>--add-scram seeds not applied because the cluster root already had credentials (kafka-storage format semantics).</summary>
    public IReadOnlyList<string> IgnoredScramSeeds { get; private set; } = [];

    private void OpenShared(string root, IEnumerable<string> scramSeeds)
    {
        foreach (var name in new[] { AclFile.FileName, ScramCredentialStore.FileName, ClientQuotaStore.FileName, Config.DynamicBrokerConfig.FileName })
            AdoptMemberFile(root, name);
        Acls = new AclStore(new AclFile(Path.Combine(root, AclFile.FileName)));
        Scram = new ScramCredentialStore();
        Scram.AddSeeds(scramSeeds);
        IgnoredScramSeeds = Scram.Open(root);
        Quotas = new ClientQuotaStore(root);
        BrokerDefaults = new Config.ClusterDefaultConfigs(root);
    }

    /// <summary>
    /// A cluster root written before these were shared has them only in the members' broker-&lt;id&gt; dirs: the lowest
    /// node id's copy becomes the cluster's, so a restart after the upgrade keeps what was set through broker 1 (the
    /// broker tests and tools use) instead of starting with none, which for ACLs would open or close everything.
    /// </summary>
    private static void AdoptMemberFile(string root, string fileName)
    {
        string shared = Path.Combine(root, fileName);
        if (File.Exists(shared)) return;
        string? oldest = null;
        int lowest = int.MaxValue;
        foreach (var dir in Directory.EnumerateDirectories(root, "broker-*"))
        {
            if (!int.TryParse(Path.GetFileName(dir).AsSpan(7), out int id) || id >= lowest) continue;
            string candidate = Path.Combine(dir, fileName);
            if (!File.Exists(candidate)) continue;
            lowest = id;
            oldest = candidate;
        }
        if (oldest is not null) Kayak.Storage.AtomicFile.Write(shared, File.ReadAllText(oldest));
    }
}
