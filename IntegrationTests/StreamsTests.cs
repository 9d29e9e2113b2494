using System.Globalization;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Kayak.IntegrationTests.Infrastructure;
using NUnit.Framework;
using Streamiz.Kafka.Net;
using Streamiz.Kafka.Net.SerDes;
using Streamiz.Kafka.Net.State;
using Streamiz.Kafka.Net.Table;
using static Kayak.IntegrationTests.StreamsSupport;

namespace Kayak.IntegrationTests;

/// <summary>Which Streamiz state store backs a stateful operation.</summary>
public enum StoreKind
{
    InMemory,

    /// <summary>Streamiz's RocksDB store (native librocksdb.so from the RocksDB package).</summary>
    RocksDb,
}

/// <summary>
/// Kafka Streams semantics through Streamiz.Kafka.Net 1.8.2 (on Confluent.Kafka 2.16 / librdkafka 2.16) against an
/// in-process Kayak broker: stateless operators, a repartitioning aggregation whose internal topics the application
/// creates itself, stream-table and global-table joins, and state restored from the changelog after the local state
/// is wiped. The exactly-once run with a killed application is <see cref="StreamsExactlyOnceTests"/>.
/// </summary>
[TestFixture]
public sealed class StreamsTests : BrokerTestBase
{
    private readonly List<string> stateDirs = [];
    private Log log = new();

    [SetUp]
    public void NewLog() => log = new Log();

    [TearDown]
    public void RemoveState()
    {
        if (TestContext.CurrentContext.Result.Outcome.Status == NUnit.Framework.Interfaces.TestStatus.Failed)
            TestContext.Out.WriteLine(log.Dump());
        foreach (var dir in stateDirs)
        {
            if (Directory.Exists(dir))
                Directory.Delete(dir, recursive: true);
        }
        stateDirs.Clear();
    }

    private string NewStateDir()
    {
        var dir = Path.Combine(Path.GetTempPath(), "kayak-streams-" + Guid.NewGuid().ToString("N"));
        stateDirs.Add(dir);
        return dir;
    }

    private static Materialized<string, long, IKeyValueStore<Streamiz.Kafka.Net.Crosscutting.Bytes, byte[]>> CountStore(StoreKind kind, string name) =>
        kind == StoreKind.RocksDb
            ? RocksDb.As<string, long, StringSerDes, Int64SerDes>(name)
            : InMemory.As<string, long, StringSerDes, Int64SerDes>(name);

    [Test]
    [CancelAfter(120_000)]
    public async Task FilterAndMapValuesToAnotherTopic()
    {
        RequireKayak("Streamiz applications are tested against Kayak");
        var broker = await StartBrokerAsync(BrokerMode.InProcess);
        string input = TopicName("sin"), output = TopicName("sout");
        await broker.CreateTopicAsync(input, 3, cancellationToken: Token);
        await broker.CreateTopicAsync(output, 3, cancellationToken: Token);
        var records = Enumerable.Range(0, 40).Select(i => ($"k{i % 7}", (i % 3 == 0 ? "drop-" : "keep-") + i)).ToList();
        Produce(broker.BootstrapServers, input, records);

        var builder = new StreamBuilder();
        builder.Stream<string, string>(input)
            .Filter((_, v, _) => v.StartsWith("keep-", StringComparison.Ordinal))
            .MapValues((v, _) => v.ToUpperInvariant())
            .To(output);
        using var stream = new KafkaStream(builder.Build(), Config(broker.BootstrapServers, TopicName("app"), NewStateDir(), log));
        await StartAndWaitRunningAsync(stream, log, Token);

        var expected = records.Where(r => r.Item2.StartsWith("keep-", StringComparison.Ordinal)).Select(r => (r.Item1, r.Item2.ToUpperInvariant())).ToList();
        var got = await ReadUntilAsync(broker.BootstrapServers, output, r => r.Count >= expected.Count, "filtered output", log, Token);
        Assert.That(got.Select(r => (r.Key, r.Value)), Is.EquivalentTo(expected), "each kept record exactly once, key kept, value mapped");
        foreach (var key in expected.Select(e => e.Item1).Distinct())
        {
            // One key, one partition: its records keep their input order.
            Assert.That(got.Where(r => r.Key == key).OrderBy(r => r.Offset).Select(r => r.Value), Is.EqualTo(expected.Where(e => e.Item1 == key).Select(e => e.Item2)), key);
            Assert.That(got.Where(r => r.Key == key).Select(r => r.Partition).Distinct().Count(), Is.EqualTo(1), key);
        }
    }

    private static readonly string[] Lines =
    [
        "the quick brown fox", "jumps over the lazy dog", "the dog barks", "a fox is quick",
        "over and over", "the end",
    ];

    private static Dictionary<string, int> WordCounts(IEnumerable<string> lines) =>
        lines.SelectMany(l => l.Split(' ')).GroupBy(w => w).ToDictionary(g => g.Key, g => g.Count());

    private static StreamBuilder WordCount(string input, string output, StoreKind kind)
    {
        var builder = new StreamBuilder();
        builder.Stream<string, string>(input)
            .FlatMapValues((v, _) => v.Split(' '))
            .GroupBy((_, word, _) => word)
            .Count(CountStore(kind, "wc-store"))
            .ToStream()
            .MapValues((n, _) => n.ToString(CultureInfo.InvariantCulture))
            .To(output);
        return builder;
    }

    /// <summary>Every count update of each word, in the order the output partition holds them.</summary>
    private static Dictionary<string, List<long>> CountSequences(IEnumerable<StreamRecord> output) =>
        output.OrderBy(r => r.Partition).ThenBy(r => r.Offset).GroupBy(r => r.Key!)
            .ToDictionary(g => g.Key, g => g.Select(r => long.Parse(r.Value!, CultureInfo.InvariantCulture)).ToList());

    [TestCase(StoreKind.InMemory)]
    [TestCase(StoreKind.RocksDb)]
    [CancelAfter(180_000)]
    public async Task WordCountThroughRepartitionAndChangelogTopics(StoreKind kind)
    {
        RequireKayak("Streamiz applications are tested against Kayak");
        var broker = await StartBrokerAsync(BrokerMode.InProcess);
        string input = TopicName("lines"), output = TopicName("counts"), appId = TopicName("wc");
        await broker.CreateTopicAsync(input, 2, cancellationToken: Token);
        await broker.CreateTopicAsync(output, 2, cancellationToken: Token);
        Produce(broker.BootstrapServers, input, Lines.Select((l, i) => ($"line{i}", l)));

        using var stream = new KafkaStream(WordCount(input, output, kind).Build(), Config(broker.BootstrapServers, appId, NewStateDir(), log));
        await StartAndWaitRunningAsync(stream, log, Token);

        var expected = WordCounts(Lines);
        var got = await ReadUntilAsync(broker.BootstrapServers, output, r => r.Count >= expected.Values.Sum(), "word counts", log, Token);
        // No record cache is configured, so each input word emits one update: 1, 2, ..., n per word, exactly.
        var sequences = CountSequences(got);
        Assert.That(sequences.Keys, Is.EquivalentTo(expected.Keys));
        foreach (var (word, n) in expected)
            Assert.That(sequences[word], Is.EqualTo(Enumerable.Range(1, n).Select(i => (long)i)), word);

        // The application created its internal topics through CreateTopics: the groupBy repartition topic (input's
        // partition count, delete policy) and the store's changelog (compacted), keyed by word.
        string repartition = $"{appId}-wc-store-repartition", changelog = $"{appId}-wc-store-changelog";
        using var admin = ConfluentClients.Admin(broker.BootstrapServers);
        var topics = admin.GetMetadata(TimeSpan.FromSeconds(10)).Topics.Where(t => t.Topic.StartsWith(appId, StringComparison.Ordinal)).ToDictionary(t => t.Topic, t => t.Partitions.Count);
        Assert.That(topics, Is.EquivalentTo(new Dictionary<string, int> { [repartition] = 2, [changelog] = 2 }));
        var configs = await admin.DescribeConfigsAsync([new ConfigResource { Type = ResourceType.Topic, Name = changelog }, new ConfigResource { Type = ResourceType.Topic, Name = repartition }]);
        Assert.That(configs.Single(c => c.ConfigResource.Name == changelog).Entries["cleanup.policy"].Value, Is.EqualTo("compact"));
        Assert.That(configs.Single(c => c.ConfigResource.Name == repartition).Entries["cleanup.policy"].Value, Is.EqualTo("delete"));
        var changelogRecords = ReadAll(broker.BootstrapServers, changelog);
        Assert.That(changelogRecords.Select(r => r.Key).Distinct(), Is.EquivalentTo(expected.Keys), "changelog keyed by word");
        Assert.That(changelogRecords, Has.Count.EqualTo(expected.Values.Sum()), "one changelog update per count update");
    }

    [Test]
    [CancelAfter(180_000)]
    public async Task StreamTableAndGlobalTableJoins()
    {
        RequireKayak("Streamiz applications are tested against Kayak");
        var broker = await StartBrokerAsync(BrokerMode.InProcess);
        string orders = TopicName("orders"), customers = TopicName("customers"), products = TopicName("products"), output = TopicName("enriched");
        // orders and customers are co-partitioned (same key, same partition count, same partitioner); the global
        // table is read whole by every instance, so its partitioning does not matter.
        await broker.CreateTopicAsync(orders, 3, cancellationToken: Token);
        await broker.CreateTopicAsync(customers, 3, cancellationToken: Token);
        await broker.CreateTopicAsync(products, 2, cancellationToken: Token);
        await broker.CreateTopicAsync(output, 3, cancellationToken: Token);
        var customerNames = Enumerable.Range(0, 6).ToDictionary(i => $"c{i}", i => $"name{i}");
        var productNames = Enumerable.Range(0, 4).ToDictionary(i => $"p{i}", i => $"product{i}");
        Produce(broker.BootstrapServers, customers, customerNames.Select(kv => (kv.Key, kv.Value)));
        Produce(broker.BootstrapServers, products, productNames.Select(kv => (kv.Key, kv.Value)));

        var builder = new StreamBuilder();
        var customerTable = builder.Table(customers, InMemory.As<string, string>("customers-store"));
        var productTable = builder.GlobalTable(products, InMemory.As<string, string>("products-store"));
        builder.Stream<string, string>(orders)
            .Join(customerTable, (order, customer) => order + "|" + customer)
            .Join(productTable, (_, v) => v.Split('|')[1], (v, product) => v + "|" + product)
            .To(output);
        using var stream = new KafkaStream(builder.Build(), Config(broker.BootstrapServers, TopicName("join"), NewStateDir(), log));
        await StartAndWaitRunningAsync(stream, log, Token);

        // A stream-table join looks up the table as it is when the order is processed: wait until the application's
        // table holds every customer (interactive query) before any order exists.
        var store = stream.Store(StoreQueryParameters.FromNameAndType("customers-store", QueryableStoreTypes.KeyValueStore<string, string>()));
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (!customerNames.All(kv => store.Get(kv.Key) == kv.Value))
        {
            if (DateTime.UtcNow > deadline)
                Assert.Fail($"customers-store has {store.ApproximateNumEntries()} of {customerNames.Count} customers\n{log.Dump()}");
            await Task.Delay(100, Token);
        }

        // order value "orderId|productId"; c9 is no customer and p9 no product: inner joins drop those orders.
        var orderRecords = Enumerable.Range(0, 24).Select(i => (Key: i % 8 == 7 ? "c9" : $"c{i % 6}", Value: $"o{i}|" + (i % 10 == 9 ? "p9" : $"p{i % 4}"))).ToList();
        Produce(broker.BootstrapServers, orders, orderRecords);
        var expected = orderRecords
            .Where(o => customerNames.ContainsKey(o.Key) && productNames.ContainsKey(o.Value.Split('|')[1]))
            .Select(o => (o.Key, $"{o.Value}|{customerNames[o.Key]}|{productNames[o.Value.Split('|')[1]]}"))
            .ToList();
        Assert.That(expected, Has.Count.InRange(15, 20), "the data keeps some orders and drops some");
        var got = await ReadUntilAsync(broker.BootstrapServers, output, r => r.Count >= expected.Count, "joined orders", log, Token);
        // Let any wrongly joined record that is still on its way arrive before the exact comparison.
        await Task.Delay(1000, Token);
        got = ReadAll(broker.BootstrapServers, output);
        Assert.That(got.Select(r => (r.Key, r.Value)), Is.EquivalentTo(expected));
    }

    [TestCase(StoreKind.InMemory)]
    [TestCase(StoreKind.RocksDb)]
    [CancelAfter(240_000)]
    public async Task StateIsRestoredFromTheChangelogAfterLocalStateIsWiped(StoreKind kind)
    {
        RequireKayak("Streamiz applications are tested against Kayak");
        var broker = await StartBrokerAsync(BrokerMode.InProcess);
        string input = TopicName("lines"), output = TopicName("counts"), appId = TopicName("wcr");
        await broker.CreateTopicAsync(input, 2, cancellationToken: Token);
        await broker.CreateTopicAsync(output, 2, cancellationToken: Token);
        var stateDir = NewStateDir();
        string[] first = Lines[..3], second = Lines[3..];

        Produce(broker.BootstrapServers, input, first.Select((l, i) => ($"a{i}", l)));
        using (var stream = new KafkaStream(WordCount(input, output, kind).Build(), Config(broker.BootstrapServers, appId, stateDir, log)))
        {
            await StartAndWaitRunningAsync(stream, log, Token);
            var firstCounts = WordCounts(first).ToDictionary(kv => kv.Key, kv => kv.Value.ToString(CultureInfo.InvariantCulture));
            await ReadUntilAsync(broker.BootstrapServers, output, r => LatestByKey(r).Count == firstCounts.Count && firstCounts.All(kv => LatestByKey(r)[kv.Key] == kv.Value), "first run's counts", log, Token);
        }
        // RocksDB keeps the store in files under the state directory; an in-memory store has none there and is
        // rebuilt from the changelog on every start anyway.
        if (kind == StoreKind.RocksDb)
            Assert.That(Directory.EnumerateFiles(stateDir, "*", SearchOption.AllDirectories).Any(), "the first run kept local state");
        if (Directory.Exists(stateDir))
            Directory.Delete(stateDir, recursive: true);

        Produce(broker.BootstrapServers, input, second.Select((l, i) => ($"b{i}", l)));
        var restored = new System.Collections.Concurrent.ConcurrentDictionary<int, long>();
        using (var stream = new KafkaStream(WordCount(input, output, kind).Build(), Config(broker.BootstrapServers, appId, stateDir, log)))
        {
            stream.OnRestoreEndEvent += (tp, store, total) =>
            {
                if (store == "wc-store")
                    restored[tp.Partition.Value] = total;
            };
            await StartAndWaitRunningAsync(stream, log, Token);
            // Counts continue from the restored state: a store that started empty would count the second run only.
            var all = WordCounts(first.Concat(second)).ToDictionary(kv => kv.Key, kv => kv.Value.ToString(CultureInfo.InvariantCulture));
            var got = await ReadUntilAsync(broker.BootstrapServers, output, r => LatestByKey(r).Count == all.Count && all.All(kv => LatestByKey(r)[kv.Key] == kv.Value), "counts over both runs", log, Token);
            var sequences = CountSequences(got);
            foreach (var (word, n) in WordCounts(first.Concat(second)))
                Assert.That(sequences[word], Is.EqualTo(Enumerable.Range(1, n).Select(i => (long)i)), $"{word}: each count exactly once across the restart");
        }
        // Restored from the changelog, not from local files: the first run's updates were read back (at least the
        // latest per word; compaction may have dropped older ones).
        Assert.That(restored.Values.Sum(), Is.InRange(WordCounts(first).Count, WordCounts(first).Values.Sum()), "changelog records restored into the wiped store");
    }
}
