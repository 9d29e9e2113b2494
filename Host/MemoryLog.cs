using System.Globalization;
using Microsoft.Extensions.Logging;

namespace Kayak.Host;

/// <summary>
/// Memory diagnostics for soak tests (issue 15; env <c>KAYAK_MEMORY_LOG_MS</c>, off unless set): every that many
/// milliseconds one INFO line with the process's RssAnon beside the GC's view (GC.GetGCMemoryInfo of the latest
/// collection: heap, fragmentation, committed; and the heap now, garbage included). Tells whether resident memory
/// is live managed objects, collectable garbage, committed-but-free GC memory, or native memory outside the GC.
/// </summary>
internal static class MemoryLog
{
    public static Timer? Start(ILoggerFactory loggerFactory)
    {
        if (!int.TryParse(Environment.GetEnvironmentVariable("KAYAK_MEMORY_LOG_MS"), NumberStyles.None, CultureInfo.InvariantCulture, out int ms) || ms <= 0)
            return null;
        var log = loggerFactory.CreateLogger("Kayak.Memory");
        return new Timer(_ => log.LogInformation("{Line}", Line()), null, 0, ms);
    }

    /// <summary>One line: "memory: rss-anon=… gc-now=… last-gc heap=… fragmented=… committed=… (gen N #…)".</summary>
    public static string Line()
    {
        const double MB = 1 << 20;
        var info = GC.GetGCMemoryInfo(GCKind.Any);
        return string.Create(CultureInfo.InvariantCulture,
            $"memory: rss-anon={RssAnonKb() / 1024.0:F1} MB gc-now={GC.GetTotalMemory(false) / MB:F1} MB last-gc heap={info.HeapSizeBytes / MB:F1} MB fragmented={info.FragmentedBytes / MB:F1} MB committed={info.TotalCommittedBytes / MB:F1} MB (gen{info.Generation} #{info.Index}, gen2 count {GC.CollectionCount(2)}) allocated={GC.GetTotalAllocatedBytes() / MB:F0} MB");
    }

    private static long RssAnonKb()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith("RssAnon:", StringComparison.Ordinal))
                    return long.Parse(line.AsSpan(8).Trim().TrimEnd("kB").Trim(), CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
        }
        return -1;
    }
}
