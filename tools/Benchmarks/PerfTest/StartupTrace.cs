using System.Diagnostics;
using System.Globalization;
using Kayak.Broker;

namespace Kayak.PerfTest;

/// <summary>
/// `--startup-trace`: the first in-process start of this process only (the test-fixture case), split into phases
/// with wall time and JIT counters (System.Runtime.JitInfo), then exit. Run it in a fresh process each time; with
/// DOTNET_JitStdOutFile=FILE DOTNET_JitDisasmSummary=1 the runtime lists every method it still had to JIT.
/// </summary>
internal static class StartupTrace
{
    public static int Run(string[] args)
    {
        int samples = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 1;
        long processStartTicks = Process.GetCurrentProcess().StartTime.ToUniversalTime().Ticks;
        Console.WriteLine($"process start → Main: {(DateTime.UtcNow.Ticks - processStartTicks) / 10_000.0:F1} ms");
        for (int i = 0; i < samples; i++)
        {
            var dir = Directory.CreateTempSubdirectory("kayak-startup-trace-").FullName;
            try { Once(dir, i == 0 ? "cold" : "warm"); }
            finally { try { Directory.Delete(dir, true); } catch (IOException) { } }
        }
        return 0;
    }

    private static void Once(string dir, string label)
    {
        var marks = new List<(string Phase, double Ms, long Jit, double JitMs)>();
        long t0 = Stopwatch.GetTimestamp();
        long j0 = System.Runtime.JitInfo.GetCompiledMethodCount();
        var jt0 = System.Runtime.JitInfo.GetCompilationTime();
        void Mark(string phase) => marks.Add((phase, Stopwatch.GetElapsedTime(t0).TotalMilliseconds,
            System.Runtime.JitInfo.GetCompiledMethodCount() - j0, (System.Runtime.JitInfo.GetCompilationTime() - jt0).TotalMilliseconds));

        var broker = new KafkaBroker(new KafkaBrokerOptions { Port = 0, DataDir = dir });
        Mark("new KafkaBroker");
        broker.StartAsync().GetAwaiter().GetResult();
        Mark("StartAsync");
        string bs = broker.BootstrapServers;
        int colon = bs.LastIndexOf(':');
        MetadataProbe.WaitForMetadata(bs[..colon], int.Parse(bs[(colon + 1)..], CultureInfo.InvariantCulture), TimeSpan.FromSeconds(30));
        Mark("first Metadata answered");
        broker.DisposeAsync().AsTask().GetAwaiter().GetResult();
        Mark("DisposeAsync");
        foreach (var (phase, ms, jit, jitMs) in marks)
            Console.WriteLine($"{label}: {phase,-26} at {ms,7:F1} ms   JIT {jit,4} methods {jitMs,6:F1} ms");
    }
}
