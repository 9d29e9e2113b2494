using System.Diagnostics;
using System.Globalization;
using System.Text;
using Confluent.Kafka;
using Kayak.IntegrationTests.Infrastructure;
using NUnit.Framework;
using static Kayak.IntegrationTests.StreamsSupport;

namespace Kayak.IntegrationTests;

/// <summary>
/// Streamiz's ProcessingGuarantee.EXACTLY_ONCE across a crash: the application (IntegrationTests/StreamsApp, its own
/// process so that it can be killed with SIGKILL; disposing an in-process KafkaStream commits) is killed while a
/// transaction holds output records, then restarted on the same state directory. With a RocksDB store Streamiz keeps
/// its process id there, so the restarted producer has the same transactional.id and InitProducerId fences the dead
/// one and aborts its transaction; with in-memory stores only, the id is new and the broker aborts the dead
/// transaction when its timeout (10 s here) expires. Either way read_committed then sees every input record's output
/// exactly once and every running count exactly once.
/// </summary>
[TestFixture]
public sealed class StreamsExactlyOnceTests : BrokerTestBase
{
    private sealed class App : IAsyncDisposable
    {
        private readonly Process process;
        private readonly StringBuilder output = new();
        private readonly TaskCompletionSource running = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public App(IEnumerable<string> args)
        {
            var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
            info.ArgumentList.Add(RepoPaths.StreamsAppDll);
            foreach (var a in args)
                info.ArgumentList.Add(a);
            process = new Process { StartInfo = info, EnableRaisingEvents = true };
            process.OutputDataReceived += (_, e) => OnLine(e.Data);
            process.ErrorDataReceived += (_, e) => OnLine(e.Data);
            process.Exited += (_, _) => running.TrySetException(new AssertionException($"StreamsApp exited with {process.ExitCode}\n{Output}"));
            process.Start();
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
        }

        public string Output
        {
            get
            {
                lock (output)
                    return output.ToString();
            }
        }

        private void OnLine(string? line)
        {
            if (line is null)
                return;
            lock (output)
                output.AppendLine(line);
            if (line == "RUNNING")
                running.TrySetResult();
        }

        public Task RunningAsync(CancellationToken cancellationToken) => running.Task.WaitAsync(TimeSpan.FromSeconds(90), cancellationToken);

        /// <summary>SIGKILL: no commit, no abort, no LeaveGroup; the open transaction stays open on the broker.</summary>
        public async Task KillAsync()
        {
            ProcessRunner.KillTree(process);
            await process.WaitForExitAsync();
        }

        /// <summary>Closes stdin: the application disposes its KafkaStream (commits and leaves) and exits.</summary>
        public async Task StopAsync(CancellationToken cancellationToken)
        {
            process.StandardInput.Close();
            await process.WaitForExitAsync(cancellationToken).WaitAsync(TimeSpan.FromSeconds(60), cancellationToken);
        }

        public async ValueTask DisposeAsync()
        {
            if (!process.HasExited)
                await KillAsync();
            process.Dispose();
        }
    }

    /// <summary>ListOffsets latest summed over the topic's partitions: the high watermarks, or the last stable offsets under read_committed.</summary>
    private static long Sum(IConsumer<byte[], byte[]> consumer, string topic, int partitions) =>
        Enumerable.Range(0, partitions).Sum(p => consumer.QueryWatermarkOffsets(new TopicPartition(topic, p), TimeSpan.FromSeconds(10)).High.Value);

    [TestCase(StoreKind.RocksDb)]
    [TestCase(StoreKind.InMemory)]
    [CancelAfter(300_000)]
    public async Task KilledMidTransactionAndRestartedOutputsEachRecordExactlyOnce(StoreKind store)
    {
        RequireKayak("Streamiz applications are tested against Kayak");
        Assert.That(File.Exists(RepoPaths.StreamsAppDll), $"{RepoPaths.StreamsAppDll} not built");
        var broker = await StartBrokerAsync(BrokerMode.InProcess);
        string input = TopicName("eosin"), mapped = TopicName("eosmapped"), counts = TopicName("eoscounts"), appId = TopicName("eos");
        foreach (var t in new[] { input, mapped, counts })
            await broker.CreateTopicAsync(t, 2, cancellationToken: Token);
        var stateDir = Path.Combine(Path.GetTempPath(), "kayak-streams-eos-" + Guid.NewGuid().ToString("N"));
        string[] Args(int delayMs, int commitMs) => [$"bootstrap={broker.BootstrapServers}", $"app={appId}", $"state={stateDir}", $"input={input}", $"mapped={mapped}", $"counts={counts}", $"store={(store == StoreKind.RocksDb ? "rocksdb" : "memory")}", $"delay-ms={delayMs}", $"commit-ms={commitMs}"];
        const int first = 600, total = 1000;
        var records = Enumerable.Range(0, total).Select(i => (Key: $"k{i % 10}", Value: i.ToString(CultureInfo.InvariantCulture))).ToList();
        var log = new Log();
        var clock = Stopwatch.StartNew();
        void Phase(string what) => TestContext.Out.WriteLine($"[{clock.Elapsed.TotalSeconds:F1} s] {what}");
        try
        {
            Produce(broker.BootstrapServers, input, records.Take(first));
            long committedAtKill, writtenAtKill;
            // About 6 s of processing in transactions of about 1 s each.
            await using (var app = new App(Args(delayMs: 10, commitMs: 1000)))
            {
                await app.RunningAsync(Token);
                Phase("first instance running");
                // Kill once some transactions have committed and the current one has written output (10 records at
                // least) not yet committed.
                // Both consumers connected before the loop, so that the two queries follow each other closely.
                using var uncommittedView = ConfluentClients.Consumer(broker.BootstrapServers, c => c.IsolationLevel = IsolationLevel.ReadUncommitted);
                using var committedView = ConfluentClients.Consumer(broker.BootstrapServers, c => c.IsolationLevel = IsolationLevel.ReadCommitted);
                var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
                while (true)
                {
                    // High watermark first, LSO after: an LSO still below the earlier high watermark means records
                    // written before are not committed yet (with the reverse order, growth in between looks the same).
                    writtenAtKill = Sum(uncommittedView, mapped, 2);
                    committedAtKill = Sum(committedView, mapped, 2);
                    if (committedAtKill > 0 && writtenAtKill - committedAtKill >= 10)
                        break;
                    if (DateTime.UtcNow > deadline)
                        Assert.Fail($"never saw committed output plus an open transaction (LSO sum {committedAtKill}, high watermark sum {writtenAtKill})\n{app.Output}");
                    await Task.Delay(20, Token);
                }
                await app.KillAsync();
                Phase($"killed with {committedAtKill} committed and {writtenAtKill} written mapped records\n{app.Output}");
            }
            Assert.That(committedAtKill, Is.LessThan(first), "killed mid-run");

            Produce(broker.BootstrapServers, input, records.Skip(first));
            await using (var app = new App(Args(delayMs: 0, commitMs: 200)))
            {
                await app.RunningAsync(Token);
                Phase("second instance running");
                await ReadUntilAsync(broker.BootstrapServers, mapped, r => r.Count >= total, "mapped output after the restart", log, Token);
                Phase("all output committed");
                await app.StopAsync(Token);
                Phase("second instance stopped\n" + app.Output);
            }

            var mappedRecords = ReadAll(broker.BootstrapServers, mapped);
            Assert.That(mappedRecords.Select(r => (r.Key, r.Value)), Is.EquivalentTo(records.Select(r => (r.Key, "seen:" + r.Value))), "read_committed: each input record's output exactly once");
            var countRecords = ReadAll(broker.BootstrapServers, counts);
            foreach (var key in records.Select(r => r.Key).Distinct())
            {
                var sequence = countRecords.Where(r => r.Key == key).OrderBy(r => r.Offset).Select(r => long.Parse(r.Value!, CultureInfo.InvariantCulture));
                Assert.That(sequence, Is.EqualTo(Enumerable.Range(1, total / 10).Select(i => (long)i)), $"{key}: counts 1..n, none repeated, none skipped");
            }
            // The killed transaction's records are still in the log, aborted: read_uncommitted returns them too.
            var uncommitted = ReadAll(broker.BootstrapServers, mapped, IsolationLevel.ReadUncommitted);
            // Everything between the LSO and the earlier high watermark belonged to the open transaction.
            Assert.That(uncommitted, Has.Count.GreaterThanOrEqualTo(total + writtenAtKill - committedAtKill), "the killed transaction's records exist, aborted, and read_committed skipped them");
        }
        finally
        {
            if (Directory.Exists(stateDir))
                Directory.Delete(stateDir, recursive: true);
        }
    }
}
