using NUnit.Framework;

namespace Kayak.IntegrationTests.Infrastructure;

/// <summary>
/// A test fixture that owns one fresh scratch directory per test (deleted afterwards) and the test's cancellation
/// token: the setup the in-process cluster tests share, written once.
/// </summary>
public abstract class ScratchDirectoryTest
{
    private readonly string _prefix;

    protected ScratchDirectoryTest(string prefix) => _prefix = prefix;

    /// <summary>This test's directory under the temp path; not created here (brokers create their log dirs).</summary>
    protected string Dir { get; private set; } = "";

    protected static CancellationToken Token => TestContext.CurrentContext.CancellationToken;

    [SetUp]
    public void CreateScratchDirectory() => Dir = Path.Combine(Path.GetTempPath(), "kayak-itest-" + _prefix + "-" + Guid.NewGuid().ToString("N"));

    [TearDown]
    public void DeleteScratchDirectory()
    {
        try { Directory.Delete(Dir, recursive: true); }
        catch (IOException) { }
    }
}
