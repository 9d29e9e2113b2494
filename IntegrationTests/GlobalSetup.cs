using Kayak.IntegrationTests.Infrastructure;
using NUnit.Framework;

namespace Kayak.IntegrationTests;

/// <summary>Loads librdkafka.redist's librdkafka (and checks its version) once for the assembly, and reaps any broker process a test left behind.</summary>
[SetUpFixture]
public sealed class GlobalSetup
{
    [OneTimeSetUp]
    public void LoadNativeClient()
    {
        NativeKafka.EnsureLoaded();
        TestContext.Progress.WriteLine($"librdkafka {Confluent.Kafka.Library.VersionString} from {NativeKafka.LoadedFrom}; broker under test: {(BrokerUnderTest.UsingMock ? "librdkafka mock cluster (KAYAK_TEST_BROKER=mock)" : "kayak")}");
    }

    [OneTimeTearDown]
    public void ReapBrokers() => ProcessBroker.KillAllStarted();
}

/// <summary>
/// Base for tests that each start their own broker. Subclasses get <see cref="Token"/> (cancelled by [CancelAfter])
/// and <see cref="StartBrokerAsync"/>; the broker is disposed after the test and its output attached on failure.
/// </summary>
public abstract class BrokerTestBase
{
    private readonly List<BrokerUnderTest> brokers = [];

    protected static CancellationToken Token => TestContext.CurrentContext.CancellationToken;

    /// <summary>A topic name unique to this test invocation.</summary>
    protected static string TopicName(string prefix = "t") =>
        $"{prefix}-{Guid.NewGuid():N}"[..Math.Min(prefix.Length + 13, 60)];

    protected async Task<BrokerUnderTest> StartBrokerAsync(BrokerMode mode, BrokerSettings? settings = null)
    {
        var broker = await BrokerUnderTest.StartAsync(mode, settings, Token);
        brokers.Add(broker);
        return broker;
    }

    /// <summary>Restart and kill tests need a real Kayak broker; under KAYAK_TEST_BROKER=mock they do not apply.</summary>
    protected static void RequireKayak(string why)
    {
        if (BrokerUnderTest.UsingMock)
            Assert.Ignore($"not applicable to the librdkafka mock cluster: {why}");
    }

    [TearDown]
    public async Task DisposeBrokers()
    {
        var failed = TestContext.CurrentContext.Result.Outcome.Status == NUnit.Framework.Interfaces.TestStatus.Failed;
        foreach (var broker in brokers)
        {
            if (failed)
                TestContext.Out.WriteLine(broker.Describe());
            await broker.DisposeAsync();
        }
        brokers.Clear();
    }
}
