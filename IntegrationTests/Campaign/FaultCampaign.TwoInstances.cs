using Confluent.Kafka;
using Kayak.IntegrationTests.Infrastructure;
using NUnit.Framework;

namespace Kayak.IntegrationTests.Campaign;

public sealed partial class FaultCampaign
{
    /// <summary>
    /// Scenario 6: an operator starts a second broker on the running one's log dir, then one on its port. Each must
    /// exit 1 with Kafka's message (two writers on one log destroy it; a second listener on a port would take some of
    /// its connections), and the first broker keeps serving its acknowledged data.
    /// </summary>
    [Test]
    [CancelAfter(300_000)]
    public async Task SecondInstanceOnTheSameLogDirOrPortExits1()
    {
        RequireKayak("a second broker process");
        var row = new ScenarioRow("6 two instances");
        CampaignReport.Add(row);
        int cycles = CampaignSize.Pick(1, 5);
        var broker = await StartBrokerAsync(BrokerMode.Process, CampaignBroker.Settings());
        string topic = TopicName("c6");
        await broker.CreateTopicAsync(topic, 1, cancellationToken: Token);
        var acked = new Dictionary<(int, long), string>();
        int port = int.Parse(broker.BootstrapServers[(broker.BootstrapServers.LastIndexOf(':') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
        string otherDir = Path.Combine(Path.GetTempPath(), "kayak-itest", "campaign-second-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(otherDir);
        try
        {
            using var producer = ConfluentClients.Producer(broker.BootstrapServers);
            for (int cycle = 1; cycle <= cycles; cycle++)
            {
                for (int i = 0; i < 100; i++)
                {
                    string value = $"c{cycle}-{i}";
                    var d = await producer.ProduceAsync(new TopicPartition(topic, 0), new Message<byte[], byte[]> { Key = [], Value = ConfluentClients.Utf8(value)! }, Token);
                    acked[(0, d.Offset.Value)] = value;
                }
                var sameDir = await KayakProcess.RunAsync(broker.DataDir, 0, TimeSpan.FromSeconds(60), Token);
                Expect(row, sameDir, $"Failed to acquire lock on file .lock in {Path.GetFullPath(broker.DataDir)}", "same log dir");
                var samePort = await KayakProcess.RunAsync(otherDir, port, TimeSpan.FromSeconds(60), Token);
                Expect(row, samePort, "Address already in use", "same port");
                if (BrokerProbe.Pid(broker) is not { } pid || !BrokerProbe.IsAlive(pid))
                {
                    row.Crashes++;
                    row.Problem($"cycle {cycle}: the first broker died");
                    break;
                }
                var read = LogReader.ReadAll(broker.BootstrapServers, topic, 1, readCommitted: false, TimeSpan.FromSeconds(60), Token);
                LogReader.Account(read, row, $"cycle {cycle}");
                var f = Verifiers.CheckAcknowledged(acked, read.Records);
                row.Lost = Math.Max(row.Lost, f.Lost.Count);
                row.Duplicates = Math.Max(row.Duplicates, f.Duplicates.Count);
                foreach (var x in f.Lost.Concat(f.Duplicates).Concat(f.Gaps).Take(5)) row.Problem($"cycle {cycle}: {x}");
                row.Cycles = cycle;
            }
        }
        finally
        {
            try { Directory.Delete(otherDir, recursive: true); } catch (IOException) { }
        }
        row.Acknowledged = acked.Count;
        row.Note("each cycle: a second process on the log dir and one on the port, both exit 1 with Kafka's message; the first keeps its data");
        Finish(row);
    }

    private static void Expect(ScenarioRow row, ProcessResult result, string message, string what)
    {
        string output = result.Stdout + result.Stderr;
        if (result.TimedOut) { row.Hangs++; row.Problem($"{what}: the second broker started instead of refusing\n{result.Describe()}"); }
        else if (result.ExitCode != 1) row.Problem($"{what}: exit code {result.ExitCode}, expected 1\n{result.Describe()}");
        else if (!output.Contains(message, StringComparison.Ordinal)) row.Problem($"{what}: output lacks \"{message}\"\n{result.Describe()}");
        else TestContext.Out.WriteLine($"{what}: exit 1, {output.Split('\n').First(l => l.Contains(message, StringComparison.Ordinal)).Trim()}");
    }
}
