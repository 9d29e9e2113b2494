using System.Diagnostics;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>The executable's start-up contract: a bad config value names the key and exits non-zero.</summary>
[CancelAfter(60_000)]
public class ExecutableTests
{
    private static async Task<(int ExitCode, string StdErr, string StdOut)> RunBrokerAsync(params string[] args)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "Kayak.Broker.dll");
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
    [TestCase("listeners=SSL://127.0.0.1:0", "listeners")]
    public async Task BadValueNamesTheKeyAndExitsNonZero(string setting, string key)
    {
        var dir = Path.Combine(Path.GetTempPath(), "kayak-exe-" + Guid.NewGuid().ToString("N"));
        var (code, stderr, _) = await RunBrokerAsync("--override", setting, "--override", "log.dirs=" + dir);
        Assert.That(code, Is.Not.EqualTo(0));
        Assert.That(stderr, Does.Contain(key));
    }

    [Test]
    public async Task MissingPropertiesFileExitsNonZero()
    {
        var (code, stderr, _) = await RunBrokerAsync("/nonexistent/server.properties");
        Assert.That(code, Is.Not.EqualTo(0));
        Assert.That(stderr, Does.Contain("/nonexistent/server.properties"));
    }
}
