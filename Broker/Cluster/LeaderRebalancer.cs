namespace Kayak.Broker.Cluster;

/// <summary>
/// Kafka's automatic preferred leader election (auto.leader.rebalance.enable, default true): every
/// leader.imbalance.check.interval.seconds (300) on the cluster's TimeProvider the controller counts, per preferred
/// replica (the first assigned replica), the partitions it should lead but does not; when that share of its partitions
/// is above leader.imbalance.per.broker.percentage (10) it runs a preferred election for each of them (one that is
/// down or out of the ISR is left alone, as ElectLeaders' PREFERRED_LEADER_NOT_AVAILABLE). One per cluster: the
/// controller's, not one per broker.
/// </summary>
internal sealed class LeaderRebalancer : IDisposable
{
    private readonly ClusterController _controller;
    private readonly int _percentage;
    private readonly ITimer _timer;

    public LeaderRebalancer(ClusterController controller, TimeProvider time, long intervalSeconds, int percentage)
    {
        _controller = controller;
        _percentage = percentage;
        var interval = TimeSpan.FromSeconds(intervalSeconds);
        _timer = time.CreateTimer(static s => ((LeaderRebalancer)s!).Check(), this, interval, interval);
    }

    /// <summary>One check: the number of preferred elections it ran.</summary>
    public int Check()
    {
        var md = _controller.Metadata;
        var total = new Dictionary<int, int>();
        var imbalanced = new Dictionary<int, List<(string Topic, int Partition)>>();
        foreach (var t in md.Topics.Values)
            for (int i = 0; i < t.Partitions.Length; i++)
            {
                var p = t.Partitions[i];
                if (p.Replicas.Length == 0) continue;
                int preferred = p.Replicas[0];
                total[preferred] = total.GetValueOrDefault(preferred) + 1;
                if (p.Leader == preferred) continue;
                if (!imbalanced.TryGetValue(preferred, out var list)) imbalanced[preferred] = list = new();
                list.Add((t.Name, i));
            }
        int elected = 0;
        foreach (var (broker, partitions) in imbalanced)
        {
            // Kafka's checkAndTriggerAutoLeaderRebalance: imbalance ratio = not-led / assigned as preferred.
            if (partitions.Count * 100.0 / total[broker] <= _percentage) continue;
            foreach (var (topic, partition) in partitions)
                if (_controller.Elect(topic, partition, unclean: false).Code == Kayak.Protocol.ErrorCode.None) elected++;
        }
        return elected;
    }

    public void Dispose() => _timer.Dispose();
}
