using Kayak.Broker.Cluster;
using Kayak.Broker.Config;
using Kayak.Protocol;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>auto.leader.rebalance.enable: the controller's preferred elections every leader.imbalance.check.interval.seconds.</summary>
public class LeaderRebalancerTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("kayak-rebalance-tests-").FullName;

    [TearDown]
    public void TearDown()
    {
        try { Directory.Delete(_dir, recursive: true); }
        catch (IOException) { }
    }

    /// <summary>A clock moved by the test: timers fire when it passes their due time.</summary>
    private sealed class ManualTime : TimeProvider
    {
        private readonly List<ManualTimer> _timers = new();
        private DateTimeOffset _now = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

        public override DateTimeOffset GetUtcNow() => _now;

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            var t = new ManualTimer(callback, state, _now + dueTime, period);
            _timers.Add(t);
            return t;
        }

        public void Advance(TimeSpan by)
        {
            _now += by;
            foreach (var t in _timers)
                while (!t.Disposed && t.Due <= _now)
                {
                    t.Due = t.Period > TimeSpan.Zero ? t.Due + t.Period : DateTimeOffset.MaxValue;
                    t.Callback(t.State);
                }
        }

        private sealed class ManualTimer(TimerCallback callback, object? state, DateTimeOffset due, TimeSpan period) : ITimer
        {
            public readonly TimerCallback Callback = callback;
            public readonly object? State = state;
            public DateTimeOffset Due = due;
            public TimeSpan Period = period;
            public bool Disposed;
            public bool Change(TimeSpan dueTime, TimeSpan period) => true;
            public void Dispose() => Disposed = true;
            public ValueTask DisposeAsync() { Disposed = true; return ValueTask.CompletedTask; }
        }
    }

    [Test]
    public void ImbalancedPreferredLeadersAreElectedBackAtTheCheckIntervalOnly()
    {
        // Broker 1 is the preferred replica of p0 and p1 but leads neither (50% > 10%); broker 2 of p2, which it leads.
        new ClusterMetadata("cluster", new Dictionary<string, TopicAssignment>
        {
            ["t"] = new("t", Uuid.NewRandom(),
            [
                new PartitionAssignment([1, 2], 2, 3, [1, 2]),
                new PartitionAssignment([1, 2], 2, 0, [2]), // preferred replica out of the ISR: not elected
                new PartitionAssignment([2, 1], 2, 0, [1, 2]),
            ]),
        }).Save(Path.Combine(_dir, ClusterMetadata.FileName));
        var controller = new ClusterController(_dir);
        for (int n = 1; n <= 2; n++) controller.SetLive(n, [new ListenerEndpoint("PLAINTEXT", "127.0.0.1", 9091 + n)]);
        var time = new ManualTime();
        using var rebalancer = new LeaderRebalancer(controller, time, intervalSeconds: 300, percentage: 10);

        time.Advance(TimeSpan.FromSeconds(299));
        Assert.That(controller.Topic("t")!.Partitions[0].Leader, Is.EqualTo(2), "not before leader.imbalance.check.interval.seconds");
        time.Advance(TimeSpan.FromSeconds(1));
        var parts = controller.Topic("t")!.Partitions;
        Assert.That((parts[0].Leader, parts[0].LeaderEpoch), Is.EqualTo((1, 4)));
        Assert.That(parts[1].Leader, Is.EqualTo(2));
        Assert.That(parts[2].Leader, Is.EqualTo(2));
    }

    [Test]
    public void ImbalanceAtOrBelowThePercentageIsLeftAlone()
    {
        // Broker 1 prefers 10 partitions and leads 9: 10% is not above leader.imbalance.per.broker.percentage=10.
        var parts = new PartitionAssignment[10];
        for (int i = 0; i < 10; i++) parts[i] = new PartitionAssignment([1, 2], i == 0 ? 2 : 1, 0, [1, 2]);
        new ClusterMetadata("cluster", new Dictionary<string, TopicAssignment> { ["t"] = new("t", Uuid.NewRandom(), parts) })
            .Save(Path.Combine(_dir, ClusterMetadata.FileName));
        var controller = new ClusterController(_dir);
        for (int n = 1; n <= 2; n++) controller.SetLive(n, [new ListenerEndpoint("PLAINTEXT", "127.0.0.1", 9091 + n)]);
        using var rebalancer = new LeaderRebalancer(controller, new ManualTime(), 300, 10);
        Assert.That(rebalancer.Check(), Is.EqualTo(0));
        Assert.That(controller.Topic("t")!.Partitions[0].Leader, Is.EqualTo(2));
        using var strict = new LeaderRebalancer(controller, new ManualTime(), 300, 5);
        Assert.That(strict.Check(), Is.EqualTo(1));
        Assert.That(controller.Topic("t")!.Partitions[0].Leader, Is.EqualTo(1));
    }
}
