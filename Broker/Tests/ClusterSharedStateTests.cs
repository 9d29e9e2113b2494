using Kayak.Broker.Cluster;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>
/// Issue 14: client quotas and cluster-wide dynamic broker defaults are the cluster's (Kafka's ClientQuotaRecord and
/// the ConfigRecord of the BROKER resource ""), over the wire: set through broker 1, described by brokers 2 and 3, in
/// force on them, followed by a member that was stopped while they changed, and kept by a restarted cluster. An older
/// root whose ACLs are only in broker-1's dir keeps them. (ACLs and SCRAM credentials with Confluent.Kafka:
/// IntegrationTests/SharedClusterStateTests.)
/// </summary>
[TestFixture]
public sealed class ClusterSharedStateTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = Path.Combine(Path.GetTempPath(), "kayak-shared-state-" + Guid.NewGuid().ToString("N"));

    [TearDown]
    public void TearDown()
    {
        try { Directory.Delete(_dir, recursive: true); }
        catch (IOException) { }
    }

    private async Task<KafkaCluster> StartAsync(bool authorizer = false)
    {
        var options = new KafkaClusterOptions { Brokers = 3, DataDir = _dir, Port = 0 };
        if (authorizer)
        {
            options.Properties["authorizer.class.name"] = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";
            options.Properties["super.users"] = "User:ANONYMOUS";
        }
        var cluster = new KafkaCluster(options);
        await cluster.StartAsync();
        return cluster;
    }

    private const sbyte Broker = 4; // ConfigResource.Type.BROKER; ConfigSource 3 is DYNAMIC_DEFAULT_BROKER_CONFIG

    [Test]
    public async Task QuotasAndBrokerDefaults_SetThroughOneBroker_HoldOnEveryBroker_AndAcrossRestarts()
    {
        await using (var cluster = await StartAsync())
        {
            using (var one = await RawClient.ConnectAsync(cluster.Broker(1)!.BootstrapServers))
            {
                var quota = new AlterClientQuotasRequest.EntryData();
                quota.Entity.Add(new AlterClientQuotasRequest.EntityData { EntityType = "user", EntityName = "alice" });
                quota.Ops.Add(new AlterClientQuotasRequest.OpData { Key = "producer_byte_rate", Value = 1024 });
                var altered = await one.SendAsync<AlterClientQuotasResponse>(new AlterClientQuotasRequest { Entries = [quota] }, 1);
                Assert.That(altered.Entries.Single().ErrorCode, Is.Zero, altered.Entries.Single().ErrorMessage);
                await SetDefaultAsync(one, "log.retention.ms", "3600000");
            }
            foreach (int id in new[] { 2, 3 })
            {
                Assert.That(await DescribeQuotasAsync(cluster, id), Is.EqualTo("user=alice producer_byte_rate=1024"), $"broker {id}");
                Assert.That(await DescribeDefaultAsync(cluster, id, "log.retention.ms"), Is.EqualTo(("3600000", (sbyte)3)), $"broker {id}");
                Assert.That(cluster.Broker(id)!.State.Quotas.Produce.Enabled, Is.True, $"broker {id} enforces it");
                Assert.That(cluster.Broker(id)!.State.Dynamic.Current.Values["log.retention.ms"], Is.EqualTo("3600000"), $"broker {id}'s config in force");
            }

            // A member stopped during a change follows it when it comes back (and the stopped one no longer listens).
            await cluster.StopBrokerAsync(2);
            using (var one = await RawClient.ConnectAsync(cluster.Broker(1)!.BootstrapServers))
                await SetDefaultAsync(one, "log.retention.ms", "7200000");
            await cluster.StartBrokerAsync(2);
            Assert.That(await DescribeDefaultAsync(cluster, 2, "log.retention.ms"), Is.EqualTo(("7200000", (sbyte)3)));
            using (var three = await RawClient.ConnectAsync(cluster.Broker(3)!.BootstrapServers))
                await SetDefaultAsync(three, "log.retention.ms", "10800000");
            Assert.That(cluster.Broker(2)!.State.Dynamic.Current.Values["log.retention.ms"], Is.EqualTo("10800000"), "the restarted member follows later changes");
        }

        await using (var cluster = await StartAsync())
            foreach (int id in new[] { 1, 2, 3 })
            {
                Assert.That(await DescribeQuotasAsync(cluster, id), Is.EqualTo("user=alice producer_byte_rate=1024"), $"broker {id} after the restart");
                Assert.That(await DescribeDefaultAsync(cluster, id, "log.retention.ms"), Is.EqualTo(("10800000", (sbyte)3)), $"broker {id} after the restart");
            }
    }

    [Test]
    public async Task AnOlderRootWithAclsOnlyInBroker1sDir_KeepsThemForTheWholeCluster()
    {
        await using (var cluster = await StartAsync(authorizer: true))
        {
            using var one = await RawClient.ConnectAsync(cluster.Broker(1)!.BootstrapServers);
            var created = await one.SendAsync<CreateAclsResponse>(new CreateAclsRequest
            {
                Creations = [new() { ResourceType = 2, ResourceName = "orders", ResourcePatternType = 3, Principal = "User:bob", Host = "*", Operation = 3, PermissionType = 3 }],
            }, 3);
            Assert.That(created.Results.Single().ErrorCode, Is.Zero);
        }
        // What a cluster root written before the ACLs were shared looks like.
        File.Move(Path.Combine(_dir, Security.AclFile.FileName), Path.Combine(_dir, "broker-1", Security.AclFile.FileName));

        await using (var cluster = await StartAsync(authorizer: true))
            foreach (var b in cluster.Brokers)
            {
                using var c = await RawClient.ConnectAsync(b.BootstrapServers);
                var described = await c.SendAsync<DescribeAclsResponse>(new DescribeAclsRequest
                {
                    ResourceTypeFilter = 1, PatternTypeFilter = 1, Operation = 1, PermissionType = 1, // ANY
                    ResourceNameFilter = null, PrincipalFilter = null, HostFilter = null,
                }, 3);
                Assert.That(described.Resources.Select(r => r.ResourceName).ToArray(), Is.EqualTo(new[] { "orders" }), $"broker {b.Config.NodeId}: {described.ErrorMessage}");
            }
    }

    private static async Task SetDefaultAsync(RawClient client, string name, string value)
    {
        var request = new IncrementalAlterConfigsRequest
        {
            Resources = [new() { ResourceType = Broker, ResourceName = "", Configs = [new() { Name = name, ConfigOperation = 0, Value = value }] }],
        };
        var r = await client.SendAsync<IncrementalAlterConfigsResponse>(request, 1);
        Assert.That(r.Responses.Single().ErrorCode, Is.Zero, r.Responses.Single().ErrorMessage);
    }

    private static async Task<(string?, sbyte)> DescribeDefaultAsync(KafkaCluster cluster, int id, string name)
    {
        using var c = await RawClient.ConnectAsync(cluster.Broker(id)!.BootstrapServers);
        var r = await c.SendAsync<DescribeConfigsResponse>(new DescribeConfigsRequest
        {
            Resources = [new() { ResourceType = Broker, ResourceName = id.ToString(), ConfigurationKeys = [name] }],
        }, 4);
        var entry = r.Results.Single().Configs.Single();
        return (entry.Value, entry.ConfigSource);
    }

    private static async Task<string> DescribeQuotasAsync(KafkaCluster cluster, int id)
    {
        using var c = await RawClient.ConnectAsync(cluster.Broker(id)!.BootstrapServers);
        var request = new DescribeClientQuotasRequest { Strict = false };
        request.Components.Add(new DescribeClientQuotasRequest.ComponentData { EntityType = "user", MatchType = 2, Match = null });
        var r = await c.SendAsync<DescribeClientQuotasResponse>(request, 1);
        Assert.That(r.ErrorCode, Is.Zero, r.ErrorMessage);
        return string.Join("; ", r.Entries!.Select(e => $"{e.Entity.Single().EntityType}={e.Entity.Single().EntityName} "
            + string.Join(",", e.Values.Select(v => $"{v.Key}={v.Value}"))));
    }
}
