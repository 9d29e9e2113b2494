using System.Text.Json;
using System.Text.Json.Nodes;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Kayak.Broker;
using Kayak.IntegrationTests.Drivers;
using Kayak.IntegrationTests.Infrastructure;
using Kayak.Tests.Tls;
using NUnit.Framework;

namespace Kayak.IntegrationTests;

/// <summary>
/// Issue 12: real clients over TLS to a broker with listeners=PLAINTEXT://…,SSL://… — Confluent.Kafka 2.16
/// (SecurityProtocol.Ssl with SslCaLocation, and mTLS with SslCertificateLocation/SslKeyLocation against
/// ssl.client.auth=required), kcat (Debian's librdkafka 2.0.2), kafka-python and kafkajs. Each produces and consumes exact records;
/// Metadata tells each client the endpoint of the listener it came in on.
/// </summary>
[TestFixture]
[NonParallelizable]
[CancelAfter(120_000)]
public sealed class TlsTests : CertificateFixture
{
    private async Task<ListenerBroker> StartAsync(string clientAuth = "none")
    {
        var dir = Path.Combine(Path.GetTempPath(), "kayak-itest", "tls-" + Guid.NewGuid().ToString("N"));
        var options = new KafkaBrokerOptions { DataDir = dir };
        options.Properties["listeners"] = "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0";
        foreach (var (k, v) in Certs.Pkcs12Keystore("listener.name.ssl.")) options.Properties[k] = v;
        options.Properties["listener.name.ssl.ssl.client.auth"] = clientAuth;
        options.Properties["listener.name.ssl.ssl.truststore.location"] = Certs.CaP12;
        options.Properties["listener.name.ssl.ssl.truststore.password"] = TestCertificates.Password;
        options.Properties["listener.name.ssl.ssl.truststore.type"] = "PKCS12";
        var broker = new KafkaBroker(options);
        await broker.StartAsync(Token);
        return new ListenerBroker(broker, dir);
    }

    private void Ssl(ClientConfig c, bool clientCertificate = false)
    {
        c.SecurityProtocol = SecurityProtocol.Ssl;
        c.SslCaLocation = Certs.CaPem;
        if (clientCertificate)
        {
            c.SslCertificateLocation = Certs.ClientCertPem;
            c.SslKeyLocation = Certs.ClientKeyPem;
        }
    }

    private async Task ConfluentRoundTripAsync(ListenerBroker broker, bool clientCertificate)
    {
        var topic = await broker.CreateTopicAsync(Partitions, "tls-confluent");
        var records = TestData.Records("confluent-ssl", 20, Partitions);
        var acks = new List<ProducedRecord>();
        using (var producer = ConfluentClients.Producer(broker.Endpoint("SSL"), c => Ssl(c, clientCertificate)))
        {
            foreach (var r in records)
            {
                var headers = new Headers();
                foreach (var h in r.Headers) headers.Add(h.Key, ConfluentClients.Utf8(h.Value));
                var d = await producer.ProduceAsync(new TopicPartition(topic, r.Partition),
                    new Message<byte[], byte[]> { Key = ConfluentClients.Utf8(r.Key)!, Value = ConfluentClients.Utf8(r.Value)!, Headers = headers }, Token);
                acks.Add(new ProducedRecord(d.Partition.Value, d.Offset.Value));
            }
        }
        var consumed = await Task.Run(() => ConfluentClients.ConsumeAll(broker.Endpoint("SSL"), topic, TimeSpan.FromSeconds(60),
            c => Ssl(c, clientCertificate), Token, partitionCount: Partitions), Token);
        TestData.AssertExactlyConsumed(topic, records, acks, consumed, "confluent over SSL");
    }

    [Test]
    public async Task Confluent_ProducesAndConsumesOverSsl()
    {
        await using var broker = await StartAsync();
        await ConfluentRoundTripAsync(broker, clientCertificate: false);
    }

    [Test]
    public async Task Confluent_MutualTls_WithTheClientCertificate_AndRefusedWithoutIt()
    {
        await using var broker = await StartAsync(clientAuth: "required");
        await ConfluentRoundTripAsync(broker, clientCertificate: true);

        // No client certificate: the broker fails the handshake, so no metadata ever arrives.
        var config = ConfluentClients.AdminConfig(broker.Endpoint("SSL"));
        Ssl(config);
        using var admin = new AdminClientBuilder(config).Build();
        Assert.That(() => admin.GetMetadata(TimeSpan.FromSeconds(5)), Throws.InstanceOf<KafkaException>());
    }

    [Test]
    public async Task Metadata_TellsEachClientTheEndpointOfItsListener()
    {
        await using var broker = await StartAsync();
        var config = ConfluentClients.AdminConfig(broker.Endpoint("SSL"));
        Ssl(config);
        using (var ssl = new AdminClientBuilder(config).Build())
        {
            var md = ssl.GetMetadata(TimeSpan.FromSeconds(10));
            Assert.That($"{md.Brokers[0].Host}:{md.Brokers[0].Port}", Is.EqualTo(broker.Endpoint("SSL")));
        }
        using var plain = ConfluentClients.Admin(broker.Endpoint("PLAINTEXT"));
        var plainMd = plain.GetMetadata(TimeSpan.FromSeconds(10));
        Assert.That($"{plainMd.Brokers[0].Host}:{plainMd.Brokers[0].Port}", Is.EqualTo(broker.Endpoint("PLAINTEXT")));

        // kcat (Debian's librdkafka 2.0.2) over SSL sees the SSL endpoint too.
        var kcat = await Kcat.RunAsync(broker.Endpoint("SSL"), ["-L", "-J"], options: KcatSsl(), cancellationToken: Token);
        using var doc = JsonDocument.Parse(kcat.Stdout);
        var b = doc.RootElement.GetProperty("brokers")[0];
        Assert.That(b.GetProperty("name").GetString(), Is.EqualTo(broker.Endpoint("SSL")));
    }

    private KcatOptions KcatSsl() => new() { Settings = { ["security.protocol"] = "ssl", ["ssl.ca.location"] = Certs.CaPem } };

    [Test]
    public async Task Kcat_ProducesAndConsumesOverSsl()
    {
        await using var broker = await StartAsync();
        var topic = await broker.CreateTopicAsync(Partitions, "tls-kcat");
        var records = TestData.Records("kcat-ssl", 12, Partitions);
        var kcat = new Kcat();
        var acks = await kcat.ProduceAsync(broker.Endpoint("SSL"), topic, records, null, KcatSsl(), Token);
        var consumed = await kcat.ConsumeAsync(broker.Endpoint("SSL"), topic, KcatSsl(), Token);
        TestData.AssertExactlyConsumed(topic, records, acks, consumed, "kcat over SSL");
    }

    [TestCase("kafka-python")]
    [TestCase("kafkajs")]
    public async Task ScriptClients_ProduceAndConsumeOverSsl(string client)
    {
        await using var broker = await StartAsync();
        var topic = await broker.CreateTopicAsync(Partitions, "tls-" + client);
        var records = TestData.Records(client + "-ssl", 12, Partitions);
        JsonScriptDriver driver = client == "kafkajs" ? new KafkaJs() : new PythonKafka();
        // kafka-python takes the CA file, kafkajs its PEM text (Node's tls.connect ca); both verify the host name.
        JsonObject Security() => client == "kafkajs"
            ? new() { ["ssl"] = new JsonObject { ["ca"] = new JsonArray(File.ReadAllText(Certs.CaPem)) } }
            : new() { ["security_protocol"] = "SSL", ["ssl_cafile"] = Certs.CaPem };
        var produced = await driver.RunAsync("produce", new JsonObject
        {
            ["bootstrap"] = broker.Endpoint("SSL"),
            ["topic"] = topic,
            ["acks"] = "all",
            ["records"] = JsonScriptDriver.RecordsJson(records),
            ["client_config"] = Security(),
        }, cancellationToken: Token);
        var acks = JsonScriptDriver.ParseAcks(produced["acks"]!.AsArray());
        var consumed = await driver.RunAsync("consume", new JsonObject
        {
            ["bootstrap"] = broker.Endpoint("SSL"),
            ["topic"] = topic,
            ["timeout_ms"] = 60_000,
            ["client_config"] = Security(),
        }, cancellationToken: Token);
        TestData.AssertExactlyConsumed(topic, records, acks, JsonScriptDriver.ParseRecords(consumed["records"]!.AsArray()), client + " over SSL");
    }
}
