using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Kayak.Broker.Cluster;
using Kayak.IntegrationTests.Drivers;
using Kayak.IntegrationTests.Infrastructure;
using NUnit.Framework;

namespace Kayak.IntegrationTests;

/// <summary>
/// Issue 14, ElectLeaders (API 43) with a stock client: Confluent.Kafka 2.16's AdminClient.ElectLeadersAsync against a
/// 3-broker in-process <see cref="KafkaCluster"/>. A preferred election is not needed while the first replica leads;
/// after the preferred leader is killed, restarted and back in the ISR, a preferred election moves leadership back to it
/// with a new leader epoch, and clients' metadata shows it.
/// </summary>
[TestFixture]
public sealed class ClusterElectionTests : ScratchDirectoryTest
{
    public ClusterElectionTests() : base("election") { }

    [Test]
    [CancelAfter(120_000)]
    public async Task PreferredElection_AfterTheFirstReplicaRestartsAndRejoinsTheIsr_MovesLeadershipBackToIt()
    {
        await using var cluster = new KafkaCluster(new KafkaClusterOptions { Brokers = 3, DataDir = Dir, Port = 0 });
        await cluster.StartAsync(Token);
        const string topic = "elect";
        await cluster.CreateTopicAsync(topic, 1, 3);
        var tp = new TopicPartition(topic, 0);
        int preferred = cluster.Partition(topic, 0).Replicas[0];
        Assert.That(cluster.Partition(topic, 0).Leader, Is.EqualTo(preferred), "a new partition is led by its first replica");

        // Nothing to do while the preferred replica leads: Kafka answers ELECTION_NOT_NEEDED for the partition.
        using (var admin = ConfluentClients.Admin(cluster.Broker(preferred)!.BootstrapServers))
        {
            var notNeeded = Assert.ThrowsAsync<ElectLeadersException>(() => admin.ElectLeadersAsync(ElectionType.Preferred, new[] { tp }));
            Assert.That(notNeeded!.Results.TopicPartitions.Single().Error.Code, Is.EqualTo(Confluent.Kafka.ErrorCode.ElectionNotNeeded));
        }

        await cluster.CrashBrokerAsync(preferred);
        var failedOver = cluster.Partition(topic, 0);
        Assert.That(failedOver.Leader, Is.Not.EqualTo(preferred).And.Not.EqualTo(-1), "another ISR replica took over");
        await cluster.StartBrokerAsync(preferred, Token);
        for (int i = 0; i < 600 && !cluster.Partition(topic, 0).Isr.Contains(preferred); i++) await Task.Delay(50, Token);
        Assert.That(cluster.Partition(topic, 0).Isr, Does.Contain(preferred), "the restarted replica rejoins the ISR");
        Assert.That(cluster.Partition(topic, 0).Leader, Is.EqualTo(failedOver.Leader), "no automatic move back");

        string bootstrap = string.Join(',', cluster.Brokers.Select(b => b.BootstrapServers));
        using (var admin = ConfluentClients.Admin(bootstrap))
        {
            var result = await admin.ElectLeadersAsync(ElectionType.Preferred, new[] { tp });
            Assert.That(result.TopicPartitions.Single().Error.Code, Is.EqualTo(Confluent.Kafka.ErrorCode.NoError));
            var after = cluster.Partition(topic, 0);
            Assert.That(after.Leader, Is.EqualTo(preferred), "the preferred replica leads again");
            Assert.That(after.LeaderEpoch, Is.EqualTo(failedOver.LeaderEpoch + 1));

            int seen = -1;
            for (int i = 0; i < 100 && seen != preferred; i++)
            {
                seen = admin.GetMetadata(topic, TimeSpan.FromSeconds(5)).Topics.Single().Partitions.Single().Leader;
                if (seen != preferred) await Task.Delay(50, Token);
            }
            Assert.That(seen, Is.EqualTo(preferred), "clients' metadata shows the elected leader");

            var again = Assert.ThrowsAsync<ElectLeadersException>(() => admin.ElectLeadersAsync(ElectionType.Preferred, new[] { tp }));
            Assert.That(again!.Results.TopicPartitions.Single().Error.Code, Is.EqualTo(Confluent.Kafka.ErrorCode.ElectionNotNeeded));
        }
    }
}
