using System.Globalization;
using Kayak.IntegrationTests.Infrastructure;
using NUnit.Framework;

namespace Kayak.IntegrationTests.Campaign;

/// <summary>
/// Issue 15, item 9: a standing fault campaign against the broker as a process (kill -9, restart, file damage, two
/// instances, connection floods). Each scenario is a test in its own file (FaultCampaign.*.cs) that runs every cycle,
/// records what it saw in a <see cref="ScenarioRow"/> and fails on any loss, duplicate, corrupt read, crash, hang or
/// bound exceeded; the summary table of all rows is printed after the fixture and written to
/// fault-campaign-summary.md in the test output directory. CI size by default; KAYAK_CAMPAIGN=full scales it up.
/// </summary>
[TestFixture, Category("FaultCampaign"), NonParallelizable]
public sealed partial class FaultCampaign : BrokerTestBase
{
    private static readonly Random Rng = new(Environment.GetEnvironmentVariable("KAYAK_CAMPAIGN_SEED") is { } s ? int.Parse(s, CultureInfo.InvariantCulture) : Environment.TickCount);

    [OneTimeTearDown]
    public void WriteSummary()
    {
        if (!CampaignReport.HasRows) return;
        string table = CampaignReport.Render();
        TestContext.Out.WriteLine(table);
        TestContext.Progress.WriteLine(table);
        string path = Path.Combine(TestContext.CurrentContext.WorkDirectory, "fault-campaign-summary.md");
        File.WriteAllText(path, table);
        TestContext.Progress.WriteLine("summary written to " + path);
    }

    /// <summary>Records the row and fails the test with its problems (after every cycle ran, so the table is complete).</summary>
    private static void Finish(ScenarioRow row)
    {
        TestContext.Out.WriteLine(
            $"{row.Scenario}: cycles {row.Cycles}, acknowledged {row.Acknowledged}, lost {row.Lost}, duplicates {row.Duplicates}, corrupt {row.CorruptReads}, crashes {row.Crashes}, hangs {row.Hangs}");
        Assert.That(row.Problems, Is.Empty, row.Scenario);
    }

    private static int Between(int min, int max)
    {
        lock (Rng) return Rng.Next(min, max);
    }

    /// <summary>
    /// Each check above fails on a planted fault: the verifier gets the input of a passing run with one fault added
    /// (a record dropped, duplicated, moved; a commit rolled back; an aborted record shown; a topic lost or
    /// resurrected; a log without a recovery line) and must report it. Runs in milliseconds, no broker.
    /// </summary>
    [Test]
    public void VerifiersCatchPlantedFaults()
    {
        var acked = new Dictionary<(int, long), string> { [(0, 0)] = "a", [(0, 1)] = "b", [(1, 0)] = "c" };
        var log = new List<ReadRecord> { new(0, 0, "", "a"), new(0, 1, "", "b"), new(1, 0, "", "c") };
        var clean = Verifiers.CheckAcknowledged(acked, log);
        Assert.That(clean.Lost.Concat(clean.Duplicates).Concat(clean.Gaps), Is.Empty, "the unplanted input passes");
        Assert.That(Verifiers.CheckAcknowledged(acked, log.Where(r => r.Value != "b").ToList()).Lost, Has.Count.EqualTo(1), "dropped record");
        Assert.That(Verifiers.CheckAcknowledged(acked, [.. log, new(0, 2, "", "a")]).Duplicates, Has.Count.EqualTo(1), "duplicated record");
        Assert.That(Verifiers.CheckAcknowledged(acked, [log[0], log[1] with { Offset = 2 }, log[2]]).Gaps, Has.Count.EqualTo(1), "offset gap");
        Assert.That(Verifiers.CheckAcknowledged(acked, [log[0], log[1] with { Value = "x" }, log[2]]).Lost, Has.Count.EqualTo(1), "changed value");
        Assert.That(Verifiers.CheckAcknowledged(acked, log.Where(r => r.Value != "b").ToList(), new Dictionary<int, long> { [0] = 1 }).Lost, Is.Empty,
            "a record past the damage point may be cut");

        var lastAcked = new Dictionary<int, long> { [0] = 10 };
        var attempted = new Dictionary<int, long> { [0] = 11 };
        var end = new Dictionary<int, long> { [0] = 100 };
        Assert.That(Verifiers.CheckCommitted(lastAcked, attempted, new Dictionary<int, long> { [0] = 11 }, end), Is.Empty, "in-flight commit may land");
        Assert.That(Verifiers.CheckCommitted(lastAcked, attempted, new Dictionary<int, long> { [0] = 9 }, end), Has.Count.EqualTo(1), "commit rolled back");
        Assert.That(Verifiers.CheckCommitted(lastAcked, attempted, new Dictionary<int, long> { [0] = -1001 }, end), Has.Count.EqualTo(1), "commit lost");
        Assert.That(Verifiers.CheckCommitted(lastAcked, new Dictionary<int, long> { [0] = 200 }, new Dictionary<int, long> { [0] = 150 }, end), Has.Count.EqualTo(1), "past the log end");

        var txns = new Dictionary<string, (int, TxnOutcome)> { ["c"] = (2, TxnOutcome.Committed), ["a"] = (2, TxnOutcome.Aborted), ["u"] = (2, TxnOutcome.CommitUnacknowledged) };
        var visible = new List<ReadRecord> { new(0, 0, "", "c/0"), new(0, 1, "", "c/1") };
        Assert.That(Verifiers.CheckTransactions(txns, visible).Problems, Is.Empty, "the unplanted input passes");
        Assert.That(Verifiers.CheckTransactions(txns, [visible[0]]).Lost, Is.EqualTo(1), "committed record missing");
        Assert.That(Verifiers.CheckTransactions(txns, [.. visible, new(0, 3, "", "c/1")]).Duplicates, Is.EqualTo(1), "committed record twice");
        Assert.That(Verifiers.CheckTransactions(txns, [.. visible, new(0, 3, "", "a/0")]).Problems, Has.Count.EqualTo(1), "aborted record visible");
        Assert.That(Verifiers.CheckTransactions(txns, [.. visible, new(0, 3, "", "u/0")]).Problems, Has.Count.EqualTo(1), "half an unacknowledged commit");
        Assert.That(Verifiers.CheckTransactions(txns, [.. visible, new(0, 3, "", "u/0"), new(0, 4, "", "u/1")]).Problems, Is.Empty, "a whole unacknowledged commit may land");
        Assert.That(Verifiers.CheckTransactions(txns, [.. visible, new(0, 3, "", "zz/0")]).Problems, Has.Count.EqualTo(1), "record of no transaction");

        var expected = new Dictionary<string, Verifiers.ExpectedTopic> { ["ct-a"] = new(true, 2, "1000"), ["ct-d"] = new(false, 1, null), ["ct-u"] = new(null, 3, null) };
        var actual = new Dictionary<string, (int, string?)> { ["ct-a"] = (2, "1000"), ["ct-u"] = (3, "604800000"), ["other"] = (1, null) };
        Assert.That(Verifiers.CheckTopics(expected, actual, "ct-"), Is.Empty, "the unplanted input passes");
        Assert.That(Verifiers.CheckTopics(expected, actual.Where(a => a.Key != "ct-a").ToDictionary(), "ct-"), Has.Count.EqualTo(1), "created topic lost");
        Assert.That(Verifiers.CheckTopics(expected, new Dictionary<string, (int, string?)>(actual) { ["ct-d"] = (1, null) }, "ct-"), Has.Count.EqualTo(1), "deleted topic back");
        Assert.That(Verifiers.CheckTopics(expected, new Dictionary<string, (int, string?)>(actual) { ["ct-a"] = (1, "1000") }, "ct-"), Has.Count.EqualTo(1), "partitions changed");
        Assert.That(Verifiers.CheckTopics(expected, new Dictionary<string, (int, string?)>(actual) { ["ct-a"] = (2, "5") }, "ct-"), Has.Count.EqualTo(1), "config changed");
        Assert.That(Verifiers.CheckTopics(expected, new Dictionary<string, (int, string?)>(actual) { ["ct-x"] = (1, null) }, "ct-"), Has.Count.EqualTo(1), "phantom topic");

        const string quiet = "[2025-01-01 00:00:00,000] info: Kayak.Broker[0] started (kayak.server.KafkaServer)";
        Assert.That(Verifiers.RecoveryLogLines(quiet), Is.Empty, "info lines are no recovery action");
        Assert.That(Verifiers.RecoveryLogLines(quiet + "\n[2025-01-01 00:00:00,000] warn: Kayak.Storage[0] Truncated 12 bytes"), Has.Count.EqualTo(1), "a warn line");
        Assert.That(Verifiers.RecoveryLogLines("[stderr] ERROR: Cannot load topic"), Has.Count.EqualTo(1), "a startup error");
    }
}
