using System.Text.RegularExpressions;

namespace Kayak.IntegrationTests.Campaign;

/// <summary>What a durability check found: each list names the offending records, empty when the check passes.</summary>
internal sealed class DurabilityFindings
{
    public List<string> Lost { get; } = [];
    public List<string> Duplicates { get; } = [];
    public List<string> Gaps { get; } = [];
}

/// <summary>A transaction as the producer saw it end.</summary>
internal enum TxnOutcome
{
    /// <summary>Records produced, neither commit nor abort called: must stay invisible.</summary>
    Open,
    /// <summary>CommitTransaction called but not acknowledged: all records or none.</summary>
    CommitUnacknowledged,
    Committed,
    /// <summary>AbortTransaction called (acknowledged or not): must stay invisible.</summary>
    Aborted,
}

/// <summary>
/// The campaign's checks as pure functions over what was acknowledged and what was read back, so that
/// <see cref="FaultCampaign.VerifiersCatchPlantedFaults"/> can show each of them failing on a planted fault.
/// </summary>
internal static partial class Verifiers
{
    /// <summary>
    /// Every acknowledged record is at its acknowledged offset with its value, no value appears twice in the log
    /// (a retried batch written again), and each partition's offsets are contiguous from 0. Acknowledgements at or
    /// past <paramref name="damagePoint"/> of a partition are not required (file damage may legitimately cut them).
    /// <paramref name="holes"/>: a damaged batch the broker refuses (and the reader skipped): the only gap allowed.
    /// </summary>
    public static DurabilityFindings CheckAcknowledged(IReadOnlyDictionary<(int Partition, long Offset), string> acknowledged, IReadOnlyList<ReadRecord> log,
        IReadOnlyDictionary<int, long>? damagePoint = null, IReadOnlyDictionary<int, (long From, long To)>? holes = null)
    {
        var f = new DurabilityFindings();
        var byPosition = new Dictionary<(int, long), ReadRecord>();
        var byValue = new Dictionary<string, ReadRecord>(StringComparer.Ordinal);
        foreach (var r in log)
        {
            byPosition[(r.Partition, r.Offset)] = r;
            if (byValue.TryGetValue(r.Value, out var first))
                f.Duplicates.Add($"{r.Value} at {first.Partition}/{first.Offset} and {r.Partition}/{r.Offset}");
            else
                byValue[r.Value] = r;
        }
        foreach (var ((p, o), value) in acknowledged.OrderBy(a => a.Key))
        {
            if (damagePoint is not null && damagePoint.TryGetValue(p, out var cut) && o >= cut) continue;
            if (!byPosition.TryGetValue((p, o), out var r))
                f.Lost.Add($"{p}/{o} {value}: missing");
            else if (r.Value != value)
                f.Lost.Add($"{p}/{o}: holds {r.Value}, acknowledged {value}");
        }
        foreach (var g in log.GroupBy(r => r.Partition))
        {
            long expect = 0;
            foreach (var o in g.Select(r => r.Offset).Order())
            {
                bool hole = holes is not null && holes.TryGetValue(g.Key, out var h) && expect == h.From && o == h.To + 1;
                if (o != expect && !hole) f.Gaps.Add($"partition {g.Key}: offset {o} where {expect} was expected");
                expect = o + 1;
            }
        }
        return f;
    }

    /// <summary>Committed offsets: at least the last acknowledged commit, at most the last attempted one and the log end.</summary>
    public static List<string> CheckCommitted(IReadOnlyDictionary<int, long> lastAcknowledged, IReadOnlyDictionary<int, long> lastAttempted,
        IReadOnlyDictionary<int, long> committed, IReadOnlyDictionary<int, long> logEnd)
    {
        var problems = new List<string>();
        foreach (var (p, acked) in lastAcknowledged)
        {
            long c = committed.GetValueOrDefault(p, -1001);
            if (c < acked) problems.Add($"partition {p}: committed {c} < last acknowledged commit {acked}");
            if (c > lastAttempted.GetValueOrDefault(p, acked)) problems.Add($"partition {p}: committed {c} > any offset committed ({lastAttempted.GetValueOrDefault(p, acked)})");
            if (c > logEnd.GetValueOrDefault(p, -1)) problems.Add($"partition {p}: committed {c} > log end {logEnd.GetValueOrDefault(p, -1)}");
        }
        return problems;
    }

    /// <summary>
    /// read_committed output against the producer's view: committed transactions whole and once, aborted and open
    /// ones invisible, unacknowledged commits all-or-nothing, and nothing that no transaction produced.
    /// Values are "&lt;txn&gt;/&lt;index&gt;".
    /// </summary>
    public static (List<string> Problems, long Lost, long Duplicates) CheckTransactions(IReadOnlyDictionary<string, (int Records, TxnOutcome Outcome)> txns,
        IReadOnlyList<ReadRecord> readCommitted)
    {
        var problems = new List<string>();
        long lost = 0, duplicates = 0;
        var seen = new Dictionary<string, Dictionary<int, int>>(StringComparer.Ordinal);
        foreach (var r in readCommitted)
        {
            int slash = r.Value.LastIndexOf('/');
            string txn = slash > 0 ? r.Value[..slash] : r.Value;
            if (!txns.ContainsKey(txn) || slash < 0 || !int.TryParse(r.Value.AsSpan(slash + 1), out int index))
            {
                problems.Add($"{r.Partition}/{r.Offset}: {r.Value} belongs to no transaction");
                continue;
            }
            if (!seen.TryGetValue(txn, out var counts)) seen[txn] = counts = [];
            counts[index] = counts.GetValueOrDefault(index) + 1;
        }
        foreach (var (txn, (records, outcome)) in txns)
        {
            var counts = seen.GetValueOrDefault(txn) ?? [];
            int distinct = counts.Count;
            int dups = counts.Values.Sum(c => c - 1);
            duplicates += dups;
            if (dups > 0) problems.Add($"{txn}: {dups} duplicate records");
            switch (outcome)
            {
                case TxnOutcome.Committed when distinct != records:
                    lost += records - distinct;
                    problems.Add($"{txn} committed with {records} records, {distinct} visible");
                    break;
                case TxnOutcome.Open or TxnOutcome.Aborted when distinct > 0:
                    problems.Add($"{txn} ({outcome}): {distinct} records visible to read_committed");
                    break;
                case TxnOutcome.CommitUnacknowledged when distinct != 0 && distinct != records:
                    problems.Add($"{txn} (commit unacknowledged): {distinct} of {records} records visible, not all-or-nothing");
                    break;
            }
        }
        return (problems, lost, duplicates);
    }

    /// <summary>The admin state expected after a restart; Unknown when the operation was in flight at the kill.</summary>
    internal sealed record ExpectedTopic(bool? Exists, int Partitions, string? RetentionMs, string? RetentionMsAlternative = null);

    /// <summary>
    /// Topics after a restart against the acknowledged admin operations: created ones exist with their partitions and
    /// config, deleted ones are gone, in-flight ones may be either, and no topic with the campaign prefix appears that
    /// was never created.
    /// </summary>
    public static List<string> CheckTopics(IReadOnlyDictionary<string, ExpectedTopic> expected, IReadOnlyDictionary<string, (int Partitions, string? RetentionMs)> actual, string prefix)
    {
        var problems = new List<string>();
        foreach (var (name, e) in expected)
        {
            bool exists = actual.TryGetValue(name, out var a);
            if (e.Exists == true && !exists) problems.Add($"{name}: create acknowledged, topic lost");
            if (e.Exists == false && exists) problems.Add($"{name}: delete acknowledged, topic resurrected");
            if (!exists) continue;
            if (a.Partitions != e.Partitions)
                problems.Add(e.Exists is null
                    ? $"{name}: partial create: {a.Partitions} of {e.Partitions} partitions after a create in flight at the kill"
                    : $"{name}: {a.Partitions} partitions, created with {e.Partitions}");
            if (e.RetentionMs is not null && a.RetentionMs != e.RetentionMs && a.RetentionMs != e.RetentionMsAlternative)
                problems.Add($"{name}: retention.ms {a.RetentionMs}, acknowledged {e.RetentionMs}{(e.RetentionMsAlternative is null ? "" : " or " + e.RetentionMsAlternative)}");
        }
        foreach (var name in actual.Keys)
            if (name.StartsWith(prefix, StringComparison.Ordinal) && !expected.ContainsKey(name))
                problems.Add($"{name}: exists but was never created");
        return problems;
    }

    /// <summary>
    /// Recovery actions the broker logged: Microsoft.Extensions.Logging's console lines at warn/fail/crit, or a
    /// startup error ("ERROR: ..."). A recovery with none of these is a silent recovery action.
    /// </summary>
    public static List<string> RecoveryLogLines(string output) =>
        output.Split('\n').Where(l => RecoveryLineRegex().IsMatch(l)).Select(l => l.Trim()).ToList();

    [GeneratedRegex(@"(\bwarn: |\bfail: |\bcrit: |\bERROR\b|\bWARN\b)")]
    private static partial Regex RecoveryLineRegex();
}
