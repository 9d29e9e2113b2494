using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Threading.Channels;
using Kayak.Broker.Handlers;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using Microsoft.Extensions.Logging;

namespace Kayak.Broker.Network;

/// <summary>
/// One client connection over an <see cref="IConnectionTransport"/> (a TCP socket; a stream: TLS, in-memory). The
/// read loop frames requests (4-byte size prefix), decodes the header and body, and starts the handler; a write loop
/// sends the responses strictly in request order, as Kafka's clients require for pipelined requests, handing
/// responses that own log segments to the transport to send without a copy where it can. At most <see cref="MaxInFlight"/> requests
/// are outstanding per connection, so a client that never reads its responses cannot grow memory.
/// </summary>
internal sealed class Connection
{
    private const int MaxInFlight = 64;

    /// <summary>Benchmark knob, read once: <c>KAYAK_ZERO_BYTE_READS=0</c> disables zero-byte reads (see RunAsync).</summary>
    private static readonly bool ZeroByteReads = Environment.GetEnvironmentVariable("KAYAK_ZERO_BYTE_READS") is not ("0" or "false");

    private readonly IConnectionTransport _transport;
    private readonly BrokerState _broker;
    private readonly ILogger _log;
    private readonly RequestMemory _memory;
    private readonly CancellationTokenSource _closed = new();
    private readonly Channel<PendingResponse> _responses =
        Channel.CreateBounded<PendingResponse>(new BoundedChannelOptions(MaxInFlight) { SingleReader = true, SingleWriter = true });

    private readonly string? _listenerName;
    private readonly string _principal;
    private readonly Sasl.SaslAuthenticator? _sasl;
    private bool _stopReading;
    /// <summary>KIP-219: until this time (broker clock, Unix ms) the connection is not read; 0 when not throttled.</summary>
    private long _mutedUntilMs;
    private string? _quotaPrincipal;
    private string _quotaUser = "";

    /// <param name="listenerName">The listener the client connected to (null for in-memory connections).</param>
    /// <param name="principal">Kafka's principal string from authentication; User:ANONYMOUS without it.</param>
    /// <param name="sasl">On SASL_PLAINTEXT and SASL_SSL listeners: the connection's SASL authenticator.</param>
    public Connection(IConnectionTransport transport, BrokerState broker, ILogger log, string? listenerName = null, string principal = "User:ANONYMOUS",
        Sasl.SaslAuthenticator? sasl = null)
    {
        _transport = transport;
        _broker = broker;
        _log = log;
        _memory = broker.RequestMemory;
        _listenerName = listenerName;
        _principal = principal;
        _sasl = sasl;
    }

    /// <summary>Kafka's KafkaPrincipal of the client (ACLs will use it): on SASL listeners the SASL principal.</summary>
    public string Principal => _sasl is null ? _principal : _sasl.Principal;

    public void Close() => _closed.Cancel();

    public async Task RunAsync()
    {
        var stream = _transport.Stream;
        // Zero-byte reads (issue 15): wait for data before taking a buffer, so an idle connection holds no 64 KB read
        // buffer. Without them 2,000 idle connections kept 2,000 pooled arrays live (~130 MB of gen-2 heap in the
        // full-size fault campaign) and, once they closed, left that as gen-2 garbage no collection came for. Sockets
        // and SslStream support them; the in-memory test pipe reads as before. KAYAK_ZERO_BYTE_READS=0 turns them off
        // for the benchmark that measures what they cost (PerfTest --zero-byte-reads); nothing else should set it.
        bool zeroByteReads = ZeroByteReads && stream is (NetworkStream or System.Net.Security.SslStream);
        var reader = PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: 64 * 1024, minimumReadSize: 16 * 1024, useZeroByteReads: zeroByteReads));
        var writer = PipeWriter.Create(stream, new StreamPipeWriterOptions(minimumBufferSize: 64 * 1024));
        var writeLoop = WriteLoopAsync(writer);
        // A SASL client that connects and never authenticates is closed after connections.max.idle.ms (Kafka's Selector
        // closes it as idle), on the broker's TimeProvider.
        using var authenticationDeadline = _sasl is null ? null : _broker.Time.CreateTimer(static s => ((Connection)s!).AuthenticationDeadlinePassed(),
            this, TimeSpan.FromMilliseconds(Math.Min(_broker.Config.ConnectionsMaxIdleMs, int.MaxValue - 1)), Timeout.InfiniteTimeSpan);
        try
        {
            await ReadLoopAsync(reader).ConfigureAwait(false);
        }
        catch (HandlerFailedException e)
        {
            // Must come before the IOException case: a storage IOException escaping a handler is the broker's
            // failure, not the client going away, and was lost that way (issue 15, K4).
            _log.LogError(e.InnerException, "Error processing {Api} request from {Client}; closing the connection", e.ApiKey, SafeRemote());
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // Client went away or the broker is shutting down.
        }
        catch (ProtocolException e)
        {
            _log.LogInformation("Closing connection from {Client}: {Error}", SafeRemote(), e.Message);
        }
        catch (Exception e)
        {
            _log.LogError(e, "Unexpected error on connection from {Client}; closing it", SafeRemote());
        }
        finally
        {
            _responses.Writer.TryComplete();
        }
        try { await writeLoop.ConfigureAwait(false); } catch { /* already closing */ }
        _closed.Cancel();
        await reader.CompleteAsync().ConfigureAwait(false);
        await writer.CompleteAsync().ConfigureAwait(false);
        await _transport.DisposeAsync().ConfigureAwait(false);
        _memory.ConnectionClosed();
        // _closed is not disposed: Close() may race with the end of RunAsync, and a CancellationTokenSource
        // without timers holds nothing that needs disposing.
    }

    private void AuthenticationDeadlinePassed()
    {
        if (_sasl is null || _sasl.HasAuthenticated || _closed.IsCancellationRequested) return;
        _log.LogInformation("Failed authentication with {Client} on listener {Listener} (not authenticated within connections.max.idle.ms {IdleMs} ms); closing the connection",
            SafeRemote(), _listenerName, _broker.Config.ConnectionsMaxIdleMs);
        Close();
    }

    private string SafeRemote()
    {
        try { return _transport.RemoteEndPoint?.ToString() ?? "?"; } catch { return "?"; }
    }

    private async Task ReadLoopAsync(PipeReader reader)
    {
        int requestMax = _broker.Config.SocketRequestMaxBytes;
        var token = _closed.Token;
        while (true)
        {
            if (_stopReading) return;
            ReadResult result = await reader.ReadAsync(token).ConfigureAwait(false);
            ReadOnlySequence<byte> buffer = result.Buffer;
            int directSize = -1;
            while (!_stopReading)
            {
                if (buffer.Length < 4) break;
                int size = ReadFrameSize(buffer);
                // Kafka closes the connection on an oversized or negative size without reading the body. Until SASL
                // authentication completes the cap is sasl.server.max.receive.size (SaslServerAuthenticator).
                if (_sasl is { Authenticated: false } && (size < 0 || size > _sasl.MaxReceiveSize))
                    throw new ProtocolException($"Failed authentication: Failing SASL authentication due to invalid receive size {size} (sasl.server.max.receive.size {_sasl.MaxReceiveSize})");
                int maxFrame = requestMax;
                if (size < 0 || size > maxFrame)
                    throw new ProtocolException($"Request size {size} is outside 0..socket.request.max.bytes ({maxFrame})");
                if (buffer.Length < 4L + size)
                {
                    if (size >= DirectReadMinimum && !result.IsCompleted && !result.IsCanceled) directSize = size;
                    break;
                }
                // queued.max.request.bytes reached: stop reading this connection until frames are given back.
                if (!_memory.HasRoom) await _memory.WaitForRoomAsync(token).ConfigureAwait(false);
                if (Muted()) await WaitUnmutedAsync(token).ConfigureAwait(false);
                byte[] frame = _memory.Rent(size);
                buffer.Slice(4, size).CopyTo(frame);
                buffer = buffer.Slice(4 + size);
                await DispatchAsync(frame, size).ConfigureAwait(false);
            }
            if (directSize < 0)
            {
                reader.AdvanceTo(buffer.Start, buffer.End);
                if (result.IsCompleted || result.IsCanceled) return;
                continue;
            }
            // A large request (a produce batch) still incomplete: take what the pipe holds and receive the rest
            // straight into the frame, in as few large reads as the socket allows, instead of 16-64 KB pipe
            // segments that are then copied into the frame again.
            // The frame buffer grows with the bytes that actually arrive (doubling past DirectReadInitial), so a
            // client that announces socket.request.max.bytes and then trickles or leaves costs what it sent, not
            // 100 MB each; typical produce requests (up to a few MB) still land in one buffer without a copy.
            var have = buffer.Slice(4);
            int got = (int)have.Length;
            if (!_memory.HasRoom) await _memory.WaitForRoomAsync(token).ConfigureAwait(false);
            byte[] big = _memory.Rent(Math.Min(directSize, Math.Max(DirectReadInitial, got)));
            bool dispatched = false;
            try
            {
                have.CopyTo(big);
                reader.AdvanceTo(buffer.End);
                while (got < directSize)
                {
                    if (got == big.Length)
                    {
                        byte[] grown = _memory.Rent((int)Math.Min(directSize, 2L * big.Length));
                        big.AsSpan(0, got).CopyTo(grown);
                        _memory.Return(big);
                        big = grown;
                    }
                    int n = await _transport.ReceiveAsync(big.AsMemory(got, Math.Min(directSize, big.Length) - got), token).ConfigureAwait(false);
                    if (n == 0) return; // client closed mid-request
                    got += n;
                }
                dispatched = true;
                if (Muted()) await WaitUnmutedAsync(token).ConfigureAwait(false);
                await DispatchAsync(big, directSize).ConfigureAwait(false);
            }
            finally
            {
                if (!dispatched) _memory.Return(big);
            }
        }
    }

    private long NowMs => _broker.Time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>Throttled (KIP-219): Kafka's SocketServer mutes the channel, so the next request is not read until the throttle ends.</summary>
    private bool Muted()
    {
        long until = Volatile.Read(ref _mutedUntilMs);
        if (until == 0) return false;
        if (until > NowMs) return true;
        // Ended: back to the clock-free check, unless the write loop muted again meanwhile.
        Interlocked.CompareExchange(ref _mutedUntilMs, 0, until);
        return false;
    }

    private async ValueTask WaitUnmutedAsync(CancellationToken token)
    {
        long wait;
        while ((wait = Volatile.Read(ref _mutedUntilMs) - NowMs) > 0)
            await Task.Delay(TimeSpan.FromMilliseconds(wait), _broker.Time, token).ConfigureAwait(false);
    }

    private void MuteFor(int throttleMs)
    {
        long until = NowMs + throttleMs;
        if (until > Volatile.Read(ref _mutedUntilMs)) Volatile.Write(ref _mutedUntilMs, until);
    }

    /// <summary>Kafka's quota user for the connection's principal, cached: SASL re-authentication may change it.</summary>
    private string QuotaUser(string principal)
    {
        if (!ReferenceEquals(principal, _quotaPrincipal))
        {
            _quotaUser = Quotas.ClientQuotas.UserOf(principal);
            _quotaPrincipal = principal;
        }
        return _quotaUser;
    }

    /// <summary>Requests at least this large that are not fully buffered yet are received directly into their frame.</summary>
    private const int DirectReadMinimum = 128 * 1024;

    /// <summary>First buffer for a directly received request; larger frames grow it as their bytes arrive.</summary>
    private const int DirectReadInitial = 4 * 1024 * 1024;

    private static int ReadFrameSize(ReadOnlySequence<byte> buffer)
    {
        Span<byte> tmp = stackalloc byte[4];
        buffer.Slice(0, 4).CopyTo(tmp);
        return BinaryPrimitives.ReadInt32BigEndian(tmp);
    }

    private ValueTask DispatchAsync(byte[] frame, int size)
    {
        if (_sasl is { } sasl && size >= 2)
        {
            var key = (ApiKey)BinaryPrimitives.ReadInt16BigEndian(frame);
            if (sasl.Authenticated)
            {
                // KIP-368: a session past connections.max.reauth.ms is closed at its next request, as Kafka's
                // SocketServer does ("Disconnecting expired channel"), unless that request re-authenticates.
                if (key == ApiKey.SaslHandshake && sasl.TryBeginReauthentication()) return AuthenticateAsync(sasl, frame, size);
                if (sasl.SessionExpired)
                {
                    _memory.Return(frame);
                    throw new ProtocolException("SASL session expired (connections.max.reauth.ms) and the client did not re-authenticate");
                }
            }
            else if (!sasl.PassThrough(frame.AsSpan(0, size)))
            {
                return AuthenticateAsync(sasl, frame, size);
            }
        }
        var pending = Decode(frame, size);
        return _responses.Writer.WriteAsync(pending, _closed.Token);
    }

    /// <summary>
    /// A frame of the SASL exchange (Kafka's SaslServerAuthenticator runs before KafkaApis): its reply is queued in
    /// order; a failure is logged with the client address (never a password) and the connection closes once the reply
    /// (SASL_AUTHENTICATION_FAILED, UNSUPPORTED_SASL_MECHANISM) is sent.
    /// </summary>
    private ValueTask AuthenticateAsync(Sasl.SaslAuthenticator sasl, byte[] frame, int size)
    {
        Sasl.SaslReply reply;
        try { reply = sasl.Process(frame.AsMemory(0, size)); }
        finally { _memory.Return(frame); }
        if (reply.Failure is not null)
        {
            _stopReading = true;
            _log.LogInformation("Failed authentication with {Client} on listener {Listener} ({Error})", SafeRemote(), _listenerName, reply.Failure);
        }
        else if (reply.Reauthenticated && _log.IsEnabled(LogLevel.Debug))
        {
            _log.LogDebug("Re-authenticated {Principal} from {Client} on listener {Listener} (KIP-368)", sasl.Principal, SafeRemote(), _listenerName);
        }
        if (reply.Message is null && reply.Raw is null) return ValueTask.CompletedTask;
        var result = new ValueTask<HandlerResult>(new HandlerResult(reply.Message));
        return _responses.Writer.WriteAsync(new PendingResponse(reply.CorrelationId, reply.ApiKey, reply.Version, result, null, Raw: reply.Raw), _closed.Token);
    }

    /// <summary>Decodes header and body and starts the handler. Malformed frames close the connection, as in Kafka.</summary>
    private PendingResponse Decode(byte[] frame, int size)
    {
        var memory = new ReadOnlyMemory<byte>(frame, 0, size);
        var reader = new KafkaReader(memory);
        if (size < 8) ThrowHelper.Truncated(8, size);
        var apiKey = (ApiKey)BinaryPrimitives.ReadInt16BigEndian(frame);
        short version = BinaryPrimitives.ReadInt16BigEndian(frame.AsSpan(2));
        var info = ApiVersionTable.Find(apiKey);
        if (info is null)
            throw new ProtocolException($"Unknown or unsupported API key {(short)apiKey}");

        var header = new RequestHeader();
        bool versionSupported = version >= info.MinVersion && version <= info.MaxVersion;
        if (!versionSupported)
        {
            // KIP-511: an ApiVersions request newer than ours is answered at v0 with UNSUPPORTED_VERSION and
            // our ranges, so the client can retry with a version we know. Anything else is a broken client.
            if (apiKey != ApiKey.ApiVersions)
                throw new ProtocolException($"Unsupported version {version} of {apiKey} (supported {info.MinVersion}..{info.MaxVersion})");
            header.Read(ref reader, 1);
            _memory.Return(frame);
            var response = Handlers.ApiVersionsHandler.UnsupportedVersionResponse();
            return new PendingResponse(header.CorrelationId, apiKey, 0, new ValueTask<HandlerResult>(new HandlerResult(response)), null);
        }

        header.Read(ref reader, ApiMessageTypes.RequestHeaderVersion(apiKey, version));
        var request = ApiMessageTypes.CreateRequest(apiKey);
        request.Read(ref reader, version);

        var context = new RequestContext
        {
            ApiKey = apiKey,
            ApiVersion = version,
            CorrelationId = header.CorrelationId,
            ClientId = header.ClientId,
            ClientAddress = _transport.RemoteEndPoint,
            ListenerName = _listenerName,
            Principal = Principal,
            ConnectionClosed = _closed.Token,
        };
        var fault = _broker.Faults is { } faults
            ? faults.Evaluate(new FaultRequest(apiKey, version, header.CorrelationId, header.ClientId), request)
            : RequestFault.None;
        if (fault.Kind == FaultKind.DropConnection)
        {
            _memory.Return(frame);
            throw new IOException("Connection dropped by fault injection before the request was handled");
        }
        ValueTask<HandlerResult> task;
        long started = _broker.Time.GetTimestamp();
        try
        {
            task = fault.Kind switch
            {
                FaultKind.Delay => HandleLaterAsync(_broker.Handlers.Get(apiKey), context, request, fault.DelayBy),
                FaultKind.Hold => HandleAfterAsync(_broker.Handlers.Get(apiKey), context, request, fault.Until!),
                FaultKind.Answer => new ValueTask<HandlerResult>(new HandlerResult(fault.Response)),
                FaultKind.Rewrite => RewriteAsync(_broker.Handlers.Get(apiKey).HandleAsync(context, request), fault.Error),
                _ => _broker.Handlers.Get(apiKey).HandleAsync(context, request),
            };
        }
        catch (Exception e)
        {
            _memory.Return(frame);
            if (e is ProtocolException) throw;
            throw new HandlerFailedException(apiKey, e);
        }
        // request_percentage counts the time the request held the read loop (Kafka: request handler thread time).
        long handlerTicks = _broker.Time.GetTimestamp() - started;
        if (!task.IsCompleted) task = Guard(task, apiKey);
        // Most handlers finish synchronously; their request frame (up to socket.request.max.bytes) goes back to
        // the pool now rather than when the response's turn to be written comes, so a client that pipelines
        // large produce requests without reading responses holds responses, not frames. Responses never
        // reference request memory (only Produce's records do, and only while the handler runs).
        if (task.IsCompleted)
        {
            _memory.Return(frame);
            return new PendingResponse(header.CorrelationId, apiKey, version, task, null, fault.Kind == FaultKind.LoseResponse,
                Context: context, RequestSize: size, HandlerTicks: handlerTicks);
        }
        return new PendingResponse(header.CorrelationId, apiKey, version, task, frame, fault.Kind == FaultKind.LoseResponse,
            Context: context, RequestSize: size, HandlerTicks: handlerTicks);
    }

    /// <summary>A delayed request (fault injection): waits on the broker's clock, then runs the handler.</summary>
    private async ValueTask<HandlerResult> HandleLaterAsync(Handlers.IApiHandler handler, Handlers.RequestContext context, IApiMessage request, TimeSpan delay)
    {
        await Task.Delay(delay, _broker.Time, _closed.Token).ConfigureAwait(false);
        return await handler.HandleAsync(context, request).ConfigureAwait(false);
    }

    /// <summary>An injected error put into the handler's own response (Metadata, fault injection).</summary>
    private static async ValueTask<HandlerResult> RewriteAsync(ValueTask<HandlerResult> handled, ErrorInjection error)
    {
        var result = await handled.ConfigureAwait(false);
        return result with { Message = ErrorResponses.Rewrite(result.Message, error) };
    }

    /// <summary>A request that arrived while the broker is paused (fault injection): handled once it is resumed.</summary>
    private async ValueTask<HandlerResult> HandleAfterAsync(Handlers.IApiHandler handler, Handlers.RequestContext context, IApiMessage request, Task until)
    {
        await until.WaitAsync(_closed.Token).ConfigureAwait(false);
        return await handler.HandleAsync(context, request).ConfigureAwait(false);
    }

    /// <summary>Marks an asynchronous handler's failure as the broker's, whatever its type (see HandlerFailedException).</summary>
    private static async ValueTask<HandlerResult> Guard(ValueTask<HandlerResult> task, ApiKey apiKey)
    {
        try { return await task.ConfigureAwait(false); }
        catch (Exception e) when (e is not (ProtocolException or OperationCanceledException)) { throw new HandlerFailedException(apiKey, e); }
    }

    private async Task WriteLoopAsync(PipeWriter writer)
    {
        var reader = _responses.Reader;
        try
        {
            while (await reader.WaitToReadAsync().ConfigureAwait(false))
            {
                while (reader.TryRead(out var pending))
                {
                    if (pending.Raw is { } raw)
                    {
                        // The v0 SASL exchange: a size-prefixed token, no response header.
                        var span = writer.GetSpan(4 + raw.Length);
                        BinaryPrimitives.WriteInt32BigEndian(span, raw.Length);
                        raw.CopyTo(span[4..]);
                        writer.Advance(4 + raw.Length);
                        var flushedRaw = await writer.FlushAsync().ConfigureAwait(false);
                        if (flushedRaw.IsCompleted) return;
                        continue;
                    }
                    HandlerResult result;
                    try
                    {
                        result = await pending.Task.ConfigureAwait(false);
                    }
                    finally
                    {
                        if (pending.Frame is not null) _memory.Return(pending.Frame);
                    }
                    var response = result.Message;
                    var segments = result.Segments;
                    if (pending.Context is { } context && _broker.Quotas.Enabled)
                    {
                        int throttle = ApplyQuotas(context, pending, ref response, ref segments);
                        // KIP-219: a client that throttles itself gets its answer now and the connection is muted; an
                        // older one gets the answer only after the throttle time (and nothing else is read meanwhile).
                        bool late = throttle > 0 && response is not null && !Quotas.ClientQuotas.ClientThrottles(pending.ApiKey, pending.Version);
                        if (throttle > 0) _broker.Quotas.CountThrottled(late);
                        if (late) await Task.Delay(TimeSpan.FromMilliseconds(throttle), _broker.Time, _closed.Token).ConfigureAwait(false);
                    }
                    if (response is null) { segments?.Dispose(); continue; }
                    // Fault injection (RequestFault.LoseResponse): the request took effect but its response is lost
                    // with the connection, as when a network cut hits mid-request.
                    if (pending.LoseResponse)
                    {
                        segments?.Dispose();
                        throw new IOException("Connection dropped by fault injection");
                    }
                    if (segments is { WorthSplicing: true })
                    {
                        // Large records go to the socket straight from the log mapping: flush what the pipe holds
                        // (earlier responses) first so responses stay in request order, and release the response's
                        // segments only after the send completed.
                        var spliced = new SplicedResponse(segments);
                        try
                        {
                            WriteResponse(spliced, pending, response);
                            var flushed = await writer.FlushAsync().ConfigureAwait(false);
                            if (flushed.IsCompleted) return;
                            await _transport.SendAsync(spliced, _closed.Token).ConfigureAwait(false);
                        }
                        finally
                        {
                            spliced.Dispose();
                            segments.Dispose();
                        }
                        continue;
                    }
                    try
                    {
                        WriteResponse(writer, pending, response);
                    }
                    finally
                    {
                        segments?.Dispose(); // copied into the pipe: the mapping is no longer needed
                    }
                    // Flush when the pipeline is drained; pipelined responses share one write.
                    if (!reader.TryPeek(out _) || writer.UnflushedBytes > 256 * 1024)
                    {
                        var flush = await writer.FlushAsync().ConfigureAwait(false);
                        if (flush.IsCompleted) return;
                    }
                }
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            if (e is HandlerFailedException h)
                _log.LogError(h.InnerException, "Error processing {Api} request from {Client}; closing the connection", h.ApiKey, SafeRemote());
            else if (e is not (IOException or SocketException or OperationCanceledException or ObjectDisposedException))
                _log.LogError(e, "Error writing response to {Client}; closing connection", SafeRemote());
            _closed.Cancel();
            _transport.Abort();
            // Drain remaining pending responses so their frames return to the pool.
            while (reader.TryRead(out var rest))
            {
                try { (await rest.Task.ConfigureAwait(false)).Segments?.Dispose(); } catch { /* connection is closing */ }
                if (rest.Frame is not null) _memory.Return(rest.Frame);
            }
        }
    }

    /// <summary>Records the request against the client's quotas; a throttle sets throttle_time_ms and mutes the connection.</summary>
    private int ApplyQuotas(Handlers.RequestContext context, in PendingResponse pending, ref IApiMessage? response, ref ResponseSegments? segments)
    {
        double nanos = pending.HandlerTicks * (1_000_000_000.0 / _broker.Time.TimestampFrequency);
        int throttle = _broker.Quotas.ThrottleTimeMs(context, QuotaUser(context.Principal), pending.RequestSize, ref response, nanos, out bool dropSegments);
        if (dropSegments)
        {
            segments?.Dispose();
            segments = null;
        }
        if (throttle <= 0) return 0;
        if (response is IThrottledResponse throttled && throttled.ThrottleTimeMs < throttle) throttled.ThrottleTimeMs = throttle;
        MuteFor(throttle);
        return throttle;
    }

    private static void WriteResponse(IBufferWriter<byte> output, in PendingResponse pending, IApiMessage response)
    {
        short headerVersion = ApiMessageTypes.ResponseHeaderVersion(pending.ApiKey, pending.Version);
        var header = new ResponseHeader { CorrelationId = pending.CorrelationId };
        int size = header.Size(headerVersion) + response.Size(pending.Version);
        var writer = new KafkaWriter(output);
        writer.WriteInt32(size);
        header.Write(ref writer, headerVersion);
        response.Write(ref writer, pending.Version);
        writer.Flush();
    }

    private readonly record struct PendingResponse(int CorrelationId, ApiKey ApiKey, short Version, ValueTask<HandlerResult> Task, byte[]? Frame,
        bool LoseResponse = false, byte[]? Raw = null, Handlers.RequestContext? Context = null, int RequestSize = 0, long HandlerTicks = 0);
}

/// <summary>
/// A handler threw something other than a protocol error: logged at ERROR with the API, and the connection closed
/// (Kafka would answer the request's error response; Kayak's handlers answer the errors they know themselves).
/// </summary>
internal sealed class HandlerFailedException(ApiKey apiKey, Exception inner) : Exception($"{apiKey} handler failed: {inner.Message}", inner)
{
    public ApiKey ApiKey { get; } = apiKey;
}
