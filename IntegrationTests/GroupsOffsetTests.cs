using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Confluent.Kafka;
using Kayak.IntegrationTests.Drivers;
using Kayak.IntegrationTests.Infrastructure;
using Kayak.Protocol;
using Kayak.Protocol.CoordinatorRecords;
using NUnit.Framework;

namespace Kayak.IntegrationTests;

/// <summary>
/// Committed offsets with real clients: resume exactly after the last commit (sync, async, auto-commit), independent
/// groups, survival across a clean restart and kill -9, Kafka's record format in __consumer_offsets, and lag.
/// </summary>
[TestFixture]
public sealed class GroupsOffsetTests : BrokerTestBase
{
    private const int Partitions = 3;
    private const int RecordCount = 30;

    private static readonly PythonKafka Python = (PythonKafka)ClientDrivers.Python;

    private static string NewGroup(string prefix) => prefix + "-" + Guid.NewGuid().ToString("N")[..8];

    /// <summary>
    /// Consumes `consume` records as a group member on the test's own thread; `onRecord` may commit. Returns the
    /// (partition, offset) pairs in order. Close() at the end (commits when auto-commit is on, leaves the group).
    /// </summary>
    private static List<(int Partition, long Offset)> ConfluentConsume(string bootstrap, string topic, string group, int consume, Action<ConsumerConfig>? configure, Action<IConsumer<byte[], byte[]>, int>? onRecord, CancellationToken token)
    {
        using var consumer = ConfluentClients.Consumer(bootstrap, c =>
        {
            c.GroupId = group;
            c.SessionTimeoutMs = 6000;
            configure?.Invoke(c);
        });
        consumer.Subscribe(topic);
        var seen = new List<(int, long)>();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (seen.Count < consume)
        {
            token.ThrowIfCancellationRequested();
            if (DateTime.UtcNow > deadline)
                Assert.Fail($"consumed only {seen.Count} of {consume} records as {group}");
            var r = consumer.Consume(TimeSpan.FromMilliseconds(100));
            if (r is null || r.IsPartitionEOF)
                continue;
            seen.Add((r.Partition.Value, r.Offset.Value));
            onRecord?.Invoke(consumer, seen.Count);
        }
        consumer.Close();
        return seen;
    }

    private static Dictionary<int, long> Positions(IEnumerable<(int Partition, long Offset)> records) =>
        records.GroupBy(r => r.Partition).ToDictionary(g => g.Key, g => g.Max(r => r.Offset) + 1);

    private static IEnumerable<TestCaseData> CommitModes()
    {
        yield return new TestCaseData("confluent", "sync").SetName("Resume_confluent_sync");
        yield return new TestCaseData("confluent", "auto").SetName("Resume_confluent_autocommit");
        yield return new TestCaseData("kafka-python", "sync").SetName("Resume_kafka-python_sync");
        yield return new TestCaseData("kafka-python", "async").SetName("Resume_kafka-python_async");
        yield return new TestCaseData("kafka-python", "auto").SetName("Resume_kafka-python_autocommit");
    }

    /// <summary>
    /// A consumer reads 12 records; sync/async commit once after the 8th (the last 4 are read but not committed), auto
    /// commit covers all 12. A restarted consumer of the same group must start exactly at the committed offsets: no
    /// record lost, none read again that was committed, and the uncommitted ones read again.
    /// </summary>
    [TestCaseSource(nameof(CommitModes))]
    [CancelAfter(60_000)]
    public async Task ConsumerResumesExactlyAfterLastCommit(string client, string mode)
    {
        const int consume = 12;
        const int commitAfter = 8;
        var broker = await StartBrokerAsync(BrokerMode.InProcess, GroupAssert.FastGroups());
        var topic = TopicName("resume");
        var group = NewGroup("resume");
        await broker.CreateTopicAsync(topic, Partitions, cancellationToken: Token);
        await GroupAssert.ProduceAsync(broker, topic, RecordCount, Partitions, cancellationToken: Token);

        Dictionary<int, long> committedByClient;
        List<(int Partition, long Offset)> first;
        if (client == "confluent")
        {
            Dictionary<int, long> atCommit = [];
            first = await Task.Run(() => ConfluentConsume(broker.BootstrapServers, topic, group, consume,
                c =>
                {
                    c.EnableAutoCommit = mode == "auto";
                    c.AutoCommitIntervalMs = 100;
                },
                (consumer, n) =>
                {
                    if (mode == "sync" && n == commitAfter)
                    {
                        // Commit() commits the stored offsets: every consumed record's offset + 1.
                        var offsets = consumer.Commit();
                        // Partitions that delivered nothing yet have no stored offset to commit (Offset.Unset).
                        atCommit = offsets.Where(o => o.Offset.Value >= 0).ToDictionary(o => o.Partition.Value, o => o.Offset.Value);
                    }
                }, Token), Token);
            committedByClient = mode == "auto" ? Positions(first) : atCommit;
            if (mode == "sync")
                Assert.That(committedByClient, Is.EqualTo(Positions(first.Take(commitAfter))), "Commit() returned the positions after 8 records");
        }
        else
        {
            var response = await Python.RunAsync("group_commit", new JsonObject
            {
                ["bootstrap"] = broker.BootstrapServers,
                ["topic"] = topic,
                ["group"] = group,
                ["mode"] = mode,
                ["consume"] = consume,
                ["commit_after"] = commitAfter,
            }, TimeSpan.FromSeconds(45), Token);
            first = response["records"]!.AsArray().Select(r => (r!["partition"]!.GetValue<int>(), r["offset"]!.GetValue<long>())).ToList();
            committedByClient = response["committed"]!.AsObject().ToDictionary(kv => int.Parse(kv.Key, CultureInfo.InvariantCulture), kv => kv.Value!.GetValue<long>());
            var expected = mode == "auto" ? Positions(first) : Positions(first.Take(commitAfter));
            foreach (var (p, o) in expected)
                Assert.That(committedByClient.GetValueOrDefault(p, 0), Is.EqualTo(o), $"kafka-python committed partition {p}");
        }
        Assert.That(first, Has.Count.EqualTo(consume));

        // What the broker holds is what the client committed (partitions never committed: none, i.e. start at 0).
        var committed = ConfluentClients.Committed(broker.BootstrapServers, topic, group, Partitions);
        for (var p = 0; p < Partitions; p++)
        {
            var want = committedByClient.GetValueOrDefault(p, 0);
            var got = committed[p] < 0 ? 0 : committed[p];
            Assert.That(got, Is.EqualTo(want), $"committed offset of partition {p} fetched back");
        }

        // Restart: a new consumer of the group reads exactly the rest, from the committed offsets on.
        var remaining = RecordCount - (int)Enumerable.Range(0, Partitions).Sum(p => committedByClient.GetValueOrDefault(p, 0));
        List<(int Partition, long Offset)> second;
        if (client == "confluent")
        {
            second = await Task.Run(() => ConfluentConsume(broker.BootstrapServers, topic, group, remaining, null, null, Token), Token);
        }
        else
        {
            var response = await Python.RunAsync("group_commit", new JsonObject
            {
                ["bootstrap"] = broker.BootstrapServers,
                ["topic"] = topic,
                ["group"] = group,
                ["mode"] = "none",
                ["consume"] = remaining,
            }, TimeSpan.FromSeconds(45), Token);
            second = response["records"]!.AsArray().Select(r => (r!["partition"]!.GetValue<int>(), r["offset"]!.GetValue<long>())).ToList();
        }
        var expectedSecond = new List<(int, long)>();
        for (var p = 0; p < Partitions; p++)
        {
            for (var o = committedByClient.GetValueOrDefault(p, 0); o < RecordCount / Partitions; o++)
                expectedSecond.Add((p, o));
        }
        Assert.That(second.Order().ToList(), Is.EqualTo(expectedSecond), $"after restart ({client} {mode}) the group reads exactly from its commits to the end");
    }

    /// <summary>
    /// Three groups on one topic (Confluent, kcat's balanced consumer -G, kafkajs) each read every record, and the
    /// Confluent group's partial commit does not move the kcat group's offsets.
    /// </summary>
    [Test]
    [CancelAfter(90_000)]
    public async Task GroupsReadTheSameTopicIndependently()
    {
        var broker = await StartBrokerAsync(BrokerMode.InProcess, GroupAssert.FastGroups());
        var topic = TopicName("indep");
        await broker.CreateTopicAsync(topic, Partitions, cancellationToken: Token);
        await GroupAssert.ProduceAsync(broker, topic, RecordCount, Partitions, cancellationToken: Token);
        var confluentGroup = NewGroup("g-confluent");
        var kcatGroup = NewGroup("g-kcat");

        // Confluent group: reads everything, commits only the first half.
        var confluentRead = Task.Run(() => ConfluentConsume(broker.BootstrapServers, topic, confluentGroup, RecordCount, null, (consumer, n) =>
        {
            if (n == RecordCount / 2)
                consumer.Commit();
        }, Token), Token);
        // kcat -G: librdkafka's balanced consumer, auto-commit on; -e exits when every assigned partition hit its end.
        var kcatRead = Kcat.RunAsync(broker.BootstrapServers,
            ["-G", kcatGroup, "-X", "auto.offset.reset=earliest", "-X", "session.timeout.ms=6000", "-e", "-J", topic],
            options: new KcatOptions { Timeout = TimeSpan.FromSeconds(45) }, cancellationToken: Token);
        // kafkajs' consume.js joins a fresh group of its own.
        var kafkajsRead = ClientDrivers.KafkaJs.ConsumeAllAsync(broker.BootstrapServers, topic, Token);

        var confluent = await confluentRead;
        var kcat = (await kcatRead).Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(l => l.StartsWith('{')).Select(Kcat.ParseJsonRecord).Select(r => (r.Partition, r.Offset)).ToList();
        var kafkajs = (await kafkajsRead).Select(r => (r.Partition, r.Offset)).ToList();

        var all = Enumerable.Range(0, RecordCount).Select(i => (i % Partitions, (long)(i / Partitions))).Order().ToList();
        Assert.That(confluent.Order().ToList(), Is.EqualTo(all), "Confluent group read everything");
        Assert.That(kcat.Order().ToList(), Is.EqualTo(all), "kcat -G group read everything");
        Assert.That(kafkajs.Order().ToList(), Is.EqualTo(all), "kafkajs group read everything");

        var confluentCommitted = ConfluentClients.Committed(broker.BootstrapServers, topic, confluentGroup, Partitions);
        // Commit() after 15 records commits the offsets consumed so far; partitions not yet read have none (-1001).
        var half = Positions(confluent.Take(RecordCount / 2));
        Assert.That(confluentCommitted, Is.EqualTo(Enumerable.Range(0, Partitions).ToDictionary(p => p, p => half.GetValueOrDefault(p, Offset.Unset.Value))), "Confluent group committed its first half");
        // kcat commits what it consumed when it exits (auto-commit on close).
        var kcatCommitted = ConfluentClients.Committed(broker.BootstrapServers, topic, kcatGroup, Partitions);
        Assert.That(kcatCommitted, Is.EqualTo(Enumerable.Range(0, Partitions).ToDictionary(p => p, _ => (long)(RecordCount / Partitions))), "kcat group committed everything, independently");

        using var admin = ConfluentClients.Admin(broker.BootstrapServers);
        var groups = admin.ListGroups(TimeSpan.FromSeconds(10)).Select(g => g.Group).ToList();
        Assert.That(groups, Does.Contain(confluentGroup).And.Contain(kcatGroup));
    }

    /// <summary>Commits through a group member with explicit offsets and returns them.</summary>
    private static async Task CommitAsMemberAsync(string bootstrap, string topic, string group, IReadOnlyDictionary<int, long> offsets, CancellationToken token)
    {
        using var member = new PolledConsumer("committer", bootstrap, topic, c =>
        {
            c.GroupId = group;
            c.EnableAutoCommit = false;
            // Do not fetch: the commit is about explicit offsets, not positions.
            c.AutoOffsetReset = AutoOffsetReset.Latest;
        });
        await GroupAssert.WaitUntilAsync(() => member.Partitions.Count == Partitions, "assignment", TimeSpan.FromSeconds(20), token, member.ToString);
        await member.RunAsync(c =>
        {
            c.Commit(offsets.Select(kv => new TopicPartitionOffset(topic, kv.Key, kv.Value)));
            return 0;
        });
        await member.CloseAsync();
    }

    /// <summary>Committed offsets and the group survive a clean restart (SIGTERM) and kill -9 of the broker process.</summary>
    [Test]
    [CancelAfter(120_000)]
    public async Task OffsetsAndGroupsSurviveRestartAndKill()
    {
        RequireKayak("restart");
        var broker = await StartBrokerAsync(BrokerMode.Process, GroupAssert.FastGroups());
        var topic = TopicName("durable");
        var group = NewGroup("durable");
        await broker.CreateTopicAsync(topic, Partitions, cancellationToken: Token);
        await GroupAssert.ProduceAsync(broker, topic, RecordCount, Partitions, cancellationToken: Token);

        var first = new Dictionary<int, long> { [0] = 3, [1] = 5, [2] = 7 };
        await CommitAsMemberAsync(broker.BootstrapServers, topic, group, first, Token);
        Assert.That(ConfluentClients.Committed(broker.BootstrapServers, topic, group, Partitions), Is.EqualTo(first), "before restart");

        await broker.StopAsync(Token);
        await broker.StartAgainAsync(Token);
        Assert.That(ConfluentClients.Committed(broker.BootstrapServers, topic, group, Partitions), Is.EqualTo(first), "after clean restart");
        using (var admin = ConfluentClients.Admin(broker.BootstrapServers))
        {
            var info = admin.ListGroup(group, TimeSpan.FromSeconds(10));
            Assert.That(info, Is.Not.Null, "group listed after restart");
            Assert.That(info!.State, Is.EqualTo("Empty"));
            Assert.That(info.ProtocolType, Is.EqualTo("consumer"));
        }
        // A member after the restart resumes at the committed offsets.
        var resumed = await Task.Run(() => ConfluentConsume(broker.BootstrapServers, topic, group, RecordCount - 15, null, null, Token), Token);
        Assert.That(resumed.GroupBy(r => r.Partition).ToDictionary(g => g.Key, g => g.Min(r => r.Offset)), Is.EqualTo(first), "resume points after restart");

        var second = new Dictionary<int, long> { [0] = 9, [1] = 2, [2] = 10 };
        await CommitAsMemberAsync(broker.BootstrapServers, topic, group, second, Token);
        await broker.KillAsync();
        await broker.StartAgainAsync(Token);
        Assert.That(ConfluentClients.Committed(broker.BootstrapServers, topic, group, Partitions), Is.EqualTo(second), "after kill -9");
        using (var admin = ConfluentClients.Admin(broker.BootstrapServers))
        {
            var info = admin.ListGroup(group, TimeSpan.FromSeconds(10));
            Assert.That(info, Is.Not.Null, "group listed after kill -9");
            Assert.That(info!.State, Is.EqualTo("Empty"));
            Assert.That(info.ProtocolType, Is.EqualTo("consumer"));
        }
        var viaPython = await Python.RunAsync("group_admin", new JsonObject
        {
            ["bootstrap"] = broker.BootstrapServers,
            ["op"] = "offsets",
            ["group"] = group,
        }, cancellationToken: Token);
        var pythonOffsets = viaPython["offsets"]!.AsArray().Where(o => o!["topic"]!.GetValue<string>() == topic)
            .ToDictionary(o => o!["partition"]!.GetValue<int>(), o => o!["offset"]!.GetValue<long>());
        Assert.That(pythonOffsets, Is.EqualTo(second), "kafka-python's list_consumer_group_offsets after kill -9");
    }

    /// <summary>
    /// kcat reads __consumer_offsets; its keys and values decode with Kafka's own coordinator-record schemas (an int16
    /// version, then the body) to exactly the offsets the group committed, and the group's metadata record is there.
    /// </summary>
    [Test]
    [CancelAfter(60_000)]
    public async Task ConsumerOffsetsTopicDecodesAsKafkaFormat()
    {
        var broker = await StartBrokerAsync(BrokerMode.InProcess, GroupAssert.FastGroups(offsetsPartitions: 3));
        var topic = TopicName("cot");
        var group = NewGroup("cot");
        await broker.CreateTopicAsync(topic, Partitions, cancellationToken: Token);
        var offsets = new Dictionary<int, long> { [0] = 11, [1] = 22, [2] = 33 };
        await CommitAsMemberAsync(broker.BootstrapServers, topic, group, offsets, Token);
        Assert.That(ConfluentClients.Committed(broker.BootstrapServers, topic, group, Partitions), Is.EqualTo(offsets));

        var records = await KcatRawAsync(broker.BootstrapServers, "__consumer_offsets", Token);
        var latestOffsets = new Dictionary<int, OffsetCommitValue?>();
        GroupMetadataValue? groupValue = null;
        foreach (var (key, value) in records)
        {
            Assert.That(key, Is.Not.Null, "every __consumer_offsets record has a key");
            var keyVersion = BinaryPrimitives.ReadInt16BigEndian(key!);
            var keyBody = new ReadOnlyMemory<byte>(key, 2, key!.Length - 2);
            if (keyVersion is 0 or 1)
            {
                var k = new OffsetCommitKey();
                var reader = new KafkaReader(keyBody);
                k.Read(ref reader, keyVersion);
                if (k.Group != group || k.Topic != topic)
                    continue;
                OffsetCommitValue? v = null;
                if (value is not null)
                {
                    var valueVersion = BinaryPrimitives.ReadInt16BigEndian(value);
                    var valueReader = new KafkaReader(new ReadOnlyMemory<byte>(value, 2, value.Length - 2));
                    v = new OffsetCommitValue();
                    v.Read(ref valueReader, valueVersion);
                }
                latestOffsets[k.Partition] = v;
            }
            else if (keyVersion == 2)
            {
                var k = new GroupMetadataKey();
                var reader = new KafkaReader(keyBody);
                k.Read(ref reader, keyVersion);
                if (k.Group != group || value is null)
                    continue;
                var valueVersion = BinaryPrimitives.ReadInt16BigEndian(value);
                var valueReader = new KafkaReader(new ReadOnlyMemory<byte>(value, 2, value.Length - 2));
                groupValue = new GroupMetadataValue();
                groupValue.Read(ref valueReader, valueVersion);
            }
            else
            {
                Assert.Fail($"unexpected key version {keyVersion} in __consumer_offsets");
            }
        }
        Assert.That(latestOffsets.ToDictionary(kv => kv.Key, kv => kv.Value?.Offset ?? -1), Is.EqualTo(offsets), "latest OffsetCommitValue per partition");
        Assert.That(latestOffsets.Values.All(v => v!.CommitTimestamp > 0), "commit timestamps set");
        Assert.That(groupValue, Is.Not.Null, "group metadata record present");
        Assert.That(groupValue!.ProtocolType, Is.EqualTo("consumer"));
        Assert.That(groupValue.Generation, Is.GreaterThan(0));
    }

    /// <summary>
    /// kcat -C -e over every partition of a topic with a byte-exact format: "%p %o %K %S\n" then the key and value bytes
    /// (kcat's %K/%S are -1 for null). Returns (key, value) in partition/offset order.
    /// </summary>
    private static async Task<List<(byte[]? Key, byte[]? Value)>> KcatRawAsync(string bootstrap, string topic, CancellationToken token)
    {
        var psi = new ProcessStartInfo(Kcat.Executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { "-b", bootstrap, "-X", "api.version.request=true", "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%p %o %K %S\n%k%s\n" })
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync(token);
        using var buffer = new MemoryStream();
        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(token))
        {
            timeout.CancelAfter(TimeSpan.FromSeconds(30));
            await p.StandardOutput.BaseStream.CopyToAsync(buffer, timeout.Token);
            await p.WaitForExitAsync(timeout.Token);
        }
        Assert.That(p.ExitCode, Is.Zero, "kcat: " + await stderr);
        var bytes = buffer.ToArray();
        var result = new List<(byte[]?, byte[]?)>();
        var pos = 0;
        while (pos < bytes.Length)
        {
            var nl = Array.IndexOf(bytes, (byte)'\n', pos);
            var header = Encoding.ASCII.GetString(bytes, pos, nl - pos).Split(' ');
            pos = nl + 1;
            var keyLength = int.Parse(header[2], CultureInfo.InvariantCulture);
            var valueLength = int.Parse(header[3], CultureInfo.InvariantCulture);
            byte[]? key = keyLength < 0 ? null : bytes[pos..(pos + keyLength)];
            pos += Math.Max(0, keyLength);
            byte[]? value = valueLength < 0 ? null : bytes[pos..(pos + valueLength)];
            pos += Math.Max(0, valueLength);
            Assert.That(bytes[pos], Is.EqualTo((byte)'\n'), "kcat record terminator");
            pos++;
            result.Add((key, value));
        }
        return result;
    }

    /// <summary>The broker's own lag (log end offset − committed) equals what Confluent computes from QueryWatermarkOffsets − Committed.</summary>
    [Test]
    [CancelAfter(60_000)]
    public async Task BrokerLagMatchesClientView()
    {
        var broker = await StartBrokerAsync(BrokerMode.InProcess, GroupAssert.FastGroups());
        var topic = TopicName("lag");
        var group = NewGroup("lag");
        await broker.CreateTopicAsync(topic, Partitions, cancellationToken: Token);
        await GroupAssert.ProduceAsync(broker, topic, RecordCount, Partitions, cancellationToken: Token);
        await CommitAsMemberAsync(broker.BootstrapServers, topic, group, new Dictionary<int, long> { [0] = 0, [1] = 4, [2] = 10 }, Token);
        // More records after the commit: lag grows, committed stays.
        await GroupAssert.ProduceAsync(broker, topic, 7, Partitions, "late", Token);

        var state = GroupAssert.State(broker);
        var lag = state.Groups.DescribeLag(group, (t, p) =>
            state.Logs.TryGetTopic(t, out var log) && log.GetPartition(p) is { } partition ? partition.LogEndOffset : -1);
        Assert.That(lag, Has.Count.EqualTo(Partitions));

        using var consumer = ConfluentClients.Consumer(broker.BootstrapServers, c => c.GroupId = group);
        var tps = Enumerable.Range(0, Partitions).Select(p => new TopicPartition(topic, p)).ToList();
        var committed = consumer.Committed(tps, TimeSpan.FromSeconds(10)).ToDictionary(c => c.Partition.Value, c => c.Offset.Value);
        foreach (var tp in tps)
        {
            var high = consumer.QueryWatermarkOffsets(tp, TimeSpan.FromSeconds(10)).High.Value;
            var mine = lag.Single(l => l.Topic == topic && l.Partition == tp.Partition.Value);
            Assert.That(mine.CommittedOffset, Is.EqualTo(committed[tp.Partition.Value]), $"committed {tp}");
            Assert.That(mine.LogEndOffset, Is.EqualTo(high), $"log end offset {tp}");
            Assert.That(mine.Lag, Is.EqualTo(high - committed[tp.Partition.Value]), $"lag {tp}");
        }
        Assert.That(lag.Sum(l => l.Lag), Is.EqualTo(RecordCount + 7 - 14), "total lag");
    }
}
