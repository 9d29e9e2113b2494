using Kayak.Protocol;
using Kayak.Protocol.Messages;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>
/// DescribeConfigs of the BROKER resource reports node.id and broker.id with the id the node runs with: Kafka's
/// KafkaConfig.populateSynonyms copies whichever one server.properties sets into the other.
/// </summary>
[TestFixture]
public sealed class BrokerIdConfigTests
{
    private const sbyte Broker = 4, StaticBroker = 4, Default = 5;

    [TestCase("node.id", (short)1)]
    [TestCase("node.id", (short)4)]
    [TestCase("broker.id", (short)4)]
    public async Task BothKeysReportTheIdSetByEither(string key, short version)
    {
        await using var f = await BrokerFixture.StartAsync(o => o.Properties[key] = "7");
        Assert.That(f.State.NodeId, Is.EqualTo(7));
        var result = await DescribeAsync(f, "7", version);
        foreach (var name in new[] { "node.id", "broker.id" })
        {
            var c = result.Configs.Single(x => x.Name == name);
            Assert.That(c.Value, Is.EqualTo("7"), name);
            Assert.That(c.ConfigSource, Is.EqualTo(StaticBroker), name);
            Assert.That(c.Synonyms[0].Name, Is.EqualTo(name));
            Assert.That(c.Synonyms[0].Value, Is.EqualTo("7"));
            Assert.That(c.Synonyms[0].Source, Is.EqualTo(StaticBroker));
            Assert.That(c.Synonyms[^1].Source, Is.EqualTo(Default));
        }
    }

    [Test]
    public async Task UnsetIdReportsTheDefaultNodeId()
    {
        await using var f = await BrokerFixture.StartAsync();
        var result = await DescribeAsync(f, f.State.NodeId.ToString(), 4);
        foreach (var name in new[] { "node.id", "broker.id" })
        {
            var c = result.Configs.Single(x => x.Name == name);
            Assert.That(c.Value, Is.EqualTo(f.State.NodeId.ToString()), name);
            Assert.That(c.ConfigSource, Is.EqualTo(Default), name);
        }
    }

    [Test]
    public async Task AskedForByName()
    {
        await using var f = await BrokerFixture.StartAsync(o => o.Properties["node.id"] = "3");
        var response = await f.Client.SendAsync<DescribeConfigsResponse>(new DescribeConfigsRequest
        {
            Resources = [new DescribeConfigsRequest.DescribeConfigsResource { ResourceType = Broker, ResourceName = "3", ConfigurationKeys = ["broker.id"] }],
        }, 4);
        var result = response.Results.Single();
        Assert.That(result.ErrorCode, Is.EqualTo((short)ErrorCode.None));
        Assert.That(result.Configs.Single().Name, Is.EqualTo("broker.id"));
        Assert.That(result.Configs.Single().Value, Is.EqualTo("3"));
    }

    private static async Task<DescribeConfigsResponse.DescribeConfigsResult> DescribeAsync(BrokerFixture f, string id, short version)
    {
        var response = await f.Client.SendAsync<DescribeConfigsResponse>(new DescribeConfigsRequest
        {
            Resources = [new DescribeConfigsRequest.DescribeConfigsResource { ResourceType = Broker, ResourceName = id }],
            IncludeSynonyms = true,
        }, version);
        var result = response.Results.Single();
        Assert.That(result.ErrorCode, Is.EqualTo((short)ErrorCode.None), result.ErrorMessage);
        return result;
    }
}
