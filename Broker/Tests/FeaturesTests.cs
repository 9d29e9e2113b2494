using Kayak.Protocol.Messages;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>
/// ApiVersions v3+ feature lists (KIP-584, KIP-1022) as Kafka 4.0 builds them, with Kayak's levels: what Java's
/// Admin.describeFeatures (and so kafka-features.sh describe) reads.
/// </summary>
[TestFixture]
public sealed class FeaturesTests
{
    [TestCase((short)3)]
    [TestCase((short)4)]
    public async Task MetadataVersionIsSupportedAndFinalized(short version)
    {
        await using var fx = await BrokerFixture.StartAsync();
        var r = await fx.Client.SendAsync<ApiVersionsResponse>(new ApiVersionsRequest { ClientSoftwareName = "t", ClientSoftwareVersion = "1" }, version);

        var supported = r.SupportedFeatures.Single(f => f.Name == "metadata.version");
        Assert.That(supported.MinVersion, Is.EqualTo(7), "3.3-IV3, Kafka 4.0's lowest metadata.version");
        Assert.That(supported.MaxVersion, Is.EqualTo(21), "3.9-IV0: Fetch v17 and ListOffsets v9");
        var finalized = r.FinalizedFeatures.Single(f => f.Name == "metadata.version");
        Assert.That(finalized.MinVersionLevel, Is.EqualTo(21));
        Assert.That(finalized.MaxVersionLevel, Is.EqualTo(21));
        Assert.That(r.FinalizedFeaturesEpoch, Is.GreaterThanOrEqualTo(0), "Java clients ignore finalized features at epoch -1");

        var expected = new List<string>();
        // Below v4 Kafka leaves out supported ranges starting at 0 (KAFKA-17492): group.version's 0-1 only from v4.
        if (version >= 4) expected.Add("Feature: group.version\tSupportedMinVersion: 0\tSupportedMaxVersion: 1\tFinalizedVersionLevel: 1\tEpoch: 1");
        expected.Add("Feature: metadata.version\tSupportedMinVersion: 3.3-IV3\tSupportedMaxVersion: 3.9-IV0\tFinalizedVersionLevel: 3.9-IV0\tEpoch: 1");
        Assert.That(Describe(r), Is.EqualTo(expected));
    }

    /// <summary>
    /// transaction.version stays at level 0: Kafka lists neither a supported range whose maximum is 0 nor a finalized
    /// level 0, so producers keep the KIP-890 part 1 transactions. group.version is finalized at 1 (KIP-848).
    /// </summary>
    [TestCase((short)3)]
    [TestCase((short)4)]
    public async Task UnimplementedFeaturesAreAtLevelZeroAndNotListed(short version)
    {
        await using var fx = await BrokerFixture.StartAsync();
        var r = await fx.Client.SendAsync<ApiVersionsResponse>(new ApiVersionsRequest { ClientSoftwareName = "t", ClientSoftwareVersion = "1" }, version);
        var names = r.SupportedFeatures.Select(f => f.Name).Concat(r.FinalizedFeatures.Select(f => f.Name)).ToList();
        Assert.That(names, Has.None.AnyOf("transaction.version", "kraft.version", "eligible.leader.replicas.version"));
        Assert.That(r.SupportedFeatures.Select(f => f.Name),
            Is.EquivalentTo(version >= 4 ? new[] { "group.version", "metadata.version" } : new[] { "metadata.version" }));
        Assert.That(r.FinalizedFeatures.Select(f => f.Name), Is.EquivalentTo(new[] { "group.version", "metadata.version" }));
    }

    [TestCase((short)0)]
    [TestCase((short)2)]
    public async Task NoFeaturesBeforeV3(short version)
    {
        await using var fx = await BrokerFixture.StartAsync();
        var r = await fx.Client.SendAsync<ApiVersionsResponse>(new ApiVersionsRequest(), version);
        Assert.That(r.SupportedFeatures, Is.Empty);
        Assert.That(r.FinalizedFeatures, Is.Empty);
        Assert.That(r.FinalizedFeaturesEpoch, Is.EqualTo(-1), "not on the wire: the schema default");
    }

    /// <summary>Kafka's FeatureCommand describe lines: every supported feature, its finalized level (0 when absent).</summary>
    private static IEnumerable<string> Describe(ApiVersionsResponse r) =>
        r.SupportedFeatures.OrderBy(f => f.Name, StringComparer.Ordinal).Select(f =>
        {
            short level = r.FinalizedFeatures.SingleOrDefault(x => x.Name == f.Name)?.MaxVersionLevel ?? 0;
            return $"Feature: {f.Name}\tSupportedMinVersion: {Level(f.Name, f.MinVersion)}\tSupportedMaxVersion: {Level(f.Name, f.MaxVersion)}" +
                $"\tFinalizedVersionLevel: {Level(f.Name, level)}\tEpoch: {r.FinalizedFeaturesEpoch}";
        });

    private static string Level(string feature, short level) => feature != "metadata.version" ? level.ToString() : level switch
    {
        7 => "3.3-IV3",
        21 => "3.9-IV0",
        _ => $"level {level}",
    };
}
