using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using Confluent.Kafka;
using Kayak.Broker;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

// Client quota benchmark (issue 12, part 6): how close a Confluent.Kafka 2.16 producer that sends as fast as it can
// gets to a producer_byte_rate quota (KIP-13) on an in-process Kayak broker. The quota is set over the wire with
// AlterClientQuotas; the producer runs for --warmup seconds (Kafka's sampled rate lets a fresh client send
// quota.window.num - 1 windows' worth before its first throttle) and then --seconds more, over which the achieved rate
// is the payload acknowledged in that span. The quota counts whole Produce requests, so the payload rate sits a little
// below it (record and batch overhead). Kafka's rate is a sum over the last quota.window.num windows, so the bytes the
// broker lets through in a span differ from rate x span by up to about one window's content (the burst when an old
// sample leaves the window); the default 90 s span keeps that error near 10 %.
var inv = CultureInfo.InvariantCulture;
double rate = double.Parse(Arg("--rate") ?? "1048576", inv);
int warmup = int.Parse(Arg("--warmup") ?? "15", inv);
int seconds = int.Parse(Arg("--seconds") ?? "90", inv);
int valueBytes = int.Parse(Arg("--value-bytes") ?? "1000", inv);
const string ClientId = "quota-bench";

var dir = Path.Combine(Path.GetTempPath(), "kayak-quota-bench-" + Guid.NewGuid().ToString("N"));
await using var broker = new KafkaBroker(new KafkaBrokerOptions { Port = 0, DataDir = dir });
await broker.StartAsync();
await broker.CreateTopicAsync("bench", 1);
await SetQuotaAsync(broker.BootstrapServers, rate);

Kayak.IntegrationTests.Infrastructure.NativeKafka.EnsureLoaded();
long acked = 0, failed = 0;
var config = new ProducerConfig
{
    // 64 KiB batches: a request is a small part of a second's quota, so the measured span is not quantised by a few
    // 1 MB requests each worth seconds of quota (librdkafka's default batch.size).
    BootstrapServers = broker.BootstrapServers, ClientId = ClientId, Acks = Acks.All, LingerMs = 5, BatchSize = 65536,
    QueueBufferingMaxKbytes = 1024, MessageTimeoutMs = 300_000, RequestTimeoutMs = 120_000,
};
using var producer = new ProducerBuilder<byte[], byte[]>(config).Build();
var value = new byte[valueBytes];
Random.Shared.NextBytes(value);
var watch = Stopwatch.StartNew();
var end = TimeSpan.FromSeconds(warmup + seconds);
long atWarmup = -1;
Action<DeliveryReport<byte[], byte[]>> onDelivery = r =>
{
    if (r.Error.IsError) Interlocked.Increment(ref failed);
    else Interlocked.Add(ref acked, r.Message.Value.Length);
};
while (watch.Elapsed < end)
{
    if (atWarmup < 0 && watch.Elapsed.TotalSeconds >= warmup) atWarmup = Interlocked.Read(ref acked);
    try { producer.Produce("bench", new Message<byte[], byte[]> { Value = value }, onDelivery); }
    catch (ProduceException<byte[], byte[]> e) when (e.Error.Code == Confluent.Kafka.ErrorCode.Local_QueueFull) { producer.Poll(TimeSpan.FromMilliseconds(10)); }
}
long atEnd = Interlocked.Read(ref acked);
double measured = watch.Elapsed.TotalSeconds - warmup;
producer.Flush(TimeSpan.FromSeconds(60));
double achieved = (atEnd - atWarmup) / measured;
Console.WriteLine($"producer_byte_rate {rate.ToString("N0", inv)} B/s, {valueBytes} B values, warm-up {warmup} s (burst: {atWarmup.ToString("N0", inv)} B acked)");
Console.WriteLine($"achieved payload rate over the next {measured.ToString("F1", inv)} s: {achieved.ToString("N0", inv)} B/s = {(achieved / rate * 100).ToString("F1", inv)} % of the quota; failed deliveries: {failed}");
try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
return Math.Abs(achieved / rate - 1) <= 0.2 ? 0 : 1;

string? Arg(string name) => Array.IndexOf(args, name) is var i && i >= 0 && i + 1 < args.Length ? args[i + 1] : null;

// AlterClientQuotas v1 for /clients/quota-bench over a raw socket: the embedded broker's wire API, as a client sees it.
static async Task SetQuotaAsync(string bootstrap, double rate)
{
    int colon = bootstrap.LastIndexOf(':');
    using var tcp = new TcpClient();
    await tcp.ConnectAsync(bootstrap[..colon], int.Parse(bootstrap[(colon + 1)..], CultureInfo.InvariantCulture));
    var stream = tcp.GetStream();
    var request = new AlterClientQuotasRequest
    {
        Entries = [new AlterClientQuotasRequest.EntryData
        {
            Entity = [new AlterClientQuotasRequest.EntityData { EntityType = "client-id", EntityName = ClientId }],
            Ops = [new AlterClientQuotasRequest.OpData { Key = "producer_byte_rate", Value = rate }],
        }],
    };
    var buffer = new ArrayBufferWriter<byte>();
    var writer = new KafkaWriter(buffer);
    writer.WriteInt32(0);
    new RequestHeader { RequestApiKey = (short)ApiKey.AlterClientQuotas, RequestApiVersion = 1, CorrelationId = 1, ClientId = "quota-bench-admin" }
        .Write(ref writer, ApiMessageTypes.RequestHeaderVersion(ApiKey.AlterClientQuotas, 1));
    request.Write(ref writer, 1);
    writer.Flush();
    var frame = buffer.WrittenSpan.ToArray();
    BinaryPrimitives.WriteInt32BigEndian(frame, frame.Length - 4);
    await stream.WriteAsync(frame);
    var size = new byte[4];
    await stream.ReadExactlyAsync(size);
    var body = new byte[BinaryPrimitives.ReadInt32BigEndian(size)];
    await stream.ReadExactlyAsync(body);
    var reader = new KafkaReader(body);
    new ResponseHeader().Read(ref reader, ApiMessageTypes.ResponseHeaderVersion(ApiKey.AlterClientQuotas, 1));
    var response = new AlterClientQuotasResponse();
    response.Read(ref reader, 1);
    var entry = response.Entries.Single();
    if (entry.ErrorCode != 0) throw new InvalidOperationException($"AlterClientQuotas: {entry.ErrorCode} {entry.ErrorMessage}");
}
