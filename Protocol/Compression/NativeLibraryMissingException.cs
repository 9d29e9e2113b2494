namespace Kayak.Protocol.Compression;

/// <summary>A native codec library (liblz4 / libzstd) could not be loaded.</summary>
public sealed class NativeLibraryMissingException : Exception
{
    public NativeLibraryMissingException(string library, string debianPackage, Exception inner)
        : base($"Native library '{library}' could not be loaded; install the Debian package '{debianPackage}' (apt-get install {debianPackage}).", inner)
    {
        Library = library;
        DebianPackage = debianPackage;
    }

    public string Library { get; }
    public string DebianPackage { get; }
}
