using Kayak.Broker;
using Kayak.IntegrationTests.Infrastructure;
using Kayak.Tests.Tls;
using NUnit.Framework;

namespace Kayak.IntegrationTests;

/// <summary>An in-process broker with several named listeners (TLS and SASL tests); disposing it removes its data dir.</summary>
internal sealed class ListenerBroker(KafkaBroker broker, string dir) : IAsyncDisposable
{
    /// <summary>"host:port" of the listener named <paramref name="name"/> (PLAINTEXT, SSL, SASL_PLAINTEXT, ...).</summary>
    public string Endpoint(string name) => broker.Listeners.First(l => l.Name == name) is var l ? $"{l.Host}:{l.Port}" : "";

    /// <summary>A fresh topic named after <paramref name="prefix"/>, created through the PLAINTEXT listener.</summary>
    public async Task<string> CreateTopicAsync(int partitions, string prefix)
    {
        var topic = $"{prefix}-{Guid.NewGuid():N}";
        using var admin = ConfluentClients.Admin(Endpoint("PLAINTEXT"));
        await admin.CreateTopicsAsync([new Confluent.Kafka.Admin.TopicSpecification { Name = topic, NumPartitions = partitions, ReplicationFactor = 1 }]);
        return topic;
    }

    public async ValueTask DisposeAsync()
    {
        await broker.DisposeAsync();
        try { Directory.Delete(dir, true); } catch (IOException) { }
    }
}

/// <summary>
/// What the TLS and SASL fixtures share: librdkafka's native library loaded, one set of certificates (CA, broker and
/// client) generated for the fixture and deleted after it, the test's cancellation token.
/// </summary>
public abstract class CertificateFixture
{
    private protected const int Partitions = 2;
    private protected TestCertificates Certs { get; private set; } = null!;

    [OneTimeSetUp]
    public void CreateCertificates()
    {
        NativeKafka.EnsureLoaded();
        Certs = TestCertificates.Create();
    }

    [OneTimeTearDown]
    public void DeleteCertificates() => Certs.Dispose();

    private protected static CancellationToken Token => TestContext.CurrentContext.CancellationToken;
}
