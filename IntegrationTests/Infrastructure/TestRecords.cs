using System.Globalization;
using System.Text;
using NUnit.Framework;

namespace Kayak.IntegrationTests.Infrastructure;

/// <summary>One record header; values are UTF-8 text so every client's CLI/JSON can carry them.</summary>
public sealed record TestHeader(string Key, string Value);

/// <summary>A record to produce to an explicit partition (keys and values are UTF-8 text; a null key is allowed).</summary>
public sealed record TestRecord(string? Key, string Value, int Partition, IReadOnlyList<TestHeader> Headers);

/// <summary>What a producer reported for one record (Offset -1 when the client does not report offsets, e.g. kcat).</summary>
public sealed record ProducedRecord(int Partition, long Offset);

/// <summary>A record as a consumer saw it.</summary>
public sealed record ConsumedRecord(string Topic, int Partition, long Offset, string? Key, string? Value, IReadOnlyList<TestHeader> Headers, long TimestampMs);

public static class TestData
{
    /// <summary>
    /// count records spread round-robin over partitions, each with a key and headers. Headers are the same for every
    /// record of a partition (kcat's -H applies to a whole invocation) but differ across partitions and producers.
    /// </summary>
    public static List<TestRecord> Records(string producer, int count, int partitions)
    {
        var records = new List<TestRecord>(count);
        for (var i = 0; i < count; i++)
        {
            var partition = i % partitions;
            var key = $"key-{i:D4}";
            var value = $"{producer} value {i} ünïcødé {new string((char)('a' + i % 26), i % 40)}";
            records.Add(new TestRecord(key, value, partition,
            [
                new TestHeader("producer", producer),
                new TestHeader("partition", partition.ToString(CultureInfo.InvariantCulture)),
            ]));
        }
        return records;
    }

    /// <summary>
    /// Exact check: per partition, the consumed records are exactly the produced ones in produce order at offsets
    /// 0..n-1 with identical key, value and headers; and the producer-reported (partition, offset) match.
    /// </summary>
    public static void AssertExactlyConsumed(string topic, IReadOnlyList<TestRecord> produced, IReadOnlyList<ProducedRecord>? acks, IReadOnlyList<ConsumedRecord> consumed, string context)
    {
        var failures = new StringBuilder();
        if (consumed.Count != produced.Count)
            failures.AppendLine(CultureInfo.InvariantCulture, $"consumed {consumed.Count} records, produced {produced.Count}");

        var expectedByPartition = new Dictionary<int, List<(TestRecord Record, int Index)>>();
        for (var i = 0; i < produced.Count; i++)
        {
            if (!expectedByPartition.TryGetValue(produced[i].Partition, out var list))
                expectedByPartition[produced[i].Partition] = list = [];
            list.Add((produced[i], i));
        }

        var actualByPartition = consumed.GroupBy(r => r.Partition).ToDictionary(g => g.Key, g => g.OrderBy(r => r.Offset).ToList());
        foreach (var partition in actualByPartition.Keys.Where(p => !expectedByPartition.ContainsKey(p)))
            failures.AppendLine(CultureInfo.InvariantCulture, $"partition {partition}: {actualByPartition[partition].Count} unexpected records");

        foreach (var (partition, expected) in expectedByPartition.OrderBy(kv => kv.Key))
        {
            var actual = actualByPartition.GetValueOrDefault(partition) ?? [];
            if (actual.Count != expected.Count)
                failures.AppendLine(CultureInfo.InvariantCulture, $"partition {partition}: consumed {actual.Count}, expected {expected.Count}");
            for (var j = 0; j < Math.Min(actual.Count, expected.Count); j++)
            {
                var (want, index) = expected[j];
                var got = actual[j];
                var where = $"partition {partition} record #{j} (produced #{index})";
                if (got.Topic != topic)
                    failures.AppendLine(CultureInfo.InvariantCulture, $"{where}: topic {got.Topic}");
                if (got.Offset != j)
                    failures.AppendLine(CultureInfo.InvariantCulture, $"{where}: offset {got.Offset}, expected {j}");
                if (got.Key != want.Key)
                    failures.AppendLine(CultureInfo.InvariantCulture, $"{where}: key {Show(got.Key)}, expected {Show(want.Key)}");
                if (got.Value != want.Value)
                    failures.AppendLine(CultureInfo.InvariantCulture, $"{where}: value {Show(got.Value)}, expected {Show(want.Value)}");
                if (!got.Headers.SequenceEqual(want.Headers))
                    failures.AppendLine(CultureInfo.InvariantCulture, $"{where}: headers [{string.Join(", ", got.Headers)}], expected [{string.Join(", ", want.Headers)}]");
                if (acks is not null && index < acks.Count)
                {
                    var ack = acks[index];
                    if (ack.Partition != partition || (ack.Offset >= 0 && ack.Offset != got.Offset))
                        failures.AppendLine(CultureInfo.InvariantCulture, $"{where}: producer reported partition {ack.Partition} offset {ack.Offset}, consumed at {partition}/{got.Offset}");
                }
            }
            if (failures.Length > 6000)
                break;
        }

        if (acks is not null && acks.Count != produced.Count)
            failures.AppendLine(CultureInfo.InvariantCulture, $"producer reported {acks.Count} deliveries for {produced.Count} records");

        if (failures.Length > 0)
            Assert.Fail($"{context}: topic {topic}\n{failures}");
    }

    private static string Show(string? s) => s is null ? "null" : $"\"{(s.Length > 80 ? s[..80] + "..." : s)}\"";
}
