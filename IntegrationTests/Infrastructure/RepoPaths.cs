using System.Reflection;

namespace Kayak.IntegrationTests.Infrastructure;

/// <summary>Locates the repository (driver scripts, the built broker) from the test assembly's location.</summary>
public static class RepoPaths
{
    private static readonly Lazy<string> LazyRoot = new(FindRoot);

    /// <summary>The directory holding Kayak.slnx.</summary>
    public static string Root => LazyRoot.Value;

    public static string PythonScripts => Path.Combine(Root, "IntegrationTests", "python");

    public static string JsScripts => Path.Combine(Root, "IntegrationTests", "js");

    /// <summary>The build configuration the tests were compiled with (the broker is built alongside with the same one).</summary>
    public static string Configuration =>
        typeof(RepoPaths).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Debug";

    /// <summary>
    /// The host (kayak.dll) to run as a separate process: $KAYAK_BROKER_DLL, else Host/bin/&lt;cfg&gt;/net10.0/kayak.dll.
    /// </summary>
    public static string BrokerDll
    {
        get
        {
            var fromEnv = Environment.GetEnvironmentVariable("KAYAK_BROKER_DLL");
            if (!string.IsNullOrEmpty(fromEnv))
                return fromEnv;
            return Path.Combine(Root, "Host", "bin", Configuration, "net10.0", "kayak.dll");
        }
    }

    /// <summary>The Streamiz exactly-once application (IntegrationTests/StreamsApp), built by the test project's build.</summary>
    public static string StreamsAppDll => Path.Combine(Root, "IntegrationTests", "StreamsApp", "bin", Configuration, "net10.0", "Kayak.StreamsApp.dll");

    private static string FindRoot()
    {
        var fromEnv = Environment.GetEnvironmentVariable("KAYAK_REPO_ROOT");
        if (!string.IsNullOrEmpty(fromEnv))
            return fromEnv;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Kayak.slnx")))
                return dir.FullName;
        }
        throw new InvalidOperationException($"Kayak.slnx not found above {AppContext.BaseDirectory}; set KAYAK_REPO_ROOT.");
    }
}
