using System.Text.Json;
using System.Text.Json.Nodes;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Kayak.Broker;
using Kayak.IntegrationTests.Drivers;
using Kayak.IntegrationTests.Infrastructure;
using Kayak.Tests.Tls;
using Microsoft.Extensions.Logging;
using NUnit.Framework;

namespace Kayak.IntegrationTests;

/// <summary>
/// Issue 12, part 3: real clients over SASL to a broker with listeners=PLAINTEXT://…,SASL_PLAINTEXT://…,SASL_SSL://…
/// configured with Kafka's keys (sasl.enabled.mechanisms, listener.name.*.plain.sasl.jaas.config, sasl.jaas.config with
/// ScramLoginModule) and SCRAM users seeded as --add-scram does: Confluent.Kafka 2.16 with PLAIN, SCRAM-SHA-256 and
/// SCRAM-SHA-512 and over SASL_SSL (and KIP-368 re-authentication), kcat (librdkafka 2.0.2) with PLAIN and SCRAM,
/// kafka-python 2.0.2 (v0 handshake, unframed tokens) with PLAIN and SCRAM, kafkajs with PLAIN and SCRAM. Each produces
/// and consumes exact records; a wrong password is refused.
/// </summary>
[TestFixture]
[NonParallelizable]
[CancelAfter(120_000)]
public sealed class SaslTests : CertificateFixture
{
    private async Task<ListenerBroker> StartAsync(Action<KafkaBrokerOptions>? configure = null)
    {
        var dir = Path.Combine(Path.GetTempPath(), "kayak-itest", "sasl-" + Guid.NewGuid().ToString("N"));
        var options = new KafkaBrokerOptions { DataDir = dir };
        var p = options.Properties;
        p["listeners"] = "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0";
        p["sasl.enabled.mechanisms"] = "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512";
        // OAUTHBEARER (unsecured JWS, KIP-255) on the SASL_SSL listener too, so each mechanism is tried over TLS.
        p["listener.name.sasl_ssl.sasl.enabled.mechanisms"] = "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER";
        p["listener.name.sasl_ssl.oauthbearer.sasl.jaas.config"] = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;";
        const string plain = "org.apache.kafka.common.security.plain.PlainLoginModule required user_alice=\"alice-secret\";";
        p["listener.name.sasl_plaintext.plain.sasl.jaas.config"] = plain;
        p["listener.name.sasl_ssl.plain.sasl.jaas.config"] = plain;
        p["sasl.jaas.config"] = "org.apache.kafka.common.security.scram.ScramLoginModule required;";
        foreach (var (k, v) in Certs.Pkcs12Keystore("listener.name.sasl_ssl.")) p[k] = v;
        options.ScramCredentials.Add("SCRAM-SHA-256=[name=alice,password=alice-secret]");
        options.ScramCredentials.Add("SCRAM-SHA-512=[name=alice,password=alice-secret]");
        configure?.Invoke(options);
        var broker = new KafkaBroker(options);
        await broker.StartAsync(Token);
        return new ListenerBroker(broker, dir);
    }

    private Action<ClientConfig> Sasl(string mechanism, bool ssl = false, string password = "alice-secret") => c =>
    {
        c.SecurityProtocol = ssl ? SecurityProtocol.SaslSsl : SecurityProtocol.SaslPlaintext;
        c.SaslMechanism = mechanism switch
        {
            "PLAIN" => SaslMechanism.Plain,
            "SCRAM-SHA-256" => SaslMechanism.ScramSha256,
            "OAUTHBEARER" => SaslMechanism.OAuthBearer,
            _ => SaslMechanism.ScramSha512,
        };
        if (mechanism == "OAUTHBEARER")
        {
            // librdkafka's unsecured JWT for development, what Kafka's default validator accepts.
            c.EnableSaslOauthbearerUnsecureJwt = true;
            c.SaslOauthbearerConfig = "principal=alice";
        }
        c.SaslUsername = "alice";
        c.SaslPassword = password;
        if (ssl) c.SslCaLocation = Certs.CaPem;
    };

    private async Task ConfluentRoundTripAsync(ListenerBroker broker, string endpoint, Action<ClientConfig> security, string what)
    {
        var topic = await broker.CreateTopicAsync(Partitions, "sasl-confluent");
        var records = TestData.Records(what, 20, Partitions);
        var acks = new List<ProducedRecord>();
        using (var producer = ConfluentClients.Producer(endpoint, c => security(c)))
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
        var consumed = await Task.Run(() => ConfluentClients.ConsumeAll(endpoint, topic, TimeSpan.FromSeconds(60),
            c => security(c), Token, partitionCount: Partitions), Token);
        TestData.AssertExactlyConsumed(topic, records, acks, consumed, what);
    }

    [TestCase("PLAIN")]
    [TestCase("SCRAM-SHA-256")]
    [TestCase("SCRAM-SHA-512")]
    public async Task Confluent_ProducesAndConsumesOverSaslPlaintext(string mechanism)
    {
        await using var broker = await StartAsync();
        await ConfluentRoundTripAsync(broker, broker.Endpoint("SASL_PLAINTEXT"), Sasl(mechanism), "confluent " + mechanism);
    }

    [TestCase("PLAIN")]
    [TestCase("SCRAM-SHA-256")]
    [TestCase("SCRAM-SHA-512")]
    [TestCase("OAUTHBEARER")]
    public async Task Confluent_ProducesAndConsumesOverSaslSsl(string mechanism)
    {
        await using var broker = await StartAsync();
        await ConfluentRoundTripAsync(broker, broker.Endpoint("SASL_SSL"), Sasl(mechanism, ssl: true), "confluent SASL_SSL " + mechanism);
    }

    [TestCase("PLAIN", "Authentication failed: Invalid username or password")]
    [TestCase("SCRAM-SHA-256", "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256")]
    public async Task Confluent_WrongPassword_SeesAnAuthenticationFailure(string mechanism, string message)
    {
        await using var broker = await StartAsync();
        var config = ConfluentClients.AdminConfig(broker.Endpoint("SASL_PLAINTEXT"));
        Sasl(mechanism, password: "wrong")(config);
        var errors = new List<Error>();
        using var admin = new AdminClientBuilder(config).SetErrorHandler((_, e) => { lock (errors) errors.Add(e); }).Build();
        Assert.That(() => admin.GetMetadata(TimeSpan.FromSeconds(5)), Throws.InstanceOf<KafkaException>());
        lock (errors)
        {
            Assert.That(errors.Any(e => e.Code == ErrorCode.Local_Authentication && e.Reason.Contains(message)),
                "errors: " + string.Join(" | ", errors.Select(e => $"{e.Code}: {e.Reason}")));
        }
    }

    /// <summary>
    /// KIP-368 with a real client: librdkafka 2.16 re-authenticates before the session lifetime the broker sent
    /// (connections.max.reauth.ms) runs out, so its connection is never closed for an expired session and every record
    /// produced across several lifetimes is delivered.
    /// </summary>
    [Test]
    public async Task Confluent_ReauthenticatesBeforeTheSessionExpires()
    {
        var logs = new InfoLog();
        using var loggerFactory = LoggerFactory.Create(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Debug));
        await using var broker = await StartAsync(o => { o.Properties["connections.max.reauth.ms"] = "3000"; o.LoggerFactory = loggerFactory; });
        var topic = await broker.CreateTopicAsync(Partitions, "sasl-reauth");
        using var producer = ConfluentClients.Producer(broker.Endpoint("SASL_PLAINTEXT"), c => Sasl("SCRAM-SHA-256")(c));
        for (int i = 0; i < 40; i++)
        {
            var d = await producer.ProduceAsync(new TopicPartition(topic, 0), new Message<byte[], byte[]> { Key = [], Value = [(byte)i] }, Token);
            Assert.That(d.Offset.Value, Is.EqualTo(i));
            await Task.Delay(250, Token); // lets the session lifetime pass several times over the run
        }
        var lines = logs.Lines;
        Assert.That(lines, Has.None.Contains("SASL session expired"), string.Join("\n", lines));
        Assert.That(lines, Has.None.Contains("Failed authentication"));
        // The producer's connection re-authenticated in place, more than once (10 s of producing, 3 s sessions).
        var reauth = lines.Where(l => l.StartsWith("Re-authenticated User:alice from ", StringComparison.Ordinal)).ToList();
        Assert.That(reauth, Has.Count.GreaterThanOrEqualTo(2), string.Join("\n", lines));
    }

    private sealed class InfoLog : ILoggerProvider, ILogger
    {
        private readonly List<string> _lines = [];
        public List<string> Lines { get { lock (_lines) return [.. _lines]; } }
        ILogger ILoggerProvider.CreateLogger(string categoryName) => this;
        IDisposable? ILogger.BeginScope<TState>(TState state) => null;
        bool ILogger.IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Debug;
        void ILogger.Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (_lines) _lines.Add(formatter(state, exception));
        }
        void IDisposable.Dispose() { }
    }

    private static KcatOptions KcatPlain(string password = "alice-secret") => new()
    {
        Settings = { ["security.protocol"] = "sasl_plaintext", ["sasl.mechanism"] = "PLAIN", ["sasl.username"] = "alice", ["sasl.password"] = password },
    };

    [TestCase("PLAIN", "SASL_PLAINTEXT")]
    [TestCase("SCRAM-SHA-256", "SASL_PLAINTEXT")] // librdkafka 2.0.2 repeats its nonce in client-final; Kafka (and Kayak) accept it
    [TestCase("SCRAM-SHA-512", "SASL_PLAINTEXT")]
    [TestCase("PLAIN", "SASL_SSL")]
    [TestCase("SCRAM-SHA-512", "SASL_SSL")]
    [TestCase("OAUTHBEARER", "SASL_SSL")]
    public async Task Kcat_ProducesAndConsumesOverSasl(string mechanism, string listener)
    {
        await using var broker = await StartAsync();
        var topic = await broker.CreateTopicAsync(Partitions, "sasl-kcat");
        var records = TestData.Records("kcat-sasl", 12, Partitions);
        var kcat = new Kcat();
        var options = KcatPlain();
        options.Settings["sasl.mechanism"] = mechanism;
        if (mechanism == "OAUTHBEARER")
        {
            options.Settings.Remove("sasl.username");
            options.Settings.Remove("sasl.password");
            options.Settings["enable.sasl.oauthbearer.unsecure.jwt"] = "true";
            options.Settings["sasl.oauthbearer.config"] = "principal=alice";
        }
        if (listener == "SASL_SSL")
        {
            options.Settings["security.protocol"] = "sasl_ssl";
            options.Settings["ssl.ca.location"] = Certs.CaPem;
        }
        string endpoint = broker.Endpoint(listener);
        var acks = await kcat.ProduceAsync(endpoint, topic, records, null, options, Token);
        var consumed = await kcat.ConsumeAsync(endpoint, topic, options, Token);
        TestData.AssertExactlyConsumed(topic, records, acks, consumed, $"kcat {mechanism} over {listener}");

        var metadata = await Kcat.RunAsync(endpoint, ["-L", "-J"], options: options, cancellationToken: Token);
        using var doc = JsonDocument.Parse(metadata.Stdout);
        Assert.That(doc.RootElement.GetProperty("brokers")[0].GetProperty("name").GetString(), Is.EqualTo(endpoint));
    }

    [TestCase("kafka-python", "PLAIN", "SASL_PLAINTEXT")]
    [TestCase("kafka-python", "SCRAM-SHA-256", "SASL_PLAINTEXT")]
    [TestCase("kafka-python", "SCRAM-SHA-512", "SASL_PLAINTEXT")]
    [TestCase("kafkajs", "PLAIN", "SASL_PLAINTEXT")]
    [TestCase("kafkajs", "SCRAM-SHA-512", "SASL_PLAINTEXT")]
    [TestCase("kafka-python", "SCRAM-SHA-512", "SASL_SSL")]
    [TestCase("kafkajs", "SCRAM-SHA-256", "SASL_SSL")]
    public async Task ScriptClients_ProduceAndConsumeOverSasl(string client, string mechanism, string listener)
    {
        bool ssl = listener == "SASL_SSL";
        await using var broker = await StartAsync();
        var topic = await broker.CreateTopicAsync(Partitions, "sasl-script");
        var records = TestData.Records(client + "-sasl", 12, Partitions);
        JsonScriptDriver driver = client == "kafkajs" ? new KafkaJs() : new PythonKafka();
        // kafka-python 2.0.2 speaks SaslHandshake v0 and raw tokens; kafkajs SaslHandshake v1 and SaslAuthenticate.
        // kafkajs takes the CA's PEM text (Node's tls.connect ca), kafka-python a file.
        JsonObject Security() => client == "kafkajs"
            ? new()
            {
                ["sasl"] = new JsonObject { ["mechanism"] = mechanism.ToLowerInvariant(), ["username"] = "alice", ["password"] = "alice-secret" },
                ["ssl"] = ssl ? new JsonObject { ["ca"] = new JsonArray(File.ReadAllText(Certs.CaPem)) } : false,
            }
            : new()
            {
                ["security_protocol"] = listener,
                ["ssl_cafile"] = ssl ? Certs.CaPem : null,
                ["sasl_mechanism"] = mechanism,
                ["sasl_plain_username"] = "alice",
                ["sasl_plain_password"] = "alice-secret",
            };
        var produced = await driver.RunAsync("produce", new JsonObject
        {
            ["bootstrap"] = broker.Endpoint(listener),
            ["topic"] = topic,
            ["acks"] = "all",
            ["records"] = JsonScriptDriver.RecordsJson(records),
            ["client_config"] = Security(),
        }, cancellationToken: Token);
        var acks = JsonScriptDriver.ParseAcks(produced["acks"]!.AsArray());
        var consumed = await driver.RunAsync("consume", new JsonObject
        {
            ["bootstrap"] = broker.Endpoint(listener),
            ["topic"] = topic,
            ["timeout_ms"] = 60_000,
            ["client_config"] = Security(),
        }, cancellationToken: Token);
        TestData.AssertExactlyConsumed(topic, records, acks, JsonScriptDriver.ParseRecords(consumed["records"]!.AsArray()), $"{client} {mechanism} over {listener}");
    }
}
