using System.Buffers.Binary;
using System.Diagnostics;
using System.Net.Sockets;
using System.Text;

namespace Kayak.PerfTest;

/// <summary>
/// Hand-rolled Metadata v1 request over a raw socket (no client library in the loop, and independent of Kayak's own
/// codec so the same probe measures both brokers): used for "process start until the first Metadata request
/// succeeds" and to read the advertised broker address.
/// </summary>
internal static class MetadataProbe
{
    /// <summary>Retries connect + Metadata every millisecond until it succeeds; returns the first advertised broker.</summary>
    public static (string Host, int Port) WaitForMetadata(string host, int port, TimeSpan timeout, Func<bool>? stillAlive = null)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        Exception? last = null;
        while (Stopwatch.GetTimestamp() < deadline)
        {
            if (stillAlive is not null && !stillAlive()) throw new InvalidOperationException("broker process exited during startup");
            try
            {
                return Probe(host, port);
            }
            catch (Exception e) when (e is SocketException or IOException or InvalidDataException)
            {
                last = e;
                Thread.Sleep(1);
            }
        }
        throw new TimeoutException($"no Metadata response from {host}:{port} within {timeout}", last);
    }

    private static (string Host, int Port) Probe(string host, int port)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        socket.ReceiveTimeout = 5000;
        socket.Connect(host, port);
        // Request header v1: api_key=3 (Metadata), api_version=1, correlation_id, client_id; body: topics=null (all).
        byte[] clientId = Encoding.ASCII.GetBytes("perf-probe");
        int bodyLen = 2 + 2 + 4 + 2 + clientId.Length + 4;
        var req = new byte[4 + bodyLen];
        BinaryPrimitives.WriteInt32BigEndian(req, bodyLen);
        BinaryPrimitives.WriteInt16BigEndian(req.AsSpan(4), 3);
        BinaryPrimitives.WriteInt16BigEndian(req.AsSpan(6), 1);
        BinaryPrimitives.WriteInt32BigEndian(req.AsSpan(8), 4242);
        BinaryPrimitives.WriteInt16BigEndian(req.AsSpan(12), (short)clientId.Length);
        clientId.CopyTo(req, 14);
        BinaryPrimitives.WriteInt32BigEndian(req.AsSpan(14 + clientId.Length), -1);
        socket.Send(req);

        var sizeBuf = new byte[4];
        ReadExactly(socket, sizeBuf);
        int size = BinaryPrimitives.ReadInt32BigEndian(sizeBuf);
        if (size < 8 || size > 16 << 20) throw new InvalidDataException($"bad Metadata response size {size}");
        var resp = new byte[size];
        ReadExactly(socket, resp);
        var r = resp.AsSpan();
        if (BinaryPrimitives.ReadInt32BigEndian(r) != 4242) throw new InvalidDataException("correlation id mismatch");
        int brokers = BinaryPrimitives.ReadInt32BigEndian(r[4..]);
        if (brokers < 1) throw new InvalidDataException("Metadata response lists no brokers");
        // brokers[0]: node_id int32, host string, port int32, rack nullable string
        int hostLen = BinaryPrimitives.ReadInt16BigEndian(r[12..]);
        string advertisedHost = Encoding.UTF8.GetString(r.Slice(14, hostLen));
        int advertisedPort = BinaryPrimitives.ReadInt32BigEndian(r[(14 + hostLen)..]);
        return (advertisedHost, advertisedPort);
    }

    /// <summary>Blocking receive of exactly buffer.Length bytes (the probes' raw sockets).</summary>
    internal static void ReadExactly(Socket socket, byte[] buffer)
    {
        int read = 0;
        while (read < buffer.Length)
        {
            int n = socket.Receive(buffer, read, buffer.Length - read, SocketFlags.None);
            if (n == 0) throw new IOException("connection closed");
            read += n;
        }
    }
}
