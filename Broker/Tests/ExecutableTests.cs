using System.Diagnostics;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>The executable's start-up contract: a bad config value names the key and exits non-zero.</summary>
[CancelAfter(60_000)]
public class ExecutableTests
{
    internal static async Task<(int ExitCode, string StdErr, string StdOut)> RunBrokerAsync(params string[] args)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "kayak.dll");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        psi.ArgumentList.Add(dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try { await p.WaitForExitAsync(cts.Token); }
        catch (OperationCanceledException) { p.Kill(entireProcessTree: true); throw; }
        return (p.ExitCode, await stderr, await stdout);
    }

    [TestCase("num.partitions=abc", "num.partitions")]
    [TestCase("log.retention.bytes=x", "log.retention.bytes")]
    [TestCase("listeners=nonsense", "listeners")]
    [TestCase("log.segment.bytes=1", "log.segment.bytes")]
    [TestCase("listeners=SSL://127.0.0.1:0", "ssl.keystore.location")]
    [TestCase("listeners=SASL_SSL://127.0.0.1:0", "ssl.keystore.location")]
    [TestCase("listeners=SASL_PLAINTEXT://127.0.0.1:0", "sasl.enabled.mechanisms")]
    [TestCase("listeners=PLAINTEXT://127.0.0.1:0,EXTERNAL://127.0.0.1:0", "listener.security.protocol.map")]
    public async Task BadValueNamesTheKeyAndExitsNonZero(string setting, string key)
    {
        var dir = Path.Combine(Path.GetTempPath(), "kayak-exe-" + Guid.NewGuid().ToString("N"));
        var (code, stderr, _) = await RunBrokerAsync("--override", setting, "--override", "log.dirs=" + dir);
        Assert.That(code, Is.Not.EqualTo(0));
        Assert.That(stderr, Does.Contain(key));
    }

    [Test]
    public async Task BadAddScram_ExitsNonZero_WithoutEchoingThePassword()
    {
        var dir = Path.Combine(Path.GetTempPath(), "kayak-exe-" + Guid.NewGuid().ToString("N"));
        var (code, stderr, _) = await RunBrokerAsync("--override", "log.dirs=" + dir, "--add-scram", "SCRAM-SHA-1=[name=alice,password=alice-secret]");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(stderr, Does.Contain("unknown SCRAM mechanism SCRAM-SHA-1").And.Not.Contain("alice-secret"));
    }

    [Test]
    public async Task MissingPropertiesFileExitsNonZero()
    {
        var (code, stderr, _) = await RunBrokerAsync("/nonexistent/server.properties");
        Assert.That(code, Is.Not.EqualTo(0));
        Assert.That(stderr, Does.Contain("/nonexistent/server.properties"));
    }
}

/// <summary>
/// Issue 15, K2 and K3: a second broker started by mistake (a second terminal) on the same log dir or the same port
/// must fail at start-up with Kafka's message and a non-zero exit, and leave the first broker serving alone.
/// </summary>
[CancelAfter(60_000)]
public class OneBrokerPerDirAndPortTests
{
    private static string TempDir() => Path.Combine(Path.GetTempPath(), "kayak-one-" + Guid.NewGuid().ToString("N"));

    [Test]
    public async Task SecondBrokerOnTheSameLogDir_FailsToStart_AndTheFirstKeepsServing()
    {
        var dir = TempDir();
        try
        {
            await using var first = new KafkaBroker(new KafkaBrokerOptions { Port = 0, DataDir = dir });
            await first.StartAsync();
            await using var second = new KafkaBroker(new KafkaBrokerOptions { Port = 0, DataDir = dir });
            var e = Assert.ThrowsAsync<Kayak.Storage.StorageErrorException>(() => second.StartAsync())!;
            Assert.That(e.Message, Does.StartWith($"Failed to acquire lock on file .lock in {Path.GetFullPath(dir)}."));
            Assert.That(File.Exists(Path.Combine(dir, "meta.properties")), "the first broker's files are untouched");

            using var client = await RawClient.ConnectAsync(first.BootstrapServers);
            var created = await client.SendAsync<Kayak.Protocol.Messages.CreateTopicsResponse>(new Kayak.Protocol.Messages.CreateTopicsRequest
            {
                Topics = [new() { Name = "t", NumPartitions = 1, ReplicationFactor = 1 }],
                TimeoutMs = 5000,
            }, 5);
            Assert.That(created.Topics[0].ErrorCode, Is.EqualTo(0));

            // The process form: exit 1 with the message on stderr (as kafka-server-start.sh exits after "Fatal error").
            var (code, stderr, _) = await ExecutableTests.RunBrokerAsync("--override", "log.dirs=" + dir, "--override", "listeners=PLAINTEXT://127.0.0.1:0");
            Assert.That(code, Is.EqualTo(1));
            Assert.That(stderr, Does.Contain("Failed to acquire lock on file .lock in"));
        }
        finally { try { Directory.Delete(dir, true); } catch (IOException) { } }
    }

    [Test]
    public async Task SecondBrokerOnTheSamePort_FailsWithAddressAlreadyInUse_AndReleasesItsLogDir()
    {
        string dir1 = TempDir(), dir2 = TempDir();
        try
        {
            await using var first = new KafkaBroker(new KafkaBrokerOptions { Port = 0, DataDir = dir1 });
            await first.StartAsync();
            int port = first.Listeners[0].Port;
            await using (var second = new KafkaBroker(new KafkaBrokerOptions { Port = port, DataDir = dir2 }))
            {
                var e = Assert.ThrowsAsync<InvalidOperationException>(() => second.StartAsync())!;
                Assert.That(e.Message, Is.EqualTo($"Socket server failed to bind to 127.0.0.1:{port}: Address already in use."));
            }
            // The failed start gave its log dir back.
            await using (var third = new KafkaBroker(new KafkaBrokerOptions { Port = 0, DataDir = dir2 }))
                await third.StartAsync();

            var (code, stderr, _) = await ExecutableTests.RunBrokerAsync("--override", "log.dirs=" + dir2, "--override", $"listeners=PLAINTEXT://127.0.0.1:{port}");
            Assert.That(code, Is.EqualTo(1));
            Assert.That(stderr, Does.Contain("Address already in use"));

            // Every new connection still reaches the first broker (with SO_REUSEPORT a second listener took some).
            for (int i = 0; i < 20; i++)
            {
                using var c = await RawClient.ConnectAsync(first.BootstrapServers);
                var md = await c.SendAsync<Kayak.Protocol.Messages.MetadataResponse>(new Kayak.Protocol.Messages.MetadataRequest { Topics = [] }, 2);
                Assert.That(md.ClusterId, Is.EqualTo(first.State.ClusterId));
            }
        }
        finally
        {
            foreach (var d in new[] { dir1, dir2 }) try { Directory.Delete(d, true); } catch (IOException) { }
        }
    }

    [Test]
    public async Task RestartOnTheSamePort_BindsAtOnce_OverConnectionsInTimeWait()
    {
        var dir = TempDir();
        try
        {
            int port;
            await using (var first = new KafkaBroker(new KafkaBrokerOptions { Port = 0, DataDir = dir }))
            {
                await first.StartAsync();
                port = first.Listeners[0].Port;
                // The broker closes its side first on shutdown: its sockets are left in TIME_WAIT.
                using var c = await RawClient.ConnectAsync(first.BootstrapServers);
                await c.SendAsync<Kayak.Protocol.Messages.MetadataResponse>(new Kayak.Protocol.Messages.MetadataRequest { Topics = [] }, 1);
            }
            await using var again = new KafkaBroker(new KafkaBrokerOptions { Port = port, DataDir = dir });
            await again.StartAsync();
            Assert.That(again.Listeners[0].Port, Is.EqualTo(port));
        }
        finally { try { Directory.Delete(dir, true); } catch (IOException) { } }
    }
}
