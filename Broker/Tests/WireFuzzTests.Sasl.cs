using System.Buffers.Binary;
using System.Text;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

public partial class WireFuzzTests
{
    // ---------------------------------------------------------------------------------------------------------
    // SASL entry points (issue 12, part 7): mutated SaslHandshake, SaslAuthenticate, ApiVersions and raw v0 tokens at
    // each stage of the exchange on a SASL_PLAINTEXT listener. Each connection must be answered or closed within the
    // timeout, nothing logged as an error, no exchange allocating without bound; a valid login works afterwards.

    public enum SaslStage { BeforeHandshake, AfterPlainHandshake, AfterScramClientFirst, AfterV0Handshake }

    [TestCase(SaslStage.BeforeHandshake)]
    [TestCase(SaslStage.AfterPlainHandshake)]
    [TestCase(SaslStage.AfterScramClientFirst)]
    [TestCase(SaslStage.AfterV0Handshake)]
    [CancelAfter(120_000)]
    public async Task MutatedSaslFramesAreAnsweredOrClose(SaslStage stage)
    {
        var logs = new CapturingLoggerFactory();
        await using var sasl = await BrokerFixture.StartAsync(o =>
        {
            o.Port = null;
            o.LoggerFactory = logs;
            o.Properties["listeners"] = "SASL_PLAINTEXT://127.0.0.1:0";
            o.Properties["sasl.enabled.mechanisms"] = "PLAIN,SCRAM-SHA-256";
            o.Properties["listener.name.sasl_plaintext.plain.sasl.jaas.config"] =
                "org.apache.kafka.common.security.plain.PlainLoginModule required user_alice=\"alice-secret\";";
            o.Properties["sasl.jaas.config"] = "org.apache.kafka.common.security.scram.ScramLoginModule required;";
            o.ScramCredentials.Add("SCRAM-SHA-256=[name=alice,password=alice-secret]");
        });
        var rng = new Random(Seed + 104_729 * ((int)stage + 1));
        var failures = new List<string>();
        long maxCost = 0;
        var bases = new List<(string Name, byte[] Body)>
        {
            ("handshake", EncodeHeaderAndBody(new SaslHandshakeRequest { Mechanism = "PLAIN" }, 1, 7)),
            ("authenticate", EncodeHeaderAndBody(new SaslAuthenticateRequest { AuthBytes = "\0alice\0alice-secret"u8.ToArray() }, 2, 7)),
            ("scram-first", EncodeHeaderAndBody(new SaslAuthenticateRequest { AuthBytes = "n,,n=alice,r=abcdefgh"u8.ToArray() }, 1, 7)),
            ("api-versions", EncodeHeaderAndBody(new ApiVersionsRequest { ClientSoftwareName = "fuzz", ClientSoftwareVersion = "1" }, 3, 7)),
            ("raw-token", "\0alice\0alice-secret"u8.ToArray()),
        };
        for (int i = 0; i < MutationsPerBase * 2; i++)
        {
            var (name, original) = bases[i % bases.Count];
            var body = original.ToArray();
            string description = Mutate(rng, ref body);
            using var c = await RawClient.ConnectAsync(sasl.Broker.BootstrapServers);
            await BringToAsync(c, stage);
            var frame = new byte[4 + body.Length];
            BinaryPrimitives.WriteInt32BigEndian(frame, body.Length);
            body.CopyTo(frame, 4);
            long before = GC.GetTotalAllocatedBytes(precise: false);
            await c.WriteRawAsync(frame);
            string? failure = await AnsweredOrClosedAsync(c);
            maxCost = Math.Max(maxCost, GC.GetTotalAllocatedBytes(precise: false) - before);
            if (failure is not null && failures.Count < 8) failures.Add($"{stage} {name} #{i} [{description}]: {failure}\n    bytes {Hex(body)}");
        }
        Assert.That(failures, Is.Empty, string.Join("\n", failures));
        Assert.That(logs.ErrorsSince(0), Is.Empty, "broker logged errors:\n" + string.Join("\n", logs.ErrorsSince(0).Take(5)));
        Assert.That(maxCost, Is.LessThan(16L * 1024 * 1024), "bytes allocated by one exchange");
        using var next = await RawClient.ConnectAsync(sasl.Broker.BootstrapServers);
        await next.SendAsync<SaslHandshakeResponse>(new SaslHandshakeRequest { Mechanism = "PLAIN" }, 1);
        var ok = await next.SendAsync<SaslAuthenticateResponse>(new SaslAuthenticateRequest { AuthBytes = "\0alice\0alice-secret"u8.ToArray() }, 2);
        Assert.That(ok.ErrorCode, Is.EqualTo((short)ErrorCode.None));
        logs.Dispose();
    }

    private static async Task BringToAsync(RawClient c, SaslStage stage)
    {
        switch (stage)
        {
            case SaslStage.AfterPlainHandshake:
                await c.SendAsync<SaslHandshakeResponse>(new SaslHandshakeRequest { Mechanism = "PLAIN" }, 1);
                break;
            case SaslStage.AfterScramClientFirst:
                await c.SendAsync<SaslHandshakeResponse>(new SaslHandshakeRequest { Mechanism = "SCRAM-SHA-256" }, 1);
                await c.SendAsync<SaslAuthenticateResponse>(new SaslAuthenticateRequest { AuthBytes = "n,,n=alice,r=abcdefgh"u8.ToArray() }, 2);
                break;
            case SaslStage.AfterV0Handshake:
                await c.SendAsync<SaslHandshakeResponse>(new SaslHandshakeRequest { Mechanism = "PLAIN" }, 0);
                break;
        }
    }

    /// <summary>Null when the broker answered (any bytes) or closed within the timeout; what went wrong otherwise.</summary>
    private static async Task<string?> AnsweredOrClosedAsync(RawClient c)
    {
        using var cts = new CancellationTokenSource(ResponseTimeout);
        var buffer = new byte[4096];
        try
        {
            int n = await c.ReadSomeAsync(buffer, cts.Token);
            return null; // n > 0: answered; n == 0: closed
        }
        catch (OperationCanceledException) { return "neither answered nor closed"; }
        catch (IOException) { return null; }
    }
}
