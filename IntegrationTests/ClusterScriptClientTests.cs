using System.Text.Json.Nodes;
using Kayak.Broker.Cluster;
using Kayak.IntegrationTests.Drivers;
using Kayak.IntegrationTests.Infrastructure;
using NUnit.Framework;

namespace Kayak.IntegrationTests;

/// <summary>
/// Issue 14 with clients other than librdkafka: kafka-python (Debian's python3-kafka) and kafkajs against a 3-broker
/// in-process cluster. Each client admin-creates a topic with replication factor 3 (its own metadata must show 3
/// replicas and 3 in-sync replicas per partition), produces numbered records to partition 0 with acks=all while the
/// test kills partition 0's leader halfway, then consumes the partition from the beginning while the test restarts the
/// first victim and kills the new leader. Every acknowledged record must come back, in order. The scripts
/// (python/cluster_failover.py, js/cluster_failover.js) pause at each step on files in a sync directory, so the kills
/// land at a known point of the run and not by timing.
/// </summary>
[TestFixture]
public sealed class ClusterScriptClientTests : ScratchDirectoryTest
{
    private const int Count = 200;
    private static readonly TimeSpan StepTimeout = TimeSpan.FromSeconds(60);

    public ClusterScriptClientTests() : base("cluster-scripts") { }

    [TestCase("kafka-python")]
    [TestCase("kafkajs")]
    [CancelAfter(240_000)]
    public async Task AdminCreatesRf3_ProducerAndConsumerSurviveLeaderKills_NothingAcknowledgedLost(string client)
    {
        JsonScriptDriver driver = client == "kafkajs" ? new KafkaJs() : new PythonKafka();
        await using var cluster = new KafkaCluster(new KafkaClusterOptions { Brokers = 3, DataDir = Path.Combine(Dir, "cluster"), Port = 0 });
        await cluster.StartAsync(Token);
        string topic = "failover-" + client.Replace("-", "");
        string sync = Path.Combine(Dir, "sync");
        Directory.CreateDirectory(sync);

        var run = driver.RunAsync("cluster_failover", new JsonObject
        {
            ["bootstrap"] = cluster.BootstrapServers, ["topic"] = topic, ["count"] = Count, ["sync_dir"] = sync,
        }, TimeSpan.FromSeconds(200), Token);

        // Halfway through the producer: kill partition 0's leader, and let it go on once another broker leads.
        await WaitForFileAsync(sync, "produced-half", run);
        int first = cluster.Partition(topic, 0).Leader;
        await cluster.CrashBrokerAsync(first);
        int second = await WaitForNewLeaderAsync(cluster, topic, first);
        TestContext.Out.WriteLine($"{client}: partition 0 leader {first} killed during produce, new leader {second}");
        File.WriteAllText(Path.Combine(sync, "go-produce"), "");

        // Halfway through the consumer: bring the first broker back, then kill the current leader.
        await WaitForFileAsync(sync, "consumed-half", run);
        await cluster.StartBrokerAsync(first, Token);
        await cluster.CrashBrokerAsync(second);
        int third = await WaitForNewLeaderAsync(cluster, topic, second);
        TestContext.Out.WriteLine($"{client}: partition 0 leader {second} killed during consume, new leader {third}");
        File.WriteAllText(Path.Combine(sync, "go-consume"), "");

        var result = await run;
        var partitions = result["partitions"]!.AsArray();
        Assert.That(partitions.Count, Is.EqualTo(3), $"{client} describes 3 partitions");
        foreach (var p in partitions)
        {
            Assert.That(p!["replicas"]!.AsArray().Select(n => n!.GetValue<int>()), Is.EqualTo(new[] { 1, 2, 3 }), $"{client}: replicas of {p}");
            Assert.That(p["isr"]!.AsArray().Select(n => n!.GetValue<int>()), Is.EqualTo(new[] { 1, 2, 3 }), $"{client}: in-sync replicas of {p}");
        }

        var acked = result["acked"]!.AsArray().Select(n => n!.GetValue<string>()).ToList();
        var consumed = result["consumed"]!.AsArray().Select(n => n!.GetValue<string>()).ToList();
        Assert.That(acked, Has.Count.EqualTo(Count), $"{client}: every send acknowledged");
        // A retry after a leader died mid-request may write a record twice (kafka-python has no idempotence), never
        // lose or reorder one: the first occurrences are exactly the acknowledged sequence.
        Assert.That(consumed.Distinct().ToList(), Is.EqualTo(acked), $"{client}: every acknowledged record read back, in order");
        if (client == "kafkajs")
            Assert.That(consumed, Is.EqualTo(acked), "kafkajs' idempotent producer writes nothing twice");
    }

    private static async Task WaitForFileAsync(string dir, string name, Task<JsonNode> run)
    {
        var deadline = DateTime.UtcNow + StepTimeout;
        while (!File.Exists(Path.Combine(dir, name)))
        {
            // The script failed or timed out before this step: its own error is the better message.
            if (run.IsCompleted) await run;
            if (run.IsCompleted) Assert.Fail($"the script ended before writing {name}");
            if (DateTime.UtcNow > deadline) Assert.Fail($"the script did not reach {name} within {StepTimeout}");
            await Task.Delay(20, Token);
        }
    }

    private static async Task<int> WaitForNewLeaderAsync(KafkaCluster cluster, string topic, int old)
    {
        var deadline = DateTime.UtcNow + StepTimeout;
        while (true)
        {
            int leader = cluster.Partition(topic, 0).Leader;
            if (leader > 0 && leader != old) return leader;
            if (DateTime.UtcNow > deadline) Assert.Fail($"partition 0 still led by {leader} after killing {old}");
            await Task.Delay(20, Token);
        }
    }
}
