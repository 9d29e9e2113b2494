using System.Diagnostics;
using NUnit.Framework;

namespace Kayak.Tests.Filesystems;

/// <summary>
/// A tmpfs of a few MiB mounted for one test, to fill a disk for real (issue 15, K4–K6). Linux and root only: CI runs
/// as root, so there the test runs; elsewhere it says why it cannot. Linked into IntegrationTests as well.
/// </summary>
internal sealed class SmallFilesystem : IDisposable
{
    private SmallFilesystem(string path) { Path = path; }

    public string Path { get; }

    public static SmallFilesystem Mount(string size)
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("mounts a small tmpfs: Linux only");
        string path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "kayak-small-fs-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(path);
        var (code, err) = Run("mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", path);
        if (code != 0)
        {
            Directory.Delete(path);
            if (Environment.UserName != "root") Assert.Ignore("needs root to mount a small tmpfs: " + err);
            Assert.Fail($"mount of a {size} tmpfs failed as root: " + err);
        }
        return new SmallFilesystem(path);
    }

    public void Dispose()
    {
        if (!Directory.Exists(Path)) return;
        Run("umount", "-l", Path);
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }

    private static (int Code, string Err) Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, err);
    }
}
