using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Confluent.Kafka;
using Kayak.IntegrationTests.Infrastructure;
using NUnit.Framework;

namespace Kayak.IntegrationTests.Campaign;

/// <summary>
/// Campaign size: CI runs each scenario a few cycles (minutes in total on two shared cores); KAYAK_CAMPAIGN=full
/// scales the cycle counts and the connection flood up for an on-demand soak.
/// </summary>
internal static class CampaignSize
{
    public static bool Full => string.Equals(Environment.GetEnvironmentVariable("KAYAK_CAMPAIGN"), "full", StringComparison.OrdinalIgnoreCase);

    public static string Name => Full ? "full" : "ci";

    public static int Pick(int ci, int full) => Full ? full : ci;
}

/// <summary>One line of the summary table; problems are the check failures that fail the scenario's test.</summary>
internal sealed class ScenarioRow(string scenario)
{
    public string Scenario { get; } = scenario;
    public int Cycles;
    public long Acknowledged;
    public long Lost;
    public long Duplicates;
    public long CorruptReads;
    public int Crashes;
    public int Hangs;
    /// <summary>Findings of a gap known not to be fixed yet (reported, not failed; KAYAK_CAMPAIGN_STRICT=1 fails them).</summary>
    public int KnownIssues;
    public double? RssPeakMb { get; set; }
    public double? RssIdleMb { get; set; }
    public double? ProbeP99Ms { get; set; }
    public List<double> RestartMs { get; } = [];
    public List<string> Notes { get; } = [];
    public List<string> Problems { get; } = [];

    public void Problem(string text)
    {
        Problems.Add(text);
        TestContext.Out.WriteLine("PROBLEM: " + text);
    }

    public void Note(string text)
    {
        Notes.Add(text);
        TestContext.Out.WriteLine("note: " + text);
    }
}

/// <summary>Collects the rows of every scenario run in this test session and renders the summary table.</summary>
internal static class CampaignReport
{
    private static readonly ConcurrentQueue<ScenarioRow> Rows = new();

    public static void Add(ScenarioRow row) => Rows.Enqueue(row);

    public static bool HasRows => !Rows.IsEmpty;

    public static string Render()
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Fault campaign ({CampaignSize.Name} size), {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
        sb.AppendLine("| scenario | cycles | acked | lost | dup | corrupt | crashes | hangs | RssAnon peak/idle MB | probe p99 ms | restart ms (median/max) | result |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (var r in Rows)
        {
            string rss = r.RssPeakMb is null ? "-" : $"{r.RssPeakMb:F0}/{r.RssIdleMb:F0}";
            string p99 = r.ProbeP99Ms is null ? "-" : $"{r.ProbeP99Ms:F0}";
            string restart = r.RestartMs.Count == 0 ? "-" : $"{Percentile(r.RestartMs, 0.5):F0}/{r.RestartMs.Max():F0}";
            string result = (r.Problems.Count == 0 ? "pass" : $"FAIL ({r.Problems.Count})") + (r.KnownIssues > 0 ? $", {r.KnownIssues} known issue" : "");
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"| {r.Scenario} | {r.Cycles} | {r.Acknowledged} | {r.Lost} | {r.Duplicates} | {r.CorruptReads} | {r.Crashes} | {r.Hangs} | {rss} | {p99} | {restart} | {result} |");
        }
        foreach (var r in Rows)
        {
            foreach (var n in r.Notes) sb.AppendLine(CultureInfo.InvariantCulture, $"- {r.Scenario}: {n}");
            foreach (var p in r.Problems.Take(20)) sb.AppendLine(CultureInfo.InvariantCulture, $"- {r.Scenario}: PROBLEM {p}");
        }
        return sb.ToString();
    }

    public static double Percentile(IReadOnlyList<double> values, double q)
    {
        if (values.Count == 0) return 0;
        var sorted = values.Order().ToArray();
        return sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(q * sorted.Length) - 1 < 0 ? 0 : (int)Math.Ceiling(q * sorted.Length) - 1)];
    }
}

/// <summary>What the harness's process broker exposes through <see cref="BrokerUnderTest.Describe"/>: its PID and output.</summary>
internal static partial class BrokerProbe
{
    /// <summary>The running broker's PID (parsed from Describe: the harness keeps its Process private).</summary>
    public static int? Pid(BrokerUnderTest broker)
    {
        var m = PidRegex().Match(broker.Describe());
        return m.Success ? int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) : null;
    }

    /// <summary>True while the process exists and is not a zombie: a broker that died on its own is a crash.</summary>
    public static bool IsAlive(int pid)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            int close = stat.LastIndexOf(')');
            return close > 0 && close + 2 < stat.Length && stat[close + 2] != 'Z';
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>VmRSS in MB, or null once the process is gone.</summary>
    public static double? RssMb(int pid) => StatusMb(pid, "VmRSS:");

    /// <summary>
    /// RssAnon in MB: the process's own memory (heap, stacks, buffers). VmRSS also counts the pages of the mapped log
    /// segments a flood wrote (RssFile): page cache the kernel reclaims under pressure, not memory the broker holds.
    /// </summary>
    public static double? AnonMb(int pid) => StatusMb(pid, "RssAnon:");

    private static double? StatusMb(int pid, string key)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (!line.StartsWith(key, StringComparison.Ordinal)) continue;
                var kb = long.Parse(line[key.Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
                return kb / 1024.0;
            }
        }
        catch (IOException)
        {
        }
        return null;
    }

    /// <summary>The broker's output since its latest start (the harness logs one command line per start).</summary>
    public static string OutputOfLatestStart(BrokerUnderTest broker)
    {
        string text = broker.Describe();
        int cmd = text.LastIndexOf("kayak.dll --override", StringComparison.Ordinal);
        return cmd >= 0 ? text[cmd..] : text;
    }

    [GeneratedRegex(@" pid=(\d+)")]
    private static partial Regex PidRegex();
}

/// <summary>Starts and restarts the broker under test with the campaign's budgets, counting hangs and crashes.</summary>
internal static class CampaignBroker
{
    /// <summary>Budgets for one start and one SIGTERM stop: exceeding them is a hang (the harness fails the start).</summary>
    public static BrokerSettings Settings(params (string Key, string Value)[] properties)
    {
        var s = new BrokerSettings { StartTimeout = TimeSpan.FromSeconds(60), StopTimeout = TimeSpan.FromSeconds(30) };
        foreach (var (k, v) in properties) s.Properties[k] = v;
        return s;
    }

    /// <summary>kill -9 after checking the broker is still the process we started (if not, it crashed on its own).</summary>
    public static async Task KillAsync(BrokerUnderTest broker, ScenarioRow row)
    {
        if (BrokerProbe.Pid(broker) is not { } pid || !BrokerProbe.IsAlive(pid))
        {
            row.Crashes++;
            row.Problem("broker was not running when the kill was due (unexpected exit)\n" + broker.Describe());
            return;
        }
        await broker.KillAsync();
    }

    /// <summary>Starts again on the same dir; the time is reported, a start over budget is a hang, an exit a crash.</summary>
    public static async Task RestartAsync(BrokerUnderTest broker, ScenarioRow row, CancellationToken token)
    {
        var sw = Stopwatch.StartNew();
        try
        {
            await broker.StartAgainAsync(token);
        }
        catch (AssertionException e)
        {
            if (e.Message.Contains("timeout", StringComparison.Ordinal)) row.Hangs++;
            else row.Crashes++;
            row.Problem("restart failed: " + e.Message.Split('\n')[0]);
            throw;
        }
        row.RestartMs.Add(sw.Elapsed.TotalMilliseconds);
    }
}

/// <summary>A record read back by <see cref="LogReader"/>.</summary>
internal readonly record struct ReadRecord(int Partition, long Offset, string Key, string Value);

/// <summary>Everything a full read returned: records, the end offset seen per partition, and consume errors.</summary>
internal sealed class ReadResult
{
    public List<ReadRecord> Records { get; } = [];
    public Dictionary<int, long> EndOffsets { get; } = [];
    public List<string> CorruptReads { get; } = [];
    public List<string> OtherErrors { get; } = [];
    /// <summary>CORRUPT_MESSAGE (Confluent.Kafka: InvalidMsg, code 2) answers for a known damaged batch (a hole the reader was told to seek past).</summary>
    public List<string> Refusals { get; } = [];
    public bool Complete;
}

/// <summary>
/// Reads every partition from the beginning to its end with check.crcs=true. Unlike ConfluentClients.ConsumeAll a
/// consume error does not fail the test at once: a CRC error is counted as a corrupt read, so the table shows it.
/// </summary>
internal static class LogReader
{
    /// <param name="holes">Damaged batches per partition: a CORRUPT_MESSAGE answer there is counted as a refusal and
    /// the reader seeks past the batch, as an application that handles the error would.</param>
    public static ReadResult ReadAll(string bootstrap, string topic, int partitions, bool readCommitted, TimeSpan timeout, CancellationToken token,
        IReadOnlyDictionary<int, (long From, long To)>? holes = null)
    {
        var result = new ReadResult();
        using var consumer = ConfluentClients.Consumer(bootstrap, c =>
        {
            c.CheckCrcs = true;
            c.EnablePartitionEof = true;
            c.IsolationLevel = readCommitted ? IsolationLevel.ReadCommitted : IsolationLevel.ReadUncommitted;
        });
        // The end to reach: the high watermark now (read_uncommitted); read_committed stops at the LSO, which the
        // EOF event reports, so it only needs an EOF at or past where it started.
        var targets = new Dictionary<int, long>();
        for (int p = 0; p < partitions; p++)
            targets[p] = readCommitted ? 0 : consumer.QueryWatermarkOffsets(new TopicPartition(topic, p), TimeSpan.FromSeconds(10)).High.Value;
        consumer.Assign(Enumerable.Range(0, partitions).Select(p => new TopicPartitionOffset(topic, p, Offset.Beginning)));
        var deadline = DateTime.UtcNow + timeout;
        var seen = new HashSet<(int, long)>();
        while (DateTime.UtcNow < deadline)
        {
            token.ThrowIfCancellationRequested();
            if (targets.All(t => result.EndOffsets.TryGetValue(t.Key, out var end) && end >= t.Value))
            {
                result.Complete = true;
                break;
            }
            ConsumeResult<byte[], byte[]>? r;
            try
            {
                r = consumer.Consume(TimeSpan.FromMilliseconds(200));
            }
            catch (ConsumeException e)
            {
                string what = $"{e.ConsumerRecord?.TopicPartitionOffset.ToString() ?? topic}: {e.Error.Code} {e.Error.Reason}";
                if (e.Error.Code == ErrorCode.InvalidMsg && holes is { Count: > 0 })
                {
                    result.Refusals.Add(what);
                    int p = e.ConsumerRecord?.Partition.Value ?? -1;
                    foreach (var (hp, (_, to)) in holes)
                        if (p < 0 || p == hp)
                            consumer.Seek(new TopicPartitionOffset(topic, hp, to + 1));
                    if (result.Refusals.Count > 100) break;
                    continue;
                }
                if (e.Error.Code == ErrorCode.Local_BadMsg || e.Error.Reason.Contains("CRC", StringComparison.OrdinalIgnoreCase))
                    result.CorruptReads.Add(what);
                else
                    result.OtherErrors.Add(what);
                if (result.CorruptReads.Count + result.OtherErrors.Count > 100) break;
                continue;
            }
            if (r is null) continue;
            if (r.IsPartitionEOF)
            {
                result.EndOffsets[r.Partition.Value] = r.Offset.Value;
                continue;
            }
            // librdkafka refetches after an error and hands out records it already gave: one offset holds one record,
            // so a repeat of the same position is a redelivery, not a duplicate in the log.
            if (!seen.Add((r.Partition.Value, r.Offset.Value))) continue;
            result.Records.Add(new ReadRecord(r.Partition.Value, r.Offset.Value, ConfluentClients.FromUtf8(r.Message.Key) ?? "", ConfluentClients.FromUtf8(r.Message.Value) ?? ""));
        }
        consumer.Close();
        return result;
    }

    /// <summary>Adds a read's errors to the row: corrupt reads, other consume errors, and an incomplete read (a hang).</summary>
    public static void Account(ReadResult read, ScenarioRow row, string when)
    {
        row.CorruptReads += read.CorruptReads.Count;
        foreach (var c in read.CorruptReads.Take(5)) row.Problem($"{when}: corrupt read {c}");
        foreach (var c in read.OtherErrors.Take(5)) row.Problem($"{when}: consume error {c}");
        if (!read.Complete)
        {
            row.Hangs++;
            row.Problem($"{when}: read did not reach the end in time (ends {string.Join(",", read.EndOffsets.Select(e => $"{e.Key}:{e.Value}"))})");
        }
    }
}

/// <summary>Runs the host (kayak.dll) once with the given overrides and waits for it to exit (a broker that starts is killed at the timeout, by PID).</summary>
internal static class KayakProcess
{
    public static Task<ProcessResult> RunAsync(string logDir, int port, TimeSpan timeout, CancellationToken token)
    {
        var spec = new ProcessSpec
        {
            FileName = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet",
            Arguments = [RepoPaths.BrokerDll, "--override", $"listeners=PLAINTEXT://127.0.0.1:{port}", "--override", $"log.dirs={logDir}"],
            WorkingDirectory = logDir,
            Timeout = timeout,
        };
        return ProcessRunner.RunAsync(spec, token);
    }
}
