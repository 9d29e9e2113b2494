using System.Diagnostics;
using System.Globalization;
using Confluent.Kafka;
using Kayak.Broker;

namespace Kayak.PerfTest;

/// <summary>
/// Issue 13's group benchmark (--group-stabilise): how long 1, 10 and 50 Confluent.Kafka 2.16 consumers take from
/// their creation until the group is stable — every partition of a 60-partition topic owned by exactly one member
/// and every member owning at least one — with the classic protocol (eager range, the librdkafka default) and with
/// KIP-848's consumer protocol (server-side uniform assignor). One in-process Kayak broker with Kafka's defaults
/// except group.initial.rebalance.delay.ms, which is given (default 0 here: Kafka's 3000 ms would dominate the
/// classic figure); the consumer protocol runs with group.consumer.heartbeat.interval.ms (Kafka's 5000 ms default,
/// which bounds how fast members learn about a new target).
/// </summary>
public static class GroupStabilise
{
    private const int Partitions = 60;

    public static int Run(string[] args)
    {
        int initialDelay = 0, heartbeat = 5000, rounds = 1;
        int[] sizes = [1, 10, 50];
        for (int i = 1; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--initial-delay-ms": initialDelay = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--heartbeat-ms": heartbeat = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--rounds": rounds = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--sizes": sizes = Next().Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray(); break;
                default:
                    Console.Error.WriteLine("usage: --group-stabilise [--sizes 1,10,50] [--initial-delay-ms 0] [--heartbeat-ms 5000] [--rounds 1]");
                    return 2;
            }
        }
        string dir = Path.Combine(Path.GetTempPath(), "kayak-groupbench-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var options = new KafkaBrokerOptions { Port = 0, DataDir = dir };
            options.Properties["group.initial.rebalance.delay.ms"] = initialDelay.ToString(CultureInfo.InvariantCulture);
            options.Properties["group.consumer.min.heartbeat.interval.ms"] = Math.Min(heartbeat, 5000).ToString(CultureInfo.InvariantCulture);
            options.Properties["group.consumer.heartbeat.interval.ms"] = heartbeat.ToString(CultureInfo.InvariantCulture);
            var broker = new KafkaBroker(options);
            broker.StartAsync().GetAwaiter().GetResult();
            broker.CreateTopicAsync("stabilise", Partitions).GetAwaiter().GetResult();
            Console.WriteLine($"| members | protocol | stable after (s) |  (topic of {Partitions} partitions, initial delay {initialDelay} ms, consumer heartbeat {heartbeat} ms)");
            Console.WriteLine("|---:|---|---:|");
            foreach (int n in sizes)
                foreach (var protocol in new[] { GroupProtocol.Classic, GroupProtocol.Consumer })
                {
                    var samples = new List<double>();
                    for (int r = 0; r < rounds; r++) samples.Add(Measure(broker.BootstrapServers, n, protocol));
                    samples.Sort();
                    string figure = samples.Any(double.IsNaN) ? "not stable in 120 s" : samples[samples.Count / 2].ToString("F2", CultureInfo.InvariantCulture);
                    Console.WriteLine($"| {n} | {protocol.ToString().ToLowerInvariant()} | {figure} |");
                }
            broker.DisposeAsync().AsTask().GetAwaiter().GetResult();
            return 0;
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }

    private sealed class Member
    {
        public readonly HashSet<int> Owned = new();
        public Thread? Thread;
    }

    /// <summary>Seconds from creating the first consumer to a stable group; NaN when it is not stable within 120 s.</summary>
    private static double Measure(string bootstrap, int count, GroupProtocol protocol)
    {
        string group = $"bench-{protocol}-{count}-{Guid.NewGuid():N}";
        var members = new Member[count];
        using var stop = new CancellationTokenSource();
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < count; i++)
        {
            var m = members[i] = new Member();
            var config = new ConsumerConfig
            {
                BootstrapServers = bootstrap, GroupId = group, GroupProtocol = protocol, EnableAutoCommit = false,
                AutoOffsetReset = AutoOffsetReset.Earliest,
            };
            var consumer = new ConsumerBuilder<Ignore, Ignore>(config)
                .SetLogHandler((_, _) => { })
                .SetPartitionsAssignedHandler((_, assigned) =>
                {
                    lock (m)
                    {
                        // The consumer protocol hands out increments; the eager classic strategies whole assignments.
                        if (protocol == GroupProtocol.Classic) m.Owned.Clear();
                        foreach (var tp in assigned) m.Owned.Add(tp.Partition.Value);
                    }
                })
                .SetPartitionsRevokedHandler((_, revoked) => { lock (m) foreach (var tp in revoked) m.Owned.Remove(tp.Partition.Value); })
                .SetPartitionsLostHandler((_, _) => { lock (m) m.Owned.Clear(); })
                .Build();
            consumer.Subscribe("stabilise");
            m.Thread = new Thread(() =>
            {
                while (!stop.IsCancellationRequested) consumer.Consume(TimeSpan.FromMilliseconds(50));
                consumer.Close();
                consumer.Dispose();
            }) { IsBackground = true };
            m.Thread.Start();
        }
        double result = double.NaN;
        while (clock.Elapsed < TimeSpan.FromSeconds(120))
        {
            if (Stable(members, count)) { result = clock.Elapsed.TotalSeconds; break; }
            Thread.Sleep(10);
        }
        stop.Cancel();
        foreach (var m in members) m.Thread!.Join(TimeSpan.FromSeconds(30));
        return result;
    }

    private static bool Stable(Member[] members, int count)
    {
        var seen = new HashSet<int>();
        foreach (var m in members)
            lock (m)
            {
                if (m.Owned.Count == 0 && count <= Partitions) return false;
                foreach (int p in m.Owned)
                    if (!seen.Add(p)) return false;
            }
        return seen.Count == Partitions;
    }
}
