using System.Net;
using System.Net.Sockets;

namespace Kayak.Broker.Network;

/// <summary>
/// The bytes under a <see cref="Connection"/> (issue 10, step 2): the connection frames, orders and applies
/// backpressure; the transport only moves bytes. A TCP socket sends large fetched records without a copy
/// (sendfile or straight from the mapping); a stream transport — TLS (SslStream), an in-memory pipe for tests and
/// request-level benchmarks — copies them once into the stream.
/// </summary>
internal interface IConnectionTransport : IAsyncDisposable
{
    /// <summary>The byte stream the connection's pipes read and write.</summary>
    Stream Stream { get; }

    EndPoint? RemoteEndPoint { get; }

    /// <summary>A read that bypasses the pipe, straight into a large request's frame (only after the pipe's buffered bytes were taken).</summary>
    ValueTask<int> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken);

    /// <summary>Sends a response whose records are referenced, not copied (the pipe was flushed first, so order holds).</summary>
    ValueTask SendAsync(SplicedResponse response, CancellationToken cancellationToken);

    /// <summary>Stops both directions at once (the connection is closing on an error).</summary>
    void Abort();
}

/// <summary>A TCP connection: the Socket itself for direct reads and zero-copy sends.</summary>
internal sealed class SocketTransport : IConnectionTransport
{
    private readonly Socket _socket;
    private readonly bool _useSendFile;

    public SocketTransport(Socket socket)
    {
        _socket = socket;
        _socket.NoDelay = true;
        Stream = new NetworkStream(socket, ownsSocket: true);
        _useSendFile = SendFile.ShouldUse(socket);
    }

    public Stream Stream { get; }

    public EndPoint? RemoteEndPoint
    {
        get { try { return _socket.RemoteEndPoint; } catch (ObjectDisposedException) { return null; } }
    }

    public ValueTask<int> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken) =>
        _socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);

    public ValueTask SendAsync(SplicedResponse response, CancellationToken cancellationToken) =>
        response.SendAsync(_socket, _useSendFile, cancellationToken);

    public void Abort()
    {
        try { _socket.Shutdown(SocketShutdown.Both); } catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
    }

    public ValueTask DisposeAsync() => Stream.DisposeAsync();
}

/// <summary>
/// Any duplex stream (a TLS SslStream, an in-memory pipe): records are copied into the stream once, which is the
/// least a TLS record layer needs (it must encrypt them) and what an in-memory pipe costs.
/// </summary>
internal sealed class StreamTransport(Stream stream, EndPoint? remoteEndPoint) : IConnectionTransport
{
    public Stream Stream { get; } = stream;
    public EndPoint? RemoteEndPoint { get; } = remoteEndPoint;

    public ValueTask<int> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken) =>
        Stream.ReadAsync(buffer, cancellationToken);

    public ValueTask SendAsync(SplicedResponse response, CancellationToken cancellationToken) =>
        response.WriteToAsync(Stream, cancellationToken);

    public void Abort()
    {
        try { Stream.Close(); } catch (Exception e) when (e is IOException or ObjectDisposedException) { }
    }

    public ValueTask DisposeAsync() => Stream.DisposeAsync();
}
