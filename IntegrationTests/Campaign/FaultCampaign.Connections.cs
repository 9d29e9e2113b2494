using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Confluent.Kafka;
using Kayak.IntegrationTests.Infrastructure;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using Kayak.Protocol.Records;
using KafkaException = Confluent.Kafka.KafkaException;
using NUnit.Framework;

namespace Kayak.IntegrationTests.Campaign;

public sealed partial class FaultCampaign
{
    /// <summary>
    /// Scenario 7: many connections and clients that never finish or never read. Idle connections, slowloris clients
    /// (a request one byte per 100 ms) and clients that pipeline produce requests without reading a response run
    /// together; a probe (Metadata, then a produce acknowledged and fetched back) must keep working throughout, the
    /// broker's RSS must stay under a bound, and return near its idle figure once the clients are gone.
    /// Probe latency and RSS are reported; only the bounds are asserted.
    /// </summary>
    [Test]
    [CancelAfter(1_200_000)]
    public async Task ManyConnectionsAndSlowClientsDoNotStarveAProbe()
    {
        RequireKayak("the broker's RSS");
        var row = new ScenarioRow("7 connections, slow clients");
        CampaignReport.Add(row);
        int idle = CampaignSize.Pick(500, 2000);
        int slow = CampaignSize.Pick(1, 20);
        int pipeliners = CampaignSize.Pick(1, 4);
        var duration = TimeSpan.FromSeconds(CampaignSize.Pick(20, 180));
        double peakBoundMb = CampaignSize.Pick(600, 1000);
        // "Near idle": GC'd heaps and pooled buffers may keep some memory; more than this after the clients left is a leak.
        const double idleSlackMb = 100;

        // The broker logs its GC figures beside RssAnon every 5 s (Host's KAYAK_MEMORY_LOG_MS, inherited at spawn):
        // whether memory left after the load is live objects, uncollected garbage, free committed GC memory or native.
        string? memoryLogBefore = Environment.GetEnvironmentVariable("KAYAK_MEMORY_LOG_MS");
        Environment.SetEnvironmentVariable("KAYAK_MEMORY_LOG_MS", "5000");
        BrokerUnderTest broker;
        try { broker = await StartBrokerAsync(BrokerMode.Process, CampaignBroker.Settings()); }
        finally { Environment.SetEnvironmentVariable("KAYAK_MEMORY_LOG_MS", memoryLogBefore); }
        int pid = BrokerProbe.Pid(broker) ?? throw new InvalidOperationException("no broker pid");
        string probeTopic = TopicName("c7p"), floodTopic = TopicName("c7f");
        await broker.CreateTopicAsync(probeTopic, 1, cancellationToken: Token);
        await broker.CreateTopicAsync(floodTopic, 1, cancellationToken: Token);
        var endpoint = IPEndPoint.Parse(broker.BootstrapServers);

        using var probe = new Probe(broker.BootstrapServers, probeTopic);
        for (int i = 0; i < 20; i++) probe.RoundTrip();
        await Task.Delay(2000, Token);
        // The bounds are on the broker's own memory (RssAnon); VmRSS, which also counts the mapped segment pages the
        // flood wrote (page cache), is reported beside it.
        double baseline = BrokerProbe.AnonMb(pid) ?? 0, peakRss = BrokerProbe.RssMb(pid) ?? 0;
        string idleMemory = LastMemoryLine(broker);

        var sockets = new List<Socket>();
        using var stop = new CancellationTokenSource();
        var latencies = new List<double>();
        double peak = baseline;
        long pipelined = 0;
        var clients = new List<Task>();
        try
        {
            for (int i = 0; i < idle; i++)
            {
                var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                await s.ConnectAsync(endpoint, Token);
                sockets.Add(s);
            }
            for (int i = 0; i < slow; i++) clients.Add(SlowlorisAsync(endpoint, stop.Token));
            for (int i = 0; i < pipeliners; i++) clients.Add(Task.Run(() => Interlocked.Add(ref pipelined, PipelineProduce(endpoint, floodTopic, stop.Token)), CancellationToken.None));

            var sw = Stopwatch.StartNew();
            while (sw.Elapsed < duration && row.Problems.Count == 0)
            {
                try
                {
                    latencies.Add(probe.RoundTrip());
                }
                catch (Exception e) when (e is KafkaException or TimeoutException or AggregateException)
                {
                    row.Hangs++;
                    row.Problem($"probe failed under load after {sw.Elapsed.TotalSeconds:F0} s: {e.Message}");
                }
                peak = Math.Max(peak, BrokerProbe.AnonMb(pid) ?? 0);
                peakRss = Math.Max(peakRss, BrokerProbe.RssMb(pid) ?? 0);
                await Task.Delay(100, Token);
            }
            if (!BrokerProbe.IsAlive(pid)) { row.Crashes++; row.Problem("the broker exited under load"); }
        }
        finally
        {
            await stop.CancelAsync();
            foreach (var s in sockets) s.Dispose();
            await Task.WhenAll(clients.Select(c => c.ContinueWith(_ => { }, TaskScheduler.Default)));
        }

        // Clients gone: the probe still works and the RSS settles (allow the GC a minute).
        double after = double.MaxValue;
        var settle = Stopwatch.StartNew();
        while (settle.Elapsed < TimeSpan.FromSeconds(60))
        {
            latencies.Add(probe.RoundTrip());
            after = BrokerProbe.AnonMb(pid) ?? double.MaxValue;
            if (after <= baseline + idleSlackMb / 2) break;
            await Task.Delay(1000, Token);
        }
        foreach (var line in MemoryLines(broker)) TestContext.Out.WriteLine("broker " + line);
        row.Note($"broker at idle: {idleMemory}; at the end: {LastMemoryLine(broker)}");
        row.Cycles = 1;
        row.Acknowledged = probe.Acknowledged;
        row.RssPeakMb = peak;
        row.RssIdleMb = after;
        row.ProbeP99Ms = CampaignReport.Percentile(latencies, 0.99);
        if (peak > peakBoundMb) row.Problem($"RssAnon peak {peak:F0} MB over the bound {peakBoundMb} MB");
        if (after > baseline + idleSlackMb) row.Problem($"RssAnon {after:F0} MB {settle.Elapsed.TotalSeconds:F0} s after the clients left, idle was {baseline:F0} MB (+{idleSlackMb} MB allowed)");
        row.Note($"{idle} idle + {slow} slowloris + {pipeliners} never-reading pipeliners ({pipelined} produce requests sent before the broker stopped reading) for {duration.TotalSeconds:F0} s; " +
            $"RssAnon idle {baseline:F0} MB before, peak {peak:F0}, {after:F0} after (VmRSS peak {peakRss:F0} MB with the mapped segments); {latencies.Count} probes, p50 {CampaignReport.Percentile(latencies, 0.5):F0} ms");
        Finish(row);
    }

    /// <summary>The broker's memory diagnostics lines (Host's MemoryLog), oldest first.</summary>
    private static List<string> MemoryLines(BrokerUnderTest broker)
    {
        var lines = new List<string>();
        foreach (var line in BrokerProbe.OutputOfLatestStart(broker).Split('\n'))
        {
            int at = line.IndexOf("memory: rss-anon=", StringComparison.Ordinal);
            if (at >= 0) lines.Add(line[..Math.Min(line.Length, 24)].Trim() + " " + line[at..].TrimEnd());
        }
        return lines;
    }

    private static string LastMemoryLine(BrokerUnderTest broker) => MemoryLines(broker) is { Count: > 0 } l ? l[^1] : "(no memory line)";

    /// <summary>Metadata, then one acks=all record produced and fetched back: the round trip a health check makes.</summary>
    private sealed class Probe : IDisposable
    {
        private readonly string _bootstrap, _topic;
        private readonly IProducer<byte[], byte[]> _producer;
        private readonly IConsumer<byte[], byte[]> _consumer;
        private readonly IAdminClient _admin;

        public Probe(string bootstrap, string topic)
        {
            (_bootstrap, _topic) = (bootstrap, topic);
            _producer = ConfluentClients.Producer(bootstrap, c => c.LingerMs = 0);
            _consumer = ConfluentClients.Consumer(bootstrap, c => c.FetchWaitMaxMs = 10);
            _consumer.Assign(new TopicPartitionOffset(topic, 0, Offset.Beginning));
            _admin = ConfluentClients.Admin(bootstrap);
        }

        public long Acknowledged { get; private set; }

        public double RoundTrip()
        {
            var sw = Stopwatch.StartNew();
            var md = _admin.GetMetadata(_topic, TimeSpan.FromSeconds(10));
            if (md.Topics.Single().Error.Code != Confluent.Kafka.ErrorCode.NoError) throw new KafkaException(md.Topics.Single().Error);
            string value = Guid.NewGuid().ToString("N");
            var produce = _producer.ProduceAsync(new TopicPartition(_topic, 0), new Message<byte[], byte[]> { Key = [], Value = ConfluentClients.Utf8(value)! });
            if (!produce.Wait(TimeSpan.FromSeconds(15))) throw new TimeoutException($"probe produce to {_bootstrap} not acknowledged in 15 s");
            Acknowledged++;
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
            while (DateTime.UtcNow < deadline)
            {
                var r = _consumer.Consume(TimeSpan.FromMilliseconds(200));
                if (r is not null && ConfluentClients.FromUtf8(r.Message.Value) == value) return sw.Elapsed.TotalMilliseconds;
            }
            throw new TimeoutException("probe record not fetched back in 15 s");
        }

        public void Dispose()
        {
            _consumer.Close();
            _consumer.Dispose();
            _producer.Dispose();
            _admin.Dispose();
        }
    }

    /// <summary>ApiVersions requests sent one byte per 100 ms, one after another, until stopped.</summary>
    private static async Task SlowlorisAsync(IPEndPoint endpoint, CancellationToken stop)
    {
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await s.ConnectAsync(endpoint, stop);
        var frame = Frame(new ApiVersionsRequest(), ApiKey.ApiVersions, 0, 1);
        try
        {
            while (!stop.IsCancellationRequested)
                foreach (var b in frame)
                {
                    await s.SendAsync(new[] { b }, SocketFlags.None, stop);
                    await Task.Delay(100, stop);
                }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException)
        {
        }
    }

    /// <summary>
    /// Produce requests (acks=1, one small record each, so the log stays small) written back to back and no response
    /// ever read: the broker must stop reading this connection when its responses back up, not buffer without bound.
    /// Returns how many were sent; a blocked send ends when the socket is closed at the stop.
    /// </summary>
    private static long PipelineProduce(IPEndPoint endpoint, string topic, CancellationToken stop)
    {
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        s.Connect(endpoint);
        using var closeOnStop = stop.Register(() => s.Dispose());
        using var builder = new RecordBatchBuilder();
        builder.Append(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), [], new byte[100]);
        var request = new ProduceRequest
        {
            Acks = 1,
            TimeoutMs = 10_000,
            TopicData = [new ProduceRequest.TopicProduceData { Name = topic, PartitionData = [new ProduceRequest.PartitionProduceData { Index = 0, Records = builder.ToArray() }] }],
        };
        long sent = 0;
        try
        {
            for (int id = 1; !stop.IsCancellationRequested && sent < 1_000_000; id++)
            {
                s.Send(Frame(request, ApiKey.Produce, 7, id));
                sent++;
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
        return sent;
    }

    /// <summary>A request as it goes on the wire: int32 size, request header, body.</summary>
    private static byte[] Frame(IApiMessage body, ApiKey key, short version, int correlationId)
    {
        var buffer = new ArrayBufferWriter<byte>();
        buffer.GetSpan(4);
        buffer.Advance(4);
        var writer = new KafkaWriter(buffer);
        new RequestHeader { RequestApiKey = (short)key, RequestApiVersion = version, CorrelationId = correlationId, ClientId = "campaign" }
            .Write(ref writer, ApiMessageTypes.RequestHeaderVersion(key, version));
        body.Write(ref writer, version);
        writer.Flush();
        var frame = buffer.WrittenSpan.ToArray();
        BinaryPrimitives.WriteInt32BigEndian(frame, frame.Length - 4);
        return frame;
    }
}
