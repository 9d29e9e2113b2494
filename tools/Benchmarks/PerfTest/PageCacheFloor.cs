using System.Runtime.InteropServices;

namespace Kayak.PerfTest;

/// <summary>
/// What the kernel alone charges for appending through the page cache on this machine: CPU seconds per GB for
/// pwrite(2) of 1 MiB blocks into a new file, measured on a dedicated thread with getrusage(RUSAGE_THREAD).
/// Any broker that stores produced data through the page cache (Kafka's FileChannel.write, our pwrite appends)
/// pays at least this per GB before doing anything of its own. On the development VM it is dominated by the
/// first touch of fresh guest memory (≈2 s/GB; writing the same file again costs ≈0.1 s/GB), so the broker's
/// produce CPU figure is reported both raw and minus this floor.
/// </summary>
internal static class PageCacheFloor
{
    public static double MeasureSecondsPerGb(string directory, long bytes)
    {
        double result = double.NaN;
        var thread = new Thread(() => result = Measure(directory, bytes)) { Name = "page-cache floor" };
        thread.Start();
        thread.Join();
        return result;
    }

    private static double Measure(string directory, long bytes)
    {
        string path = Path.Combine(directory, $"floor-{Guid.NewGuid():N}.bin");
        var block = new byte[1 << 20];
        Random.Shared.NextBytes(block);
        try
        {
            using var handle = File.OpenHandle(path, FileMode.CreateNew, FileAccess.Write);
            double before = ThreadCpuSeconds();
            long written = 0;
            while (written < bytes)
            {
                RandomAccess.Write(handle, block, written);
                written += block.Length;
            }
            double cpu = ThreadCpuSeconds() - before;
            return cpu / (written / 1073741824.0);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeVal { public long Seconds; public long Microseconds; }

    [StructLayout(LayoutKind.Sequential)]
    private struct RUsage
    {
        public TimeVal User;
        public TimeVal System;
        // ru_maxrss … ru_nivcsw: 14 longs, unused here.
        public long F0, F1, F2, F3, F4, F5, F6, F7, F8, F9, F10, F11, F12, F13;
    }

    private const int RusageThread = 1;

    [DllImport("libc", SetLastError = true)]
    private static extern int getrusage(int who, out RUsage usage);

    private static double ThreadCpuSeconds()
    {
        if (getrusage(RusageThread, out var u) != 0) throw new InvalidOperationException($"getrusage failed: errno {Marshal.GetLastPInvokeError()}");
        return u.User.Seconds + u.User.Microseconds / 1e6 + u.System.Seconds + u.System.Microseconds / 1e6;
    }
}
