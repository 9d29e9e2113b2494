using Kayak.Protocol;
using Kayak.Protocol.Messages;
using Kayak.Protocol.Records;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>
/// EndTxn racing a transactional Produce to a partition the transaction already wrote to. The batch may land
/// before the marker (it is part of the transaction) or be refused, but never after the marker: a batch there
/// would open a transaction no marker ends, and the partition's last stable offset would stop for good
/// (KIP-890 part 1's verification guard closes this in Kafka).
/// </summary>
[CancelAfter(120_000)]
public class TransactionRaceTests
{
    private const string Topic = "race";
    private const int LateRecords = 200;

    private static byte[] Batch(long pid, short epoch, int seq, int count)
    {
        using var b = new RecordBatchBuilder(new RecordBatchOptions { ProducerId = pid, ProducerEpoch = epoch, BaseSequence = seq, IsTransactional = true });
        // Compressible values: the topic recompresses them to gzip between the Produce check and the append,
        // which keeps that window open long enough for EndTxn to fit in it on most iterations.
        var value = new byte[1024];
        for (int i = 0; i < value.Length; i++) value[i] = (byte)(i % 17);
        for (int i = 0; i < count; i++) b.Append(1_700_000_000_000 + i, null, value);
        return b.ToArray();
    }

    private static async Task<ProduceResponse.PartitionProduceResponse> Produce(RawClient client, byte[] batch, string transactionalId)
    {
        var r = await client.SendAsync<ProduceResponse>(new ProduceRequest
        {
            TransactionalId = transactionalId,
            Acks = -1,
            TimeoutMs = 5000,
            TopicData = [new ProduceRequest.TopicProduceData { Name = Topic, PartitionData = [new ProduceRequest.PartitionProduceData { Index = 0, Records = batch }] }],
        }, 9);
        return r.Responses[0].PartitionResponses[0];
    }

    [Test]
    public async Task LateTransactionalBatchNeverLandsAfterTheMarker()
    {
        await using var f = await BrokerFixture.StartAsync();
        var log = f.CreateTopic(Topic, 1, new Dictionary<string, string> { ["compression.type"] = "gzip" }).Partitions[0];
        using var endClient = await RawClient.ConnectAsync(f.Broker.BootstrapServers);
        const string id = "racer";
        var init = await f.Client.SendAsync<InitProducerIdResponse>(new InitProducerIdRequest { TransactionalId = id, TransactionTimeoutMs = 60_000 }, 4);
        Assert.That(init.ErrorCode, Is.EqualTo((short)0));
        long pid = init.ProducerId;
        short epoch = init.ProducerEpoch;
        int seq = 0, late = 0, refused = 0, caughtAtAppend = 0, delayMicros = 0;
        const int iterations = 300, StepMicros = 25;
        for (int i = 0; i < iterations; i++)
        {
            var add = await f.Client.SendAsync<AddPartitionsToTxnResponse>(new AddPartitionsToTxnRequest
            {
                V3AndBelowTransactionalId = id, V3AndBelowProducerId = pid, V3AndBelowProducerEpoch = epoch,
                V3AndBelowTopics = [new AddPartitionsToTxnRequest.AddPartitionsToTxnTopic { Name = Topic, Partitions = [0] }],
            }, 3);
            Assert.That(add.ResultsByTopicV3AndBelow[0].ResultsByPartition[0].PartitionErrorCode, Is.EqualTo((short)0), $"iteration {i}: add");
            var first = await Produce(f.Client, Batch(pid, epoch, seq, 4), id);
            Assert.That(first.ErrorCode, Is.EqualTo((short)0), $"iteration {i}: first batch");
            seq += 4;

            // The late batch leaves first and EndTxn follows on another connection (its own handler thread) after a
            // delay that tracks the boundary between the two outcomes: longer after a refusal (EndTxn came first),
            // shorter after an accepted batch (EndTxn came last). Around that boundary EndTxn runs while the broker
            // is between the batch's transaction check and its append (the recompression sits there). Not a timing
            // assertion: the delay only steers where EndTxn lands.
            var lateBatch = Batch(pid, epoch, seq, LateRecords);
            long delayTicks = System.Diagnostics.Stopwatch.Frequency * delayMicros / 1_000_000;
            var produce = Task.Run(() => Produce(f.Client, lateBatch, id));
            var end = Task.Run(() =>
            {
                long until = System.Diagnostics.Stopwatch.GetTimestamp() + delayTicks;
                while (System.Diagnostics.Stopwatch.GetTimestamp() < until) Thread.SpinWait(20);
                return endClient.SendAsync<EndTxnResponse>(
                    new EndTxnRequest { TransactionalId = id, ProducerId = pid, ProducerEpoch = epoch, Committed = true }, 3);
            });
            var produced = await produce;
            Assert.That((await end).ErrorCode, Is.EqualTo((short)0), $"iteration {i}: EndTxn");
            if (produced.ErrorCode == 0) { seq += LateRecords; late++; delayMicros = Math.Max(0, delayMicros - StepMicros); }
            else
            {
                // Kafka 4.0: an unverified transactional batch is INVALID_TXN_STATE; CONCURRENT_TRANSACTIONS from the
                // verification (the transaction is between PrepareCommit and CompleteCommit) is NOT_ENOUGH_REPLICAS.
                Assert.That(produced.ErrorCode, Is.AnyOf((short)ErrorCode.InvalidTxnState, (short)ErrorCode.NotEnoughReplicas), $"iteration {i}: late batch");
                refused++;
                // Refused by the partition itself: the batch passed verification and the marker then beat its append.
                if (produced.ErrorMessage?.Contains("was not part of an ongoing transaction", StringComparison.Ordinal) == true) caughtAtAppend++;
                delayMicros += StepMicros;
            }

            // The marker ended everything the transaction wrote: nothing is left open in the partition.
            Assert.That(log.LastStableOffset, Is.EqualTo(log.LogEndOffset),
                $"iteration {i}: a transactional batch was appended after the commit marker (late {late}, refused {refused})");
        }
        TestContext.Out.WriteLine($"late batch inside the transaction {late}, refused {refused} ({caughtAtAppend} at the append) of {iterations}");
        Assert.That(log.ProducerState.FirstUnstableOffset, Is.EqualTo(long.MaxValue), "no open transaction");
    }
}
