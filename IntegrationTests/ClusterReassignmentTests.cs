using System.Buffers;
using System.Buffers.Binary;
using System.Net.Sockets;
using Confluent.Kafka;
using Kayak.Broker.Cluster;
using Kayak.IntegrationTests.Drivers;
using Kayak.IntegrationTests.Infrastructure;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using NUnit.Framework;
using ErrorCode = Kayak.Protocol.ErrorCode;

namespace Kayak.IntegrationTests;

/// <summary>
/// Issue 14, AlterPartitionReassignments (API 45) / ListPartitionReassignments (API 46), KIP-455, on a 3-broker
/// in-process <see cref="KafkaCluster"/>. Confluent.Kafka 2.16's AdminClient has no reassignment API (librdkafka does
/// not implement it), so the two requests go over the wire with Kayak.Protocol's generated messages; producing,
/// consuming and the metadata check are Confluent.Kafka's. A partition on one broker is moved to the two others: they
/// catch up through the replica fetcher, the old replica is removed and leadership moves, and after the old leader's
/// broker is stopped every record is read back from the new replicas.
/// </summary>
[TestFixture]
public sealed class ClusterReassignmentTests : ScratchDirectoryTest
{
    public ClusterReassignmentTests() : base("reassign") { }

    [Test]
    [CancelAfter(120_000)]
    public async Task ReassignToTheOtherBrokers_NewReplicasCatchUp_OldLeaderRemoved_DataReadableAfterItStops()
    {
        await using var cluster = new KafkaCluster(new KafkaClusterOptions { Brokers = 3, DataDir = Dir, Port = 0 });
        await cluster.StartAsync(Token);
        const string topic = "moved";
        await cluster.CreateTopicAsync(topic, 1, 1);
        int old = cluster.Partition(topic, 0).Leader;
        int[] target = [old % 3 + 1, (old + 1) % 3 + 1];

        const int count = 300;
        using (var producer = ConfluentClients.Producer(cluster.BootstrapServers, c => c.Acks = Acks.All))
        {
            for (int i = 0; i < count; i++)
                producer.Produce(new TopicPartition(topic, 0), new Message<byte[], byte[]> { Key = ConfluentClients.Utf8($"k{i}")!, Value = ConfluentClients.Utf8($"v{i}")! });
            Assert.That(producer.Flush(TimeSpan.FromSeconds(60)), Is.EqualTo(0));
        }

        string oldBootstrap = cluster.Broker(old)!.BootstrapServers;
        // Errors first: nothing to cancel, a broker named twice, an unknown partition.
        var errors = await SendAsync<AlterPartitionReassignmentsResponse>(oldBootstrap, ApiKey.AlterPartitionReassignments, new AlterPartitionReassignmentsRequest
        {
            Topics = [new() { Name = topic, Partitions = [new() { PartitionIndex = 0, Replicas = null }, new() { PartitionIndex = 7, Replicas = [1] }] },
                      new() { Name = "missing", Partitions = [new() { PartitionIndex = 0, Replicas = [1] }] }],
        });
        Assert.That(errors.Responses[0].Partitions.Select(p => (ErrorCode)p.ErrorCode),
            Is.EqualTo(new[] { ErrorCode.NoReassignmentInProgress, ErrorCode.UnknownTopicOrPartition }));
        Assert.That((ErrorCode)errors.Responses[1].Partitions.Single().ErrorCode, Is.EqualTo(ErrorCode.UnknownTopicOrPartition));
        var dup = await SendAsync<AlterPartitionReassignmentsResponse>(oldBootstrap, ApiKey.AlterPartitionReassignments, Alter(topic, [target[0], target[0]]));
        Assert.That((ErrorCode)dup.Responses.Single().Partitions.Single().ErrorCode, Is.EqualTo(ErrorCode.InvalidReplicaAssignment));

        var started = await SendAsync<AlterPartitionReassignmentsResponse>(oldBootstrap, ApiKey.AlterPartitionReassignments, Alter(topic, [.. target]));
        Assert.That(started.ErrorCode, Is.EqualTo(0));
        Assert.That(started.Responses.Single().Partitions.Single().ErrorCode, Is.EqualTo(0), started.Responses.Single().Partitions.Single().ErrorMessage);

        // The new replicas fetch from the old leader and join the ISR; then the reassignment completes and is no
        // longer listed. While it runs, the listing shows the target followed by the removed replica.
        while (true)
        {
            var listed = await SendAsync<ListPartitionReassignmentsResponse>(oldBootstrap, ApiKey.ListPartitionReassignments,
                new ListPartitionReassignmentsRequest { Topics = [new() { Name = topic, PartitionIndexes = [0] }] });
            Assert.That(listed.ErrorCode, Is.EqualTo(0));
            if (listed.Topics.Count == 0) break;
            var ongoing = listed.Topics.Single().Partitions.Single();
            Assert.That(ongoing.Replicas, Is.EqualTo(new[] { target[0], target[1], old }));
            Assert.That(ongoing.RemovingReplicas, Is.EqualTo(new[] { old }));
            await Task.Delay(50, Token);
        }
        var p = cluster.Partition(topic, 0);
        Assert.That(p.Replicas, Is.EqualTo(target));
        Assert.That(p.Isr.OrderBy(r => r), Is.EqualTo(target.OrderBy(r => r)));
        Assert.That(p.Leader, Is.EqualTo(target[0]), "the removed leader hands over to the first target replica");
        Assert.That(p.LeaderEpoch, Is.GreaterThan(0));

        await cluster.StopBrokerAsync(old);
        string bootstrap = cluster.Broker(target[1])!.BootstrapServers;
        using (var admin = ConfluentClients.Admin(bootstrap))
        {
            var md = admin.GetMetadata(topic, TimeSpan.FromSeconds(30)).Topics.Single().Partitions.Single();
            Assert.That((md.Leader, md.Replicas), Is.EqualTo((target[0], target)));
        }
        var read = new List<string>();
        using (var consumer = ConfluentClients.Consumer(bootstrap))
        {
            consumer.Assign(new TopicPartitionOffset(topic, 0, Offset.Beginning));
            while (read.Count < count) read.Add(ConfluentClients.FromUtf8(consumer.Consume(Token).Message.Value)!);
        }
        Assert.That(read, Is.EqualTo(Enumerable.Range(0, count).Select(i => $"v{i}")));
    }

    /// <summary>
    /// A broker holds logs only for the partitions it replicates (Kafka's LogManager): with RF-1 and RF-2 topics the
    /// <c>broker-&lt;id&gt;/&lt;topic&gt;-&lt;p&gt;</c> directories exist on the replicas only; producing and consuming
    /// with Confluent.Kafka work; a partition reassigned away loses its directory on the old replica after
    /// log.segment.delete.delay.ms, its records readable from the new one; a restarted cluster has the same layout.
    /// </summary>
    [Test]
    [CancelAfter(120_000)]
    public async Task PartitionDirectories_OnlyOnReplicas_ReassignedAwayIsDeleted_RestartKeepsTheLayout()
    {
        const int perPartition = 20;
        int from, to;
        var options = new KafkaClusterOptions { Brokers = 3, DataDir = Dir, Port = 0 };
        options.Properties["log.segment.delete.delay.ms"] = "300";
        await using (var cluster = new KafkaCluster(options))
        {
            await cluster.StartAsync(Token);
            using (var admin = ConfluentClients.Admin(cluster.BootstrapServers))
                await admin.CreateTopicsAsync([
                    new Confluent.Kafka.Admin.TopicSpecification { Name = "r1", NumPartitions = 3, ReplicationFactor = 1 },
                    new Confluent.Kafka.Admin.TopicSpecification { Name = "r2", NumPartitions = 3, ReplicationFactor = 2 }]);
            using (var producer = ConfluentClients.Producer(cluster.BootstrapServers, c => c.Acks = Acks.All))
            {
                foreach (var topic in new[] { "r1", "r2" })
                    for (int p = 0; p < 3; p++)
                        for (int i = 0; i < perPartition; i++)
                            producer.Produce(new TopicPartition(topic, p), new Message<byte[], byte[]> { Key = null!, Value = ConfluentClients.Utf8($"{topic}-{p}-{i}")! });
                Assert.That(producer.Flush(TimeSpan.FromSeconds(60)), Is.EqualTo(0));
            }
            AssertLayout(cluster, "r1");
            AssertLayout(cluster, "r2");
            foreach (var topic in new[] { "r1", "r2" })
                for (int p = 0; p < 3; p++) Assert.That(Read(cluster.BootstrapServers, topic, p, perPartition), Is.EqualTo(Expected(topic, p, perPartition)));

            from = cluster.Partition("r1", 0).Leader;
            to = from % 3 + 1;
            var started = await SendAsync<AlterPartitionReassignmentsResponse>(cluster.Broker(1)!.BootstrapServers, ApiKey.AlterPartitionReassignments, Alter("r1", [to]));
            Assert.That(started.Responses.Single().Partitions.Single().ErrorCode, Is.EqualTo(0), started.Responses.Single().Partitions.Single().ErrorMessage);
            while (cluster.Partition("r1", 0).Replicas.Count != 1 || cluster.Partition("r1", 0).Replicas[0] != to) await Task.Delay(50, Token);
            // Renamed <topic>-<p>.<uuid>-delete at once, removed after the delay (Kafka's LogManager.asyncDelete).
            while (Directory.GetDirectories(Path.Combine(Dir, $"broker-{from}"), "r1-0*").Length > 0) await Task.Delay(50, Token);
            AssertLayout(cluster, "r1");
            Assert.That(Read(cluster.Broker(to)!.BootstrapServers, "r1", 0, perPartition), Is.EqualTo(Expected("r1", 0, perPartition)));
        }

        await using (var again = new KafkaCluster(options))
        {
            await again.StartAsync(Token);
            Assert.That(again.Partition("r1", 0).Replicas, Is.EqualTo(new[] { to }));
            Assert.That(Directory.Exists(Path.Combine(Dir, $"broker-{from}", "r1-0")), Is.False, "the old replica does not come back");
            AssertLayout(again, "r1");
            AssertLayout(again, "r2");
            foreach (var topic in new[] { "r1", "r2" })
                for (int p = 0; p < 3; p++) Assert.That(Read(again.BootstrapServers, topic, p, perPartition), Is.EqualTo(Expected(topic, p, perPartition)));
        }
    }

    private void AssertLayout(KafkaCluster cluster, string topic)
    {
        for (int p = 0; p < cluster.PartitionCount(topic); p++)
        {
            var replicas = cluster.Partition(topic, p).Replicas;
            for (int node = 1; node <= 3; node++)
                Assert.That(Directory.Exists(Path.Combine(Dir, $"broker-{node}", $"{topic}-{p}")), Is.EqualTo(replicas.Contains(node)),
                    $"{topic}-{p} on broker {node} (replicas {string.Join(",", replicas)})");
        }
    }

    private static IEnumerable<string> Expected(string topic, int partition, int count) =>
        Enumerable.Range(0, count).Select(i => $"{topic}-{partition}-{i}");

    private List<string> Read(string bootstrap, string topic, int partition, int count)
    {
        var read = new List<string>();
        using var consumer = ConfluentClients.Consumer(bootstrap);
        consumer.Assign(new TopicPartitionOffset(topic, partition, Offset.Beginning));
        while (read.Count < count) read.Add(ConfluentClients.FromUtf8(consumer.Consume(Token).Message.Value)!);
        return read;
    }

    private static AlterPartitionReassignmentsRequest Alter(string topic, List<int> replicas) => new()
    {
        Topics = [new() { Name = topic, Partitions = [new() { PartitionIndex = 0, Replicas = replicas }] }],
    };

    /// <summary>One request at v0 (the only version of both APIs) on a new connection, its response decoded.</summary>
    private async Task<T> SendAsync<T>(string bootstrap, ApiKey key, IApiMessage request) where T : class, IApiMessage
    {
        const short version = 0;
        int colon = bootstrap.LastIndexOf(':');
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(bootstrap[..colon], int.Parse(bootstrap[(colon + 1)..], System.Globalization.CultureInfo.InvariantCulture), Token);
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encode(key, version, request), Token);
        var size = new byte[4];
        await stream.ReadExactlyAsync(size, Token);
        var body = new byte[BinaryPrimitives.ReadInt32BigEndian(size)];
        await stream.ReadExactlyAsync(body, Token);
        return Decode<T>(key, version, body);
    }

    private static byte[] Encode(ApiKey key, short version, IApiMessage request)
    {
        var buffer = new ArrayBufferWriter<byte>();
        var writer = new KafkaWriter(buffer);
        writer.WriteInt32(0);
        new RequestHeader { RequestApiKey = (short)key, RequestApiVersion = version, CorrelationId = 1, ClientId = "reassign-test" }
            .Write(ref writer, ApiMessageTypes.RequestHeaderVersion(key, version));
        request.Write(ref writer, version);
        writer.Flush();
        var frame = buffer.WrittenSpan.ToArray();
        BinaryPrimitives.WriteInt32BigEndian(frame, frame.Length - 4);
        return frame;
    }

    private static T Decode<T>(ApiKey key, short version, byte[] body) where T : class, IApiMessage
    {
        var reader = new KafkaReader(body);
        new ResponseHeader().Read(ref reader, ApiMessageTypes.ResponseHeaderVersion(key, version));
        var response = (T)ApiMessageTypes.CreateResponse(key);
        response.Read(ref reader, version);
        return response;
    }
}
