using System.Net.Sockets;
using Kayak.Broker.Handlers;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>
/// Start and stop: what the faster first start (issue 6) changed must not change behaviour (the explicit handler
/// list, a fresh log dir without checkpoints, groups loaded lazily), and disposing a broker while clients come and
/// go must not throw (RESULTS.md "Broker bug seen while measuring").
/// </summary>
[CancelAfter(60_000)]
public class StartupTests
{
    [Test]
    public async Task ExplicitHandlerListMatchesEveryHandlerTypeOfTheAssembly()
    {
        // Handlers take their services in their constructors (issue 10, step 1), so the list comes from a started
        // broker's composition root; every concrete handler type must be in it.
        await using var fx = await BrokerFixture.StartAsync();
        var handlers = fx.State.CreateHandlers();
        var listed = handlers.Select(h => h.GetType()).ToHashSet();
        var found = typeof(IApiHandler).Assembly.GetTypes()
            .Where(t => !t.IsAbstract && !t.IsInterface && typeof(IApiHandler).IsAssignableFrom(t))
            .ToHashSet();
        Assert.That(listed, Is.EquivalentTo(found));
        Assert.That(handlers, Has.Length.EqualTo(found.Count), "a handler listed twice");

        var registry = new HandlerRegistry(handlers);
        foreach (var api in ApiVersionTable.Served)
            Assert.That(registry.Get(api.Key).Key, Is.EqualTo(api.Key));
    }

    [Test]
    public async Task FreshBrokerServesGroupsAndTopicsRightAway_AndRestartsFromItsOwnFiles()
    {
        var dir = Path.Combine(Path.GetTempPath(), "kayak-startup-tests-" + Guid.NewGuid().ToString("N"));
        try
        {
            await using (var broker = new KafkaBroker(new KafkaBrokerOptions { Port = 0, DataDir = dir }))
            {
                await broker.StartAsync();
                // Nothing internal is created by starting.
                Assert.That(Directory.GetDirectories(dir), Is.Empty);
                using var client = await RawClient.ConnectAsync(broker.BootstrapServers);
                var fetched = await client.SendAsync<OffsetFetchResponse>(new OffsetFetchRequest
                {
                    GroupId = "g",
                    Topics = [new OffsetFetchRequest.OffsetFetchRequestTopic { Name = "t", PartitionIndexes = [0] }],
                }, 5);
                Assert.That(fetched.ErrorCode, Is.EqualTo((short)ErrorCode.None));
                var created = await client.SendAsync<CreateTopicsResponse>(new CreateTopicsRequest
                {
                    Topics = [new CreateTopicsRequest.CreatableTopic { Name = "t", NumPartitions = 2, ReplicationFactor = 1 }],
                    TimeoutMs = 5000,
                }, 5);
                Assert.That(created.Topics[0].ErrorCode, Is.EqualTo((short)ErrorCode.None));
            }
            await using (var broker = new KafkaBroker(new KafkaBrokerOptions { Port = 0, DataDir = dir }))
            {
                await broker.StartAsync();
                Assert.That(broker.State.Logs.TryGetTopic("t", out var topic), Is.True);
                Assert.That(topic.Partitions, Has.Count.EqualTo(2));
            }
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }

    /// <summary>
    /// Clients connect, send a request or not, and close as fast as they can while the broker is disposed; and, as
    /// PerfTest did when it saw the bug, a client closes its connection right after its response and the broker is
    /// disposed at once. Before the fix, DisposeAsync could throw ObjectDisposedException from Connection.Close (a
    /// connection that had just ended, still or again in the listener's table, with its token source disposed).
    /// </summary>
    [Test]
    public async Task DisposeWhileClientsConnectAndCloseDoesNotThrow()
    {
        var request = ApiVersionsRequestFrame();
        for (int round = 0; round < 60; round++)
        {
            var dir = Path.Combine(Path.GetTempPath(), "kayak-startup-tests-" + Guid.NewGuid().ToString("N"));
            var broker = new KafkaBroker(new KafkaBrokerOptions { Port = 0, DataDir = dir });
            await broker.StartAsync();
            var endpoint = broker.Listeners[0];
            using var stop = new CancellationTokenSource();
            int cycles = 0;
            var churn = new Task[4];
            for (int c = 0; c < churn.Length; c++)
            {
                bool sendRequest = c % 2 == 0;
                churn[c] = Task.Run(async () =>
                {
                    while (!stop.IsCancellationRequested)
                    {
                        try
                        {
                            using var socket = await ConnectAsync(endpoint);
                            if (sendRequest) await socket.SendAsync(request);
                            Interlocked.Increment(ref cycles);
                        }
                        catch (SocketException)
                        {
                            // The broker stopped listening: keep trying until the round ends.
                        }
                    }
                });
            }
            try
            {
                while (Volatile.Read(ref cycles) < 50 && !churn.Any(t => t.IsCompleted)) await Task.Delay(1);
                // The last client reads its response and closes; the broker is disposed right away.
                using (var last = await ConnectAsync(endpoint))
                {
                    await last.SendAsync(request);
                    var response = new byte[4];
                    int got = 0;
                    while (got < 4)
                    {
                        int n = await last.ReceiveAsync(response.AsMemory(got));
                        Assert.That(n, Is.GreaterThan(0), "broker closed before answering");
                        got += n;
                    }
                }
                var disposing = broker.DisposeAsync().AsTask();
                Exception? error = null;
                try { await disposing; } catch (Exception e) { error = e; }
                Assert.That(error, Is.Null, $"round {round}: DisposeAsync threw {error}");
            }
            finally
            {
                stop.Cancel();
                await Task.WhenAll(churn);
                try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
            }
        }
    }

    private static async Task<Socket> ConnectAsync(Kayak.Broker.Config.ListenerEndpoint endpoint)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await socket.ConnectAsync(System.Net.IPAddress.Parse(endpoint.Host), endpoint.Port);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static byte[] ApiVersionsRequestFrame()
    {
        // Size, then header v1 (api key 18, version 0, correlation id 1, null client id); ApiVersions v0 has no body.
        return [0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 1, 0xff, 0xff];
    }
}
