namespace Kayak.Broker.Quotas;

/// <summary>
/// A quota entity as KIP-257 names it: any of the types user, client-id and ip, each with a name or null for the
/// default (Kafka's ClientQuotaEntity). Only user/client-id combinations and ip alone are valid for storage
/// (<see cref="ClientQuotaStore"/> checks). Value equality, so dictionary lookups on the request path allocate nothing.
/// </summary>
internal readonly record struct ClientQuotaEntity(bool HasUser, string? User, bool HasClientId, string? ClientId, bool HasIp = false, string? Ip = null)
{
    public const string UserType = "user";
    public const string ClientIdType = "client-id";
    public const string IpType = "ip";

    public static ClientQuotaEntity ForUser(string? user) => new(true, user, false, null);
    public static ClientQuotaEntity ForClient(string? clientId) => new(false, null, true, clientId);
    public static ClientQuotaEntity ForUserClient(string? user, string? clientId) => new(true, user, true, clientId);

    public int Count => (HasUser ? 1 : 0) + (HasClientId ? 1 : 0) + (HasIp ? 1 : 0);

    public bool Has(string type) => type switch { UserType => HasUser, ClientIdType => HasClientId, IpType => HasIp, _ => false };

    public string? Name(string type) => type switch { UserType => User, ClientIdType => ClientId, IpType => Ip, _ => null };

    /// <summary>The (type, name) pairs, in Kafka's ClientQuotaEntity order of types (user, client-id, ip).</summary>
    public IEnumerable<(string Type, string? Name)> Entries()
    {
        if (HasUser) yield return (UserType, User);
        if (HasClientId) yield return (ClientIdType, ClientId);
        if (HasIp) yield return (IpType, Ip);
    }

    /// <summary>Kafka's ClientQuotaEntity.toString, used in its error messages.</summary>
    public override string ToString()
    {
        var parts = new List<string>(3);
        foreach (var (t, n) in Entries()) parts.Add($"{t}={n ?? "null"}");
        return "ClientQuotaEntity(entries={" + string.Join(", ", parts) + "})";
    }
}

/// <summary>The quota keys (Kafka's QuotaConfig) and the types their values must fit.</summary>
internal static class QuotaKeys
{
    public const string ProducerByteRate = "producer_byte_rate";
    public const string ConsumerByteRate = "consumer_byte_rate";
    public const string RequestPercentage = "request_percentage";
    public const string ControllerMutationRate = "controller_mutation_rate";
    public const string ConnectionCreationRate = "connection_creation_rate";

    public enum ValueType { Long, Double, Int }

    /// <summary>QuotaConfig.userAndClientQuotaConfigs / ipConfigs: the keys valid for the entity's types.</summary>
    public static ValueType? TypeOf(string key, bool ipEntity) => ipEntity
        ? key == ConnectionCreationRate ? ValueType.Int : null
        : key switch
        {
            ProducerByteRate or ConsumerByteRate => ValueType.Long,
            RequestPercentage or ControllerMutationRate => ValueType.Double,
            _ => null,
        };
}
