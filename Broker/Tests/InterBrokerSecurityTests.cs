using System.Text;
using Kayak.Broker.Cluster;
using Kayak.Broker.Config;
using Kayak.Broker.Network.Sasl;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>
/// Issue 14: how cluster members connect to each other. The config is read as Kafka reads it (inter.broker.listener.name
/// or security.inter.broker.protocol, sasl.mechanism.inter.broker.protocol, the broker's username/password in the
/// listener's JAAS entry) and every problem names its key; the SCRAM client completes an exchange with Kayak's server.
/// </summary>
public class InterBrokerSecurityTests
{
    private const string PlainJaas = "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"broker\" password=\"s\" user_broker=\"s\";";

    private static InterBrokerSecurity Create(params (string Key, string Value)[] settings)
    {
        var p = new Dictionary<string, string>(StringComparer.Ordinal) { ["log.dirs"] = "/tmp/unused" };
        foreach (var (k, v) in settings) p[k] = v;
        var config = new BrokerConfig(p);
        var sasl = new Dictionary<string, SaslListenerConfig>(StringComparer.OrdinalIgnoreCase);
        foreach (var l in config.Listeners)
            if (config.ListenerSecurityProtocols[l.Name] == "SASL_PLAINTEXT")
                sasl[l.Name] = SaslListenerConfig.Create(config, l.Name, new ScramCredentialStore());
        return InterBrokerSecurity.Create(config, sasl);
    }

    private static string KeyOfError(params (string, string)[] settings) =>
        Assert.Throws<ConfigException>(() => Create(settings))!.Key;

    [Test]
    public void DefaultsToThePlaintextListener()
    {
        var s = Create(("listeners", "EXTERNAL://127.0.0.1:0,PLAINTEXT://127.0.0.1:0"),
            ("listener.security.protocol.map", "EXTERNAL:PLAINTEXT,PLAINTEXT:PLAINTEXT"));
        Assert.That((s.ListenerName, s.Mechanism), Is.EqualTo(("PLAINTEXT", (string?)null)));
    }

    [Test]
    public void SaslListenerAuthenticatesWithTheJaasEntrysOwnCredentials()
    {
        var s = Create(("listeners", "SASL_PLAINTEXT://127.0.0.1:0"), ("sasl.enabled.mechanisms", "PLAIN"),
            ("security.inter.broker.protocol", "SASL_PLAINTEXT"), ("sasl.mechanism.inter.broker.protocol", "PLAIN"), ("sasl.jaas.config", PlainJaas));
        Assert.That((s.ListenerName, s.Mechanism, s.Username), Is.EqualTo(("SASL_PLAINTEXT", "PLAIN", "broker")));
        Assert.That(s.CreateClient().Next(null), Is.EqualTo(Encoding.UTF8.GetBytes("\0broker\0s")));
    }

    [Test]
    public void EveryProblemNamesItsKey()
    {
        Assert.That(KeyOfError(("inter.broker.listener.name", "PLAINTEXT"), ("security.inter.broker.protocol", "PLAINTEXT")),
            Is.EqualTo("inter.broker.listener.name"), "only one of the two");
        Assert.That(KeyOfError(("inter.broker.listener.name", "INTERNAL")), Is.EqualTo("inter.broker.listener.name"), "not a listener");
        Assert.That(KeyOfError(("listeners", "SSL://127.0.0.1:0"), ("security.inter.broker.protocol", "SSL")),
            Is.EqualTo("security.inter.broker.protocol"), "TLS between brokers");
        Assert.That(KeyOfError(("listeners", "SASL_PLAINTEXT://127.0.0.1:0"), ("sasl.enabled.mechanisms", "PLAIN"),
            ("inter.broker.listener.name", "SASL_PLAINTEXT"), ("sasl.jaas.config", PlainJaas)),
            Is.EqualTo("sasl.mechanism.inter.broker.protocol"), "Kafka's default GSSAPI");
        Assert.That(KeyOfError(("listeners", "SASL_PLAINTEXT://127.0.0.1:0"), ("sasl.enabled.mechanisms", "PLAIN"),
            ("inter.broker.listener.name", "SASL_PLAINTEXT"), ("sasl.mechanism.inter.broker.protocol", "SCRAM-SHA-256"), ("sasl.jaas.config", PlainJaas)),
            Is.EqualTo("sasl.mechanism.inter.broker.protocol"), "not enabled on the listener");
        Assert.That(KeyOfError(("listeners", "SASL_PLAINTEXT://127.0.0.1:0"), ("sasl.enabled.mechanisms", "PLAIN"),
            ("inter.broker.listener.name", "SASL_PLAINTEXT"), ("sasl.mechanism.inter.broker.protocol", "PLAIN"),
            ("sasl.jaas.config", "org.apache.kafka.common.security.plain.PlainLoginModule required user_broker=\"s\";")),
            Is.EqualTo("listener.name.sasl_plaintext.plain.sasl.jaas.config"), "no username/password of its own");
    }

    [TestCase("SCRAM-SHA-256")]
    [TestCase("SCRAM-SHA-512")]
    public void ScramClientCompletesAnExchangeWithTheServer(string name)
    {
        var mechanism = ScramMechanism.Find(name)!;
        var store = new ScramCredentialStore();
        store.Add(name, "broker", mechanism.Credential("broker-secret", Encoding.UTF8.GetBytes("salt-of-16-bytes"), 4096));
        var server = new ScramSaslServer(mechanism, store);
        var client = new ScramSaslClient(mechanism, "broker", "broker-secret");
        byte[]? message = client.Next(null);
        while (message is not null)
        {
            byte[]? challenge = server.EvaluateResponse(message);
            message = client.Next(challenge);
        }
        Assert.That((server.IsComplete, server.AuthorizationId), Is.EqualTo((true, "broker")));

        var wrong = new ScramSaslClient(mechanism, "broker", "not-the-secret");
        var refusing = new ScramSaslServer(mechanism, store);
        byte[] serverFirst = refusing.EvaluateResponse(wrong.Next(null)!)!;
        Assert.That(() => refusing.EvaluateResponse(wrong.Next(serverFirst)!), Throws.TypeOf<SaslMechanismException>().With.Message.Contains("Invalid client credentials"));
    }
}
