using System.Collections.Concurrent;
using Confluent.Kafka;
using Kayak.IntegrationTests.Infrastructure;
using NUnit.Framework;

namespace Kayak.IntegrationTests.Campaign;

public sealed partial class FaultCampaign
{
    /// <summary>
    /// Scenario 1: kill -9 cycles under acks=all idempotent load. One producer runs through every kill and restart
    /// (librdkafka retries what was in flight; the broker must deduplicate from the producer state it recovers).
    /// After each restart: every acknowledged record is at its acknowledged offset, no value is in the log twice,
    /// offsets are contiguous, and no read fails its CRC (check.crcs=true). Default flush settings: kill -9 is
    /// a process crash, the page cache survives it, so nothing acknowledged may be lost without an fsync either.
    /// </summary>
    [Test]
    [CancelAfter(1_800_000)]
    public async Task Kill9CyclesUnderIdempotentLoad()
    {
        RequireKayak("kill -9");
        var row = new ScenarioRow("1 kill -9, idempotent acks=all");
        CampaignReport.Add(row);
        int cycles = CampaignSize.Pick(3, 30);
        int perCycle = CampaignSize.Pick(1500, 5000);
        const int partitions = 3;
        // Small segments so that kills also land around segment rolls.
        var broker = await StartBrokerAsync(BrokerMode.Process, CampaignBroker.Settings(("log.segment.bytes", "262144")));
        string topic = TopicName("c1");
        await broker.CreateTopicAsync(topic, partitions, cancellationToken: Token);

        var acked = new ConcurrentDictionary<(int, long), string>();
        long failed = 0, fatal = 0;
        using var inFlight = new SemaphoreSlim(500);
        using var stop = new CancellationTokenSource();
        var producer = ConfluentClients.Producer(broker.BootstrapServers, c =>
        {
            c.EnableIdempotence = true;
            c.Acks = Acks.All;
            c.MaxInFlight = 5;
            c.LingerMs = 5;
            // Outlives a restart, so records in flight at the kill are retried rather than expired.
            c.MessageTimeoutMs = 120_000;
        });
        // New records are produced from a cycle's start to its kill, then held back while the broker restarts and the
        // whole log is read back (what was in flight at the kill is still retried by the producer). Producing through
        // the verification too, a full-size run produced millions of records and the harness, which keeps every
        // acknowledgement and reads the log back each cycle, grew to 21 GB.
        long produced = 0, allowed = long.MaxValue;
        var producing = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                if (Volatile.Read(ref produced) >= Volatile.Read(ref allowed)) { Thread.Sleep(2); continue; }
                if (!inFlight.Wait(100)) continue;
                long seq = produced;
                Volatile.Write(ref produced, seq + 1);
                string value = $"v{seq:D9}-{new string('x', (int)(seq % 200))}";
                int partition = (int)(seq % partitions);
                try
                {
                    producer.Produce(new TopicPartition(topic, partition), new Message<byte[], byte[]> { Key = ConfluentClients.Utf8($"k{seq}")!, Value = ConfluentClients.Utf8(value)! }, d =>
                    {
                        if (d.Error.Code == ErrorCode.NoError && d.Status == PersistenceStatus.Persisted) acked[(d.Partition.Value, d.Offset.Value)] = value;
                        else
                        {
                            Interlocked.Increment(ref failed);
                            if (d.Error.IsFatal) Interlocked.Increment(ref fatal);
                        }
                        inFlight.Release();
                    });
                }
                catch (ProduceException<byte[], byte[]>)
                {
                    inFlight.Release();
                    Interlocked.Increment(ref failed);
                }
            }
        }, CancellationToken.None);

        try
        {
            for (int cycle = 1; cycle <= cycles; cycle++)
            {
                // Kill while records are in flight: after a fresh batch of acknowledgements and a random extra wait.
                Volatile.Write(ref allowed, long.MaxValue);
                int target = acked.Count + perCycle;
                var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(120);
                while (acked.Count < target && DateTime.UtcNow < deadline && !producing.IsFaulted) await Task.Delay(20, Token);
                if (acked.Count < target)
                {
                    row.Hangs++;
                    row.Problem($"cycle {cycle}: only {acked.Count} of {target} acknowledged within 120 s ({failed} failed, {fatal} fatal)");
                    break;
                }
                await Task.Delay(Between(0, 300), Token);
                await CampaignBroker.KillAsync(broker, row);
                Volatile.Write(ref allowed, 0);
                await Task.Delay(Between(0, 500), Token);
                await CampaignBroker.RestartAsync(broker, row, Token);
                row.Cycles = cycle;
                VerifyIdempotent(broker, topic, partitions, acked, row, $"cycle {cycle}");
            }
        }
        finally
        {
            await stop.CancelAsync();
            await producing;
            producer.Flush(TimeSpan.FromSeconds(60));
            producer.Dispose();
        }
        VerifyIdempotent(broker, topic, partitions, acked, row, "after the last cycle");
        row.Acknowledged = acked.Count;
        row.Note($"{failed} deliveries failed ({fatal} fatal): unacknowledged records may or may not be in the log, but never twice");
        Finish(row);
    }

    /// <summary>Checks a snapshot of the acknowledgements against a full read; the counters keep the worst cycle's figures.</summary>
    private static void VerifyIdempotent(BrokerUnderTest broker, string topic, int partitions, ConcurrentDictionary<(int, long), string> acked, ScenarioRow row, string when)
    {
        // Snapshot first: everything acknowledged before the read started is below the high watermark it reads to.
        var snapshot = new Dictionary<(int, long), string>(acked);
        var read = LogReader.ReadAll(broker.BootstrapServers, topic, partitions, readCommitted: false, TimeSpan.FromSeconds(120), Token);
        LogReader.Account(read, row, when);
        var f = Verifiers.CheckAcknowledged(snapshot, read.Records);
        row.Lost = Math.Max(row.Lost, f.Lost.Count);
        row.Duplicates = Math.Max(row.Duplicates, f.Duplicates.Count);
        foreach (var x in f.Lost.Take(5)) row.Problem($"{when}: lost {x}");
        foreach (var x in f.Duplicates.Take(5)) row.Problem($"{when}: duplicate {x}");
        foreach (var x in f.Gaps.Take(5)) row.Problem($"{when}: gap {x}");
        TestContext.Out.WriteLine($"{when}: {snapshot.Count} acknowledged, {read.Records.Count} read, lost {f.Lost.Count}, duplicates {f.Duplicates.Count}, gaps {f.Gaps.Count}");
    }
}
