using System.Reflection;
using System.Runtime.InteropServices;
using Confluent.Kafka;

namespace Kayak.PerfTest;

/// <summary>
/// Runs Confluent.Kafka 1.9.3 on the operating system's librdkafka (the librdkafka.redist package here is a
/// binary-less placeholder). KAYAK_LIBRDKAFKA overrides the path.
/// </summary>
internal static partial class NativeKafka
{
    private static int _loaded;

    public static string Path { get; private set; } = "";

    public static void EnsureLoaded()
    {
        if (Interlocked.Exchange(ref _loaded, 1) != 0) return;
        // Confluent.Kafka 1.9.3 P/Invokes dlopen from "libdl"; glibc >= 2.34 ships only libdl.so.2 without libc6-dev.
        NativeLibrary.SetDllImportResolver(typeof(Library).Assembly, static (name, _, _) =>
            name == "libdl" && NativeLibrary.TryLoad("libdl.so.2", out var h) ? h : IntPtr.Zero);
        string path = Environment.GetEnvironmentVariable("KAYAK_LIBRDKAFKA") ?? "";
        if (path.Length == 0)
        {
            foreach (var c in new[] { "/usr/lib/x86_64-linux-gnu/librdkafka.so.1", "/usr/lib/aarch64-linux-gnu/librdkafka.so.1", "/usr/local/lib/librdkafka.so.1" })
                if (File.Exists(c)) { path = c; break; }
        }
        if (path.Length == 0) path = "librdkafka.so.1";
        Library.Load(path);
        Path = path;
    }

    /// <summary>The rd_kafka_t* behind a Confluent handle (internal in Confluent.Kafka, hence reflection).</summary>
    public static IntPtr RawHandle(Handle handle)
    {
        var property = typeof(Handle).GetProperty("LibrdkafkaHandle", BindingFlags.Instance | BindingFlags.NonPublic)
            ?? throw new InvalidOperationException("Confluent.Kafka.Handle.LibrdkafkaHandle not found");
        var safe = (SafeHandle)(property.GetValue(handle) ?? throw new InvalidOperationException("no librdkafka handle"));
        return safe.DangerousGetHandle();
    }

    private const string Lib = "librdkafka.so.1";

    [LibraryImport(Lib)]
    public static partial IntPtr rd_kafka_handle_mock_cluster(IntPtr rk);

    [LibraryImport(Lib)]
    public static partial IntPtr rd_kafka_mock_cluster_bootstraps(IntPtr mcluster);

    // librdkafka 2.0.2's mock cluster does not implement CreateTopics, so topics are made through its C API.
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int rd_kafka_mock_topic_create(IntPtr mcluster, string topic, int partitionCount, int replicationFactor);
}
