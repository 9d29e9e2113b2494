using System.IO.Pipelines;
using Microsoft.Extensions.Logging;

namespace Kayak.Broker.Network;

/// <summary>
/// A connection to a broker without a socket: two in-memory pipes, the broker's <see cref="Connection"/> on one end
/// through a <see cref="StreamTransport"/>, the returned stream on the other. For tests and request-level benchmarks
/// that measure request processing without the kernel's TCP stack.
/// </summary>
internal static class InMemoryTransport
{
    /// <summary>Starts a connection on <paramref name="broker"/>; the client reads and writes Kafka frames on the returned stream.</summary>
    public static Stream Connect(BrokerState broker, ILogger log, out Task connectionDone)
    {
        var toBroker = new Pipe();
        var toClient = new Pipe();
        var brokerSide = new DuplexStream(toBroker.Reader.AsStream(), toClient.Writer.AsStream());
        var clientSide = new DuplexStream(toClient.Reader.AsStream(), toBroker.Writer.AsStream());
        var connection = new Connection(new StreamTransport(brokerSide, remoteEndPoint: null), broker, log);
        connectionDone = Task.Run(connection.RunAsync);
        return clientSide;
    }

    /// <summary>One stream over a read half and a write half.</summary>
    private sealed class DuplexStream(Stream read, Stream write) : Stream
    {
        public override bool CanRead => true;
        public override bool CanWrite => true;
        public override bool CanSeek => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() => write.Flush();
        public override Task FlushAsync(CancellationToken cancellationToken) => write.FlushAsync(cancellationToken);
        public override int Read(byte[] buffer, int offset, int count) => read.Read(buffer, offset, count);
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => read.ReadAsync(buffer, cancellationToken);
        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => read.ReadAsync(buffer, offset, count, cancellationToken);
        public override void Write(byte[] buffer, int offset, int count) => write.Write(buffer, offset, count);
        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => write.WriteAsync(buffer, cancellationToken);
        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => write.WriteAsync(buffer, offset, count, cancellationToken);
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                write.Dispose(); // completes the other side's reads
                read.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}
