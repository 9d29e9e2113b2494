using System.Diagnostics;
using System.Globalization;
using Kayak.Broker;
using Kayak.Broker.Cluster;

namespace Kayak.PerfTest;

/// <summary>
/// Issue 14's start benchmark (--cluster-start): wall time of an in-process 3-broker <see cref="KafkaCluster"/>
/// (StartAsync, then a Metadata answer from every member) against one <see cref="KafkaBroker"/> (StartAsync + first
/// Metadata), on empty log dirs and on log dirs that already hold T topics × P partitions (RF=3 in the cluster, so each
/// member hosts T×P replicas, the same count as the single broker with RF=1). Rounds alternate one broker and cluster in
/// this process after one discarded warm-up of each (the JIT cost of the first start is --startup-trace's subject);
/// medians per case. Issue 14's target: cluster &lt; 3 × one broker.
/// </summary>
public static class ClusterStart
{
    public static int Run(string[] args)
    {
        int rounds = 5, topics = 50, partitions = 3, brokers = 3;
        for (int i = 1; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--rounds": rounds = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--topics": topics = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--partitions": partitions = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--brokers": brokers = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                default:
                    Console.Error.WriteLine("usage: --cluster-start [--rounds 5] [--topics 50] [--partitions 3] [--brokers 3]");
                    return 2;
            }
        }
        string root = Directory.CreateTempSubdirectory("kayak-cluster-start-").FullName;
        try
        {
            string singleFull = Path.Combine(root, "single"), clusterFull = Path.Combine(root, "cluster");
            Console.Error.WriteLine($"preparing {topics} topics x {partitions} partitions on disk ...");
            PrepareSingle(singleFull, topics, partitions);
            PrepareCluster(clusterFull, brokers, topics, partitions);

            var cases = new (string Name, Func<double> Measure)[]
            {
                ("one broker, empty", () => TimeSingle(Fresh(root))),
                ($"{brokers} brokers, empty", () => TimeCluster(Fresh(root), brokers)),
                ($"one broker, {topics}x{partitions} RF=1", () => TimeSingle(singleFull)),
                ($"{brokers} brokers, {topics}x{partitions} RF={Math.Min(3, brokers)}", () => TimeCluster(clusterFull, brokers)),
            };
            foreach (var c in cases) c.Measure(); // warm-up: JIT and first-touch costs
            var samples = cases.Select(_ => new List<double>()).ToArray();
            for (int r = 0; r < rounds; r++)
                for (int c = 0; c < cases.Length; c++) samples[c].Add(cases[c].Measure());

            Console.WriteLine($"| case | median start (ms) | rounds (ms) |  ({rounds} rounds after a warm-up, in-process, StartAsync + Metadata from every broker)");
            Console.WriteLine("|---|---:|---|");
            var medians = new double[cases.Length];
            for (int c = 0; c < cases.Length; c++)
            {
                medians[c] = PerfRun.Median(samples[c]);
                Console.WriteLine($"| {cases[c].Name} | {medians[c]:F1} | {string.Join(", ", samples[c].Select(s => s.ToString("F1", CultureInfo.InvariantCulture)))} |");
            }
            Console.WriteLine($"ratio {brokers} brokers / one broker: empty {medians[1] / medians[0]:F2}x, with topics {medians[3] / medians[2]:F2}x (target < {brokers}x)");
            return 0;
        }
        finally
        {
            try { Directory.Delete(root, recursive: true); } catch (IOException) { }
        }
    }

    private static string Fresh(string root) => Directory.CreateDirectory(Path.Combine(root, "empty-" + Guid.NewGuid().ToString("N"))).FullName;

    private static double TimeSingle(string dir)
    {
        long t0 = Stopwatch.GetTimestamp();
        var broker = new KafkaBroker(new KafkaBrokerOptions { Port = 0, DataDir = dir });
        broker.StartAsync().GetAwaiter().GetResult();
        Probe(broker.BootstrapServers);
        double ms = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        broker.DisposeAsync().AsTask().GetAwaiter().GetResult();
        return ms;
    }

    private static double TimeCluster(string dir, int brokers)
    {
        long t0 = Stopwatch.GetTimestamp();
        var cluster = new KafkaCluster(new KafkaClusterOptions { Brokers = brokers, DataDir = dir, Port = 0, PlacementSeed = 1 });
        cluster.StartAsync().GetAwaiter().GetResult();
        foreach (var b in cluster.Brokers) Probe(b.BootstrapServers);
        double ms = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        cluster.DisposeAsync().AsTask().GetAwaiter().GetResult();
        return ms;
    }

    private static void Probe(string bootstrap)
    {
        int colon = bootstrap.LastIndexOf(':');
        MetadataProbe.WaitForMetadata(bootstrap[..colon], int.Parse(bootstrap[(colon + 1)..], CultureInfo.InvariantCulture), TimeSpan.FromSeconds(60));
    }

    private static void PrepareSingle(string dir, int topics, int partitions)
    {
        Directory.CreateDirectory(dir);
        var broker = new KafkaBroker(new KafkaBrokerOptions { Port = 0, DataDir = dir });
        broker.StartAsync().GetAwaiter().GetResult();
        for (int t = 0; t < topics; t++) broker.CreateTopicAsync($"bench-{t}", partitions).GetAwaiter().GetResult();
        broker.DisposeAsync().AsTask().GetAwaiter().GetResult();
        WaitForPartitionDirs([dir], topics, partitions);
    }

    private static void PrepareCluster(string dir, int brokers, int topics, int partitions)
    {
        Directory.CreateDirectory(dir);
        var cluster = new KafkaCluster(new KafkaClusterOptions { Brokers = brokers, DataDir = dir, Port = 0, PlacementSeed = 1 });
        cluster.StartAsync().GetAwaiter().GetResult();
        short rf = (short)Math.Min(3, brokers);
        for (int t = 0; t < topics; t++) cluster.CreateTopicAsync($"bench-{t}", partitions, rf).GetAwaiter().GetResult();
        // Followers create their replicas asynchronously: wait until every member holds every partition on disk.
        string[] dirs = Enumerable.Range(1, brokers).Select(id => Path.Combine(dir, $"broker-{id}")).ToArray();
        if (rf == brokers) WaitForPartitionDirs(dirs, topics, partitions);
        cluster.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }

    private static void WaitForPartitionDirs(string[] dirs, int topics, int partitions)
    {
        var deadline = Stopwatch.StartNew();
        foreach (var d in dirs)
            for (int t = 0; t < topics; t++)
                for (int p = 0; p < partitions; p++)
                    while (!Directory.Exists(Path.Combine(d, $"bench-{t}-{p}")))
                    {
                        if (deadline.Elapsed > TimeSpan.FromSeconds(60)) throw new TimeoutException($"{d}/bench-{t}-{p} not created");
                        Thread.Sleep(20);
                    }
    }
}
