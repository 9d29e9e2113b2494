using System.Reflection;
using System.Runtime.InteropServices;
using Confluent.Kafka;

namespace Kayak.IntegrationTests.Infrastructure;

/// <summary>
/// Makes Confluent.Kafka run on the librdkafka that its librdkafka.redist package ships, and nothing else.
/// The package's default linux build (runtimes/linux-*/native/librdkafka.so) links libsasl2.so.3, which Debian 12
/// does not have; when it fails to load, .NET's probing silently falls through to the OS's /usr/lib librdkafka.so
/// (Debian's 2.0.2, from librdkafka-dev), and Confluent.Kafka then fails much later with EntryPointNotFoundException
/// on functions 2.0.2 lacks. The package also ships centos8-librdkafka.so (no GSSAPI; libc, libm, libdl only),
/// which loads here, so every librdkafka import of Confluent.Kafka is resolved to that file. Library.Load(path)
/// is not an option: it P/Invokes dlopen from "libdl", and glibc 2.34+ has only libdl.so.2.
/// </summary>
public static class NativeKafka
{
    /// <summary>
    /// The librdkafka the tests are written against: librdkafka.redist's version, which Confluent.Kafka 2.16.0
    /// depends on (IntegrationTests.csproj). Anything else loaded means the resolution above failed.
    /// </summary>
    public const string ExpectedVersion = "2.16.0";

    private static readonly object Gate = new();
    private static bool loaded;
    private static IntPtr handle;
    private static string? wrongVersion;

    /// <summary>Where librdkafka was loaded from (for failure messages).</summary>
    public static string LoadedFrom { get; private set; } = "";

    /// <summary>Idempotent; call before building any Confluent client. Throws unless librdkafka is <see cref="ExpectedVersion"/>.</summary>
    public static void EnsureLoaded()
    {
        lock (Gate)
        {
            if (loaded)
            {
                // A wrong version fails every caller, not only the first.
                if (wrongVersion is not null)
                    throw new InvalidOperationException(wrongVersion);
                return;
            }

            var path = FindRedistLibrary();
            handle = NativeLibrary.Load(path);
            LoadedFrom = path;
            // Confluent.Kafka imports "librdkafka" and, as its fallback, "centos8-librdkafka.so"; the mock cluster's
            // C API below is imported by this assembly. All of them are the one library loaded above.
            NativeLibrary.SetDllImportResolver(typeof(Library).Assembly, Resolve);
            NativeLibrary.SetDllImportResolver(typeof(NativeKafka).Assembly, Resolve);
            loaded = true;

            var version = Library.VersionString;
            if (version != ExpectedVersion)
            {
                wrongVersion = $"librdkafka {version} loaded from {path}, expected {ExpectedVersion}: refusing to run on another librdkafka";
                throw new InvalidOperationException(wrongVersion);
            }
        }
    }

    private static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath) =>
        name.Contains("rdkafka", StringComparison.Ordinal) ? handle : IntPtr.Zero;

    private static string FindRedistLibrary()
    {
        var rid = RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 => "linux-x64",
            Architecture.Arm64 => "linux-arm64",
            var other => throw new PlatformNotSupportedException($"no librdkafka.redist build for linux-{other}"),
        };
        // The build copies the package's runtimes/ folder next to the assembly (framework-dependent, no RID).
        var path = Path.Combine(AppContext.BaseDirectory, "runtimes", rid, "native", "centos8-librdkafka.so");
        if (!File.Exists(path))
            throw new DllNotFoundException($"{path} not found: the librdkafka.redist package's {rid} binaries were not copied to the output");
        return path;
    }
}

/// <summary>
/// librdkafka's built-in mock cluster (test.mock.num.brokers), used to validate the harness and clients without Kayak
/// (KAYAK_TEST_BROKER=mock). Topics are made through the mock's C API (librdkafka 2.0.2's mock did not implement
/// CreateTopics; the C API works on every version).
/// </summary>
internal static partial class MockClusterNative
{
    // Resolved to the librdkafka NativeKafka loaded (its DllImport resolver), whatever the name says.
    private const string Lib = "librdkafka";

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
