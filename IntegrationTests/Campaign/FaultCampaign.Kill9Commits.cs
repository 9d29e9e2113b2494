using Confluent.Kafka;
using Kayak.IntegrationTests.Infrastructure;
using NUnit.Framework;

namespace Kayak.IntegrationTests.Campaign;

public sealed partial class FaultCampaign
{
    /// <summary>
    /// Scenario 2: kill -9 while a consumer commits group offsets back to back. After the restart each partition's
    /// committed offset is at least the last commit acknowledged (before or, for a retried one, after the kill), at
    /// most the last one attempted, and never past the log end. The committer stops before the check so its result
    /// is exact.
    /// </summary>
    [Test]
    [CancelAfter(1_200_000)]
    public async Task Kill9DuringGroupOffsetCommits()
    {
        RequireKayak("kill -9");
        var row = new ScenarioRow("2 kill -9, group commits");
        CampaignReport.Add(row);
        int cycles = CampaignSize.Pick(3, 30);
        const int partitions = 3;
        int perPartition = CampaignSize.Pick(20000, 100000);
        var broker = await StartBrokerAsync(BrokerMode.Process, CampaignBroker.Settings());
        string topic = TopicName("c2");
        await broker.CreateTopicAsync(topic, partitions, cancellationToken: Token);
        // Records to commit offsets into: Kafka accepts any committed offset, so the "≤ log end" check is only
        // meaningful if the committer stays inside the log.
        using (var producer = ConfluentClients.Producer(broker.BootstrapServers, c => { c.LingerMs = 20; c.MaxInFlight = 5; }))
        {
            for (int i = 0; i < perPartition * partitions; i++)
            {
                // librdkafka's queue holds 100k messages: drain it now and then.
                if (i % 50_000 == 49_999) producer.Flush(TimeSpan.FromSeconds(60));
                producer.Produce(new TopicPartition(topic, i % partitions), new Message<byte[], byte[]> { Key = [], Value = ConfluentClients.Utf8($"r{i}")! });
            }
            Assert.That(producer.Flush(TimeSpan.FromSeconds(60)), Is.EqualTo(0), "setup records produced");
        }
        string group = "campaign-commits-" + Guid.NewGuid().ToString("N");
        var lastAcked = new Dictionary<int, long>();
        var lastAttempted = new Dictionary<int, long>();
        long next = 0;
        long commitsAcked = 0;

        for (int cycle = 1; cycle <= cycles && row.Problems.Count == 0; cycle++)
        {
            using var stop = new CancellationTokenSource();
            var committing = Task.Run(() =>
            {
                using var consumer = ConfluentClients.Consumer(broker.BootstrapServers, c => c.GroupId = group);
                while (!stop.IsCancellationRequested && next < perPartition)
                {
                    long offset = ++next;
                    var offsets = Enumerable.Range(0, partitions).Select(p => new TopicPartitionOffset(topic, p, offset)).ToList();
                    lock (lastAttempted) foreach (var o in offsets) lastAttempted[o.Partition.Value] = offset;
                    try
                    {
                        consumer.Commit(offsets);
                    }
                    catch (KafkaException)
                    {
                        // The broker is gone (or just back): this commit's outcome is unknown; try the next.
                        Thread.Sleep(50);
                        continue;
                    }
                    lock (lastAcked) foreach (var o in offsets) lastAcked[o.Partition.Value] = offset;
                    Interlocked.Increment(ref commitsAcked);
                    // Paced so the offsets last through every cycle (unpaced it commits ~10k/s here); kills still
                    // land among hundreds of commits.
                    Thread.Sleep(1);
                }
                consumer.Close();
            }, CancellationToken.None);

            await Task.Delay(Between(300, 1500), Token);
            await CampaignBroker.KillAsync(broker, row);
            await Task.Delay(Between(0, 300), Token);
            await CampaignBroker.RestartAsync(broker, row, Token);
            await stop.CancelAsync();
            if (await Task.WhenAny(committing, Task.Delay(TimeSpan.FromSeconds(90), Token)) != committing)
            {
                row.Hangs++;
                row.Problem($"cycle {cycle}: the committer did not finish within 90 s of the restart");
                break;
            }
            await committing;
            row.Cycles = cycle;
            if (next >= perPartition) row.Problem($"cycle {cycle}: the committer reached the log end before the kill; raise the record count");

            var committed = ConfluentClients.Committed(broker.BootstrapServers, topic, group, partitions);
            var logEnd = new Dictionary<int, long>();
            using (var c = ConfluentClients.Consumer(broker.BootstrapServers))
                for (int p = 0; p < partitions; p++) logEnd[p] = c.QueryWatermarkOffsets(new TopicPartition(topic, p), TimeSpan.FromSeconds(10)).High.Value;
            Dictionary<int, long> acked, attempted;
            lock (lastAcked) acked = new(lastAcked);
            lock (lastAttempted) attempted = new(lastAttempted);
            if (acked.Count == 0) row.Note($"cycle {cycle}: no commit acknowledged before the kill");
            foreach (var p in Verifiers.CheckCommitted(acked, attempted, committed, logEnd))
            {
                row.Lost++;
                row.Problem($"cycle {cycle}: {p}");
            }
            TestContext.Out.WriteLine($"cycle {cycle}: last acknowledged {string.Join(",", acked.OrderBy(a => a.Key).Select(a => a.Value))}, committed {string.Join(",", committed.OrderBy(a => a.Key).Select(a => a.Value))}");
        }
        row.Acknowledged = commitsAcked;
        row.Note("acked = commits acknowledged (each covering 3 partitions); lost = partitions whose committed offset went back");
        Finish(row);
    }
}
