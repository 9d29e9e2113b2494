using System.Diagnostics;
using System.Text;
using NUnit.Framework;

namespace Kayak.IntegrationTests.Infrastructure;

/// <summary>What to run: a command line, its environment, standard input and a hard timeout.</summary>
public sealed class ProcessSpec
{
    public required string FileName { get; init; }
    public List<string> Arguments { get; init; } = [];
    public Dictionary<string, string> Environment { get; init; } = new();
    public string? WorkingDirectory { get; init; }
    /// <summary>Written to standard input, which is then closed (null: empty input).</summary>
    public string? StandardInput { get; init; }
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(60);
}

public sealed record ProcessResult(string CommandLine, int ExitCode, string Stdout, string Stderr, bool TimedOut)
{
    /// <summary>Fails the test (with the command, exit code and captured stderr) unless it exited 0 in time.</summary>
    public ProcessResult EnsureSuccess()
    {
        if (TimedOut || ExitCode != 0)
            Assert.Fail(Describe());
        return this;
    }

    public string Describe() =>
        $"{CommandLine}\n{(TimedOut ? "TIMED OUT (killed)" : $"exit code {ExitCode}")}\n--- stderr ---\n{Tail(Stderr)}\n--- stdout ---\n{Tail(Stdout)}";

    private static string Tail(string text) => text.Length <= 8000 ? text : "..." + text[^8000..];
}

/// <summary>Runs client tools (kcat, python3, node) with captured output; a timeout kills the process tree it started.</summary>
public static class ProcessRunner
{
    public static async Task<ProcessResult> RunAsync(ProcessSpec spec, CancellationToken cancellationToken = default)
    {
        var psi = new ProcessStartInfo(spec.FileName)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        foreach (var argument in spec.Arguments)
            psi.ArgumentList.Add(argument);
        foreach (var (key, value) in spec.Environment)
            psi.Environment[key] = value;
        if (spec.WorkingDirectory is not null)
            psi.WorkingDirectory = spec.WorkingDirectory;

        var commandLine = spec.FileName + " " + string.Join(' ', spec.Arguments.Select(Quote));
        using var process = new Process { StartInfo = psi };
        try
        {
            process.Start();
        }
        catch (Exception e)
        {
            Assert.Fail($"could not start {commandLine}: {e.Message} (run tools/setup.sh)");
            throw; // unreachable: Assert.Fail throws
        }

        var stdoutTask = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        var stderrTask = process.StandardError.ReadToEndAsync(CancellationToken.None);
        try
        {
            if (spec.StandardInput is not null)
                await process.StandardInput.WriteAsync(spec.StandardInput.AsMemory(), cancellationToken);
            process.StandardInput.Close();
        }
        catch (IOException)
        {
            // The tool exited before reading its input; its exit code and stderr tell why.
        }

        var timedOut = false;
        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            timeout.CancelAfter(spec.Timeout);
            try
            {
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                timedOut = true;
                KillTree(process);
                await process.WaitForExitAsync(CancellationToken.None);
            }
        }

        var stdout = await stdoutTask;
        var stderr = await stderrTask;
        return new ProcessResult(commandLine, timedOut ? -1 : process.ExitCode, stdout, stderr, timedOut);
    }

    /// <summary>Kills a process this harness started, with its children (by its PID, never by name).</summary>
    internal static void KillTree(Process process)
    {
        try
        {
            if (!process.HasExited)
                process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
    }

    private static string Quote(string argument) =>
        argument.Length > 0 && argument.All(c => char.IsLetterOrDigit(c) || "-_=.,:/@%+".Contains(c)) ? argument : "'" + argument.Replace("'", "'\\''") + "'";
}
