using System.Collections.Concurrent;
using Confluent.Kafka;
using Kayak.IntegrationTests.Infrastructure;
using NUnit.Framework;

namespace Kayak.IntegrationTests.Campaign;

public sealed partial class FaultCampaign
{
    private static readonly TimeSpan TxnCallTimeout = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Scenario 3: kill -9 while a transactional producer commits and aborts (one in three aborted). Each cycle's
    /// producer is replaced after the restart by one with the same transactional.id, whose InitTransactions fences the
    /// old one and settles its open transaction, as an application restart would. Then read_committed must show each
    /// committed transaction whole and once, nothing of aborted or open ones, unacknowledged commits all-or-nothing,
    /// and the last stable offset must reach the high watermark once the new producer committed (no stuck transaction).
    /// </summary>
    [Test]
    [CancelAfter(1_200_000)]
    public async Task Kill9DuringTransactions()
    {
        RequireKayak("kill -9");
        var row = new ScenarioRow("3 kill -9, transactions");
        CampaignReport.Add(row);
        int cycles = CampaignSize.Pick(3, 20);
        const int partitions = 2;
        const int perTxn = 4;
        var broker = await StartBrokerAsync(BrokerMode.Process, CampaignBroker.Settings());
        string topic = TopicName("c3");
        await broker.CreateTopicAsync(topic, partitions, cancellationToken: Token);
        string txnId = "campaign-txn-" + Guid.NewGuid().ToString("N");
        var txns = new ConcurrentDictionary<string, (int Records, TxnOutcome Outcome)>();

        IProducer<byte[], byte[]> NewProducer() => ConfluentClients.Producer(broker.BootstrapServers, c =>
        {
            c.TransactionalId = txnId;
            c.EnableIdempotence = true;
            c.TransactionTimeoutMs = 60_000;
            c.MessageTimeoutMs = 30_000;
        });

        // Runs transactions until stopped or an error (the kill); returns when the producer is no longer usable.
        void RunTransactions(IProducer<byte[], byte[]> producer, string prefix, CancellationToken stop)
        {
            for (int n = 0; !stop.IsCancellationRequested; n++)
            {
                string name = $"{prefix}-{n}";
                bool commit = n % 3 != 2;
                try
                {
                    producer.BeginTransaction();
                    txns[name] = (perTxn, TxnOutcome.Open);
                    for (int j = 0; j < perTxn; j++)
                        producer.Produce(new TopicPartition(topic, j % partitions), new Message<byte[], byte[]> { Key = [], Value = ConfluentClients.Utf8($"{name}/{j}")! });
                    if (producer.Flush(TxnCallTimeout) != 0) return;
                    // Killed while producing: abandon the transaction as a crashing application would; the next
                    // producer's InitTransactions must abort it. (librdkafka would otherwise carry it over the restart.)
                    if (stop.IsCancellationRequested) return;
                    txns[name] = (perTxn, commit ? TxnOutcome.CommitUnacknowledged : TxnOutcome.Aborted);
                    if (commit) producer.CommitTransaction(TxnCallTimeout);
                    else producer.AbortTransaction(TxnCallTimeout);
                    if (commit) txns[name] = (perTxn, TxnOutcome.Committed);
                }
                catch (KafkaException)
                {
                    return;
                }
            }
        }

        // A fresh producer after each restart: fences the previous one, then one committed transaction.
        async Task<IProducer<byte[], byte[]>> ReplaceProducerAsync(string when)
        {
            var producer = NewProducer();
            try
            {
                await Task.Run(() => producer.InitTransactions(TimeSpan.FromSeconds(60)), Token);
            }
            catch (KafkaException e)
            {
                row.Hangs++;
                row.Problem($"{when}: InitTransactions after the restart failed: {e.Error}");
                throw;
            }
            return producer;
        }

        IProducer<byte[], byte[]> current = await ReplaceProducerAsync("start");
        try
        {
            for (int cycle = 1; cycle <= cycles && row.Problems.Count == 0; cycle++)
            {
                using var stop = new CancellationTokenSource();
                var producer = current;
                var running = Task.Run(() => RunTransactions(producer, $"c{cycle}", stop.Token), CancellationToken.None);
                await Task.Delay(Between(500, 2500), Token);
                await CampaignBroker.KillAsync(broker, row);
                await stop.CancelAsync();
                await Task.Delay(Between(0, 300), Token);
                await CampaignBroker.RestartAsync(broker, row, Token);
                if (await Task.WhenAny(running, Task.Delay(TimeSpan.FromSeconds(120), Token)) != running)
                {
                    row.Hangs++;
                    row.Problem($"cycle {cycle}: the transactional producer did not return within 120 s of the restart");
                    break;
                }
                producer.Dispose();
                current = await ReplaceProducerAsync($"cycle {cycle}");
                row.Cycles = cycle;
                // One committed transaction by the new producer: the LSO must pass it (and everything before it).
                RunOne(current, $"c{cycle}-after", txns, topic, partitions, perTxn);
                VerifyTransactions(broker, topic, partitions, txns, row, $"cycle {cycle}");
            }
        }
        finally
        {
            current.Dispose();
        }
        row.Acknowledged = txns.Count(t => t.Value.Outcome == TxnOutcome.Committed);
        row.Note($"acked = committed transactions of {perTxn} records; {txns.Count(t => t.Value.Outcome == TxnOutcome.Aborted)} aborted, " +
            $"{txns.Count(t => t.Value.Outcome == TxnOutcome.Open)} open and {txns.Count(t => t.Value.Outcome == TxnOutcome.CommitUnacknowledged)} unacknowledged commits at a kill");
        Finish(row);
    }

    private static void RunOne(IProducer<byte[], byte[]> producer, string name, ConcurrentDictionary<string, (int, TxnOutcome)> txns, string topic, int partitions, int perTxn)
    {
        producer.BeginTransaction();
        txns[name] = (perTxn, TxnOutcome.Open);
        for (int j = 0; j < perTxn; j++)
            producer.Produce(new TopicPartition(topic, j % partitions), new Message<byte[], byte[]> { Key = [], Value = ConfluentClients.Utf8($"{name}/{j}")! });
        txns[name] = (perTxn, TxnOutcome.CommitUnacknowledged);
        producer.CommitTransaction(TxnCallTimeout);
        txns[name] = (perTxn, TxnOutcome.Committed);
    }

    private static void VerifyTransactions(BrokerUnderTest broker, string topic, int partitions, ConcurrentDictionary<string, (int, TxnOutcome)> txns, ScenarioRow row, string when)
    {
        var committed = LogReader.ReadAll(broker.BootstrapServers, topic, partitions, readCommitted: true, TimeSpan.FromSeconds(60), Token);
        LogReader.Account(committed, row, when);
        var (problems, lost, duplicates) = Verifiers.CheckTransactions(new Dictionary<string, (int, TxnOutcome)>(txns), committed.Records);
        row.Lost = Math.Max(row.Lost, lost);
        row.Duplicates = Math.Max(row.Duplicates, duplicates);
        foreach (var p in problems.Take(10)) row.Problem($"{when}: {p}");
        // No transaction is open now: read_committed's end (the LSO, from its EOF) must be the high watermark.
        using var plain = ConfluentClients.Consumer(broker.BootstrapServers);
        for (int p = 0; p < partitions; p++)
        {
            long hw = plain.QueryWatermarkOffsets(new TopicPartition(topic, p), TimeSpan.FromSeconds(10)).High.Value;
            long lso = committed.EndOffsets.GetValueOrDefault(p, -1);
            if (lso != hw) row.Problem($"{when}: partition {p} last stable offset {lso} behind the high watermark {hw}: a transaction is stuck");
        }
        TestContext.Out.WriteLine($"{when}: {txns.Count} transactions, {committed.Records.Count} records visible to read_committed, ends {string.Join(",", committed.EndOffsets.Select(e => $"{e.Key}:{e.Value}"))}");
    }
}
