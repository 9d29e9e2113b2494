using System.Buffers;
using System.IO.MemoryMappedFiles;

namespace Kayak.Storage;

/// <summary>
/// A file mapped into memory once, accessed through a raw pointer. Writable maps preallocate the file
/// to the requested capacity (sparse on Linux) so appends are plain memory copies; <see cref="Dispose(long)"/>
/// can trim the file back to its real length after the view is gone, like Kafka does on roll/close.
/// </summary>
internal sealed unsafe class MappedFile : IDisposable
{
    private readonly string _path;
    private readonly MemoryMappedViewAccessor _view;
    private readonly Microsoft.Win32.SafeHandles.SafeFileHandle? _file;
    private readonly byte* _ptr;
    private MappedMemory? _memory;
    private bool _disposed;

    public long Capacity { get; }
    public bool Writable { get; }

    private MappedFile(string path, MemoryMappedViewAccessor view, byte* ptr, long capacity, bool writable,
        Microsoft.Win32.SafeHandles.SafeFileHandle? file)
    {
        _path = path; _view = view; _ptr = ptr; Capacity = capacity; Writable = writable; _file = file;
    }

    /// <summary>
    /// Maps <paramref name="path"/>. Writable: created if missing and grown to <paramref name="capacity"/>
    /// (never shrunk). Read-only: maps the current length, which must be &gt; 0.
    /// The file descriptor is closed as soon as the view exists (a mapping outlives its fd), so a mapped
    /// index costs one map and no open file: 10,000 partitions stay far below RLIMIT_NOFILE.
    /// With <paramref name="writeThroughFile"/> (an active log segment) the descriptor stays open and appends
    /// go through <see cref="Write"/> (pwrite) instead of stores into the mapping: a store into a hole page
    /// takes a page fault and zero-fills the page before the copy, which made appends 3-10x slower than
    /// pwrite (tools/Benchmarks/RESULTS.md). The page cache is shared, so the mapping sees the data at once.
    /// With <paramref name="keepFile"/> (an inactive log segment mapped for readers) the descriptor also stays
    /// open while mapped, so fetches can sendfile(2) from it; those maps are bounded by the segment map LRU.
    /// Either way <see cref="FileHandle"/> is the very inode that is mapped, even if the path is later unlinked
    /// (retention) or renamed over (compaction swap).
    /// </summary>
    public static MappedFile Open(string path, long capacity, bool writable, bool writeThroughFile = false, bool keepFile = false)
    {
        var handle = File.OpenHandle(path, writable ? FileMode.OpenOrCreate : FileMode.Open,
            writable ? FileAccess.ReadWrite : FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        bool keep = false;
        try
        {
            long length = RandomAccess.GetLength(handle);
            if (writable && length < capacity)
            {
                RandomAccess.SetLength(handle, capacity);
                length = capacity;
            }
            capacity = length;
            if (capacity <= 0) throw new IOException($"Cannot map empty file {path}");
            var access = writable ? MemoryMappedFileAccess.ReadWrite : MemoryMappedFileAccess.Read;
            using var mmf = MemoryMappedFile.CreateFromFile(handle, null, capacity, access, HandleInheritability.None, leaveOpen: true);
            var view = mmf.CreateViewAccessor(0, capacity, access);
            byte* p = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            p += view.PointerOffset;
            // Appends fault in fresh (hole) pages one at a time; the kernel's mmap read-around on the first fault
            // of a new file costs milliseconds on ext4 and is useless here. Read-only maps keep the default so
            // sequential consumers still get readahead.
            if (writable && !writeThroughFile && OperatingSystem.IsLinux()) _ = madvise(p, (nuint)capacity, MadvRandom);
            keep = writeThroughFile || keepFile;
            return new MappedFile(path, view, p, capacity, writable, keep ? handle : null);
        }
        finally
        {
            if (!keep) handle.Dispose();
        }
    }

    /// <summary>
    /// The open descriptor of the mapped file (write-through and keep-file maps), null otherwise. Closed only by
    /// <see cref="Dispose(long)"/>, i.e. when the owning segment has no readers left.
    /// </summary>
    public Microsoft.Win32.SafeHandles.SafeFileHandle? FileHandle => _file;

    /// <summary>Writes through the file descriptor (write-through maps only); readers see it via the mapping.</summary>
    public void Write(long offset, ReadOnlySpan<byte> data)
    {
        if ((ulong)offset + (ulong)data.Length > (ulong)Capacity) throw new ArgumentOutOfRangeException(nameof(offset));
        if (_file is null || !Writable) throw new InvalidOperationException("Not a write-through mapping");
        RandomAccess.Write(_file, data, offset);
    }

    private const int MadvRandom = 1;
    private const int MadvSequential = 2;

    /// <summary>
    /// For one front-to-back pass (recovery): MADV_SEQUENTIAL, so faults read ahead aggressively. Writable maps start
    /// MADV_RANDOM (above), under which a cold recovery faulted one 4 KiB page per read (~50 MB/s here; issue 15, K7).
    /// </summary>
    public void AdviseSequential()
    {
        if (OperatingSystem.IsLinux()) _ = madvise(_ptr, (nuint)Capacity, MadvSequential);
    }

    /// <summary>
    /// Allocates real blocks for [offset, offset+length) of the mapped file (posix_fallocate) so that later stores
    /// through the mapping cannot fault for lack of space: a sparse page that the disk cannot back raises SIGBUS in
    /// the store, which .NET turns into a process abort (issue 15, K5). Throws IOException (ENOSPC) instead.
    /// A no-op on Windows, whose mapped sections are backed when the file is extended.
    /// </summary>
    public void Allocate(long offset, long length)
    {
        if (length <= 0 || OperatingSystem.IsWindows()) return;
        using var handle = File.OpenHandle(_path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
        int rc = posix_fallocate((int)handle.DangerousGetHandle(), offset, length);
        if (rc != 0) throw new IOException($"Cannot allocate {length} bytes at {offset} of {_path}: {ErrnoText(rc)}", rc);
    }

    private static string ErrnoText(int errno) => errno switch
    {
        28 => "No space left on device",
        5 => "Input/output error",
        122 => "Disk quota exceeded",
        _ => "errno " + errno,
    };

    [System.Runtime.InteropServices.DllImport("libc", SetLastError = false)]
    private static extern int posix_fallocate(int fd, long offset, long len);

    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
    private static extern int madvise(void* addr, nuint length, int advice);

    public byte* Pointer => _ptr;

    public Span<byte> Span(long offset, int length)
    {
        if ((ulong)offset + (ulong)length > (ulong)Capacity) throw new ArgumentOutOfRangeException(nameof(offset));
        return new Span<byte>(_ptr + offset, length);
    }

    /// <summary>Zero-copy memory over the mapping (one MemoryManager per mapping, created on first use).</summary>
    public ReadOnlyMemory<byte> Memory(int offset, int length)
    {
        _memory ??= new MappedMemory(_ptr, (int)Math.Min(Capacity, int.MaxValue));
        return _memory.Memory.Slice(offset, length);
    }

    /// <summary>msync the mapped pages, then fsync the file through a short-lived handle (data + metadata).</summary>
    public void Flush()
    {
        if (_disposed || !Writable) return;
        _view.Flush();
        if (_file is not null)
        {
            RandomAccess.FlushToDisk(_file);
            return;
        }
        FsyncPath(_path);
    }

    /// <summary>fsyncs a file by path through a short-lived handle; a file deleted meanwhile (retention, topic deletion) has nothing left to make durable.</summary>
    public static void FsyncPath(string path)
    {
        try
        {
            using var fs = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete, 1);
            fs.Flush(flushToDisk: true);
        }
        catch (FileNotFoundException) { }
        catch (DirectoryNotFoundException) { }
    }

    public void Dispose() => Dispose(-1);

    /// <summary>Unmaps; when <paramref name="trimTo"/> ≥ 0 and the map was writable, truncates the file to it.</summary>
    public void Dispose(long trimTo)
    {
        if (_disposed) return;
        _disposed = true;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _file?.Dispose();
        if (trimTo >= 0 && Writable && File.Exists(_path))
        {
            using var fs = new FileStream(_path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete, 1);
            // No fsync: callers flush dirty data first, and a size change lost in an OS crash only leaves a
            // zero-filled tail, which the loader recognizes as the end of the log / index.
            fs.SetLength(trimTo);
        }
    }

    private sealed class MappedMemory : MemoryManager<byte>
    {
        private readonly byte* _p;
        private readonly int _length;
        public MappedMemory(byte* p, int length) { _p = p; _length = length; }
        public override Span<byte> GetSpan() => new(_p, _length);
        public override MemoryHandle Pin(int elementIndex = 0) => new(_p + elementIndex);
        public override void Unpin() { }
        protected override void Dispose(bool disposing) { }
    }
}

/// <summary>
/// A sparse, fixed-entry-size index file (Kafka's .index: 8 bytes, .timeindex: 12 bytes), mmap'd.
/// Writable (active segment): preallocated to its max size. Read-only (inactive): mapped at its trimmed
/// size on demand. <see cref="Count"/> is published with a volatile write after the entry bytes, so
/// concurrent readers never see a half-written entry.
/// </summary>
internal sealed class SparseIndex
{
    private MappedFile? _map;
    private int _count;

    public string Path { get; }
    public int EntrySize { get; }
    public int Count => Volatile.Read(ref _count);
    public int MaxEntries { get; private set; }
    public bool IsFull => _count >= MaxEntries;
    public bool IsMapped => _map is not null || _rebuilt is not null;

    /// <summary>Entries of an index being rebuilt by recovery, kept in memory until <see cref="EndRebuild"/>.</summary>
    private byte[]? _rebuilt;

    public SparseIndex(string path, int entrySize) { Path = path; EntrySize = entrySize; }

    /// <summary>Maps writable with room for maxBytes (rounded down to whole entries); entry count must be set by the caller.</summary>
    public void OpenWritable(int maxBytes, int existingEntries)
    {
        int max = Math.Max(1, maxBytes / EntrySize);
        long needed = Math.Max((long)max, existingEntries) * EntrySize;
        _map = MappedFile.Open(Path, needed, writable: true);
        MaxEntries = (int)(_map.Capacity / EntrySize);
        _count = existingEntries;
        _allocated = (long)existingEntries * EntrySize; // written entries have blocks; the rest may be a hole
    }

    /// <summary>Maps the file read-only with <paramref name="entries"/> valid entries (0 = nothing mapped).</summary>
    public void OpenReadOnly(int entries)
    {
        _count = entries;
        MaxEntries = entries;
        if (entries > 0) _map = MappedFile.Open(Path, 0, writable: false);
    }

    public ReadOnlySpan<byte> Entry(int i) => _map!.Span((long)i * EntrySize, EntrySize);

    /// <summary>Bytes of the writable file known to be backed by disk blocks (see <see cref="MappedFile.Allocate"/>).</summary>
    private long _allocated;

    /// <summary>
    /// Makes sure <paramref name="entries"/> more entries can be stored without a page fault on a full disk:
    /// allocates the file ahead in 64 KB steps (one short-lived open per ~5,000 offset entries). Throws IOException.
    /// </summary>
    public void Reserve(int entries)
    {
        var map = _map;
        if (map is null || !map.Writable) return;
        long need = Math.Min(map.Capacity, ((long)_count + entries) * EntrySize);
        if (need <= _allocated) return;
        long target = Math.Min(map.Capacity, Math.Max(need, _allocated + 64 * 1024));
        map.Allocate(_allocated, target - _allocated);
        _allocated = target;
    }

    /// <summary>
    /// Starts rebuilding the index in memory (segment recovery, Kafka's LogSegment.recover). The file is left alone
    /// until <see cref="EndRebuild"/>, which writes it in place: deleting and re-creating two index files per
    /// recovered segment, each preallocated, block-allocated and trimmed again, was most of an unclean start with
    /// thousands of partitions (ext4 metadata work, and a discard per freed extent on a discard-mounted disk).
    /// </summary>
    public void BeginRebuild(int maxBytes)
    {
        _map?.Dispose(-1);
        _map = null;
        MaxEntries = Math.Max(1, maxBytes / EntrySize);
        _rebuilt = new byte[Math.Min((long)MaxEntries * EntrySize, 4096)];
        _count = 0;
        _allocated = 0;
    }

    /// <summary>
    /// Writes the rebuilt entries over the file (created if missing) and trims it to them. An existing file that already
    /// holds exactly these bytes is not written (the usual case for a rolled segment). With <paramref name="fsync"/> the
    /// file is made durable; otherwise that is left to the caller's later flush, as Kafka leaves recovered indexes to
    /// the page cache until the next flush of the segment.
    /// </summary>
    public void EndRebuild(bool fsync)
    {
        var built = _rebuilt.AsSpan(0, _count * EntrySize);
        _rebuilt = null;
        using var handle = File.OpenHandle(Path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
        long length = RandomAccess.GetLength(handle);
        if (length != built.Length || !SameBytes(handle, built))
        {
            RandomAccess.Write(handle, built, 0);
            if (length != built.Length) RandomAccess.SetLength(handle, built.Length);
        }
        if (fsync) RandomAccess.FlushToDisk(handle);
    }

    private static bool SameBytes(Microsoft.Win32.SafeHandles.SafeFileHandle handle, ReadOnlySpan<byte> expected)
    {
        if (expected.IsEmpty) return true;
        var onDisk = new byte[expected.Length];
        int read = 0;
        while (read < onDisk.Length)
        {
            int n = RandomAccess.Read(handle, onDisk.AsSpan(read), read);
            if (n <= 0) return false;
            read += n;
        }
        return expected.SequenceEqual(onDisk);
    }

    public void Append(ReadOnlySpan<byte> entry)
    {
        if (_rebuilt is not null)
        {
            int at = _count * EntrySize;
            if (at + EntrySize > _rebuilt.Length) Array.Resize(ref _rebuilt, (int)Math.Min((long)MaxEntries * EntrySize, Math.Max(at + EntrySize, 2L * _rebuilt.Length)));
            entry.CopyTo(_rebuilt.AsSpan(at));
            _count++;
            return;
        }
        // Appends reserve ahead (LogSegment.ReserveIndexRoom); recovery's index rebuild allocates here.
        if ((long)(_count + 1) * EntrySize > _allocated) Reserve(1);
        entry.CopyTo(_map!.Span((long)_count * EntrySize, EntrySize));
        Volatile.Write(ref _count, _count + 1);
    }

    public void Flush() => _map?.Flush();

    /// <summary>Unmaps without trimming (crash simulation).</summary>
    public void Abandon()
    {
        var m = _map;
        _map = null;
        m?.Dispose(-1);
    }

    /// <summary>Unmaps; writable maps are trimmed to exactly Count entries.</summary>
    public void Close()
    {
        var m = _map;
        _map = null;
        m?.Dispose(m.Writable ? (long)_count * EntrySize : -1);
    }
}
