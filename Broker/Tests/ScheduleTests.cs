using Kayak.Coordinator.Tests;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>
/// Issue 10, step 6: the broker's periodic tasks run on its TimeProvider. With a manual clock nothing happens until
/// the test moves it, and moving it runs retention and the log cleaner at once — no sleeping in tests.
/// </summary>
[CancelAfter(30_000)]
public class ScheduleTests
{
    [Test]
    public async Task RetentionAndTheCleaner_RunWhenTheBrokersClockMoves_NotBefore()
    {
        var clock = new ManualTimeProvider();
        await using var fx = await BrokerFixture.StartAsync(o =>
        {
            o.Time = clock;
            o.Properties["log.retention.check.interval.ms"] = "60000";
        });
        var expiring = fx.CreateTopic("expiring", 1, new Dictionary<string, string> { ["retention.ms"] = "5000", ["segment.bytes"] = "1024" });
        var compacted = fx.CreateTopic("compacted", 1, new Dictionary<string, string> { ["cleanup.policy"] = "compact", ["segment.bytes"] = "1024" });
        var log = expiring.Partitions[0];
        BrokerFixture.Produce(log, 40); // timestamps in 2023: long expired by the clock's 2024
        long leo = log.LogEndOffset;
        ProduceSameKey(compacted.Partitions[0], 40);
        long compactedBytes = compacted.Partitions[0].Size;

        clock.AdvanceMs(14_999);
        Assert.That(compacted.Partitions[0].Size, Is.EqualTo(compactedBytes), "the cleaner (every 15 s) has not run on the broker's clock yet");
        clock.AdvanceMs(1);
        Assert.That(compacted.Partitions[0].Size, Is.LessThan(compactedBytes), "the cleaner ran when the broker's clock reached 15 s");

        clock.AdvanceMs(44_999);
        Assert.That(log.LogStartOffset, Is.EqualTo(0), "retention (log.retention.check.interval.ms) must not run before its interval");
        clock.AdvanceMs(1);
        Assert.That(log.LogStartOffset, Is.EqualTo(leo), "every expired segment is gone once the clock reached the check interval");
    }

    private static void ProduceSameKey(Kayak.Storage.PartitionLog log, int count)
    {
        for (int i = 0; i < count; i++)
        {
            using var builder = new Kayak.Protocol.Records.RecordBatchBuilder(new Kayak.Protocol.Records.RecordBatchOptions { PartitionLeaderEpoch = 0 });
            builder.Append(1_700_000_000_000 + i, "key"u8.ToArray(), new byte[] { (byte)i, 1, 2, 3 });
            log.Append(builder.ToArray(), 1, 0);
        }
    }
}
