using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json.Nodes;
using Confluent.Kafka;
using Kayak.IntegrationTests.Drivers;
using Kayak.IntegrationTests.Infrastructure;
using Kayak.Testing;
using NUnit.Framework;
using KafkaErrorCode = Kayak.Protocol.ErrorCode;
using ApiKey = Kayak.Protocol.ApiKey;

namespace Kayak.IntegrationTests;

/// <summary>
/// Issue 14, steps 3-5, with stock clients: Confluent.Kafka 2.16's idempotent producer retries through injected
/// NOT_LEADER_OR_FOLLOWER and REQUEST_TIMED_OUT and delivers every record exactly once; a consumer group member
/// survives its broker being paused and resumed; the Host's HTTP control endpoint, driven by python3's urllib, stops
/// and starts a broker and injects an error that kafka-python's producer sees and a Metadata error kcat -L shows.
/// </summary>
[TestFixture]
public sealed class FaultInjectionClientTests
{
    private static CancellationToken Token => TestContext.CurrentContext.CancellationToken;

    [Test]
    [CancelAfter(120_000)]
    public async Task IdempotentProducer_RetriesThroughInjectedErrors_AndDeliversEveryRecordOnce()
    {
        await using var kafka = await KayakFixture.StartAsync(brokers: 3);
        const string topic = "retried";
        await kafka.CreateTopicAsync(topic, partitions: 3, replicationFactor: 1);
        // Each broker's first Produce requests fail: two as NOT_LEADER_OR_FOLLOWER (librdkafka refreshes metadata
        // and retries), then two as REQUEST_TIMED_OUT (retried with the same sequence numbers).
        kafka.InjectError(ApiKey.Produce, KafkaErrorCode.NotLeaderOrFollower, count: 2);
        kafka.InjectError(ApiKey.Produce, KafkaErrorCode.RequestTimedOut, count: 2);

        const int count = 300;
        using (var producer = ConfluentClients.Producer(kafka.BootstrapServers, c =>
               {
                   c.EnableIdempotence = true;
                   c.Acks = Acks.All;
                   c.MaxInFlight = 5;
                   c.RetryBackoffMs = 20;
                   c.MessageTimeoutMs = 90_000;
               }))
        {
            var deliveries = new List<Task<DeliveryResult<byte[], byte[]>>>();
            for (int i = 0; i < count; i++)
                deliveries.Add(producer.ProduceAsync(new TopicPartition(topic, i % 3),
                    new Message<byte[], byte[]> { Key = ConfluentClients.Utf8($"k{i}")!, Value = ConfluentClients.Utf8($"v{i}")! }, Token));
            var results = await Task.WhenAll(deliveries);
            Assert.That(results.Select(r => r.Status), Is.All.EqualTo(PersistenceStatus.Persisted));
            foreach (var g in results.GroupBy(r => r.Partition.Value))
                Assert.That(g.Select(r => r.Offset.Value).OrderBy(o => o), Is.EqualTo(Enumerable.Range(0, count / 3).Select(o => (long)o)));
        }
        for (int id = 1; id <= 3; id++)
            Assert.That(kafka.Faults(id).PendingErrors, Is.EqualTo(0), $"broker {id} answered every injected error");

        var consumed = ConfluentClients.ConsumeAll(kafka.BootstrapServers, topic, TimeSpan.FromSeconds(60), cancellationToken: Token, partitionCount: 3);
        Assert.That(consumed, Has.Count.EqualTo(count), "each record exactly once");
        Assert.That(consumed.Select(r => r.Key).Distinct().Count(), Is.EqualTo(count));
    }

    [Test]
    [CancelAfter(120_000)]
    public async Task Consumer_SurvivesItsBrokerBeingPaused_AndReadsOnAfterResume()
    {
        await using var kafka = await KayakFixture.StartAsync(brokers: 1);
        const string topic = "paused";
        await kafka.CreateTopicAsync(topic, partitions: 1);
        using var producer = ConfluentClients.Producer(kafka.BootstrapServers, c => c.MessageTimeoutMs = 90_000);
        for (int i = 0; i < 50; i++)
            await producer.ProduceAsync(topic, new Message<byte[], byte[]> { Key = ConfluentClients.Utf8($"a{i}")!, Value = ConfluentClients.Utf8("x")! }, Token);

        string group = "paused-" + Guid.NewGuid().ToString("N");
        using var consumer = ConfluentClients.Consumer(kafka.BootstrapServers, c => c.GroupId = group);
        consumer.Subscribe(topic);
        var seen = new List<string>();
        while (seen.Count < 50)
            if (consumer.Consume(TimeSpan.FromSeconds(1)) is { } r) seen.Add(ConfluentClients.FromUtf8(r.Message.Key)!);

        kafka.PauseBroker(1);
        // Produced while paused: the broker reads the requests and answers nothing, so neither side gets anywhere.
        var held = new List<Task<DeliveryResult<byte[], byte[]>>>();
        for (int i = 0; i < 50; i++)
            held.Add(producer.ProduceAsync(topic, new Message<byte[], byte[]> { Key = ConfluentClients.Utf8($"b{i}")!, Value = ConfluentClients.Utf8("x")! }, Token));
        for (int i = 0; i < 3; i++)
            Assert.That(consumer.Consume(TimeSpan.FromMilliseconds(500)), Is.Null, "nothing arrives from a paused broker");
        Assert.That(held.Any(t => t.IsCompleted), Is.False, "no produce is answered while paused");

        kafka.ResumeBroker(1);
        var results = await Task.WhenAll(held);
        Assert.That(results.Select(r => r.Offset.Value), Is.EqualTo(Enumerable.Range(50, 50).Select(o => (long)o)));
        while (seen.Count < 100)
            if (consumer.Consume(Token) is { } r) seen.Add(ConfluentClients.FromUtf8(r.Message.Key)!);
        Assert.That(seen, Is.EqualTo(Enumerable.Range(0, 50).Select(i => $"a{i}").Concat(Enumerable.Range(0, 50).Select(i => $"b{i}"))));
        consumer.Commit();
        Assert.That(ConfluentClients.Committed(kafka.BootstrapServers, topic, group, 1)[0], Is.EqualTo(100));
        consumer.Close();
    }

    [Test]
    [CancelAfter(180_000)]
    public async Task HttpControlEndpoint_FromPythonUrllib_StopsStartsABroker_AndInjectsErrorsKafkaPythonAndKcatSee()
    {
        string dir = Path.Combine(Path.GetTempPath(), "kayak-itest-control-" + Guid.NewGuid().ToString("N"));
        int ports = KayakFixture.FreePorts(4); // three brokers, then the control endpoint
        string control = $"http://127.0.0.1:{ports + 3}";
        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } h && File.Exists(h) ? h : "dotnet";
        var psi = new ProcessStartInfo(dotnet)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(RepoPaths.BrokerDll);
        foreach (var kv in new[] { $"listeners=PLAINTEXT://127.0.0.1:{ports}", $"log.dirs={dir}", "kayak.cluster.size=3", $"kayak.control.listener={control}" })
        {
            psi.ArgumentList.Add("--override");
            psi.ArgumentList.Add(kv);
        }
        using var host = Process.Start(psi)!;
        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var output = new ConcurrentQueue<string>();
        host.OutputDataReceived += (_, e) => { if (e.Data is { } l) { output.Enqueue(l); if (l.Contains("Control endpoint listening")) ready.TrySetResult(); } };
        host.ErrorDataReceived += (_, e) => { if (e.Data is { } l) output.Enqueue(l); };
        host.BeginOutputReadLine();
        host.BeginErrorReadLine();
        try
        {
            await ready.Task.WaitAsync(TimeSpan.FromSeconds(60), Token);
            string bootstrap = $"127.0.0.1:{ports},127.0.0.1:{ports + 1},127.0.0.1:{ports + 2}";
            var result = await new PythonKafka().RunAsync("control_http",
                new JsonObject { ["control"] = control, ["bootstrap"] = bootstrap, ["topic"] = "http-faults" }, TimeSpan.FromSeconds(150), Token);

            var before = result["cluster_before"]!["brokers"]!.AsArray();
            Assert.That(before.Select(b => (string?)b!["state"]), Is.All.EqualTo("running"));
            Assert.That(before.Select(b => (int)b!["id"]!), Is.EqualTo(new[] { 1, 2, 3 }));
            Assert.That((int)result["stop"]![0]!, Is.EqualTo(200));
            Assert.That((string?)result["cluster_stopped"]!["brokers"]![1]!["state"], Is.EqualTo("stopped"));
            Assert.That((int)result["start"]![0]!, Is.EqualTo(200));
            Assert.That((string?)result["start"]![1]!["state"], Is.EqualTo("running"));
            Assert.That((int)result["bad_error"]![0]!, Is.EqualTo(400));
            Assert.That((int)result["bad_broker"]![0]!, Is.EqualTo(404));
            Assert.That((int)result["inject"]![0]!, Is.EqualTo(200));
            Assert.That((int)result["inject"]![1]!["injected"]!, Is.EqualTo(3));

            var refused = result["refused"];
            Assert.That(refused, Is.Not.Null, "kafka-python's send with retries=0 must fail on the injected error");
            Assert.That((int?)refused!["errno"], Is.EqualTo(6), (string?)refused["type"]);
            Assert.That((long)result["accepted_offset"]!, Is.EqualTo(1), "the refused record took no effect");
            var topics = result["cluster_after"]!["topics"]!.AsArray();
            Assert.That(topics.Select(t => (string?)t!["name"]), Does.Contain("http-faults"));

            // kcat sees a Metadata error injected over HTTP in the topic's error field, and not once cleared.
            using var http = new HttpClient();
            var injected = await http.PostAsync(control + "/v1/faults",
                new StringContent("{\"api\":\"METADATA\",\"error\":\"LEADER_NOT_AVAILABLE\",\"topic\":\"http-faults\",\"count\":-1}"), Token);
            Assert.That((int)injected.StatusCode, Is.EqualTo(200), await injected.Content.ReadAsStringAsync(Token));
            var (_, faulted) = await Kcat.MetadataAsync(bootstrap, "http-faults", Token);
            using (var doc = System.Text.Json.JsonDocument.Parse(faulted))
                Assert.That(doc.RootElement.GetProperty("topics")[0].GetProperty("error").GetString(), Does.Contain("Leader not available"), faulted);
            Assert.That((int)(await http.DeleteAsync(control + "/v1/faults", Token)).StatusCode, Is.EqualTo(200));
            var (healthy, _) = await Kcat.MetadataAsync(bootstrap, "http-faults", Token);
            Assert.That(healthy["http-faults"], Is.EqualTo(1));
        }
        catch
        {
            TestContext.Out.WriteLine(string.Join("\n", output));
            throw;
        }
        finally
        {
            if (!host.HasExited) { host.Kill(entireProcessTree: true); await host.WaitForExitAsync(CancellationToken.None); }
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }
}
