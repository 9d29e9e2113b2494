using System.Text;
using Kayak.Protocol.Messages;
using Kayak.Protocol.Records;
using Kayak.Protocol.Tests.Golden;
using NUnit.Framework;

namespace Kayak.Protocol.Tests;

/// <summary>
/// Byte-exact tests over request/response frames captured from kcat (librdkafka), kafka-python and kafkajs talking
/// to Kayak through tools/capture (issue 2). Every frame must parse with the generated classes at its captured
/// version, leave no byte unread and re-encode to the identical bytes; the decoded fields must match what the
/// capture scenario did (topic "golden-&lt;client&gt;", 3 records, group "golden-&lt;client&gt;-group").
/// </summary>
[TestFixture]
public class GoldenFrameTests
{
    private const int RecordsProduced = 3;

    public static IEnumerable<TestCaseData> Exchanges() =>
        GoldenFrames.All.Select(e => new TestCaseData(e).SetArgDisplayNames(e.ToString()));

    public static IEnumerable<TestCaseData> Answered() =>
        GoldenFrames.All.Where(e => e.HasResponse).Select(e => new TestCaseData(e).SetArgDisplayNames(e.ToString()));

    [TestCaseSource(nameof(Exchanges))]
    public void RequestParsesAndReencodesExactly(GoldenExchange ex)
    {
        var r = GoldenFrames.ParseRequest(ex);
        Assert.Multiple(() =>
        {
            Assert.That((ApiKey)r.Header.RequestApiKey, Is.EqualTo(ex.Api));
            Assert.That(r.Header.RequestApiVersion, Is.EqualTo(ex.Version));
            Assert.That(r.Header.CorrelationId, Is.EqualTo(ex.CorrelationId));
            Assert.That(r.Header.ClientId, Is.EqualTo(ex.ClientId), "every scenario sets the client id");
            Assert.That(r.Body.ApiKey, Is.EqualTo(ex.Api));
        });
    }

    [TestCaseSource(nameof(Exchanges))]
    public void ResponseParsesAndReencodesExactly(GoldenExchange ex)
    {
        if (!ex.HasResponse)
        {
            // Only acks=0 Produce goes unanswered (Kafka sends no response at all).
            var body = GoldenFrames.ParseRequest(ex).Body;
            Assert.That(body, Is.InstanceOf<ProduceRequest>(), $"{ex} has no captured response");
            Assert.That(((ProduceRequest)body).Acks, Is.Zero);
            return;
        }
        var r = GoldenFrames.ParseResponse(ex);
        Assert.That(r.Header.CorrelationId, Is.EqualTo(ex.CorrelationId), "responses are matched by correlation id");
    }

    [TestCaseSource(nameof(Exchanges))]
    public void DecodedFieldsMatchTheScenario(GoldenExchange ex)
    {
        var request = GoldenFrames.ParseRequest(ex).Body;
        var response = ex.HasResponse ? GoldenFrames.ParseResponse(ex).Body : null;
        switch (request)
        {
            case ApiVersionsRequest q: CheckApiVersions(ex, q, (ApiVersionsResponse)response!); break;
            case MetadataRequest q: CheckMetadata(ex, q, (MetadataResponse)response!); break;
            case ProduceRequest q: CheckProduce(ex, q, (ProduceResponse?)response); break;
            case FetchRequest q: CheckFetch(ex, q, (FetchResponse)response!); break;
            case ListOffsetsRequest q: CheckListOffsets(ex, q, (ListOffsetsResponse)response!); break;
            case CreateTopicsRequest q: CheckCreateTopics(ex, q, (CreateTopicsResponse)response!); break;
            case FindCoordinatorRequest q: CheckFindCoordinator(ex, q, (FindCoordinatorResponse)response!); break;
            case JoinGroupRequest q: CheckJoinGroup(ex, q, (JoinGroupResponse)response!); break;
            case SyncGroupRequest q: CheckSyncGroup(ex, q, (SyncGroupResponse)response!); break;
            case HeartbeatRequest q: CheckHeartbeat(ex, q, (HeartbeatResponse)response!); break;
            case OffsetCommitRequest q: CheckOffsetCommit(ex, q, (OffsetCommitResponse)response!); break;
            case OffsetFetchRequest q: CheckOffsetFetch(ex, q, (OffsetFetchResponse)response!); break;
            case LeaveGroupRequest q: CheckLeaveGroup(ex, q, (LeaveGroupResponse)response!); break;
            // Other APIs: parsing and re-encoding above is the test; they must at least have been answered.
            default: Assert.That(response, Is.Not.Null, $"{ex} was not answered"); break;
        }
    }

    [Test]
    public void EveryCapturedRequestVersionIsServed()
    {
        Assert.That(GoldenFrames.All, Is.Not.Empty, $"no captured frames under {GoldenFrames.Root}");
        Assert.Multiple(() =>
        {
            foreach (var ex in GoldenFrames.All)
            {
                var served = ApiVersionTable.Find(ex.Api);
                Assert.That(served, Is.Not.Null, $"{ex}: {ex.Api} is not served");
                if (served is not null)
                    Assert.That(ex.Version, Is.InRange(served.MinVersion, served.MaxVersion), $"{ex}: v{ex.Version} outside the served range");
            }
        });
    }

    [Test]
    public void IndexListsEveryCapturedFile()
    {
        // A frame file missing from index.json would silently escape every data-driven test above.
        var listed = GoldenFrames.All.SelectMany(e => e.HasResponse ? new[] { e.RequestPath, e.ResponsePath } : new[] { e.RequestPath })
            .Select(Path.GetFullPath).ToHashSet();
        foreach (var ex in GoldenFrames.All) Assert.That(File.Exists(ex.RequestPath), $"{ex}: request file missing");
        var onDisk = Directory.GetFiles(GoldenFrames.Root, "*.bin", SearchOption.AllDirectories).Select(Path.GetFullPath);
        Assert.That(onDisk, Is.EquivalentTo(listed));
    }

    /// <summary>Guards recaptures: each client must keep showing the APIs issue 2 asks for (the ones it sends in the scenario).</summary>
    [TestCase("kcat")]
    [TestCase("kafka-python", ApiKey.CreateTopics)]
    [TestCase("kafkajs", ApiKey.CreateTopics)]
    public void CaptureCoversTheScenarioApis(string client, params ApiKey[] extra)
    {
        ApiKey[] everyClient =
        [
            ApiKey.ApiVersions, ApiKey.Metadata, ApiKey.Produce, ApiKey.ListOffsets, ApiKey.Fetch, ApiKey.FindCoordinator,
            ApiKey.JoinGroup, ApiKey.SyncGroup, ApiKey.Heartbeat, ApiKey.OffsetCommit, ApiKey.OffsetFetch, ApiKey.LeaveGroup,
        ];
        var captured = GoldenFrames.All.Where(e => e.Client == client).Select(e => e.Api).ToHashSet();
        Assert.That(captured, Is.SupersetOf(everyClient.Concat(extra)), $"{client}: frames under {GoldenFrames.Root}/{client}");
    }

    // ---- per-API checks -------------------------------------------------------------------------------------

    private static void CheckApiVersions(GoldenExchange ex, ApiVersionsRequest q, ApiVersionsResponse r)
    {
        if (ex.Version >= 3)
        {
            // KIP-511: flexible ApiVersions carries the client's software name and version.
            Assert.That(q.ClientSoftwareName, Is.Not.Empty);
            Assert.That(q.ClientSoftwareVersion, Is.Not.Empty);
        }
        Assert.That(r.ErrorCode, Is.EqualTo((short)ErrorCode.None));
        var keys = r.ApiKeys.ToDictionary(k => (ApiKey)k.ApiKey);
        Assert.That(keys.Keys, Is.SupersetOf(new[] { ApiKey.Produce, ApiKey.Fetch, ApiKey.Metadata, ApiKey.ApiVersions }));
        Assert.That(ex.Version, Is.InRange(keys[ApiKey.ApiVersions].MinVersion, keys[ApiKey.ApiVersions].MaxVersion));
        foreach (var k in r.ApiKeys) Assert.That(k.MinVersion, Is.LessThanOrEqualTo(k.MaxVersion), $"{(ApiKey)k.ApiKey} range");
    }

    private static void CheckMetadata(GoldenExchange ex, MetadataRequest q, MetadataResponse r)
    {
        var broker = r.Brokers.Single();
        Assert.That(broker.Host, Is.EqualTo("127.0.0.1"), "the broker advertises the capture proxy");
        Assert.That(broker.Port, Is.GreaterThan(0));
        if (ex.Version >= 1) Assert.That(r.ControllerId, Is.EqualTo(broker.NodeId));
        // Metadata v0 has no "all topics" null: an empty list means all. Only named requests say which topics must come back.
        if (q.Topics is { Count: > 0 })
        {
            foreach (var t in q.Topics) Assert.That(t.Name, Is.EqualTo(ex.Topic));
            Assert.That(r.Topics.Select(t => t.Name), Is.EquivalentTo(q.Topics.Select(t => t.Name)));
        }
        foreach (var t in r.Topics.Where(t => t.ErrorCode == (short)ErrorCode.None && t.Name == ex.Topic))
        {
            var p = t.Partitions.Single();
            Assert.That(p.PartitionIndex, Is.Zero);
            Assert.That(p.LeaderId, Is.EqualTo(broker.NodeId));
            Assert.That(p.ReplicaNodes, Is.EqualTo(new[] { broker.NodeId }));
        }
    }

    private static void CheckProduce(GoldenExchange ex, ProduceRequest q, ProduceResponse? r)
    {
        Assert.That(q.Acks, Is.EqualTo((short)-1), "every scenario produces with acks=all");
        Assert.That(q.TransactionalId, Is.Null);
        var partition = q.TopicData.Single(t => t.Name == ex.Topic).PartitionData.Single();
        Assert.That(partition.Index, Is.Zero);
        int records = CheckBatches(partition.Records!.Value.Span, expectedBaseOffset: null, out _);
        Assert.That(records, Is.InRange(1, RecordsProduced));

        var pr = r!.Responses.Single().PartitionResponses.Single();
        Assert.That(r.Responses[0].Name, Is.EqualTo(ex.Topic));
        Assert.That(pr.ErrorCode, Is.EqualTo((short)ErrorCode.None));
        Assert.That(pr.BaseOffset, Is.InRange(0L, RecordsProduced - records));
    }

    private static void CheckFetch(GoldenExchange ex, FetchRequest q, FetchResponse r)
    {
        Assert.That(q.ReplicaId, Is.EqualTo(-1), "consumers fetch as replica -1");
        var topic = q.Topics.Single();
        if (ex.Version < 13) Assert.That(topic.Topic, Is.EqualTo(ex.Topic));
        var fp = topic.Partitions.Single();
        Assert.That(fp.Partition, Is.Zero);
        // The scenarios consume from the beginning of a 3-record partition.
        Assert.That(fp.FetchOffset, Is.InRange(0L, RecordsProduced));
        Assert.That(fp.PartitionMaxBytes, Is.GreaterThan(0));

        Assert.That(r.ErrorCode, Is.EqualTo((short)ErrorCode.None));
        var rt = r.Responses.Single();
        if (ex.Version < 13) Assert.That(rt.Topic, Is.EqualTo(ex.Topic));
        else Assert.That(rt.TopicId, Is.EqualTo(topic.TopicId));
        var rp = rt.Partitions.Single();
        Assert.That(rp.ErrorCode, Is.EqualTo((short)ErrorCode.None));
        Assert.That(rp.HighWatermark, Is.EqualTo((long)RecordsProduced));
        var records = rp.Records ?? ReadOnlyMemory<byte>.Empty;
        int count = CheckBatches(records.Span, fp.FetchOffset, out long next);
        // A fetch below the high watermark must return records, and they must end at the high watermark.
        if (fp.FetchOffset < rp.HighWatermark)
        {
            Assert.That(count, Is.GreaterThan(0), "fetch below the high watermark returned no records");
            Assert.That(next, Is.EqualTo(rp.HighWatermark));
        }
    }

    private static void CheckListOffsets(GoldenExchange ex, ListOffsetsRequest q, ListOffsetsResponse r)
    {
        Assert.That(q.ReplicaId, Is.EqualTo(-1));
        var qp = q.Topics.Single(t => t.Name == ex.Topic).Partitions.Single();
        Assert.That(qp.Timestamp, Is.EqualTo(-2L).Or.EqualTo(-1L), "earliest (-2) or latest (-1)");
        var rp = r.Topics.Single(t => t.Name == ex.Topic).Partitions.Single();
        Assert.That(rp.ErrorCode, Is.EqualTo((short)ErrorCode.None));
        // Earliest is 0; latest is the log end, which is 0 or 3 depending on whether the scenario has produced yet.
        long offset = ex.Version == 0 ? rp.OldStyleOffsets.Single() : rp.Offset;
        if (qp.Timestamp == -2) Assert.That(offset, Is.Zero);
        else Assert.That(offset, Is.EqualTo(0L).Or.EqualTo((long)RecordsProduced));
    }

    private static void CheckCreateTopics(GoldenExchange ex, CreateTopicsRequest q, CreateTopicsResponse r)
    {
        var t = q.Topics.Single();
        Assert.That(t.Name, Is.EqualTo(ex.Topic));
        Assert.That(t.NumPartitions, Is.EqualTo(1));
        var rt = r.Topics.Single();
        Assert.That(rt.Name, Is.EqualTo(ex.Topic));
        Assert.That(rt.ErrorCode, Is.EqualTo((short)ErrorCode.None));
    }

    private static void CheckFindCoordinator(GoldenExchange ex, FindCoordinatorRequest q, FindCoordinatorResponse r)
    {
        Assert.That(q.KeyType, Is.Zero, "group coordinator");
        if (ex.Version < 4)
        {
            Assert.That(q.KeyValue, Is.EqualTo(ex.Group));
            Assert.That(r.ErrorCode, Is.EqualTo((short)ErrorCode.None));
            Assert.That(r.Host, Is.EqualTo("127.0.0.1"));
            Assert.That(r.Port, Is.GreaterThan(0));
        }
        else
        {
            // KIP-699 batches keys.
            Assert.That(q.CoordinatorKeys, Is.EqualTo(new[] { ex.Group }));
            var c = r.Coordinators.Single();
            Assert.That(c.Key, Is.EqualTo(ex.Group));
            Assert.That(c.ErrorCode, Is.EqualTo((short)ErrorCode.None));
            Assert.That(c.Host, Is.EqualTo("127.0.0.1"));
        }
    }

    private static void CheckJoinGroup(GoldenExchange ex, JoinGroupRequest q, JoinGroupResponse r)
    {
        Assert.That(q.GroupId, Is.EqualTo(ex.Group));
        Assert.That(q.ProtocolType, Is.EqualTo("consumer"));
        Assert.That(q.Protocols, Is.Not.Empty);
        foreach (var p in q.Protocols)
        {
            var sub = GoldenFrames.ReadVersionedBlob<ConsumerProtocolSubscription>(p.Metadata, $"{ex} {p.Name} subscription");
            Assert.That(sub.Topics, Is.EqualTo(new[] { ex.Topic }), $"protocol {p.Name}");
        }
        // KIP-394: a v4+ join without a member id is answered MEMBER_ID_REQUIRED with the id to rejoin with.
        if (r.ErrorCode == (short)ErrorCode.MemberIdRequired)
        {
            Assert.That(ex.Version, Is.GreaterThanOrEqualTo(4));
            Assert.That(q.MemberId, Is.Empty);
            Assert.That(r.MemberId, Is.Not.Empty);
            return;
        }
        Assert.That(r.ErrorCode, Is.EqualTo((short)ErrorCode.None));
        Assert.That(r.GenerationId, Is.GreaterThan(0));
        Assert.That(q.Protocols.Select(p => p.Name), Contains.Item(r.ProtocolName));
        Assert.That(r.Leader, Is.EqualTo(r.MemberId), "the scenario's only member leads");
        var member = r.Members.Single();
        Assert.That(member.MemberId, Is.EqualTo(r.MemberId));
        var chosen = q.Protocols.Single(p => p.Name == r.ProtocolName);
        Assert.That(member.Metadata, Is.EqualTo(chosen.Metadata), "the leader gets the member's metadata for the chosen protocol");
    }

    private static void CheckSyncGroup(GoldenExchange ex, SyncGroupRequest q, SyncGroupResponse r)
    {
        Assert.That(q.GroupId, Is.EqualTo(ex.Group));
        Assert.That(q.GenerationId, Is.GreaterThan(0));
        // The only member is the leader, so it sends the one assignment: the whole topic's single partition.
        var a = q.Assignments.Single();
        Assert.That(a.MemberId, Is.EqualTo(q.MemberId));
        var sent = GoldenFrames.ReadVersionedBlob<ConsumerProtocolAssignment>(a.Assignment, $"{ex} request assignment");
        Assert.That(sent.AssignedPartitions.Single().Topic, Is.EqualTo(ex.Topic));
        Assert.That(sent.AssignedPartitions.Single().Partitions, Is.EqualTo(new[] { 0 }));

        Assert.That(r.ErrorCode, Is.EqualTo((short)ErrorCode.None));
        Assert.That(r.Assignment, Is.EqualTo(a.Assignment), "the coordinator hands the leader's assignment back verbatim");
    }

    private static void CheckHeartbeat(GoldenExchange ex, HeartbeatRequest q, HeartbeatResponse r)
    {
        Assert.That(q.GroupId, Is.EqualTo(ex.Group));
        Assert.That(q.MemberId, Is.Not.Empty);
        Assert.That(q.GenerationId, Is.GreaterThan(0));
        Assert.That(r.ErrorCode, Is.EqualTo((short)ErrorCode.None).Or.EqualTo((short)ErrorCode.RebalanceInProgress));
    }

    private static void CheckOffsetCommit(GoldenExchange ex, OffsetCommitRequest q, OffsetCommitResponse r)
    {
        Assert.That(q.GroupId, Is.EqualTo(ex.Group));
        var p = q.Topics.Single(t => t.Name == ex.Topic).Partitions.Single();
        Assert.That(p.PartitionIndex, Is.Zero);
        // Consumers commit the next offset to read: all 3 records consumed.
        Assert.That(p.CommittedOffset, Is.EqualTo((long)RecordsProduced));
        var rp = r.Topics.Single(t => t.Name == ex.Topic).Partitions.Single();
        Assert.That(rp.ErrorCode, Is.EqualTo((short)ErrorCode.None));
    }

    private static void CheckOffsetFetch(GoldenExchange ex, OffsetFetchRequest q, OffsetFetchResponse r)
    {
        // KIP-709 (v8+) batches groups.
        if (ex.Version >= 8)
        {
            var g = q.Groups.Single();
            Assert.That(g.GroupId, Is.EqualTo(ex.Group));
            var rg = r.Groups.Single();
            Assert.That(rg.ErrorCode, Is.EqualTo((short)ErrorCode.None));
            foreach (var t in rg.Topics)
            foreach (var p in t.Partitions)
                CheckCommitted(ex, t.Name, p.PartitionIndex, p.CommittedOffset, p.ErrorCode);
            return;
        }
        Assert.That(q.GroupId, Is.EqualTo(ex.Group));
        if (ex.Version >= 2) Assert.That(r.ErrorCode, Is.EqualTo((short)ErrorCode.None));
        foreach (var t in r.Topics)
        foreach (var p in t.Partitions)
            CheckCommitted(ex, t.Name, p.PartitionIndex, p.CommittedOffset, p.ErrorCode);
    }

    private static void CheckCommitted(GoldenExchange ex, string topic, int partition, long offset, short error)
    {
        Assert.That(topic, Is.EqualTo(ex.Topic));
        Assert.That(partition, Is.Zero);
        Assert.That(error, Is.EqualTo((short)ErrorCode.None));
        // -1 before the scenario's commit, 3 after it.
        Assert.That(offset, Is.EqualTo(-1L).Or.EqualTo((long)RecordsProduced));
    }

    private static void CheckLeaveGroup(GoldenExchange ex, LeaveGroupRequest q, LeaveGroupResponse r)
    {
        if (ex.Version < 3) Assert.That(q.MemberId, Is.Not.Empty);
        else Assert.That(q.Members.Single().MemberId, Is.Not.Empty);
        Assert.That(q.GroupId, Is.EqualTo(ex.Group));
        Assert.That(r.ErrorCode, Is.EqualTo((short)ErrorCode.None));
    }

    /// <summary>
    /// Walks the magic v2 batches of a records field: each CRC-32C must be valid (RecordBatch.Validate), offsets
    /// contiguous from <paramref name="expectedBaseOffset"/> when given (fetch), and records keyed "k*" with "value-*"
    /// or kcat's values. Returns the record count and the offset after the last batch.
    /// </summary>
    private static int CheckBatches(ReadOnlySpan<byte> records, long? expectedBaseOffset, out long nextOffset)
    {
        int count = 0;
        nextOffset = expectedBaseOffset ?? 0;
        // MoveNext on the local itself (foreach would walk a copy and leave TrailingBytes unread).
        var batches = new BatchEnumerator(records);
        while (batches.MoveNext())
        {
            var batch = batches.Current;
            var result = RecordBatch.Validate(batch);
            Assert.That(result.IsValid, Is.True, $"batch invalid: {result.Error} {result.Message}");
            Assert.That(RecordBatchHeader.TryRead(batch, out var h), Is.True);
            Assert.That(RecordBatch.ComputeCrc(batch), Is.EqualTo(h.Crc));
            if (expectedBaseOffset is not null)
            {
                // Fetch may start mid-batch (Kafka returns whole batches); the first batch must contain the fetch offset.
                if (count == 0) Assert.That(expectedBaseOffset.Value, Is.InRange(h.BaseOffset, h.BaseOffset + h.LastOffsetDelta));
                else Assert.That(h.BaseOffset, Is.EqualTo(nextOffset));
            }
            nextOffset = h.BaseOffset + h.LastOffsetDelta + 1;
            if (h.Compression == CompressionType.None)
            {
                foreach (var record in RecordBatch.EnumerateUncompressed(batch))
                {
                    Assert.That(record.KeyIsNull, Is.False);
                    Assert.That(Encoding.UTF8.GetString(record.Key), Does.StartWith("k"));
                    Assert.That(record.ValueIsNull, Is.False);
                    Assert.That(record.Value.Length, Is.GreaterThan(0));
                }
            }
            count += result.RecordCount;
        }
        Assert.That(batches.TrailingBytes, Is.Zero, "records field ends with a partial batch");
        return count;
    }
}
