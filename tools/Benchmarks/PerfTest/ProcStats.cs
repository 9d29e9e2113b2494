using System.Runtime.InteropServices;

namespace Kayak.PerfTest;

/// <summary>CPU time and resident memory of another process, from Linux /proc.</summary>
internal static partial class ProcStats
{
    private static readonly double TicksPerSecond = ClockTicks();

    /// <summary>utime + stime of the process in seconds (/proc/PID/stat fields 14 and 15, in clock ticks).</summary>
    public static double CpuSeconds(int pid)
    {
        var (user, system) = CpuSplitSeconds(pid);
        return user + system;
    }

    /// <summary>utime and stime separately: user mode is the broker's own code (and JIT, GC); system is the kernel
    /// working for it (socket copies, page-cache writes, futexes).</summary>
    public static (double User, double System) CpuSplitSeconds(int pid)
    {
        string stat = File.ReadAllText($"/proc/{pid}/stat");
        // The command name (field 2) is in parentheses and may contain spaces: count fields after the last ')'.
        var rest = stat.AsSpan(stat.LastIndexOf(')') + 2);
        Span<Range> parts = stackalloc Range[16];
        int n = rest.Split(parts, ' ');
        if (n < 13) throw new InvalidOperationException($"unexpected /proc/{pid}/stat: {stat}");
        long utime = long.Parse(rest[parts[11]]), stime = long.Parse(rest[parts[12]]);
        return (utime / TicksPerSecond, stime / TicksPerSecond);
    }

    /// <summary>VmRSS of the process in MB (2^20 bytes).</summary>
    public static double RssMb(int pid) => StatusKb(pid, "VmRSS:") / 1024.0;

    /// <summary>VmHWM (peak resident set) of the process in MB.</summary>
    public static double PeakRssMb(int pid) => StatusKb(pid, "VmHWM:") / 1024.0;

    /// <summary>RssAnon and RssFile in MB: mapped log segments count as file-backed resident pages.</summary>
    public static (double Anon, double File) RssSplitMb(int pid) => (StatusKb(pid, "RssAnon:") / 1024.0, StatusKb(pid, "RssFile:") / 1024.0);

    private static long StatusKb(int pid, string key)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (!line.StartsWith(key, StringComparison.Ordinal)) continue;
            var v = line.AsSpan(key.Length).Trim();
            int sp = v.IndexOf(' ');
            return long.Parse(sp < 0 ? v : v[..sp]);
        }
        throw new InvalidOperationException($"{key} not found in /proc/{pid}/status");
    }

    private static double ClockTicks()
    {
        const int ScClkTck = 2; // _SC_CLK_TCK on Linux
        long t = sysconf(ScClkTck);
        return t > 0 ? t : 100;
    }

    [LibraryImport("libc.so.6")]
    private static partial long sysconf(int name);

    [LibraryImport("libc.so.6", EntryPoint = "kill", SetLastError = true)]
    public static partial int Kill(int pid, int signal);
}
