using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Kayak.Broker.Handlers;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using Kayak.Storage;
using Microsoft.Win32.SafeHandles;

namespace Kayak.Broker.Network;

/// <summary>
/// One response whose large records fields are sent straight from the memory they live in (mapped log segments)
/// instead of being copied into the connection's pipe first: Kafka's zero-copy fetch path (FileRecords.writeTo →
/// FileChannel.transferTo) in the same spirit. The small protocol bytes around them go into a pooled buffer; the
/// parts are then sent in order. Without this every fetched byte was copied twice (mapping → pipe buffer →
/// kernel socket buffer); now once, and on Linux not at all for records whose segment file is known
/// (<see cref="FetchSlice.TryGetFile"/>): those go out with sendfile(2), which attaches page-cache pages to the
/// socket buffers like Kafka's FileChannel.transferTo. The caller keeps the mapped slices alive
/// (the response's <see cref="ResponseSegments"/>) until <see cref="SendAsync"/> has completed.
/// </summary>
internal sealed class SplicedResponse : IBufferWriter<byte>, IByReferenceBufferWriter, IDisposable
{
    private readonly ResponseSegments _segments;
    // Parts in send order: Length > 0 with Reference default = _buffer[Start..Start+Length]; otherwise Reference.
    private readonly List<Part> _parts = new();
    private byte[] _buffer;
    private int _written;
    private int _partStart;

    /// <summary>A writer for a response that owns <paramref name="segments"/>; records fields that are one of them go by reference.</summary>
    public SplicedResponse(ResponseSegments segments)
    {
        _segments = segments;
        _buffer = ArrayPool<byte>.Shared.Rent(4096);
    }

    public bool TryWriteByReference(ReadOnlyMemory<byte> records)
    {
        if (!_segments.TryFind(records, out var slice)) return false;
        EndBufferedPart();
        _parts.Add(new Part(0, 0, records, slice));
        return true;
    }

    public void Advance(int count) => _written += count;

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _buffer.AsMemory(_written);
    }

    public Span<byte> GetSpan(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _buffer.AsSpan(_written);
    }

    private void Ensure(int sizeHint)
    {
        int need = Math.Max(sizeHint, 1);
        if (_buffer.Length - _written >= need) return;
        var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(_buffer.Length * 2, _written + need));
        _buffer.AsSpan(0, _written).CopyTo(bigger);
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = bigger;
    }

    private void EndBufferedPart()
    {
        if (_written > _partStart) _parts.Add(new Part(_partStart, _written - _partStart, default, null));
        _partStart = _written;
    }

    /// <summary>
    /// Sends every part in order (the pipe must have been flushed before, so earlier responses precede it); records
    /// with a segment file go out with sendfile(2) when <paramref name="useSendFile"/> (see <see cref="SendFile.ShouldUse"/>).
    /// </summary>
    public async ValueTask SendAsync(Socket socket, bool useSendFile, CancellationToken cancel)
    {
        EndBufferedPart();
        foreach (var part in _parts)
        {
            if (part.Length > 0)
            {
                // Socket.SendAsync on a stream socket completes only when all bytes were handed to the kernel, so
                // everything before a sendfile part is already queued on the socket when sendfile starts.
                await socket.SendAsync(_buffer.AsMemory(part.Start, part.Length), SocketFlags.None, cancel).ConfigureAwait(false);
            }
            else if (useSendFile && part.Slice is { } slice && slice.TryGetFile(out var file, out long fileOffset))
            {
                await SendFile.SendAsync(socket, file, fileOffset, part.Reference, cancel).ConfigureAwait(false);
            }
            else
            {
                await socket.SendAsync(part.Reference, SocketFlags.None, cancel).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Writes every part in order into a stream transport (TLS, in-memory): records copied once, into the stream.</summary>
    public async ValueTask WriteToAsync(Stream stream, CancellationToken cancel)
    {
        EndBufferedPart();
        foreach (var part in _parts)
        {
            var bytes = part.Length > 0 ? _buffer.AsMemory(part.Start, part.Length) : part.Reference;
            await stream.WriteAsync(bytes, cancel).ConfigureAwait(false);
        }
        await stream.FlushAsync(cancel).ConfigureAwait(false);
    }

    public void Dispose()
    {
        var b = _buffer;
        _buffer = [];
        if (b.Length > 0) ArrayPool<byte>.Shared.Return(b);
    }

    private readonly record struct Part(int Start, int Length, ReadOnlyMemory<byte> Reference, FetchSlice? Slice);
}

/// <summary>When fetched records go out with sendfile(2) (<see cref="SendFile.Policy"/>, env <c>KAYAK_SENDFILE</c>).</summary>
internal enum SendFilePolicy
{
    /// <summary>Always send from the mapping.</summary>
    Never,
    /// <summary>sendfile for clients on other hosts; clients on this host get the mapped send (the default).</summary>
    RemoteOnly,
    /// <summary>sendfile for every client.</summary>
    Always,
}

/// <summary>
/// sendfile(2) from a segment file to a connection's socket (Linux), Kafka's zero-copy transferTo. .NET keeps
/// sockets used asynchronously in non-blocking mode, so sendfile never blocks a thread on a full socket buffer: it
/// returns EAGAIN, and then the next <see cref="FallbackChunk"/> bytes of the same records are sent from the
/// mapping with an awaited Socket.SendAsync — which completes once the kernel took them, i.e. when the socket
/// drained — before sendfile continues with the rest. Errors that say sendfile cannot be used here (EINVAL,
/// ENOSYS, ...) send the remainder from the mapping as before.
/// <para>
/// Only for clients on other hosts by default. Over loopback the client has to copy every byte out of the socket
/// anyway, and measured here (tools/Benchmarks/RESULTS.md, "sendfile") sendfile costs more CPU than send() from
/// the mapping: splicing page-cache pages costs more per byte than the copy it saves, and the client then copies
/// from cache-cold page-cache pages instead of the cache-hot socket buffer the copy just wrote. The saving Kafka's
/// transferTo is for — no CPU touching the bytes while a NIC DMAs them from the page cache — needs a real NIC.
/// </para>
/// </summary>
internal static class SendFile
{
    /// <summary>Bytes sent from the mapping while waiting for a full socket buffer to drain: small, because they are copied.</summary>
    internal const int FallbackChunk = 16 * 1024;

    private const int EINTR = 4;
    private const int EAGAIN = 11;

    public static bool IsSupported { get; } = OperatingSystem.IsLinux();

    /// <summary>Process-wide; from <c>KAYAK_SENDFILE</c> = never | remote | always (default remote). Tests set it.</summary>
    internal static SendFilePolicy Policy { get; set; } = ParsePolicy(Environment.GetEnvironmentVariable("KAYAK_SENDFILE"));

    internal static SendFilePolicy ParsePolicy(string? value) => value?.Trim().ToLowerInvariant() switch
    {
        "never" or "0" or "false" => SendFilePolicy.Never,
        "always" or "1" or "true" => SendFilePolicy.Always,
        _ => SendFilePolicy.RemoteOnly,
    };

    /// <summary>Whether fetch responses on this connection use sendfile (decided once per connection).</summary>
    public static bool ShouldUse(Socket socket)
    {
        var policy = Policy;
        if (!IsSupported || policy == SendFilePolicy.Never) return false;
        if (policy == SendFilePolicy.Always) return true;
        try
        {
            return !IsSameHost(socket.RemoteEndPoint, socket.LocalEndPoint);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return false;
        }
    }

    /// <summary>Loopback, or the peer is this host's own address (such connections are routed over loopback too).</summary>
    internal static bool IsSameHost(EndPoint? remote, EndPoint? local)
    {
        if (remote is not IPEndPoint r) return true; // not TCP/IP (e.g. a Unix socket): local by definition
        var address = r.Address.IsIPv4MappedToIPv6 ? r.Address.MapToIPv4() : r.Address;
        if (IPAddress.IsLoopback(address)) return true;
        if (local is not IPEndPoint l) return false;
        var own = l.Address.IsIPv4MappedToIPv6 ? l.Address.MapToIPv4() : l.Address;
        return address.Equals(own);
    }

    // Diagnostics for tests (Broker/Tests/SendFileTests.cs): which paths a send took. Updated once per syscall
    // batch or chunk, not per byte.
    internal static long SendfileBytes;
    internal static long WouldBlockChunks;
    internal static long MemoryFallbacks;

    public static async ValueTask SendAsync(Socket socket, SafeFileHandle file, long fileOffset, ReadOnlyMemory<byte> data, CancellationToken cancel)
    {
        int sent = 0;
        while (sent < data.Length)
        {
            cancel.ThrowIfCancellationRequested();
            int n = SendSome(socket.SafeHandle, file, fileOffset + sent, data.Length - sent, out int errno);
            sent += n;
            if (n > 0) Interlocked.Add(ref SendfileBytes, n);
            if (sent == data.Length) return;
            if (errno == EAGAIN)
            {
                // Socket buffer full: wait for it to drain by handing the kernel the next few KB ourselves.
                int chunk = Math.Min(FallbackChunk, data.Length - sent);
                await socket.SendAsync(data.Slice(sent, chunk), SocketFlags.None, cancel).ConfigureAwait(false);
                sent += chunk;
                Interlocked.Increment(ref WouldBlockChunks);
            }
            else if (errno == 0)
            {
                // sendfile returned 0: the file ends before the slice does. Cannot happen while the slice holds its
                // segment (files are only trimmed without readers); never send anything but the slice's bytes.
                throw new IOException("Segment file is shorter than the fetched slice");
            }
            else
            {
                // sendfile unusable for this pair (EINVAL, ENOSYS, ...) or a socket error, which SendAsync reports.
                Interlocked.Increment(ref MemoryFallbacks);
                await socket.SendAsync(data[sent..], SocketFlags.None, cancel).ConfigureAwait(false);
                return;
            }
        }
    }

    /// <summary>
    /// sendfile until <paramref name="count"/> bytes went out or the kernel refuses more; returns the bytes sent and in
    /// <paramref name="errno"/> why it stopped early (0: end of file). Partial sends are normal and just loop.
    /// </summary>
    private static int SendSome(SafeSocketHandle socket, SafeFileHandle file, long offset, int count, out int errno)
    {
        bool socketRef = false, fileRef = false;
        try
        {
            // Hold both descriptors so neither can be closed and its number reused while the syscall runs.
            socket.DangerousAddRef(ref socketRef);
            file.DangerousAddRef(ref fileRef);
            int outFd = (int)socket.DangerousGetHandle();
            int inFd = (int)file.DangerousGetHandle();
            int total = 0;
            errno = 0;
            while (total < count)
            {
                long off = offset + total;
                nint n = sendfile(outFd, inFd, ref off, (nuint)(count - total));
                if (n > 0) { total += (int)n; continue; }
                if (n == 0) { errno = 0; break; }
                int e = Marshal.GetLastPInvokeError();
                if (e == EINTR) continue;
                errno = e;
                break;
            }
            return total;
        }
        finally
        {
            if (fileRef) file.DangerousRelease();
            if (socketRef) socket.DangerousRelease();
        }
    }

    [DllImport("libc", SetLastError = true)]
    private static extern nint sendfile(int outFd, int inFd, ref long offset, nuint count);
}
