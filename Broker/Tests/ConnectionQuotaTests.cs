using System.Net;
using Kayak.Broker.Config;
using Kayak.Broker.Network;
using Kayak.Broker.Quotas;
using Kayak.Coordinator.Tests;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>
/// Kafka's ConnectionQuotas semantics (KIP-612) on a manual clock: per-IP counts and overrides refuse at once, the
/// broker's and a listener's max.connections make the accept wait for a slot, the broker and listener creation rates
/// delay the accept by Kafka's throttle time (Rate over quota.window.num samples), and an IP over its
/// connection_creation_rate is refused with the throttle time its socket is held for, not counted anywhere.
/// </summary>
[TestFixture]
public sealed class ConnectionQuotaTests
{
    private static readonly IPAddress A = IPAddress.Parse("127.0.0.1");
    private static readonly IPAddress B = IPAddress.Parse("127.0.0.2");
    private static readonly IPAddress C = IPAddress.Parse("127.0.0.3");

    private static BrokerConfig Config(params (string Key, string Value)[] props)
    {
        var d = new Dictionary<string, string> { ["listeners"] = "PLAINTEXT://127.0.0.1:0,OTHER://127.0.0.1:0",
            ["listener.security.protocol.map"] = "PLAINTEXT:PLAINTEXT,OTHER:PLAINTEXT", ["quota.window.num"] = "2" };
        foreach (var (k, v) in props) d[k] = v;
        return new BrokerConfig(d);
    }

    private static (ConnectionQuotas Quotas, ManualTimeProvider Time) Create(params (string, string)[] props)
    {
        var time = new ManualTimeProvider();
        var q = new ConnectionQuotas(Config(props), time);
        q.AddListener("PLAINTEXT");
        q.AddListener("OTHER");
        return (q, time);
    }

    private static ConnectionQuotas.Outcome Admit(ConnectionQuotas q, IPAddress ip, string listener = "PLAINTEXT")
    {
        var task = q.AdmitAsync(listener, ip, CancellationToken.None);
        Assert.That(task.IsCompleted, Is.True, "no limit makes this accept wait");
        return task.Result.Outcome;
    }

    [Test]
    public void PerIpCount_RefusesOverTheLimit_OverridesWin_AndAClosedConnectionFreesItsSlot()
    {
        var (q, _) = Create(("max.connections.per.ip", "2"), ("max.connections.per.ip.overrides", "127.0.0.2:3, [::1]:1"));
        Assert.That(Admit(q, A), Is.EqualTo(ConnectionQuotas.Outcome.Accepted));
        Assert.That(Admit(q, A, "OTHER"), Is.EqualTo(ConnectionQuotas.Outcome.Accepted), "the per-IP count spans listeners");
        var refused = q.AdmitAsync("PLAINTEXT", A, CancellationToken.None).Result;
        Assert.That((refused.Outcome, refused.Limit), Is.EqualTo((ConnectionQuotas.Outcome.TooManyForIp, 2)));
        Assert.That(q.Count(A), Is.EqualTo(2), "a refused connection is not counted");
        for (int i = 0; i < 3; i++) Assert.That(Admit(q, B), Is.EqualTo(ConnectionQuotas.Outcome.Accepted), "127.0.0.2's override is 3");
        Assert.That(Admit(q, B), Is.EqualTo(ConnectionQuotas.Outcome.TooManyForIp));
        // An IPv4 client on a dual-mode socket is ::ffff:127.0.0.1: the same address.
        Assert.That(Admit(q, A.MapToIPv6()), Is.EqualTo(ConnectionQuotas.Outcome.TooManyForIp));
        Assert.That(Admit(q, IPAddress.IPv6Loopback), Is.EqualTo(ConnectionQuotas.Outcome.Accepted));
        Assert.That(Admit(q, IPAddress.IPv6Loopback), Is.EqualTo(ConnectionQuotas.Outcome.TooManyForIp), "[::1]:1");
        q.Release("PLAINTEXT", A);
        Assert.That(Admit(q, A), Is.EqualTo(ConnectionQuotas.Outcome.Accepted));
        Assert.That(q.RejectedConnections, Is.EqualTo(4));
        Assert.That(q.Total, Is.EqualTo(6));
    }

    [Test]
    public void BrokerMaxConnections_MakesTheAcceptWait_UntilAConnectionCloses()
    {
        var (q, _) = Create(("max.connections", "2"));
        Assert.That(Admit(q, A), Is.EqualTo(ConnectionQuotas.Outcome.Accepted));
        Assert.That(Admit(q, B, "OTHER"), Is.EqualTo(ConnectionQuotas.Outcome.Accepted));
        var waiting = q.AdmitAsync("PLAINTEXT", C, CancellationToken.None).AsTask();
        Assert.That(waiting.IsCompleted, Is.False, "Kafka blocks the acceptor while the broker is full; nothing is refused");
        Assert.That(q.WaitingAccepts, Is.EqualTo(1));
        q.Release("OTHER", B);
        Assert.That(waiting.Wait(TimeSpan.FromSeconds(10)), Is.True, "a closed connection frees the slot");
        Assert.That(waiting.Result.Outcome, Is.EqualTo(ConnectionQuotas.Outcome.Accepted));
        Assert.That((q.Total, q.Count(C), q.WaitingAccepts), Is.EqualTo((2, 1, 0)));
    }

    [Test]
    public void ListenerMaxConnections_WaitsOnThatListenerOnly_AndARaisedLimitReleasesIt()
    {
        var (q, _) = Create(("listener.name.plaintext.max.connections", "1"));
        Assert.That(Admit(q, A), Is.EqualTo(ConnectionQuotas.Outcome.Accepted));
        var waiting = q.AdmitAsync("PLAINTEXT", B, CancellationToken.None).AsTask();
        Assert.That(waiting.IsCompleted, Is.False);
        Assert.That(Admit(q, B, "OTHER"), Is.EqualTo(ConnectionQuotas.Outcome.Accepted), "the other listener has no limit");
        // A dynamic update (AlterConfigs listener.name.plaintext.max.connections=2) wakes the waiting accept.
        q.Reconfigure(Config(("listener.name.plaintext.max.connections", "2")));
        Assert.That(waiting.Wait(TimeSpan.FromSeconds(10)), Is.True);
        Assert.That(q.ListenerCount("PLAINTEXT"), Is.EqualTo(2));
    }

    [Test]
    public void WaitingAccept_EndsWhenTheListenerStops()
    {
        var (q, _) = Create(("max.connections", "1"));
        Admit(q, A);
        using var stop = new CancellationTokenSource();
        var waiting = q.AdmitAsync("PLAINTEXT", B, stop.Token).AsTask();
        stop.Cancel();
        Assert.That(() => waiting.Wait(TimeSpan.FromSeconds(10)), Throws.InnerException.InstanceOf<OperationCanceledException>());
        Assert.That(q.Total, Is.EqualTo(1));
    }

    [Test]
    public void BrokerCreationRate_DelaysTheAccept_ByKafkasThrottleTime()
    {
        // 2 samples of 1 s: a first burst is measured over at least one full window, so the third connection at once
        // measures 3/s against 2/s: (3 - 2) / 2 x 1000 ms = 500 ms (QuotaUtils.throttleTime).
        var (q, time) = Create(("max.connection.creation.rate", "2"));
        Assert.That(Admit(q, A), Is.EqualTo(ConnectionQuotas.Outcome.Accepted));
        Assert.That(Admit(q, A, "OTHER"), Is.EqualTo(ConnectionQuotas.Outcome.Accepted));
        var delayed = q.AdmitAsync("PLAINTEXT", B, CancellationToken.None).AsTask();
        Assert.That(delayed.IsCompleted, Is.False, "over the broker-wide rate the accept waits");
        time.AdvanceMs(499);
        Assert.That(delayed.IsCompleted, Is.False);
        time.AdvanceMs(1);
        Assert.That(delayed.Wait(TimeSpan.FromSeconds(10)), Is.True);
        Assert.That(delayed.Result.Outcome, Is.EqualTo(ConnectionQuotas.Outcome.Accepted), "a rate throttle delays, it never refuses");
    }

    [Test]
    public void ListenerCreationRate_ThrottlesThatListener_AndTheDelayIsCappedAtOneWindow()
    {
        var (q, time) = Create(("listener.name.plaintext.max.connection.creation.rate", "1"));
        Assert.That(Admit(q, A), Is.EqualTo(ConnectionQuotas.Outcome.Accepted));
        for (int i = 0; i < 5; i++) Assert.That(Admit(q, A, "OTHER"), Is.EqualTo(ConnectionQuotas.Outcome.Accepted), "OTHER has no rate");
        // 2/s against 1/s: (2 - 1) / 1 x 1000 ms.
        var second = q.AdmitAsync("PLAINTEXT", A, CancellationToken.None).AsTask();
        time.AdvanceMs(999);
        Assert.That(second.IsCompleted, Is.False);
        time.AdvanceMs(1);
        Assert.That(second.Wait(TimeSpan.FromSeconds(10)), Is.True);
        // At once again: 3 connections over one window measure 3/s, a 2000 ms throttle, capped at the 1 s window
        // (ConnectionQuotas.maxThrottleTimeMs = quota.window.size.seconds).
        var third = q.AdmitAsync("PLAINTEXT", A, CancellationToken.None).AsTask();
        time.AdvanceMs(999);
        Assert.That(third.IsCompleted, Is.False);
        time.AdvanceMs(1);
        Assert.That(third.Wait(TimeSpan.FromSeconds(10)), Is.True);
        Assert.That(third.Result.Outcome, Is.EqualTo(ConnectionQuotas.Outcome.Accepted));
    }

    [Test]
    public void IpCreationRate_RefusesWithTheThrottleTime_CountsNothing_AndOtherIpsAreNotLimited()
    {
        var (q, time) = Create(("max.connection.creation.rate", "3"));
        q.UpdateIpRates(new Dictionary<ClientQuotaEntity, Dictionary<string, double>>
        {
            [new ClientQuotaEntity(false, null, false, null, true, "127.0.0.2")] = new() { ["connection_creation_rate"] = 1 },
        });
        Assert.That(q.ConnectionRateForIp(B), Is.EqualTo(1));
        Assert.That(q.ConnectionRateForIp(A), Is.EqualTo(ConnectionQuotas.NoIpRateQuota));
        Assert.That(Admit(q, B), Is.EqualTo(ConnectionQuotas.Outcome.Accepted));
        // 2 connections in the first window measure 2/s against 1/s: (2 - 1) / 1 x 1000 ms, capped at one window (1 s).
        var throttled = q.AdmitAsync("PLAINTEXT", B, CancellationToken.None).Result;
        Assert.That((throttled.Outcome, throttled.ThrottleMs), Is.EqualTo((ConnectionQuotas.Outcome.Throttled, 1000L)));
        Assert.That((q.Count(B), q.ThrottledConnections), Is.EqualTo((1, 1L)));
        // The throttled connection was taken back from the broker rate too (updateListenerMetrics): with 3/s, two more
        // connections from A are within the rate (1 + 2 = 3), which they would not be had it counted.
        Assert.That(Admit(q, A), Is.EqualTo(ConnectionQuotas.Outcome.Accepted));
        Assert.That(Admit(q, A), Is.EqualTo(ConnectionQuotas.Outcome.Accepted));
        // After the samples expire (2 windows without a connection) 127.0.0.2 may connect again.
        time.AdvanceMs(2000);
        Assert.That(Admit(q, B), Is.EqualTo(ConnectionQuotas.Outcome.Accepted));
    }

    [Test]
    public void DefaultIpRate_AppliesToEveryIpWithoutItsOwn_AndRemovingItLiftsTheQuota()
    {
        var (q, _) = Create();
        var quotas = new Dictionary<ClientQuotaEntity, Dictionary<string, double>>
        {
            [new ClientQuotaEntity(false, null, false, null, true, null)] = new() { ["connection_creation_rate"] = 1 },
            [new ClientQuotaEntity(false, null, false, null, true, "127.0.0.3")] = new() { ["connection_creation_rate"] = 100 },
            [ClientQuotaEntity.ForUser("alice")] = new() { ["producer_byte_rate"] = 1000 },
        };
        q.UpdateIpRates(quotas);
        Assert.That((q.ConnectionRateForIp(A), q.ConnectionRateForIp(B), q.ConnectionRateForIp(C)), Is.EqualTo((1, 1, 100)));
        Assert.That(Admit(q, A), Is.EqualTo(ConnectionQuotas.Outcome.Accepted));
        Assert.That(Admit(q, A), Is.EqualTo(ConnectionQuotas.Outcome.Throttled));
        Assert.That(Admit(q, B), Is.EqualTo(ConnectionQuotas.Outcome.Accepted), "each IP has its own sensor");
        for (int i = 0; i < 5; i++) Assert.That(Admit(q, C), Is.EqualTo(ConnectionQuotas.Outcome.Accepted));
        q.UpdateIpRates(new Dictionary<ClientQuotaEntity, Dictionary<string, double>>());
        Assert.That(Admit(q, A), Is.EqualTo(ConnectionQuotas.Outcome.Accepted));
    }

    [Test]
    public void Configs_AreKafkas_ValidatedAndDynamic()
    {
        var defaults = Config();
        Assert.That((defaults.MaxConnections, defaults.MaxConnectionsPerIp, defaults.MaxConnectionCreationRate), Is.EqualTo((int.MaxValue, int.MaxValue, int.MaxValue)));
        Assert.That(defaults.MaxConnectionsPerIpOverrides, Is.Empty);
        Assert.That(() => Config(("max.connections.per.ip", "0")), Throws.InstanceOf<ConfigException>()
            .With.Message.Contains("max.connections.per.ip can be set to zero only if max.connections.per.ip.overrides property is set"));
        Assert.That(Config(("max.connections.per.ip", "0"), ("max.connections.per.ip.overrides", "127.0.0.1:5")).MaxConnectionsPerIpOverrides[A], Is.EqualTo(5));
        Assert.That(() => Config(("max.connections.per.ip.overrides", "127.0.0.1")), Throws.InstanceOf<ConfigException>()
            .With.Message.Contains("Error parsing configuration property 'max.connections.per.ip.overrides'"));
        Assert.That(() => Config(("max.connections", "-1")), Throws.InstanceOf<ConfigException>().With.Message.Contains("Value must be at least 0"));
        Assert.That(() => Config(("listener.name.plaintext.max.connection.creation.rate", "x")), Throws.InstanceOf<ConfigException>());
        Assert.That(Config(("listener.name.plaintext.max.connections", "7"), ("max.connections", "9")).ListenerInt("PLAINTEXT", "max.connections"), Is.EqualTo(7));
        Assert.That(Config(("max.connections", "9")).ListenerInt("OTHER", "max.connections"), Is.EqualTo(9), "the broker-wide value when not overridden");

        foreach (var key in (string[])["max.connections", "max.connections.per.ip", "max.connections.per.ip.overrides", "max.connection.creation.rate"])
            Assert.That(DynamicBrokerConfigs.UpdateMode(key), Is.EqualTo(ConfigUpdateMode.ClusterWide), key);
        Assert.That(DynamicBrokerConfigs.Validate(new Dictionary<string, string> { ["listener.name.plaintext.max.connections"] = "5" }, perBroker: false), Is.Null,
            "Kafka's ClusterLevelListenerConfigs may be cluster defaults");
        Assert.That(DynamicBrokerConfigs.Validate(new Dictionary<string, string> { ["max.connection.creation.rate"] = "-3" }, perBroker: true),
            Does.Contain("Value must be at least 0"));
        Assert.That(DynamicBrokerConfigs.Validate(new Dictionary<string, string> { ["listener.name.plaintext.max.connections"] = "0" }, perBroker: true),
            Is.EqualTo("Invalid max.connections 0"));
        Assert.That(DynamicBrokerConfigs.Validate(new Dictionary<string, string> { ["max.connection.creation.rate"] = "0" }, perBroker: true),
            Is.EqualTo("Invalid max.connection.creation.rate 0"));
        Assert.That(Config(("max.connections", "0")).MaxConnections, Is.Zero, "statically a 0 is accepted, as in Kafka");
    }
}
