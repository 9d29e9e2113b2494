using System.Text;
using System.Text.Json.Nodes;
using Confluent.Kafka;
using Kayak.Broker;
using Kayak.IntegrationTests.Drivers;
using Kayak.IntegrationTests.Infrastructure;
using NUnit.Framework;

namespace Kayak.IntegrationTests;

/// <summary>
/// Issue 12, part 2: SASL/OAUTHBEARER with Kafka's unsecured JWS validator, configured with Kafka's keys
/// (sasl.enabled.mechanisms=OAUTHBEARER, listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config with
/// OAuthBearerLoginModule and unsecuredValidatorRequiredScope). Confluent.Kafka 2.16 and kcat (librdkafka 2.0.2) with
/// librdkafka's unsecured JWT (enable.sasl.oauthbearer.unsecure.jwt, sasl.oauthbearer.config=principal=alice ...),
/// kafkajs with an oauthBearerProvider returning an unsecured JWT, and sarama 1.22 with a TokenProvider produce and
/// consume exact records; an expired token and a token without the required scope are refused.
/// </summary>
[TestFixture]
[NonParallelizable]
[CancelAfter(120_000)]
public sealed class OAuthBearerTests
{
    private const int Partitions = 2;

    [OneTimeSetUp]
    public void LoadNative() => NativeKafka.EnsureLoaded();

    private static CancellationToken Token => TestContext.CurrentContext.CancellationToken;

    private static async Task<ListenerBroker> StartAsync()
    {
        var dir = Path.Combine(Path.GetTempPath(), "kayak-itest", "oauth-" + Guid.NewGuid().ToString("N"));
        var options = new KafkaBrokerOptions { DataDir = dir };
        options.Properties["listeners"] = "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0";
        options.Properties["sasl.enabled.mechanisms"] = "OAUTHBEARER";
        options.Properties["listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config"] =
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredValidatorRequiredScope=\"kafka\" unsecuredValidatorAllowableClockSkewMs=\"1000\";";
        var broker = new KafkaBroker(options);
        await broker.StartAsync(Token);
        return new ListenerBroker(broker, dir);
    }

    private static string B64(string json) => Convert.ToBase64String(Encoding.UTF8.GetBytes(json)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>An unsecured JWS (alg none, empty signature) for alice, valid from now for <paramref name="lifetimeSeconds"/>.</summary>
    private static string Jwt(long lifetimeSeconds, params string[] scope)
    {
        long now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var claims = new JsonObject { ["sub"] = "alice", ["iat"] = now + Math.Min(0, lifetimeSeconds) - 60, ["exp"] = now + lifetimeSeconds };
        if (scope.Length > 0) claims["scope"] = new JsonArray(scope.Select(s => (JsonNode)s).ToArray());
        return B64("{\"alg\":\"none\"}") + "." + B64(claims.ToJsonString()) + ".";
    }

    private static Action<ClientConfig> UnsecuredJwt(string oauthConfig) => c =>
    {
        c.SecurityProtocol = SecurityProtocol.SaslPlaintext;
        c.SaslMechanism = SaslMechanism.OAuthBearer;
        c.EnableSaslOauthbearerUnsecureJwt = true;
        c.SaslOauthbearerConfig = oauthConfig;
    };

    [Test]
    public async Task Confluent_WithLibrdkafkasUnsecuredJwt_ProducesAndConsumes()
    {
        await using var broker = await StartAsync();
        var topic = await broker.CreateTopicAsync(Partitions, "oauth-confluent");
        string endpoint = broker.Endpoint("SASL_PLAINTEXT");
        var security = UnsecuredJwt("principal=alice scope=kafka lifeSeconds=600");
        var records = TestData.Records("confluent oauthbearer", 20, Partitions);
        var acks = new List<ProducedRecord>();
        using (var producer = ConfluentClients.Producer(endpoint, c => security(c)))
        {
            foreach (var r in records)
            {
                var d = await producer.ProduceAsync(new TopicPartition(topic, r.Partition), new Message<byte[], byte[]>
                {
                    Key = ConfluentClients.Utf8(r.Key)!,
                    Value = ConfluentClients.Utf8(r.Value)!,
                    Headers = Headers(r),
                }, Token);
                acks.Add(new ProducedRecord(d.Partition.Value, d.Offset.Value));
            }
        }
        var consumed = await Task.Run(() => ConfluentClients.ConsumeAll(endpoint, topic, TimeSpan.FromSeconds(60), c => security(c), Token, partitionCount: Partitions), Token);
        TestData.AssertExactlyConsumed(topic, records, acks, consumed, "confluent OAUTHBEARER");
    }

    private static Headers Headers(TestRecord r)
    {
        var headers = new Headers();
        foreach (var h in r.Headers) headers.Add(h.Key, ConfluentClients.Utf8(h.Value));
        return headers;
    }

    /// <summary>The authentication errors a Confluent admin client reports for <paramref name="configure"/>.</summary>
    private static List<Error> AuthenticationErrors(string endpoint, Action<AdminClientConfig> configure, Action<IClient, string>? refresh = null)
    {
        var config = ConfluentClients.AdminConfig(endpoint);
        configure(config);
        var errors = new List<Error>();
        var builder = new AdminClientBuilder(config).SetErrorHandler((_, e) => { lock (errors) errors.Add(e); });
        if (refresh is not null) builder.SetOAuthBearerTokenRefreshHandler(refresh);
        using var admin = builder.Build();
        Assert.That(() => admin.GetMetadata(TimeSpan.FromSeconds(5)), Throws.InstanceOf<KafkaException>());
        lock (errors) return errors.Where(e => e.Code == ErrorCode.Local_Authentication).ToList();
    }

    [Test]
    public async Task Confluent_TokenWithoutTheRequiredScope_IsRefused()
    {
        await using var broker = await StartAsync();
        var errors = AuthenticationErrors(broker.Endpoint("SASL_PLAINTEXT"), c => UnsecuredJwt("principal=alice scope=other")(c));
        Assert.That(errors.Select(e => e.Reason), Has.Some.Contains("insufficient_scope"), string.Join(" | ", errors.Select(e => e.Reason)));
    }

    [Test]
    public async Task Confluent_ExpiredToken_IsRefused()
    {
        await using var broker = await StartAsync();
        // The application's token refresh handler hands librdkafka a token whose exp passed a minute ago.
        var errors = AuthenticationErrors(broker.Endpoint("SASL_PLAINTEXT"), c =>
        {
            c.SecurityProtocol = SecurityProtocol.SaslPlaintext;
            c.SaslMechanism = SaslMechanism.OAuthBearer;
        }, (client, _) => client.OAuthBearerSetToken(Jwt(-60, "kafka"), DateTimeOffset.UtcNow.AddMinutes(10).ToUnixTimeMilliseconds(), "alice"));
        Assert.That(errors.Select(e => e.Reason), Has.Some.Contains("invalid_token"), string.Join(" | ", errors.Select(e => e.Reason)));
    }

    [Test]
    public async Task Kcat_WithLibrdkafkasUnsecuredJwt_ProducesAndConsumes()
    {
        await using var broker = await StartAsync();
        var topic = await broker.CreateTopicAsync(Partitions, "oauth-kcat");
        var options = new KcatOptions
        {
            Settings =
            {
                ["security.protocol"] = "sasl_plaintext",
                ["sasl.mechanisms"] = "OAUTHBEARER",
                ["enable.sasl.oauthbearer.unsecure.jwt"] = "true",
                ["sasl.oauthbearer.config"] = "principal=alice scope=kafka",
            },
        };
        var kcat = new Kcat();
        var records = TestData.Records("kcat-oauth", 12, Partitions);
        var acks = await kcat.ProduceAsync(broker.Endpoint("SASL_PLAINTEXT"), topic, records, null, options, Token);
        var consumed = await kcat.ConsumeAsync(broker.Endpoint("SASL_PLAINTEXT"), topic, options, Token);
        TestData.AssertExactlyConsumed(topic, records, acks, consumed, "kcat OAUTHBEARER");
    }

    private static JsonObject KafkaJsRequest(string op, string endpoint, string topic, string token, IReadOnlyList<TestRecord>? records = null)
    {
        var request = new JsonObject
        {
            ["bootstrap"] = endpoint,
            ["topic"] = topic,
            ["client_config"] = new JsonObject { ["sasl"] = new JsonObject { ["mechanism"] = "oauthbearer", ["token"] = token } },
        };
        if (op == "produce")
        {
            request["acks"] = "all";
            request["records"] = JsonScriptDriver.RecordsJson(records!);
        }
        else request["timeout_ms"] = 60_000;
        return request;
    }

    [Test]
    public async Task KafkaJs_WithAnOAuthBearerProvider_ProducesAndConsumes_AndAnExpiredTokenIsRefused()
    {
        await using var broker = await StartAsync();
        var topic = await broker.CreateTopicAsync(Partitions, "oauth-kafkajs");
        string endpoint = broker.Endpoint("SASL_PLAINTEXT");
        var js = new KafkaJs();
        var records = TestData.Records("kafkajs-oauth", 12, Partitions);
        var produced = await js.RunAsync("produce", KafkaJsRequest("produce", endpoint, topic, Jwt(600, "kafka"), records), cancellationToken: Token);
        var consumed = await js.RunAsync("consume", KafkaJsRequest("consume", endpoint, topic, Jwt(600, "kafka")), cancellationToken: Token);
        TestData.AssertExactlyConsumed(topic, records, JsonScriptDriver.ParseAcks(produced["acks"]!.AsArray()),
            JsonScriptDriver.ParseRecords(consumed["records"]!.AsArray()), "kafkajs OAUTHBEARER");

        // kafkajs takes the server's {"status":"invalid_token"} challenge for success and sends its next request
        // (Metadata) without the %x01; Kafka's SaslServerAuthenticator (and Kayak) answer it with ILLEGAL_SASL_STATE
        // and close the connection, so the producer fails and writes nothing.
        var expired = await js.TryRunAsync("produce", KafkaJsRequest("produce", endpoint, topic, Jwt(-60, "kafka"), records), TimeSpan.FromSeconds(60), Token);
        Assert.That(expired.ExitCode, Is.Not.EqualTo(0), expired.Stdout);
        Assert.That(expired.Stderr, Does.Contain("Request is not valid given the current SASL state"), expired.Stderr);
        var after = await js.RunAsync("consume", KafkaJsRequest("consume", endpoint, topic, Jwt(600, "kafka")), cancellationToken: Token);
        Assert.That(after["records"]!.AsArray(), Has.Count.EqualTo(records.Count), "the refused producer wrote nothing");
    }

    [Test]
    public async Task Sarama_WithATokenProvider_ProducesAndConsumes()
    {
        await using var broker = await StartAsync();
        var topic = await broker.CreateTopicAsync(Partitions, "oauth-sarama");
        var sarama = new SaramaDriver { Security = new JsonObject { ["sasl_mechanism"] = "OAUTHBEARER", ["token"] = Jwt(600, "kafka") } };
        var records = TestData.Records("sarama-oauth", 12, Partitions);
        var acks = await sarama.ProduceAsync(broker.Endpoint("SASL_PLAINTEXT"), topic, records, cancellationToken: Token);
        var consumed = await sarama.ConsumeAllAsync(broker.Endpoint("SASL_PLAINTEXT"), topic, Token);
        TestData.AssertExactlyConsumed(topic, records, acks, consumed, "sarama OAUTHBEARER");
    }
}
