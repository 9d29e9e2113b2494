using System.Globalization;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Kayak.IntegrationTests.Infrastructure;
using NUnit.Framework;

namespace Kayak.IntegrationTests.Campaign;

public sealed partial class FaultCampaign
{
    /// <summary>
    /// Scenario 4: kill -9 while an admin client creates topics (1-4 partitions, a retention.ms of their own),
    /// deletes and alters them. After the restart: an acknowledged create exists with its partitions and config, an
    /// acknowledged delete stays gone, an acknowledged alter holds, an operation in flight at the kill went either way
    /// (but whole), and no topic appears that was never created. The observed state then seeds the next cycle.
    /// </summary>
    [Test]
    [CancelAfter(1_200_000)]
    public async Task Kill9AroundTopicCreateDeleteAlter()
    {
        RequireKayak("kill -9");
        var row = new ScenarioRow("4 kill -9, topic admin");
        CampaignReport.Add(row);
        int cycles = CampaignSize.Pick(3, 25);
        var broker = await StartBrokerAsync(BrokerMode.Process, CampaignBroker.Settings());
        string prefix = "ct" + Guid.NewGuid().ToString("N")[..6] + "-";
        var expected = new Dictionary<string, Verifiers.ExpectedTopic>(StringComparer.Ordinal);
        long acknowledged = 0;
        int serial = 0;

        for (int cycle = 1; cycle <= cycles && row.Problems.Count == 0; cycle++)
        {
            using var stop = new CancellationTokenSource();
            var running = Task.Run(async () =>
            {
                using var admin = ConfluentClients.Admin(broker.BootstrapServers);
                var options = (Create: new CreateTopicsOptions { RequestTimeout = TimeSpan.FromSeconds(15) }, Delete: new DeleteTopicsOptions { RequestTimeout = TimeSpan.FromSeconds(15) });
                while (!stop.IsCancellationRequested)
                {
                    int op = Between(0, 10);
                    var existing = expected.Where(e => e.Value.Exists == true).Select(e => e.Key).ToList();
                    try
                    {
                        if (op < 5 || existing.Count < 3)
                        {
                            string name = prefix + (serial++).ToString(CultureInfo.InvariantCulture);
                            int partitions = Between(1, 5);
                            string retention = (3_600_000L + Between(0, 1_000_000)).ToString(CultureInfo.InvariantCulture);
                            expected[name] = new(null, partitions, retention); // in flight: either absent or whole
                            await admin.CreateTopicsAsync([new TopicSpecification { Name = name, NumPartitions = partitions, ReplicationFactor = 1, Configs = new() { ["retention.ms"] = retention } }], options.Create);
                            expected[name] = new(true, partitions, retention);
                        }
                        else if (op < 8)
                        {
                            string name = existing[Between(0, existing.Count)];
                            expected[name] = expected[name] with { Exists = null };
                            await admin.DeleteTopicsAsync([name], options.Delete);
                            expected[name] = expected[name] with { Exists = false };
                        }
                        else
                        {
                            string name = existing[Between(0, existing.Count)];
                            var before = expected[name];
                            string retention = (7_200_000L + Between(0, 1_000_000)).ToString(CultureInfo.InvariantCulture);
                            expected[name] = before with { RetentionMs = retention, RetentionMsAlternative = before.RetentionMs };
                            await admin.AlterConfigsAsync(new Dictionary<ConfigResource, List<ConfigEntry>>
                            {
                                [new ConfigResource { Type = ResourceType.Topic, Name = name }] = [new ConfigEntry { Name = "retention.ms", Value = retention }],
                            });
                            expected[name] = before with { RetentionMs = retention };
                        }
                        Interlocked.Increment(ref acknowledged);
                    }
                    catch (KafkaException)
                    {
                        // In flight at the kill: the entry stays "either way" until the check after the restart.
                        return;
                    }
                }
            }, CancellationToken.None);

            await Task.Delay(Between(500, 2000), Token);
            await CampaignBroker.KillAsync(broker, row);
            await stop.CancelAsync();
            if (await Task.WhenAny(running, Task.Delay(TimeSpan.FromSeconds(60), Token)) != running)
            {
                row.Hangs++;
                row.Problem($"cycle {cycle}: the admin client did not return within 60 s of the kill");
                break;
            }
            await running;
            await Task.Delay(Between(0, 300), Token);
            await CampaignBroker.RestartAsync(broker, row, Token);
            row.Cycles = cycle;

            var actual = await DescribeTopicsAsync(broker.BootstrapServers, prefix);
            var problems = Verifiers.CheckTopics(expected, actual, prefix);
            // A kill inside CreateTopics used to leave the partitions made so far as the whole topic; the topic files
            // now record the partition count and the load completes the rest, so a partial create is a failure.
            foreach (var p in problems) row.Problem($"cycle {cycle}: {p}");
            row.Lost += problems.Count(p => p.Contains("lost", StringComparison.Ordinal));
            row.Duplicates += problems.Count(p => p.Contains("resurrected", StringComparison.Ordinal) || p.Contains("never created", StringComparison.Ordinal));
            // What the kill decided is now known: the next cycle expects exactly that.
            foreach (var name in expected.Keys.ToList())
                expected[name] = actual.TryGetValue(name, out var a) ? new(true, a.Partitions, a.RetentionMs) : expected[name] with { Exists = false };
            TestContext.Out.WriteLine($"cycle {cycle}: {acknowledged} operations acknowledged, {actual.Count} topics exist, {expected.Count(e => e.Value.Exists == false)} deleted");
        }
        row.Acknowledged = acknowledged;
        row.Note("acked = create/delete/alter calls acknowledged; lost = acknowledged topics missing; dup = resurrected or phantom topics");
        Finish(row);
    }

    /// <summary>The campaign's topics as metadata (partitions with leaders) and DescribeConfigs (retention.ms) show them.</summary>
    private static async Task<Dictionary<string, (int Partitions, string? RetentionMs)>> DescribeTopicsAsync(string bootstrap, string prefix)
    {
        using var admin = ConfluentClients.Admin(bootstrap);
        var metadata = admin.GetMetadata(TimeSpan.FromSeconds(15));
        var result = new Dictionary<string, (int, string?)>(StringComparer.Ordinal);
        foreach (var t in metadata.Topics.Where(t => t.Topic.StartsWith(prefix, StringComparison.Ordinal) && t.Error.Code == ErrorCode.NoError))
        {
            var described = await admin.DescribeConfigsAsync([new ConfigResource { Type = ResourceType.Topic, Name = t.Topic }]);
            result[t.Topic] = (t.Partitions.Count(p => p.Leader >= 0), described.Single().Entries.TryGetValue("retention.ms", out var e) ? e.Value : null);
        }
        return result;
    }
}
