using Kayak.IntegrationTests.Infrastructure;
using Microsoft.Extensions.Logging;
using Streamiz.Kafka.Net;
using Streamiz.Kafka.Net.SerDes;
using Streamiz.Kafka.Net.Table;

// Usage: Kayak.StreamsApp bootstrap=H:P app=ID state=DIR input=T mapped=T counts=T store=memory|rocksdb [delay-ms=N] [commit-ms=N]
// Exactly-once topology over `input` (string keys and values): every record goes to `mapped` as "seen:<value>", and a
// per-key running count (changelogged store) goes to `counts` as a decimal string. delay-ms slows each
// record and commit-ms (default 200) spaces the commits, so that a transaction holds output for a while (the test
// kills the process then). Prints RUNNING once the
// KafkaStream is running; runs until stdin closes or SIGTERM, then closes cleanly.
var options = args.Select(a => a.Split('=', 2)).ToDictionary(kv => kv[0], kv => kv[1]);
NativeKafka.EnsureLoaded();
var delayMs = options.TryGetValue("delay-ms", out var d) ? int.Parse(d) : 0;
var commitMs = options.TryGetValue("commit-ms", out var c) ? long.Parse(c) : 200;

var config = new StreamConfig<StringSerDes, StringSerDes>
{
    ApplicationId = options["app"],
    BootstrapServers = options["bootstrap"],
    StateDir = options["state"],
    Guarantee = ProcessingGuarantee.EXACTLY_ONCE,
    AutoOffsetReset = Confluent.Kafka.AutoOffsetReset.Earliest,
    // Each commit ends a transaction (EOS default every 100 ms).
    CommitIntervalMs = commitMs,
    // The killed instance stays a group member until its session expires; the restarted one's join waits for that.
    SessionTimeoutMs = 6_000,
    // A transactional.id that is not reused (see the test) leaves the killed instance's transaction to the broker's
    // timeout, librdkafka's default 60 s otherwise.
    TransactionTimeoutMs = 10_000,
    Logger = LoggerFactory.Create(b => b.AddConsole().SetMinimumLevel(LogLevel.Warning)),
};

var builder = new StreamBuilder();
var input = builder.Stream<string, string>(options["input"]);
input.MapValues((v, _) =>
{
    if (delayMs > 0)
        Thread.Sleep(delayMs);
    return "seen:" + v;
}).To(options["mapped"]);
input.GroupByKey()
    // A persistent store makes Streamiz keep its process id in the state directory, and so the transactional.id
    // (app-processId-thread) across restarts; with only in-memory stores every start gets a new one.
    .Count(options["store"] == "rocksdb" ? RocksDb.As<string, long>("eos-counts") : InMemory.As<string, long>("eos-counts"))
    .ToStream()
    .MapValues((v, _) => v.ToString(System.Globalization.CultureInfo.InvariantCulture))
    .To(options["counts"]);

using var stream = new KafkaStream(builder.Build(), config);
var running = new TaskCompletionSource();
stream.StateChanged += (_, state) =>
{
    if (state == KafkaStream.State.RUNNING)
        running.TrySetResult();
};
using var stop = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) => { e.Cancel = true; stop.Cancel(); };
// SIGTERM ends Main (and so disposes the stream) instead of exiting under it.
using var sigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; stop.Cancel(); });
_ = Task.Run(() => { Console.In.ReadToEnd(); stop.Cancel(); });

await stream.StartAsync(stop.Token);
await running.Task.WaitAsync(stop.Token);
Console.Out.WriteLine("RUNNING");
Console.Out.Flush();
try
{
    await Task.Delay(Timeout.Infinite, stop.Token);
}
catch (OperationCanceledException)
{
}
return 0;
