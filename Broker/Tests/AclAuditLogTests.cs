using System.Net;
using System.Text;
using Kayak.Broker.Handlers;
using Kayak.Broker.Security;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using Microsoft.Extensions.Logging;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>
/// Issue 12: the ACL audit log as Kafka's StandardAuthorizerData.logAuditMessage writes it — logger
/// "kafka.authorizer.logger", denied explicit accesses at INFO, allowed ones at DEBUG, filters and KIP-430
/// authorized-operations probes at TRACE only — with Kafka's message text.
/// </summary>
[CancelAfter(60_000)]
public class AclAuditLogTests
{
    /// <summary>Records every line at or above its minimum level, per category.</summary>
    private sealed class AuditCapture(LogLevel minimum) : ILoggerFactory
    {
        private readonly LogLevel _minimum = minimum;
        public readonly List<(string Category, LogLevel Level, string Message)> Lines = new();

        public List<(LogLevel Level, string Message)> Audit()
        {
            lock (Lines) return Lines.Where(l => l.Category == StandardAuthorizer.AuditLoggerName).Select(l => (l.Level, l.Message)).ToList();
        }

        public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);
        public void AddProvider(ILoggerProvider provider) { }
        public void Dispose() { }

        private sealed class Logger(AuditCapture owner, string category) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
            public bool IsEnabled(LogLevel logLevel) => logLevel >= owner._minimum;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                if (!IsEnabled(logLevel)) return;
                lock (owner.Lines) owner.Lines.Add((category, logLevel, formatter(state, exception)));
            }
        }
    }

    private static RequestContext As(string principal, ApiKey api = ApiKey.Fetch) => new()
    {
        ApiKey = api, ApiVersion = 12, CorrelationId = 1, Principal = principal,
        ClientAddress = new IPEndPoint(IPAddress.Parse("10.0.0.5"), 40000),
    };

    private static StandardAuthorizer Authorizer(AuditCapture capture, params AclBinding[] acls)
    {
        var a = new StandardAuthorizer(["User:admin"], allowEveryoneIfNoAclFound: false, file: null,
            capture.CreateLogger(StandardAuthorizer.AuditLoggerName));
        Assert.That(a.Create(acls).Where(r => r.IsError), Is.Empty);
        return a;
    }

    [Test]
    public void Denied_IsInfo_Allowed_IsDebug_WithKafkasMessage()
    {
        var capture = new AuditCapture(LogLevel.Debug);
        var a = Authorizer(capture,
            new AclBinding(AclResourceType.Topic, "orders", AclPatternType.Literal, "User:bob", "*", AclOperation.Read, AclPermissionType.Allow),
            new AclBinding(AclResourceType.Topic, "secret", AclPatternType.Literal, "User:bob", "*", AclOperation.Read, AclPermissionType.Deny));

        Assert.That(a.Authorize(As("User:bob"), AclOperation.Read, AclResourceType.Topic, "orders"), Is.True);
        Assert.That(a.Authorize(As("User:bob"), AclOperation.Read, AclResourceType.Topic, "secret", refCount: 2), Is.False);
        Assert.That(a.Authorize(As("User:bob", ApiKey.ListOffsets), AclOperation.Describe, AclResourceType.Topic, "payments"), Is.False);
        Assert.That(a.Authorize(As("User:admin", ApiKey.CreateTopics), AclOperation.Create, AclResourceType.Cluster, "kafka-cluster"), Is.True);

        Assert.That(capture.Audit(), Is.EqualTo(new[]
        {
            (LogLevel.Debug, "Principal = User:bob is Allowed operation = READ from host = 10.0.0.5 on resource = Topic:LITERAL:orders " +
                "for request = Fetch with resourceRefCount = 1 based on rule MatchingAcl(acl=StandardAcl(resourceType=TOPIC, " +
                "resourceName=orders, patternType=LITERAL, principal=User:bob, host=*, operation=READ, permissionType=ALLOW))"),
            (LogLevel.Information, "Principal = User:bob is Denied operation = READ from host = 10.0.0.5 on resource = Topic:LITERAL:secret " +
                "for request = Fetch with resourceRefCount = 2 based on rule MatchingAcl(acl=StandardAcl(resourceType=TOPIC, " +
                "resourceName=secret, patternType=LITERAL, principal=User:bob, host=*, operation=READ, permissionType=DENY))"),
            (LogLevel.Information, "Principal = User:bob is Denied operation = DESCRIBE from host = 10.0.0.5 on resource = Topic:LITERAL:payments " +
                "for request = ListOffsets with resourceRefCount = 1 based on rule DefaultDeny"),
            (LogLevel.Debug, "Principal = User:admin is Allowed operation = CREATE from host = 10.0.0.5 on resource = Cluster:LITERAL:kafka-cluster " +
                "for request = CreateTopics with resourceRefCount = 1 based on rule SuperUser"),
        }));
    }

    [Test]
    public void FiltersAndAuthorizedOperations_AreTraceOnly()
    {
        var info = new AuditCapture(LogLevel.Information);
        var a = Authorizer(info,
            new AclBinding(AclResourceType.Group, "g", AclPatternType.Literal, "User:bob", "*", AclOperation.Read, AclPermissionType.Allow));
        Assert.That(a.Authorize(As("User:bob"), AclOperation.Describe, AclResourceType.Topic, "t", logIfDenied: false), Is.False);
        Assert.That(a.AuthorizedOperations(As("User:bob"), AclResourceType.Group, "g"), Is.EqualTo(1 << (int)AclOperation.Read | 1 << (int)AclOperation.Describe));
        Assert.That(a.Authorize(As("User:bob"), AclOperation.Read, AclResourceType.Group, "g"), Is.True);
        Assert.That(info.Audit(), Is.Empty, "a filtered denial and an allowed access are below INFO; the probes are TRACE");

        var trace = new AuditCapture(LogLevel.Trace);
        var t = Authorizer(trace,
            new AclBinding(AclResourceType.Group, "g", AclPatternType.Literal, "User:bob", "*", AclOperation.Read, AclPermissionType.Allow));
        Assert.That(t.Authorize(As("User:bob"), AclOperation.Describe, AclResourceType.Topic, "t", logIfDenied: false), Is.False);
        t.AuthorizedOperations(As("User:bob"), AclResourceType.Group, "g");
        var lines = trace.Audit();
        Assert.That(lines.Select(l => l.Level), Is.All.EqualTo(LogLevel.Trace));
        Assert.That(lines, Has.Count.EqualTo(1 + AclCodes.GroupOperations.Length));
        Assert.That(lines[0].Message, Does.StartWith("Principal = User:bob is Denied operation = DESCRIBE from host = 10.0.0.5 on resource = Topic:LITERAL:t"));
    }

    private const string Jaas = "org.apache.kafka.common.security.plain.PlainLoginModule required user_alice=\"alice-secret\" user_bob=\"bob-secret\";";

    [Test]
    public async Task OverTheWire_AllTopicsMetadata_DoesNotLogHiddenTopics_NamedTopicIsLoggedDenied()
    {
        var dir = Path.Combine(Path.GetTempPath(), "kayak-acl-audit-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var capture = new AuditCapture(LogLevel.Information);
        try
        {
            var o = new KafkaBrokerOptions { DataDir = dir, LoggerFactory = capture };
            o.Properties["listeners"] = "SASL_PLAINTEXT://127.0.0.1:0";
            o.Properties["sasl.enabled.mechanisms"] = "PLAIN";
            o.Properties["sasl.jaas.config"] = Jaas;
            o.Properties["authorizer.class.name"] = StandardAuthorizer.ClassName;
            o.Properties["super.users"] = "User:alice";
            await using var broker = new KafkaBroker(o);
            await broker.StartAsync();
            await broker.CreateTopicAsync("hidden", 1);

            using var bob = await RawClient.ConnectAsync(broker.BootstrapServers);
            await bob.SendAsync<SaslHandshakeResponse>(new SaslHandshakeRequest { Mechanism = "PLAIN" }, 1);
            var auth = await bob.SendAsync<SaslAuthenticateResponse>(new SaslAuthenticateRequest { AuthBytes = Encoding.UTF8.GetBytes("\0bob\0bob-secret") }, 2);
            Assert.That(auth.ErrorCode, Is.EqualTo(0));

            var all = await bob.SendAsync<MetadataResponse>(new MetadataRequest { Topics = null }, 12);
            Assert.That(all.Topics, Is.Empty);
            Assert.That(capture.Audit(), Is.Empty, "topics an all-topics request does not name are filtered silently");

            var named = await bob.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [new() { Name = "hidden" }] }, 12);
            Assert.That(named.Topics.Single().ErrorCode, Is.EqualTo((short)ErrorCode.TopicAuthorizationFailed));
            var line = capture.Audit().Single();
            Assert.That(line.Level, Is.EqualTo(LogLevel.Information));
            Assert.That(line.Message, Does.Match(
                @"^Principal = User:bob is Denied operation = DESCRIBE from host = 127\.0\.0\.1 on resource = Topic:LITERAL:hidden " +
                "for request = Metadata with resourceRefCount = 1 based on rule DefaultDeny$"));
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }
}
