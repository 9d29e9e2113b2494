using System.Text.Json.Nodes;
using Kayak.Broker;
using Kayak.IntegrationTests.Drivers;
using Kayak.IntegrationTests.Infrastructure;
using Kayak.Tests.Tls;
using NUnit.Framework;

namespace Kayak.IntegrationTests;

/// <summary>
/// Issue 12, part 4: sarama 1.22.1 (Debian's Go client) over TLS and SASL to a broker with PLAINTEXT, SSL,
/// SASL_PLAINTEXT and SASL_SSL listeners configured with Kafka's keys: SSL with the test CA (the IP SAN is verified),
/// SASL/PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 (sarama's SCRAMClient, implemented in go/sarama-driver/scram.go with
/// the standard library only) and SCRAM over SASL_SSL. Each produces and consumes exact records; a wrong password
/// is refused.
/// </summary>
[TestFixture]
[NonParallelizable]
[CancelAfter(180_000)]
public sealed class SaramaSecurityTests : CertificateFixture
{
    private async Task<ListenerBroker> StartAsync()
    {
        var dir = Path.Combine(Path.GetTempPath(), "kayak-itest", "sarama-sec-" + Guid.NewGuid().ToString("N"));
        var options = new KafkaBrokerOptions { DataDir = dir };
        var p = options.Properties;
        p["listeners"] = "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0";
        p["sasl.enabled.mechanisms"] = "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512";
        const string plain = "org.apache.kafka.common.security.plain.PlainLoginModule required user_alice=\"alice-secret\";";
        p["listener.name.sasl_plaintext.plain.sasl.jaas.config"] = plain;
        p["listener.name.sasl_ssl.plain.sasl.jaas.config"] = plain;
        p["sasl.jaas.config"] = "org.apache.kafka.common.security.scram.ScramLoginModule required;";
        foreach (var (k, v) in Certs.Pkcs12Keystore("listener.name.ssl.")) p[k] = v;
        foreach (var (k, v) in Certs.Pkcs12Keystore("listener.name.sasl_ssl.")) p[k] = v;
        options.ScramCredentials.Add("SCRAM-SHA-256=[name=alice,password=alice-secret]");
        options.ScramCredentials.Add("SCRAM-SHA-512=[name=alice,password=alice-secret,iterations=8192]");
        var broker = new KafkaBroker(options);
        await broker.StartAsync(Token);
        return new ListenerBroker(broker, dir);
    }

    private JsonObject Security(string? mechanism, bool tls, string password = "alice-secret")
    {
        var s = new JsonObject();
        if (tls) s["tls_ca"] = Certs.CaPem;
        if (mechanism is not null)
        {
            s["sasl_mechanism"] = mechanism;
            s["username"] = "alice";
            s["password"] = password;
        }
        return s;
    }

    [TestCase("SSL", null)]
    [TestCase("SASL_PLAINTEXT", "PLAIN")]
    [TestCase("SASL_PLAINTEXT", "SCRAM-SHA-256")]
    [TestCase("SASL_PLAINTEXT", "SCRAM-SHA-512")]
    [TestCase("SASL_SSL", "SCRAM-SHA-512")]
    [TestCase("SASL_SSL", "PLAIN")]
    public async Task Sarama_ProducesAndConsumes(string listener, string? mechanism)
    {
        await using var broker = await StartAsync();
        var topic = await broker.CreateTopicAsync(Partitions, "sarama-sec");
        var sarama = new SaramaDriver { Security = Security(mechanism, listener.Contains("SSL", StringComparison.Ordinal)) };
        var records = TestData.Records("sarama " + listener + " " + mechanism, 12, Partitions);
        var acks = await sarama.ProduceAsync(broker.Endpoint(listener), topic, records, cancellationToken: Token);
        var consumed = await sarama.ConsumeAllAsync(broker.Endpoint(listener), topic, Token);
        TestData.AssertExactlyConsumed(topic, records, acks, consumed, $"sarama over {listener} {mechanism}");
    }

    [TestCase("PLAIN")]
    [TestCase("SCRAM-SHA-512")]
    public async Task Sarama_WrongPassword_IsRefused(string mechanism)
    {
        await using var broker = await StartAsync();
        var topic = await broker.CreateTopicAsync(1, "sarama-refused");
        var sarama = new SaramaDriver { Security = Security(mechanism, tls: false, password: "wrong") };
        var result = await sarama.TryRunAsync("produce", new JsonObject
        {
            ["bootstrap"] = broker.Endpoint("SASL_PLAINTEXT"),
            ["topic"] = topic,
            ["records"] = JsonScriptDriver.RecordsJson(TestData.Records("refused", 1, 1)),
        }, TimeSpan.FromSeconds(60), Token);
        Assert.That(result.ExitCode, Is.Not.EqualTo(0), result.Stdout + result.Stderr);
        Assert.That(result.Stderr, Does.Contain("new producer"), result.Stderr);
    }
}
