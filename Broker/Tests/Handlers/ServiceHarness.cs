using Kayak.Broker.Config;
using Kayak.Broker.Fetching;
using Kayak.Broker.Handlers;
using Kayak.Broker.Services;
using Kayak.Protocol;
using Kayak.Protocol.Records;
using Kayak.Storage;

namespace Kayak.Broker.Tests.Handlers;

/// <summary>
/// The services a handler is built from, without a broker or a socket: Storage on a temp dir (the partition store;
/// a fake of Storage's logs would be larger than what it replaces), the catalog and topic service over it, and a
/// cluster identity set by hand. Handlers are constructed with these and called directly.
/// </summary>
internal sealed class ServiceHarness : IDisposable
{
    public ServiceHarness(Dictionary<string, string>? properties = null)
    {
        Dir = Path.Combine(Path.GetTempPath(), "kayak-handler-tests-" + Guid.NewGuid().ToString("N"));
        var props = new Dictionary<string, string>(properties ?? new(), StringComparer.Ordinal) { ["log.dirs"] = Dir };
        Config = new BrokerConfig(props);
        Logs = new LogManager(new LogOptions { LogDirs = [Dir] });
        Logs.Open();
        Catalog = new TopicCatalog(Logs);
        Topics = new TopicService(Logs, Config);
        Cluster = new ClusterInfo(Config.NodeId)
        {
            ClusterId = "test-cluster",
            AdvertisedListeners = [new ListenerEndpoint("PLAINTEXT", "broker.test", 9999)],
        };
        Describer = new TopicConfigDescriber(Config, Logs.Options);
    }

    public string Dir { get; }
    public BrokerConfig Config { get; }
    public LogManager Logs { get; }
    public TopicCatalog Catalog { get; }
    public TopicService Topics { get; }
    public ClusterInfo Cluster { get; }
    public TopicConfigDescriber Describer { get; }
    public FetchSessionCache Sessions { get; } = new();
    /// <summary>A single broker leads everything (issue 14's IPartitionLeadership in single-node mode).</summary>
    public IPartitionLeadership Leadership => new SingleNodeLeadership(Config.NodeId);
    /// <summary>Client quotas with none set: the admin handlers' controller_mutation_rate never refuses.</summary>
    public Kayak.Broker.Quotas.ClientQuotas Quotas => _quotas ??= new(Config, TimeProvider.System, new Kayak.Broker.Quotas.ClientQuotaStore(null));
    private Kayak.Broker.Quotas.ClientQuotas? _quotas;

    public TopicLog CreateTopic(string name, int partitions)
    {
        var created = Topics.Create(name, partitions, 1, null, validateOnly: false);
        return created.Topic ?? throw new InvalidOperationException(created.Failure.ToString());
    }

    public static RequestContext Context(ApiKey key, short version) =>
        new() { ApiKey = key, ApiVersion = version, CorrelationId = 1, ClientId = "unit-test" };

    /// <summary>One magic-2 batch of <paramref name="count"/> records, as a client sends it (base offset 0).</summary>
    public static byte[] Batch(int count, RecordBatchOptions? options = null)
    {
        using var builder = new RecordBatchBuilder(options ?? new RecordBatchOptions());
        for (int i = 0; i < count; i++) builder.Append(1_700_000_000_000 + i, null, new byte[] { (byte)i });
        return builder.ToArray();
    }

    public static void Append(PartitionLog log, int records) => log.Append(Batch(records), 1);

    public static async Task<TResponse> Call<TResponse>(IApiHandler handler, RequestContext context, IApiMessage request)
        where TResponse : class, IApiMessage
    {
        var result = await handler.HandleAsync(context, request);
        return (TResponse)result.Message!;
    }

    public void Dispose()
    {
        Logs.Dispose();
        try { Directory.Delete(Dir, recursive: true); }
        catch (IOException) { }
    }
}
