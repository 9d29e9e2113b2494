using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Confluent.Kafka;
using Kayak.Broker;
using Kayak.IntegrationTests.Drivers;
using Kayak.IntegrationTests.Infrastructure;
using NUnit.Framework;

namespace Kayak.IntegrationTests;

/// <summary>A group member the tests can ask for its current assignment, whatever client runs it.</summary>
public interface IGroupMember
{
    string Name { get; }

    /// <summary>The partitions the member currently owns (what its client last reported).</summary>
    IReadOnlyCollection<int> Partitions { get; }
}

/// <summary>
/// A Confluent.Kafka group consumer polled on its own thread (librdkafka serves rebalance callbacks from Consume), so
/// the test thread can watch its assignment. Every consumer call happens on that thread: Close is requested and done
/// there too.
/// </summary>
public sealed class PolledConsumer : IGroupMember, IDisposable
{
    private readonly Thread thread;
    private readonly ConcurrentQueue<Action<IConsumer<byte[], byte[]>>> work = new();
    private readonly TaskCompletionSource closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile bool stop;
    private volatile bool kill;
    private volatile int[] partitions = [];
    private volatile string lastError = "";
    private int assignedCallbacks;
    private int revokedCallbacks;

    /// <param name="onAssignmentChanged">Run on the poll thread inside every assigned, revoked and lost callback, after
    /// <see cref="Partitions"/> changed (e.g. to check ownership at the instant it changes).</param>
    public PolledConsumer(string name, string bootstrap, string topic, Action<ConsumerConfig> configure, Action<PolledConsumer>? onAssignmentChanged = null)
    {
        Name = name;
        var config = ConfluentClients.ConsumerConfig(bootstrap);
        config.SessionTimeoutMs = 6000;
        config.HeartbeatIntervalMs = 500;
        config.MaxPollIntervalMs = 30_000;
        configure(config);
        Config = config;
        var consumer = new ConsumerBuilder<byte[], byte[]>(config)
            .SetLogHandler((_, m) =>
            {
                if (m.Level <= SyslogLevel.Warning)
                    Log($"[librdkafka {m.Level} {m.Facility}] {m.Message}");
            })
            .SetErrorHandler((_, e) => lastError = e.ToString())
            .SetPartitionsAssignedHandler((c, assigned) =>
            {
                Interlocked.Increment(ref assignedCallbacks);
                AssignedEvents.Enqueue(assigned.Select(p => p.Partition.Value).ToArray());
                // Cooperative-sticky and the KIP-848 consumer protocol hand out increments; eager strategies whole assignments.
                if (config.PartitionAssignmentStrategy == PartitionAssignmentStrategy.CooperativeSticky || config.GroupProtocol == GroupProtocol.Consumer)
                    partitions = [.. partitions.Union(assigned.Select(p => p.Partition.Value)).Order()];
                else
                    partitions = [.. assigned.Select(p => p.Partition.Value).Order()];
                onAssignmentChanged?.Invoke(this);
            })
            .SetPartitionsRevokedHandler((c, revoked) =>
            {
                Interlocked.Increment(ref revokedCallbacks);
                RevokedEvents.Enqueue(revoked.Select(p => p.Partition.Value).ToArray());
                var gone = revoked.Select(p => p.Partition.Value).ToHashSet();
                partitions = [.. partitions.Where(p => !gone.Contains(p))];
                onAssignmentChanged?.Invoke(this);
            })
            .SetPartitionsLostHandler((c, lost) =>
            {
                LostEvents.Enqueue(lost.Select(p => p.Partition.Value).ToArray());
                partitions = [];
                onAssignmentChanged?.Invoke(this);
            })
            .Build();
        consumer.Subscribe(topic);
        thread = new Thread(() => Loop(consumer)) { IsBackground = true, Name = "consumer " + name };
        thread.Start();
    }

    public string Name { get; }

    public ConsumerConfig Config { get; }

    public IReadOnlyCollection<int> Partitions => partitions;

    public int AssignedCallbacks => Volatile.Read(ref assignedCallbacks);

    public int RevokedCallbacks => Volatile.Read(ref revokedCallbacks);

    /// <summary>Partitions handed to each assigned callback, in order (incremental ones under cooperative-sticky).</summary>
    public ConcurrentQueue<int[]> AssignedEvents { get; } = new();

    public ConcurrentQueue<int[]> RevokedEvents { get; } = new();

    public ConcurrentQueue<int[]> LostEvents { get; } = new();

    /// <summary>Every record consumed, in order.</summary>
    public ConcurrentQueue<ConsumeResult<byte[], byte[]>> Consumed { get; } = new();

    /// <summary>Optional per-record hook, run on the poll thread (e.g. to commit).</summary>
    public Action<IConsumer<byte[], byte[]>, ConsumeResult<byte[], byte[]>>? OnRecord { get; set; }

    public string LastError => lastError;

    /// <summary>Runs an action on the poll thread (consumer calls are not safe from other threads) and waits for it.</summary>
    public Task<T> RunAsync<T>(Func<IConsumer<byte[], byte[]>, T> action)
    {
        var tcs = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        work.Enqueue(c =>
        {
            try
            {
                tcs.SetResult(action(c));
            }
            catch (Exception e)
            {
                tcs.SetException(e);
            }
        });
        return tcs.Task;
    }

    /// <summary>Close(): commits if auto-commit is on and sends LeaveGroup (unless static), then disposes.</summary>
    public Task CloseAsync()
    {
        stop = true;
        return closed.Task.WaitAsync(TimeSpan.FromSeconds(30));
    }

    /// <summary>
    /// Ends the poll loop without Close(): only Dispose, which Confluent.Kafka does with
    /// RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE — no commit, no leave, no callbacks, no more heartbeats (a crashed process).
    /// </summary>
    public Task KillAsync()
    {
        kill = true;
        stop = true;
        return closed.Task.WaitAsync(TimeSpan.FromSeconds(30));
    }

    private void Loop(IConsumer<byte[], byte[]> consumer)
    {
        try
        {
            while (!stop)
            {
                while (work.TryDequeue(out var item))
                    item(consumer);
                try
                {
                    var r = consumer.Consume(TimeSpan.FromMilliseconds(50));
                    if (r is not null && !r.IsPartitionEOF)
                    {
                        Consumed.Enqueue(r);
                        OnRecord?.Invoke(consumer, r);
                    }
                }
                catch (ConsumeException e)
                {
                    lastError = e.Error.ToString();
                }
            }
            if (!kill)
                consumer.Close();
        }
        catch (Exception e)
        {
            lastError = e.ToString();
        }
        finally
        {
            consumer.Dispose();
            closed.TrySetResult();
        }
    }

    private void Log(string line) => lastError = lastError.Length > 4000 ? line : lastError + "\n" + line;

    public override string ToString() =>
        $"{Name}: [{string.Join(",", partitions)}] assigned×{AssignedCallbacks} revoked×{RevokedCallbacks} {lastError}";

    public void Dispose()
    {
        stop = true;
        if (!thread.Join(TimeSpan.FromSeconds(30)))
            TestContext.Out.WriteLine($"consumer {Name} did not close in 30 s");
    }
}

/// <summary>
/// A long-running script group member (python/group_member.py, js/group_member.js): a JSON request on the first
/// stdin line; each assignment change printed as a JSON line {"event":"assigned","partitions":[...]}; "close" on stdin
/// closes the consumer (LeaveGroup) and exits; <see cref="Kill"/> is kill -9 (no LeaveGroup, no more heartbeats).
/// </summary>
public sealed class ScriptGroupMember : IGroupMember, IAsyncDisposable
{
    private readonly Process process;
    private readonly StringBuilder stderr = new();
    private readonly TaskCompletionSource exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile int[] partitions = [];
    private int assignedEvents;

    private ScriptGroupMember(string name, Process process)
    {
        Name = name;
        this.process = process;
    }

    public string Name { get; }

    public IReadOnlyCollection<int> Partitions => partitions;

    public int AssignedEvents => Volatile.Read(ref assignedEvents);

    public bool HasExited => exited.Task.IsCompleted;

    /// <summary>Starts python3 group_member.py, node group_member.js or the sarama driver's group_member with the request on its first stdin line.</summary>
    public static ScriptGroupMember Start(string client, string name, JsonObject request)
    {
        var psi = client switch
        {
            "kafka-python" => new ProcessStartInfo(PythonKafka.Interpreter) { ArgumentList = { Path.Combine(RepoPaths.PythonScripts, "group_member.py") } },
            "kafkajs" => new ProcessStartInfo(KafkaJs.Node) { ArgumentList = { Path.Combine(RepoPaths.JsScripts, "group_member.js") }, WorkingDirectory = RepoPaths.JsScripts },
            "sarama" => SaramaDriver.MemberStartInfo(),
            _ => throw new ArgumentOutOfRangeException(nameof(client), client, "no group member script"),
        };
        psi.RedirectStandardInput = true;
        psi.RedirectStandardOutput = true;
        psi.RedirectStandardError = true;
        psi.UseShellExecute = false;
        psi.Environment["PYTHONUNBUFFERED"] = "1";
        psi.Environment["PYTHONDONTWRITEBYTECODE"] = "1";
        psi.Environment["KAFKAJS_NO_PARTITIONER_WARNING"] = "1";
        var p = new Process { StartInfo = psi, EnableRaisingEvents = true };
        var member = new ScriptGroupMember(name, p);
        p.OutputDataReceived += (_, e) => member.OnLine(e.Data);
        p.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null)
                return;
            lock (member.stderr)
            {
                if (member.stderr.Length < 20000)
                    member.stderr.AppendLine(e.Data);
            }
        };
        p.Exited += (_, _) => member.exited.TrySetResult();
        p.Start();
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        p.StandardInput.WriteLine(request.ToJsonString());
        p.StandardInput.Flush();
        return member;
    }

    private void OnLine(string? line)
    {
        if (string.IsNullOrWhiteSpace(line))
            return;
        try
        {
            var node = JsonNode.Parse(line);
            if (node?["event"]?.GetValue<string>() == "assigned")
            {
                partitions = [.. node["partitions"]!.AsArray().Select(p => p!.GetValue<int>()).Order()];
                Interlocked.Increment(ref assignedEvents);
            }
        }
        catch (JsonException)
        {
            lock (stderr)
                stderr.AppendLine("[stdout] " + line);
        }
    }

    /// <summary>Asks the member to close its consumer cleanly (LeaveGroup) and waits for the process to exit.</summary>
    public async Task CloseAsync()
    {
        await process.StandardInput.WriteLineAsync("close");
        await process.StandardInput.FlushAsync();
        await exited.Task.WaitAsync(TimeSpan.FromSeconds(30));
        partitions = [];
    }

    /// <summary>kill -9 of the whole client process: it neither leaves the group nor heartbeats again.</summary>
    public async Task KillAsync()
    {
        process.Kill(entireProcessTree: true);
        await exited.Task.WaitAsync(TimeSpan.FromSeconds(10));
        partitions = [];
    }

    public override string ToString()
    {
        string err;
        lock (stderr)
            err = stderr.ToString();
        if (err.Length > 3000)
            err = "..." + err[^3000..];
        return $"{Name}: [{string.Join(",", partitions)}] assigned events {AssignedEvents}{(HasExited ? " (exited)" : "")}\n{err}";
    }

    public async ValueTask DisposeAsync()
    {
        if (!HasExited)
        {
            try
            {
                process.Kill(entireProcessTree: true);
                await exited.Task.WaitAsync(TimeSpan.FromSeconds(10));
            }
            catch (InvalidOperationException)
            {
            }
        }
        process.Dispose();
    }
}

public static class GroupAssert
{
    /// <summary>Broker settings for group tests: no initial rebalance delay, short session timeouts allowed.</summary>
    public static BrokerSettings FastGroups(int offsetsPartitions = 5)
    {
        var settings = new BrokerSettings();
        settings.Properties["group.initial.rebalance.delay.ms"] = "0";
        settings.Properties["group.min.session.timeout.ms"] = "1000";
        settings.Properties["offsets.topic.num.partitions"] = offsetsPartitions.ToString(CultureInfo.InvariantCulture);
        return settings;
    }

    /// <summary>
    /// Waits until the members split the partitions: every partition owned by exactly one member, the union is all of
    /// them and each member owns a balanced share (6 partitions / n members differ by at most one).
    /// </summary>
    public static async Task SplitAsync(IReadOnlyList<IGroupMember> members, int partitionCount, string context, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        string last = "";
        while (DateTime.UtcNow < deadline)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (IsSplit(members, partitionCount, out last))
                return;
            await Task.Delay(100, cancellationToken);
        }
        Assert.Fail($"{context}: partitions not split over {members.Count} members within the timeout: {last}\n{string.Join("\n", members.Select(m => m.ToString()))}");
    }

    private static bool IsSplit(IReadOnlyList<IGroupMember> members, int partitionCount, out string why)
    {
        var owners = new Dictionary<int, string>();
        var min = partitionCount / members.Count;
        var max = min + (partitionCount % members.Count == 0 ? 0 : 1);
        foreach (var m in members)
        {
            var owned = m.Partitions.ToArray();
            if (owned.Length < min || owned.Length > max)
            {
                why = $"{m.Name} owns {owned.Length} partitions [{string.Join(",", owned)}], expected {min}..{max}";
                return false;
            }
            foreach (var p in owned)
            {
                if (!owners.TryAdd(p, m.Name))
                {
                    why = $"partition {p} owned by {owners[p]} and {m.Name}";
                    return false;
                }
            }
        }
        if (owners.Count != partitionCount || owners.Keys.Any(p => p < 0 || p >= partitionCount))
        {
            why = $"owned partitions [{string.Join(",", owners.Keys.Order())}] are not 0..{partitionCount - 1}";
            return false;
        }
        why = "";
        return true;
    }

    /// <summary>The in-process broker's state (coordinator, logs); only for <see cref="BrokerMode.InProcess"/>.</summary>
    internal static BrokerState State(BrokerUnderTest broker) =>
        (broker as InProcessBroker)?.Instance?.State ?? throw new InvalidOperationException($"{broker.Mode} broker has no in-process state");

    /// <summary>Produces count records "k-i"/"v-i" spread round-robin over the partitions with Confluent.</summary>
    public static async Task<List<TestRecord>> ProduceAsync(BrokerUnderTest broker, string topic, int count, int partitions, string prefix = "r", CancellationToken cancellationToken = default)
    {
        var records = new List<TestRecord>(count);
        for (var i = 0; i < count; i++)
            records.Add(new TestRecord($"{prefix}-k-{i:D4}", $"{prefix}-v-{i}", i % partitions, []));
        await ClientDrivers.Confluent.ProduceAsync(broker.BootstrapServers, topic, records, cancellationToken: cancellationToken);
        return records;
    }

    public static async Task WaitUntilAsync(Func<bool> condition, string what, TimeSpan timeout, CancellationToken cancellationToken, Func<string>? describe = null)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
                Assert.Fail($"timed out after {timeout} waiting for {what}{(describe is null ? "" : "\n" + describe())}");
            await Task.Delay(50, cancellationToken);
        }
    }
}
