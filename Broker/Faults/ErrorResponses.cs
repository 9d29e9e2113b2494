using System.Reflection;
using Kayak.Broker.Handlers;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker;

/// <summary>
/// Builds the response that carries an injected error (<see cref="BrokerFaults.InjectError"/>) in the API's own
/// error fields, as Kafka's AbstractRequest.getErrorResponse does: Produce, Fetch, ListOffsets and OffsetCommit per
/// partition of the request; FindCoordinator per key (v4+) and at the top; every API whose response has a top-level
/// ErrorCode (JoinGroup, SyncGroup, Heartbeat, LeaveGroup, InitProducerId, EndTxn, AddOffsetsToTxn,
/// ConsumerGroupHeartbeat, ListGroups, DescribeCluster, OffsetFetch v2-7, ...) there; OffsetFetch v8+ per group.
/// An error the request's version has no field for (OffsetFetch v0-1) drops the connection instead.
/// Metadata: the topics' error fields of the real response (see <see cref="RewritesResponse"/>). Not built yet: the per-resource admin APIs (CreateTopics, DescribeConfigs, ...), and a
/// partition-filtered error does not split a request naming other partitions too (all of them carry the error).
/// Only ever runs for a request that matched a rule, so reflection here costs nothing on the normal path.
/// </summary>
internal static class ErrorResponses
{
    private static readonly string Any = new('*', 1);

    public static bool HasPartitions(ApiKey api) => api is ApiKey.Produce or ApiKey.Fetch or ApiKey.ListOffsets or ApiKey.OffsetCommit or ApiKey.Metadata;

    /// <summary>
    /// Metadata is answered by the real handler (it only reads, and auto-creation is turned off for the request)
    /// with the error put in the topics' error fields: clients still learn the brokers, as from Kafka.
    /// </summary>
    public static bool RewritesResponse(ApiKey api) => api == ApiKey.Metadata;

    public static void PrepareRewrite(IApiMessage request)
    {
        if (request is MetadataRequest m) m.AllowAutoTopicCreation = false;
    }

    public static IApiMessage? Rewrite(IApiMessage? response, in ErrorInjection rule)
    {
        if (response is MetadataResponse m)
            foreach (var t in m.Topics)
                if (rule.Topic is null || rule.Topic == t.Name)
                {
                    t.SetError(rule.Error);
                    t.Partitions.Clear();
                }
        return response;
    }

    public static bool HasGroup(ApiKey api) =>
        ApiVersionTable.Find(api) is not null && (api == ApiKey.FindCoordinator || GroupIdProperty(ApiMessageTypes.CreateRequest(api).GetType()) is not null);

    public static bool Supports(ApiKey api) =>
        ApiVersionTable.Find(api) is not null && (HasPartitions(api) || api == ApiKey.FindCoordinator || TopLevelErrorCode(ApiMessageTypes.CreateResponse(api).GetType()) is not null);

    /// <summary>Whether <paramref name="request"/> is one the rule's topic/partition/group filter selects.</summary>
    public static bool Matches(IApiMessage request, short version, in ErrorInjection rule)
    {
        if (rule.Group is { } group)
        {
            if (request is FindCoordinatorRequest fc) return version >= 4 ? fc.CoordinatorKeys.Contains(group) : fc.KeyValue == group;
            if (request is OffsetFetchRequest of && version >= 8) return of.Groups.Exists(g => g.GroupId == group);
            return GroupIdProperty(request.GetType())?.GetValue(request) as string == group;
        }
        if (rule.Topic is not { } topic) return true;
        foreach (var (t, p) in Partitions(request))
            if ((t == topic || ReferenceEquals(t, Any)) && (rule.Partition is null || rule.Partition == p || p == -1)) return true;
        return false;
    }

    public static IApiMessage? Build(ApiKey apiKey, IApiMessage request, short version, ErrorCode error)
    {
        var response = BuildUnchecked(apiKey, request, version, error);
        try
        {
            var writer = new KafkaWriter(new System.Buffers.ArrayBufferWriter<byte>());
            response.Write(ref writer, version);
            return response;
        }
        catch (UnsupportedVersionException)
        {
            return null;
        }
    }

    private static IApiMessage BuildUnchecked(ApiKey apiKey, IApiMessage request, short version, ErrorCode error)
    {
        switch (request)
        {
            case ProduceRequest produce:
            {
                var r = new ProduceResponse();
                foreach (var t in produce.TopicData)
                {
                    var topic = new ProduceResponse.TopicProduceResponse { Name = t.Name };
                    foreach (var p in t.PartitionData)
                        topic.PartitionResponses.Add(new ProduceResponse.PartitionProduceResponse { Index = p.Index, BaseOffset = -1 }.SetError(error));
                    r.Responses.Add(topic);
                }
                return r;
            }
            case FetchRequest fetch:
            {
                var r = new FetchResponse { SessionId = 0 };
                foreach (var t in fetch.Topics)
                {
                    var topic = new FetchResponse.FetchableTopicResponse { Topic = t.Topic, TopicId = t.TopicId };
                    foreach (var p in t.Partitions)
                        topic.Partitions.Add(new FetchResponse.PartitionData { PartitionIndex = p.Partition, HighWatermark = -1, Records = ReadOnlyMemory<byte>.Empty }.SetError(error));
                    r.Responses.Add(topic);
                }
                return r;
            }
            case ListOffsetsRequest list:
            {
                var r = new ListOffsetsResponse();
                foreach (var t in list.Topics)
                {
                    var topic = new ListOffsetsResponse.ListOffsetsTopicResponse { Name = t.Name };
                    foreach (var p in t.Partitions)
                        topic.Partitions.Add(new ListOffsetsResponse.ListOffsetsPartitionResponse { PartitionIndex = p.PartitionIndex }.SetError(error));
                    r.Topics.Add(topic);
                }
                return r;
            }
            case OffsetCommitRequest commit:
            {
                var r = new OffsetCommitResponse();
                foreach (var t in commit.Topics)
                {
                    var topic = new OffsetCommitResponse.OffsetCommitResponseTopic { Name = t.Name };
                    foreach (var p in t.Partitions)
                        topic.Partitions.Add(new OffsetCommitResponse.OffsetCommitResponsePartition { PartitionIndex = p.PartitionIndex }.SetError(error));
                    r.Topics.Add(topic);
                }
                return r;
            }
            case OffsetFetchRequest fetchOffsets when version >= 8:
            {
                // KIP-709: v8+ answers per group.
                var r = new OffsetFetchResponse();
                foreach (var g in fetchOffsets.Groups)
                    r.Groups.Add(new OffsetFetchResponse.OffsetFetchResponseGroup { GroupId = g.GroupId }.SetError(error));
                return r;
            }
            case FindCoordinatorRequest find:
            {
                // v4+ (KIP-699) answers per key and must leave the top-level fields at their defaults.
                if (version < 4) return FindCoordinatorHandler.NoCoordinator(new FindCoordinatorResponse(), error);
                var r = new FindCoordinatorResponse { ErrorMessage = null };
                foreach (var key in find.CoordinatorKeys) r.Coordinators.Add(FindCoordinatorHandler.NoCoordinator(key, error));
                return r;
            }
        }
        var generic = ApiMessageTypes.CreateResponse(apiKey);
        var property = TopLevelErrorCode(generic.GetType()) ?? throw new ArgumentException($"No error response for {apiKey}");
        property.SetValue(generic, (short)error);
        return generic;
    }

    private static IEnumerable<(string Topic, int Partition)> Partitions(IApiMessage request)
    {
        switch (request)
        {
            case ProduceRequest r:
                foreach (var t in r.TopicData) foreach (var p in t.PartitionData) yield return (t.Name, p.Index);
                break;
            case FetchRequest r:
                foreach (var t in r.Topics) foreach (var p in t.Partitions) yield return (t.Topic, p.Partition);
                break;
            case ListOffsetsRequest r:
                foreach (var t in r.Topics) foreach (var p in t.Partitions) yield return (t.Name, p.PartitionIndex);
                break;
            case OffsetCommitRequest r:
                foreach (var t in r.Topics) foreach (var p in t.Partitions) yield return (t.Name, p.PartitionIndex);
                break;
            case MetadataRequest r:
                // Topics null or empty asks for every topic (by version), so a topic filter matches it too.
                if (r.Topics is not { Count: > 0 }) { yield return (Any, -1); break; }
                foreach (var t in r.Topics) yield return (t.Name ?? "", -1);
                break;
        }
    }

    private static PropertyInfo? TopLevelErrorCode(Type response) =>
        response.GetProperty("ErrorCode", BindingFlags.Public | BindingFlags.Instance) is { PropertyType: var t } p && t == typeof(short) ? p : null;

    private static PropertyInfo? GroupIdProperty(Type request) =>
        request.GetProperty("GroupId", BindingFlags.Public | BindingFlags.Instance) is { PropertyType: var t } p && t == typeof(string) ? p : null;
}
