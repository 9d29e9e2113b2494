using System.Diagnostics;
using Confluent.Kafka;
using Confluent.Kafka.Admin;

namespace Kayak.PerfTest;

/// <summary>
/// The issue's 10,000-partition target (Kayak only; --many-partitions): create T topics × P partitions, produce one
/// record to every partition, fetch them all back, and report the broker's open files and memory mappings against
/// its limits (/proc/PID/limits "Max open files", vm.max_map_count). Only active segments should stay mapped.
/// </summary>
internal static class ManyPartitions
{
    public static int Run(RunSettings s, int topics, int partitionsPerTopic)
    {
        using var broker = BrokerProcess.Start(BrokerKind.Kayak, s);
        try
        {
            return Run(broker, topics, partitionsPerTopic);
        }
        catch (Exception e)
        {
            Console.WriteLine($"many-partitions: FAILED — {e.GetType().Name}: {e.Message}; broker {(broker.HasExited ? "exited" : "still running")}; its last output:");
            foreach (var l in broker.Tail(30)) Console.WriteLine("  " + l);
            return 1;
        }
    }

    private static int Run(BrokerProcess broker, int topics, int partitionsPerTopic)
    {
        int pid = broker.Pid;
        Log($"Kayak pid {pid} at {broker.Bootstrap}; limits: {MaxOpenFiles(pid)} open files, vm.max_map_count {File.ReadAllText("/proc/sys/vm/max_map_count").Trim()}");
        Log($"idle: {Fds(pid)} fds, {Maps(pid)} maps, RSS {ProcStats.RssMb(pid):F1} MB");
        string prefix = "many-" + Guid.NewGuid().ToString("N")[..6] + "-";
        var names = new List<string>();
        for (int t = 0; t < topics; t++) names.Add($"{prefix}{t}");

        var sw = Stopwatch.StartNew();
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.Bootstrap }).SetLogHandler(static (_, _) => { }).Build())
        {
            for (int i = 0; i < names.Count; i++)
            {
                admin.CreateTopicsAsync([new TopicSpecification { Name = names[i], NumPartitions = partitionsPerTopic, ReplicationFactor = 1 }]).GetAwaiter().GetResult();
                if ((i + 1) % 10 == 0 && i + 1 < names.Count)
                    Log($"  {(i + 1) * partitionsPerTopic:N0} partitions: {Fds(pid)} fds, {Maps(pid)} maps, RSS {ProcStats.RssMb(pid):F1} MB, VmSize {VmSizeGb(pid):F0} GB");
            }
        }
        int total = topics * partitionsPerTopic;
        Log($"created {topics} × {partitionsPerTopic} = {total:N0} partitions in {sw.Elapsed.TotalSeconds:F1} s: {Fds(pid)} fds, {Maps(pid)} maps, RSS {ProcStats.RssMb(pid):F1} MB");

        sw.Restart();
        long errors = 0;
        using (var producer = new ProducerBuilder<Null, byte[]>(new ProducerConfig
               {
                   BootstrapServers = broker.Bootstrap, LingerMs = 50, EnableIdempotence = false, Acks = Acks.Leader,
               }).SetLogHandler(static (_, _) => { }).Build())
        {
            var payload = new byte[100];
            var msg = new Message<Null, byte[]> { Value = payload };
            foreach (var name in names)
                for (int p = 0; p < partitionsPerTopic; p++)
                    producer.Produce(new TopicPartition(name, p), msg, dr => { if (dr.Error.IsError) Interlocked.Increment(ref errors); });
            while (producer.Flush(TimeSpan.FromSeconds(120)) > 0) { }
        }
        Log($"produced 1 record to each partition in {sw.Elapsed.TotalSeconds:F1} s ({errors} errors): {Fds(pid)} fds, {Maps(pid)} maps, RSS {ProcStats.RssMb(pid):F1} MB");

        sw.Restart();
        long got = 0;
        using (var consumer = new ConsumerBuilder<Ignore, Ignore>(new ConsumerConfig
               {
                   BootstrapServers = broker.Bootstrap, GroupId = "many-" + Guid.NewGuid().ToString("N")[..6], EnableAutoCommit = false,
                   AutoOffsetReset = AutoOffsetReset.Earliest,
               }).SetLogHandler(static (_, _) => { }).Build())
        {
            var assignment = new List<TopicPartitionOffset>(total);
            foreach (var name in names)
                for (int p = 0; p < partitionsPerTopic; p++)
                    assignment.Add(new TopicPartitionOffset(name, p, Offset.Beginning));
            consumer.Assign(assignment);
            var last = Stopwatch.StartNew();
            while (got < total && last.Elapsed < TimeSpan.FromSeconds(60))
            {
                if (consumer.Consume(100) is null) continue;
                got++;
                last.Restart();
            }
            consumer.Close();
        }
        Log($"fetched {got:N0} of {total:N0} records in {sw.Elapsed.TotalSeconds:F1} s: {Fds(pid)} fds, {Maps(pid)} maps, RSS {ProcStats.RssMb(pid):F1} MB");
        bool ok = errors == 0 && got == total;
        Console.WriteLine($"many-partitions: {(ok ? "OK" : "FAILED")} — {total:N0} partitions, produce errors {errors}, fetched {got:N0}; broker fds {Fds(pid)} (limit {MaxOpenFiles(pid)}), maps {Maps(pid)} (limit {File.ReadAllText("/proc/sys/vm/max_map_count").Trim()})");
        return ok ? 0 : 1;
    }

    private static double VmSizeGb(int pid)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            if (line.StartsWith("VmSize:", StringComparison.Ordinal))
                return long.Parse(line.AsSpan(7).Trim().ToString().Split(' ')[0]) / 1048576.0;
        return double.NaN;
    }

    private static int Fds(int pid) => Directory.GetFiles($"/proc/{pid}/fd").Length;

    private static int Maps(int pid) => File.ReadLines($"/proc/{pid}/maps").Count();

    private static string MaxOpenFiles(int pid)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/limits"))
            if (line.StartsWith("Max open files", StringComparison.Ordinal))
                return string.Join('/', line["Max open files".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries).Take(2));
        return "?";
    }

    private static void Log(string line) => Console.Error.WriteLine($"[{DateTime.Now:HH:mm:ss}] {line}");
}
