using Kayak.IntegrationTests.Drivers;
using Kayak.IntegrationTests.Infrastructure;
using NUnit.Framework;

namespace Kayak.IntegrationTests;

/// <summary>The harness's own checks must catch what they are meant to catch (no broker involved).</summary>
[TestFixture]
public sealed class HarnessSelfTests
{
    private static List<ConsumedRecord> AsConsumed(string topic, IEnumerable<TestRecord> records)
    {
        var next = new Dictionary<int, long>();
        var result = new List<ConsumedRecord>();
        foreach (var r in records)
        {
            var offset = next.GetValueOrDefault(r.Partition);
            next[r.Partition] = offset + 1;
            result.Add(new ConsumedRecord(topic, r.Partition, offset, r.Key, r.Value, r.Headers, 0));
        }
        return result;
    }

    [Test]
    public void ExactMatchPasses()
    {
        var records = TestData.Records("self", 12, 3);
        var consumed = AsConsumed("t", records);
        var acks = consumed.Select(c => new ProducedRecord(c.Partition, c.Offset)).ToList();
        Assert.DoesNotThrow(() => TestData.AssertExactlyConsumed("t", records, acks, consumed, "self"));
    }

    [Test]
    public void MissingRecordFails()
    {
        var records = TestData.Records("self", 12, 3);
        var consumed = AsConsumed("t", records);
        consumed.RemoveAt(5);
        Assert.Throws<AssertionException>(() => TestData.AssertExactlyConsumed("t", records, null, consumed, "self"));
    }

    [Test]
    public void WrongHeaderFails()
    {
        var records = TestData.Records("self", 6, 3);
        var consumed = AsConsumed("t", records);
        consumed[2] = consumed[2] with { Headers = [new TestHeader("producer", "other"), consumed[2].Headers[1]] };
        Assert.Throws<AssertionException>(() => TestData.AssertExactlyConsumed("t", records, null, consumed, "self"));
    }

    [Test]
    public void ReorderedHeadersFail()
    {
        var records = TestData.Records("self", 6, 3);
        var consumed = AsConsumed("t", records);
        consumed[1] = consumed[1] with { Headers = consumed[1].Headers.Reverse().ToList() };
        Assert.Throws<AssertionException>(() => TestData.AssertExactlyConsumed("t", records, null, consumed, "self"));
    }

    [Test]
    public void ShiftedOffsetFails()
    {
        var records = TestData.Records("self", 6, 3);
        var consumed = AsConsumed("t", records).Select(c => c with { Offset = c.Offset + 1 }).ToList();
        Assert.Throws<AssertionException>(() => TestData.AssertExactlyConsumed("t", records, null, consumed, "self"));
    }

    [Test]
    public void ProducerReportedOffsetMismatchFails()
    {
        var records = TestData.Records("self", 6, 3);
        var consumed = AsConsumed("t", records);
        var acks = consumed.Select(c => new ProducedRecord(c.Partition, c.Offset + 10)).ToList();
        Assert.Throws<AssertionException>(() => TestData.AssertExactlyConsumed("t", records, acks, consumed, "self"));
    }

    [Test]
    public void KcatJsonRecordParses()
    {
        const string line = """{"topic":"t3","partition":1,"offset":7,"tstype":"create","ts":1700000000123,"broker":1,"headers":["a","b","c",""],"key":"k1","payload":"v1"}""";
        var r = Kcat.ParseJsonRecord(line);
        Assert.That(r, Is.EqualTo(r with { Topic = "t3", Partition = 1, Offset = 7, Key = "k1", Value = "v1", TimestampMs = 1700000000123 }));
        Assert.That(r.Headers, Is.EqualTo(new[] { new TestHeader("a", "b"), new TestHeader("c", "") }));
    }

    [Test]
    public void KcatJsonNullKeyAndPayloadParse()
    {
        var r = Kcat.ParseJsonRecord("""{"topic":"t","partition":0,"offset":0,"ts":1,"headers":[],"key":null,"payload":null}""");
        Assert.That((r.Key, r.Value), Is.EqualTo(((string?)null, (string?)null)));
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task HungToolIsKilledAtItsTimeout()
    {
        var result = await ProcessRunner.RunAsync(new ProcessSpec
        {
            FileName = "/bin/sh",
            Arguments = ["-c", "echo started >&2; exec sleep 60"],
            Timeout = TimeSpan.FromMilliseconds(500),
        });
        Assert.That(result.TimedOut, Is.True);
        Assert.That(result.Stderr, Does.Contain("started"), "stderr captured");
        Assert.Throws<AssertionException>(() => result.EnsureSuccess());
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task FailingToolReportsStderr()
    {
        var result = await ProcessRunner.RunAsync(new ProcessSpec
        {
            FileName = "/bin/sh",
            Arguments = ["-c", "cat >/dev/null; echo boom >&2; exit 3"],
            StandardInput = "input",
        });
        Assert.That((result.ExitCode, result.TimedOut), Is.EqualTo((3, false)));
        var failure = Assert.Throws<AssertionException>(() => result.EnsureSuccess());
        Assert.That(failure!.Message, Does.Contain("boom"));
    }

    [Test]
    public void ConfluentRunsOnTheRedistLibrdkafka()
    {
        NativeKafka.EnsureLoaded();
        // Not Debian's /usr/lib librdkafka 2.0.2, which .NET falls back to when the package's default build fails to load.
        Assert.That(Confluent.Kafka.Library.VersionString, Is.EqualTo("2.16.0"));
        Assert.That(Confluent.Kafka.Library.Version, Is.EqualTo(0x021000ff), "rd_kafka_version(): 2.16.0 release");
        Assert.That(NativeKafka.LoadedFrom, Does.EndWith("/runtimes/linux-x64/native/centos8-librdkafka.so").Or.EndWith("/runtimes/linux-arm64/native/centos8-librdkafka.so"));
    }
}
