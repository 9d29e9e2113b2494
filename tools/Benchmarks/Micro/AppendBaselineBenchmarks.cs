using System.IO.MemoryMappedFiles;
using BenchmarkDotNet.Attributes;
using Microsoft.Win32.SafeHandles;

namespace Kayak.Micro;

/// <summary>
/// Not Kayak code: the two ways to put 1 MB at the end of a fresh segment file, for comparison with
/// <see cref="AppendBenchmarks"/>. MmapCopy mirrors what Storage's MappedFile does (SetLength to the segment size,
/// MAP_SHARED view, memcpy: every first touch of a page faults and the kernel reads the sparse page in, zero-filling
/// it); PWrite is Kafka's FileChannel.write path (the page cache pages are allocated without a read). Each iteration
/// starts from a new 64 MB file.
/// </summary>
[InvocationCount(64, 1)]
public unsafe class AppendBaselineBenchmarks : IBytesPerOperation
{
    private const long FileSize = 64L << 20;
    private readonly byte[] _batch = new byte[1 << 20];
    private string _dir = "";
    private int _file;
    private FileStream? _stream;
    private MemoryMappedFile? _mmf;
    private MemoryMappedViewAccessor? _view;
    private byte* _ptr;
    private SafeFileHandle? _handle;
    private long _pos;

    public long BytesPerOperation => 1 << 20;

    [GlobalSetup]
    public void Setup()
    {
        new Random(5).NextBytes(_batch);
        _dir = Directory.CreateTempSubdirectory("kayak-micro-baseline-").FullName;
    }

    [IterationSetup(Target = nameof(MmapCopy))]
    public void SetupMmap()
    {
        _stream = new FileStream(Path.Combine(_dir, $"m{_file++}.log"), FileMode.CreateNew, FileAccess.ReadWrite, FileShare.ReadWrite);
        _stream.SetLength(FileSize);
        _mmf = MemoryMappedFile.CreateFromFile(_stream, null, FileSize, MemoryMappedFileAccess.ReadWrite, HandleInheritability.None, leaveOpen: true);
        _view = _mmf.CreateViewAccessor(0, FileSize, MemoryMappedFileAccess.ReadWrite);
        byte* p = null;
        _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        _ptr = p;
        _pos = 0;
    }

    [IterationSetup(Target = nameof(PWrite))]
    public void SetupPWrite()
    {
        _handle = File.OpenHandle(Path.Combine(_dir, $"w{_file++}.log"), FileMode.CreateNew, FileAccess.ReadWrite);
        _pos = 0;
    }

    [Benchmark]
    public long MmapCopy()
    {
        _batch.AsSpan().CopyTo(new Span<byte>(_ptr + _pos, _batch.Length));
        return _pos += _batch.Length;
    }

    [Benchmark]
    public long PWrite()
    {
        RandomAccess.Write(_handle!, _batch, _pos);
        return _pos += _batch.Length;
    }

    [IterationCleanup]
    public void Cleanup()
    {
        if (_view is not null)
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
            _mmf!.Dispose();
            _stream!.Dispose();
            _view = null;
        }
        _handle?.Dispose();
        _handle = null;
        foreach (var f in Directory.GetFiles(_dir)) File.Delete(f);
    }

    [GlobalCleanup]
    public void GlobalCleanup()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }
}
