using System.Reflection;
using System.Runtime.InteropServices;
using Confluent.Kafka;

namespace Kayak.IntegrationTests.Infrastructure;

/// <summary>
/// Makes Confluent.Kafka 1.9.3 run on the operating system's librdkafka (Debian's librdkafka1) instead of the
/// librdkafka.redist binaries (our librdkafka.redist is a binary-less placeholder, see tools/librdkafka-placeholder).
/// </summary>
public static class NativeKafka
{
    private static readonly object Gate = new();
    private static bool loaded;

    /// <summary>Where librdkafka was loaded from (for failure messages).</summary>
    public static string LoadedFrom { get; private set; } = "";

    /// <summary>Idempotent; call before building any Confluent client.</summary>
    public static void EnsureLoaded()
    {
        lock (Gate)
        {
            if (loaded)
                return;

            // Confluent.Kafka 1.9.3 P/Invokes dlopen from "libdl"; glibc >= 2.34 folded libdl into libc and ships only
            // libdl.so.2 (no unversioned libdl.so without libc6-dev), so the default probing fails. Point it at the
            // versioned soname.
            NativeLibrary.SetDllImportResolver(typeof(Library).Assembly, ResolveForConfluent);

            var path = FindLibrdkafka();
            Library.Load(path);
            LoadedFrom = path;
            loaded = true;
        }
    }

    private static IntPtr ResolveForConfluent(string name, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (name == "libdl" && NativeLibrary.TryLoad("libdl.so.2", out var handle))
            return handle;
        return IntPtr.Zero;
    }

    private static string FindLibrdkafka()
    {
        var fromEnv = Environment.GetEnvironmentVariable("KAYAK_LIBRDKAFKA");
        if (!string.IsNullOrEmpty(fromEnv))
            return fromEnv;
        string[] candidates =
        [
            "/usr/lib/x86_64-linux-gnu/librdkafka.so.1",
            "/usr/lib/aarch64-linux-gnu/librdkafka.so.1",
            "/usr/lib/librdkafka.so.1",
            "/usr/local/lib/librdkafka.so.1",
        ];
        foreach (var candidate in candidates)
        {
            if (File.Exists(candidate))
                return candidate;
        }
        // Let dlopen search the default paths; fails with a clear message if librdkafka1 is not installed.
        return "librdkafka.so.1";
    }
}

/// <summary>
/// librdkafka's built-in mock cluster (test.mock.num.brokers), used to validate the harness and clients without Kayak
/// (KAYAK_TEST_BROKER=mock). Its admin API does not implement CreateTopics in librdkafka 2.0.2, so topics are made
/// through the mock's C API.
/// </summary>
internal static partial class MockClusterNative
{
    private const string Lib = "librdkafka.so.1";

    [LibraryImport(Lib)]
    internal static partial IntPtr rd_kafka_handle_mock_cluster(IntPtr rk);

    [LibraryImport(Lib)]
    internal static partial IntPtr rd_kafka_mock_cluster_bootstraps(IntPtr mcluster);

    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int rd_kafka_mock_topic_create(IntPtr mcluster, string topic, int partitionCount, int replicationFactor);

    /// <summary>The rd_kafka_t* behind a Confluent client (internal in Confluent.Kafka, hence reflection; test-only).</summary>
    internal static SafeHandle RawHandle(Handle handle)
    {
        var property = typeof(Handle).GetProperty("LibrdkafkaHandle", BindingFlags.Instance | BindingFlags.NonPublic)
            ?? throw new InvalidOperationException("Confluent.Kafka.Handle.LibrdkafkaHandle not found");
        return (SafeHandle)(property.GetValue(handle) ?? throw new InvalidOperationException("no librdkafka handle"));
    }
}
