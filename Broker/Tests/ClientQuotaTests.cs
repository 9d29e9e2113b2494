using Kayak.Broker.Quotas;
using Kayak.Protocol;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>
/// Client quota math and resolution without a broker (KIP-13, KIP-124, KIP-599): Kafka's sampled Rate and throttle
/// formula, the request quota's one-window cap, the controller mutation token bucket, Kafka's resolution order, and
/// the store's validation, filters and file.
/// </summary>
[TestFixture]
public sealed class ClientQuotaTests
{
    private const long T0 = 1_700_000_000_000;

    private static Dictionary<ClientQuotaEntity, Dictionary<string, double>> Quotas(params (ClientQuotaEntity Entity, string Key, double Value)[] values)
    {
        var d = new Dictionary<ClientQuotaEntity, Dictionary<string, double>>();
        foreach (var (e, k, v) in values)
        {
            if (!d.TryGetValue(e, out var m)) d[e] = m = new Dictionary<string, double>();
            m[k] = v;
        }
        return d;
    }

    [Test]
    public void ByteRate_ThrottleIsKafkasFormula_OverTheFullSampledWindow()
    {
        var m = new ClientQuotaManager(QuotaKeys.ProducerByteRate, samples: 11, windowSeconds: 1);
        Assert.That(m.RecordAndGetThrottleTimeMs("u", "c", 1_000_000, T0), Is.Zero, "nothing is throttled before a quota exists");
        m.Update(Quotas((ClientQuotaEntity.ForClient("c"), QuotaKeys.ProducerByteRate, 1000)));

        // A fresh sensor spreads its bytes over (samples - 1) = 10 full windows: 5000 B / 10 s = 500 B/s, within 1000.
        Assert.That(m.RecordAndGetThrottleTimeMs("u", "c", 5000, T0), Is.Zero);
        // 15000 B / 10 s = 1500 B/s: X = (O - T) / T * W = 0.5 * 10000 ms.
        Assert.That(m.RecordAndGetThrottleTimeMs("u", "c", 10_000, T0), Is.EqualTo(5000));
        // Another client id has no quota of its own and none by default.
        Assert.That(m.RecordAndGetThrottleTimeMs("u", "other", 1_000_000, T0), Is.Zero);

        // 12 s later every sample is older than 11 windows and purged: the rate starts over.
        Assert.That(m.RecordAndGetThrottleTimeMs("u", "c", 9000, T0 + 12_000), Is.Zero);
        // Purged samples restart at the purge time, so the window is again the 10 s minimum:
        // (9000 + 3000) / 10 s = 1200 B/s, 20 % over: 2000 ms.
        Assert.That(m.RecordAndGetThrottleTimeMs("u", "c", 3000, T0 + 12_000), Is.EqualTo(2000));
    }

    [Test]
    public void ByteRate_WindowGrowsPastTheMinimum_AsSamplesAge()
    {
        var m = new ClientQuotaManager(QuotaKeys.ConsumerByteRate, samples: 3, windowSeconds: 1);
        m.Update(Quotas((ClientQuotaEntity.ForClient(null), QuotaKeys.ConsumerByteRate, 100)));
        Assert.That(m.RecordAndGetThrottleTimeMs("u", "c", 100, T0), Is.Zero); // 100 B over 2 s
        // 2.5 s later (same sample set, 3 samples x 1 s not yet expired): elapsed 2500 ms, 2 full windows = minimum:
        // (100 + 400) / 2.5 s = 200 B/s, 100 % over: X = 1 * 2500 ms.
        Assert.That(m.RecordAndGetThrottleTimeMs("u", "c", 400, T0 + 2500), Is.EqualTo(2500));
    }

    [Test]
    public void RequestPercentage_ThrottleIsCappedAtOneWindow()
    {
        var m = new ClientQuotaManager(QuotaKeys.RequestPercentage, samples: 11, windowSeconds: 1, boundedByWindow: true);
        m.Update(Quotas((ClientQuotaEntity.ForUser(null), QuotaKeys.RequestPercentage, 1)));
        // 1000 percent-seconds over 10 s is 100 %, 99 times the quota: uncapped 990 s, capped at quota.window.size.seconds.
        Assert.That(m.RecordAndGetThrottleTimeMs("alice", "c", 1000, T0), Is.EqualTo(1000));
    }

    [Test]
    public void ControllerMutation_TokenBucket_StrictRefusesWhileEmpty_PermissiveRecordsAndThrottles()
    {
        var m = new ClientQuotaManager(QuotaKeys.ControllerMutationRate, samples: 11, windowSeconds: 1, tokenBucket: true);
        m.Update(Quotas((ClientQuotaEntity.ForUser("alice"), QuotaKeys.ControllerMutationRate, 2)));
        // Burst = 11 windows x 1 s x 2/s = 22 partitions.
        Assert.That(m.RecordMutation("alice", "c", 20, strict: true, T0), Is.Zero);
        Assert.That(m.RecordMutation("alice", "c", 20, strict: true, T0), Is.Zero, "2 tokens left: allowed, the bucket goes to -18");
        Assert.That(m.RecordMutation("alice", "c", 1, strict: true, T0), Is.EqualTo(9000), "refused: 18 tokens at 2/s");
        Assert.That(m.RecordMutation("alice", "c", 1, strict: true, T0 + 8000), Is.EqualTo(1000));
        Assert.That(m.RecordMutation("alice", "c", 1, strict: true, T0 + 9000), Is.Zero, "refilled to zero: allowed again");
        // Permissive (old versions): always recorded, throttled by the debt.
        Assert.That(m.RecordMutation("alice", "c", 3, strict: false, T0 + 9000), Is.EqualTo(2000));
        Assert.That(m.RecordMutation("bob", "c", 1000, strict: true, T0), Is.Zero, "bob has no quota");
    }

    [Test]
    public void Resolution_FollowsKafkasOrder_MostSpecificFirst()
    {
        string k = QuotaKeys.ProducerByteRate;
        var levels = new (ClientQuotaEntity Entity, double Value)[]
        {
            (ClientQuotaEntity.ForUserClient("u", "c"), 1),   // /users/u/clients/c
            (ClientQuotaEntity.ForUserClient("u", null), 2),  // /users/u/clients/<default>
            (ClientQuotaEntity.ForUser("u"), 3),              // /users/u
            (ClientQuotaEntity.ForUserClient(null, "c"), 4),  // /users/<default>/clients/c
            (ClientQuotaEntity.ForUserClient(null, null), 5), // /users/<default>/clients/<default>
            (ClientQuotaEntity.ForUser(null), 6),             // /users/<default>
            (ClientQuotaEntity.ForClient("c"), 7),            // /clients/c
            (ClientQuotaEntity.ForClient(null), 8),           // /clients/<default>
        };
        var m = new ClientQuotaManager(k, 11, 1);
        for (int drop = 0; drop < levels.Length; drop++)
        {
            var quotas = new Dictionary<ClientQuotaEntity, Dictionary<string, double>>();
            for (int i = drop; i < levels.Length; i++) quotas[levels[i].Entity] = new() { [k] = levels[i].Value };
            m.Update(quotas);
            Assert.That(m.QuotaFor("u", "c"), Is.EqualTo(levels[drop].Value), $"with levels {drop + 1}..8 configured");
        }
        m.Update(new Dictionary<ClientQuotaEntity, Dictionary<string, double>>());
        Assert.That(m.QuotaFor("u", "c"), Is.Null);
        // Other users and clients fall through to the defaults only.
        m.Update(Quotas((ClientQuotaEntity.ForUser("u"), k, 3), (ClientQuotaEntity.ForClient(null), k, 8)));
        Assert.That(m.QuotaFor("u", "x"), Is.EqualTo(3));
        Assert.That(m.QuotaFor("v", "x"), Is.EqualTo(8));
    }

    private static ClientQuotaStore.Alteration Set(string? user, string? client, string key, double value, bool remove = false)
    {
        var entity = new List<(string, string?)>();
        if (user is not null) entity.Add((ClientQuotaEntity.UserType, user == "<default>" ? null : user));
        if (client is not null) entity.Add((ClientQuotaEntity.ClientIdType, client == "<default>" ? null : client));
        return new(entity, [(key, value, remove)]);
    }

    private static KafkaError AlterOne(ClientQuotaStore store, ClientQuotaStore.Alteration a, bool validateOnly = false) =>
        store.Alter([a], validateOnly).Single().Error;

    [Test]
    public void Alter_RefusesWhatKafkasControllerRefuses()
    {
        var store = new ClientQuotaStore(null);
        Assert.That(AlterOne(store, Set("u", null, "producer_byte_rate", 1024)).IsError, Is.False);
        Assert.That(AlterOne(store, Set("u", null, "bogus", 1)), Is.EqualTo(new KafkaError(ErrorCode.InvalidRequest, "Invalid configuration key bogus")));
        Assert.That(AlterOne(store, Set("u", null, "consumer_byte_rate", 0)), Is.EqualTo(new KafkaError(ErrorCode.InvalidRequest, "Quota consumer_byte_rate must be greater than 0")));
        Assert.That(AlterOne(store, Set("u", null, "producer_byte_rate", 1.5)), Is.EqualTo(new KafkaError(ErrorCode.InvalidRequest, "producer_byte_rate cannot be a fractional value.")));
        Assert.That(AlterOne(store, Set("u", null, "request_percentage", 12.5)).IsError, Is.False, "request_percentage is a double");
        Assert.That(AlterOne(store, Set("", null, "producer_byte_rate", 1)), Is.EqualTo(new KafkaError(ErrorCode.InvalidRequest, "Empty user not supported")));
        Assert.That(AlterOne(store, new([], [("producer_byte_rate", 1, false)])), Is.EqualTo(new KafkaError(ErrorCode.InvalidRequest, "Invalid empty client quota entity")));
        Assert.That(AlterOne(store, new([("group", "g")], [("producer_byte_rate", 1, false)])), Is.EqualTo(new KafkaError(ErrorCode.InvalidRequest, "Unhandled client quota entity type: group")));
        Assert.That(AlterOne(store, new([("ip", "10.0.0.1"), ("user", "u")], [("connection_creation_rate", 1, false)])).Message, Does.StartWith("Invalid quota entity combination"));
        Assert.That(AlterOne(store, new([("ip", "10.0.0.1")], [("producer_byte_rate", 1, false)])), Is.EqualTo(new KafkaError(ErrorCode.InvalidRequest, "Invalid configuration key producer_byte_rate")));
        Assert.That(AlterOne(store, new([("ip", "10.0.0.1")], [("connection_creation_rate", 10, false)])).IsError, Is.False);
        Assert.That(AlterOne(store, new([("ip", "not an address")], [("connection_creation_rate", 10, false)])), Is.EqualTo(new KafkaError(ErrorCode.InvalidRequest, "not an address is not a valid IP or resolvable host.")));
        Assert.That(AlterOne(store, new([("user", "u"), ("user", "v")], [("producer_byte_rate", 1, false)])), Is.EqualTo(new KafkaError(ErrorCode.InvalidRequest, "Invalid client quota entity, duplicate entity entry user")));
        Assert.That(AlterOne(store, new([("user", "u")], [("producer_byte_rate", 1, false), ("producer_byte_rate", 2, false)])).Message, Does.StartWith("Ignoring duplicate entity").Or.StartWith("Duplicate quota key"));

        var twice = store.Alter([Set("w", null, "producer_byte_rate", 5), Set("w", null, "consumer_byte_rate", 6)], validateOnly: false);
        Assert.That(twice, Has.Count.EqualTo(1), "one answer per entity");
        Assert.That(twice[0].Error.Message, Does.StartWith("Ignoring duplicate entity"));

        Assert.That(AlterOne(store, Set("v", null, "producer_byte_rate", 7), validateOnly: true).IsError, Is.False);
        Assert.That(store.Snapshot().ContainsKey(ClientQuotaEntity.ForUser("v")), Is.False, "validate_only changes nothing");
        Assert.That(AlterOne(store, Set("u", null, "bogus", 0, remove: true)).IsError, Is.False, "a removal is not validated, as in Kafka");
        Assert.That(store.Snapshot()[ClientQuotaEntity.ForUser("u")], Is.EqualTo(new Dictionary<string, double> { ["producer_byte_rate"] = 1024, ["request_percentage"] = 12.5 }));
    }

    [Test]
    public void Describe_FiltersAsKafkasClientQuotasImage()
    {
        var store = new ClientQuotaStore(null);
        store.Alter([Set("u", null, "producer_byte_rate", 1), Set("u", "c", "producer_byte_rate", 2), Set("<default>", null, "producer_byte_rate", 3),
            Set(null, "c", "producer_byte_rate", 4), Set(null, "<default>", "producer_byte_rate", 5)], validateOnly: false);
        int Count(bool strict, params ClientQuotaStore.Component[] c) => store.Describe(c, strict).Count;
        var exactU = new ClientQuotaStore.Component("user", 0, "u");
        var defaultUser = new ClientQuotaStore.Component("user", 1, null);
        var anyUser = new ClientQuotaStore.Component("user", 2, null);
        var anyClient = new ClientQuotaStore.Component("client-id", 2, null);
        Assert.That(Count(false), Is.EqualTo(5));
        Assert.That(Count(true), Is.Zero, "strict with no components matches only the empty entity");
        Assert.That(Count(false, exactU), Is.EqualTo(2));
        Assert.That(Count(true, exactU), Is.EqualTo(1));
        Assert.That(Count(true, defaultUser), Is.EqualTo(1));
        Assert.That(Count(false, anyUser), Is.EqualTo(3), "any specified name includes the default entity, as in Kafka 4.0");
        Assert.That(Count(true, anyUser, anyClient), Is.EqualTo(1));
        Assert.That(Count(false, anyClient), Is.EqualTo(3));

        var e = Assert.Throws<KafkaException>(() => store.Describe([exactU, anyUser], false))!;
        Assert.That((e.Code, e.Message), Is.EqualTo((ErrorCode.InvalidRequest, "Entity type user cannot appear more than once in the filter.")));
        e = Assert.Throws<KafkaException>(() => store.Describe([new("group", 2, null)], false))!;
        Assert.That((e.Code, e.Message), Is.EqualTo((ErrorCode.UnsupportedVersion, "Unsupported entity type group")));
        e = Assert.Throws<KafkaException>(() => store.Describe([new("user", 0, null)], false))!;
        Assert.That(e.Message, Is.EqualTo("Request specified MATCH_TYPE_EXACT, but set match string to null."));
        e = Assert.Throws<KafkaException>(() => store.Describe([new("user", 7, null)], false))!;
        Assert.That(e.Message, Is.EqualTo("Unknown match type 7"));
        e = Assert.Throws<KafkaException>(() => store.Describe([new("ip", 2, null), anyUser], false))!;
        Assert.That(e.Message, Does.StartWith("Invalid entity filter component combination."));
    }

    [Test]
    public void File_SurvivesAReload_AndAnUnreadableFileRefusesTheStart()
    {
        var dir = Path.Combine(Path.GetTempPath(), "kayak-quota-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var store = new ClientQuotaStore(dir);
            store.Alter([new([("user", "u"), ("client-id", null)], [("consumer_byte_rate", 2048, false), ("request_percentage", 50, false)])], validateOnly: false);
            store.Alter([new([("ip", "127.0.0.1")], [("connection_creation_rate", 5, false)])], validateOnly: false);
            var reloaded = new ClientQuotaStore(dir).Snapshot();
            Assert.That(reloaded, Has.Count.EqualTo(2));
            Assert.That(reloaded[ClientQuotaEntity.ForUserClient("u", null)], Is.EqualTo(new Dictionary<string, double> { ["consumer_byte_rate"] = 2048, ["request_percentage"] = 50 }));

            File.WriteAllText(Path.Combine(dir, ClientQuotaStore.FileName), "{ \"entries\": [ {");
            var e = Assert.Throws<Config.ConfigException>(() => new ClientQuotaStore(dir))!;
            Assert.That(e.Message, Does.Contain(ClientQuotaStore.FileName));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
