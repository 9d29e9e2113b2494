using Kayak.Broker.Config;
using Kayak.Broker.Handlers;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Quotas;

/// <summary>
/// What KafkaApis does with quotas, for every request the connection answers (KIP-13 byte rates, KIP-124
/// request_percentage, KIP-599 controller_mutation_rate; KIP-219 throttling): Produce counts its request bytes against
/// producer_byte_rate, a consumer Fetch its response bytes against consumer_byte_rate (a throttled fetch is answered
/// empty and its bytes uncounted), every request its handling time against request_percentage (except acks=0
/// produce), and the topic admin APIs their partitions against controller_mutation_rate (through
/// <see cref="RecordMutation"/>). The throttle time is the largest of those that apply. Quotas take effect once one of
/// the key was set; before that nothing is recorded (Kafka's quotasEnabled).
/// </summary>
internal sealed class ClientQuotas : IControllerMutationQuotas
{
    private readonly TimeProvider _time;

    public ClientQuotas(BrokerConfig config, TimeProvider time, ClientQuotaStore store)
    {
        _time = time;
        Store = store;
        Produce = new ClientQuotaManager(QuotaKeys.ProducerByteRate, config.QuotaWindowNum, config.QuotaWindowSizeSeconds);
        Fetch = new ClientQuotaManager(QuotaKeys.ConsumerByteRate, config.QuotaWindowNum, config.QuotaWindowSizeSeconds);
        Request = new ClientQuotaManager(QuotaKeys.RequestPercentage, config.QuotaWindowNum, config.QuotaWindowSizeSeconds, boundedByWindow: true);
        ControllerMutation = new ClientQuotaManager(QuotaKeys.ControllerMutationRate, config.ControllerQuotaWindowNum,
            config.ControllerQuotaWindowSizeSeconds, tokenBucket: true);
        Apply(store.Snapshot());
        store.Changed += Apply;
    }

    public ClientQuotaStore Store { get; }

    /// <summary>Stops following <see cref="Store"/> (a cluster member's store is the controller's and outlives it).</summary>
    public void Detach() => Store.Changed -= Apply;
    public ClientQuotaManager Produce { get; }
    public ClientQuotaManager Fetch { get; }
    public ClientQuotaManager Request { get; }
    public ClientQuotaManager ControllerMutation { get; }

    private long _throttled, _delayed;

    /// <summary>Responses that carried a throttle (KIP-219 mute or late answer): an operator's and a test's view.</summary>
    public long ThrottledResponses => Interlocked.Read(ref _throttled);
    /// <summary>Of those, responses held back because their version predates KIP-219 client-side throttling.</summary>
    public long DelayedResponses => Interlocked.Read(ref _delayed);

    internal void CountThrottled(bool delayed)
    {
        Interlocked.Increment(ref _throttled);
        if (delayed) Interlocked.Increment(ref _delayed);
    }

    /// <summary>True once any quota was set: until then the connection skips quota work entirely.</summary>
    public bool Enabled { get; private set; }

    private void Apply(IReadOnlyDictionary<ClientQuotaEntity, Dictionary<string, double>> quotas)
    {
        Produce.Update(quotas);
        Fetch.Update(quotas);
        Request.Update(quotas);
        ControllerMutation.Update(quotas);
        Enabled = Produce.Enabled || Fetch.Enabled || Request.Enabled || ControllerMutation.Enabled;
    }

    private long NowMs => _time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>Kafka's principal name for quotas: "User:alice" is user alice, "User:ANONYMOUS" is user ANONYMOUS.</summary>
    public static string UserOf(string principal) => principal.StartsWith("User:", StringComparison.Ordinal) ? principal[5..] : principal;

    /// <summary>
    /// The throttle time for one answered request, recording its usage. <paramref name="response"/> may be replaced:
    /// a throttled consumer fetch is answered with an empty response (KafkaApis: fetchContext.getThrottledResponse),
    /// its segments released by the caller when <paramref name="dropSegments"/> is set.
    /// </summary>
    public int ThrottleTimeMs(RequestContext context, string user, int requestBytes, ref IApiMessage? response, double handlerNanos, out bool dropSegments)
    {
        dropSegments = false;
        string clientId = context.ClientId ?? "";
        long now = NowMs;
        // ClientRequestQuotaManager.nanosToPercentage: 100 % is one thread busy for the whole second.
        double percentage = handlerNanos * (100.0 / 1_000_000_000.0);
        switch (context.ApiKey)
        {
            case ApiKey.Produce:
            {
                int bandwidth = Produce.RecordAndGetThrottleTimeMs(user, clientId, requestBytes, now);
                // acks=0 (no response) is exempt from the request quota, as in KafkaApis.handleProduceRequest.
                int request = response is null ? 0 : Request.RecordAndGetThrottleTimeMs(user, clientId, percentage, now);
                return Math.Max(bandwidth, request);
            }
            case ApiKey.Fetch when response is FetchResponse fetch:
            {
                int request = Request.RecordAndGetThrottleTimeMs(user, clientId, percentage, now);
                if (!Fetch.Enabled && request == 0) return 0;
                int size = fetch.Size(context.ApiVersion);
                int bandwidth = Fetch.RecordAndGetThrottleTimeMs(user, clientId, size, now);
                int throttle = Math.Max(bandwidth, request);
                if (throttle > 0)
                {
                    Fetch.Unrecord(user, clientId, size, now);
                    response = new FetchResponse { ErrorCode = 0, SessionId = fetch.SessionId };
                    dropSegments = true;
                }
                return throttle;
            }
            default:
            {
                int request = Request.RecordAndGetThrottleTimeMs(user, clientId, percentage, now);
                return Math.Max(request, context.ControllerThrottleTimeMs);
            }
        }
    }

    /// <inheritdoc />
    public bool TryRecordMutation(RequestContext context, int partitions)
    {
        if (!ControllerMutation.Enabled) return true;
        bool strict = context.ApiKey switch
        {
            ApiKey.CreateTopics => context.ApiVersion >= 6,
            ApiKey.CreatePartitions => context.ApiVersion >= 3,
            ApiKey.DeleteTopics => context.ApiVersion >= 5,
            _ => false,
        };
        int throttle = ControllerMutation.RecordMutation(UserOf(context.Principal), context.ClientId ?? "", partitions, strict, NowMs);
        context.ControllerThrottleTimeMs = Math.Max(context.ControllerThrottleTimeMs, throttle);
        return !strict || throttle == 0;
    }

    /// <summary>
    /// KIP-219: from these versions the client honours throttle_time_ms itself, so the broker answers at once and then
    /// stops reading the connection; older versions get their response late instead (AbstractResponse.shouldClientThrottle).
    /// </summary>
    public static bool ClientThrottles(ApiKey key, short version) => key switch
    {
        ApiKey.Produce => version >= 6,
        ApiKey.Fetch => version >= 8,
        ApiKey.ListOffsets => version >= 3,
        ApiKey.Metadata => version >= 6,
        ApiKey.OffsetCommit or ApiKey.OffsetFetch => version >= 4,
        ApiKey.FindCoordinator or ApiKey.Heartbeat or ApiKey.LeaveGroup or ApiKey.SyncGroup or ApiKey.DescribeGroups
            or ApiKey.ListGroups or ApiKey.ApiVersions or ApiKey.DescribeConfigs or ApiKey.DeleteTopics => version >= 2,
        ApiKey.JoinGroup or ApiKey.CreateTopics => version >= 3,
        ApiKey.DeleteRecords or ApiKey.InitProducerId or ApiKey.AddPartitionsToTxn or ApiKey.AddOffsetsToTxn or ApiKey.EndTxn
            or ApiKey.TxnOffsetCommit or ApiKey.AlterConfigs or ApiKey.DescribeLogDirs or ApiKey.CreatePartitions
            or ApiKey.DeleteGroups => version >= 1,
        ApiKey.IncrementalAlterConfigs or ApiKey.OffsetDelete or ApiKey.ElectLeaders or ApiKey.DescribeTopicPartitions => true,
        // Responses that do not override shouldClientThrottle (AbstractResponse's default: false).
        _ => false,
    };
}

/// <summary>
/// controller_mutation_rate for the topic admin handlers (KIP-599, Kafka's ControllerRequestContext.applyPartitionChangeQuota):
/// each created, grown or deleted topic records its partitions. False: the strict quota (CreateTopics v6+,
/// CreatePartitions v3+, DeleteTopics v5+) is exceeded and the topic must fail with THROTTLING_QUOTA_EXCEEDED.
/// </summary>
internal interface IControllerMutationQuotas
{
    bool TryRecordMutation(RequestContext context, int partitions);
}
