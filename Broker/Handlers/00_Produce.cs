// Produce (key 0), v0-11. Each partition's records are validated the way Kafka's LogValidator does
// (framing, magic, CRC → CORRUPT_MESSAGE; size over max.message.bytes → MESSAGE_TOO_LARGE; v3+ must send
// exactly one magic-2 batch → INVALID_RECORD; zstd below v7 → UNSUPPORTED_COMPRESSION_TYPE (KIP-110);
// control batches from clients → INVALID_RECORD; records without a key on a compacted topic → INVALID_RECORD with
// one record_errors entry per such record, KIP-467) and then
// appended as the client's bytes: Storage rewrites only the base offset (and timestamps for LogAppendTime).
// Produce v0-2 carry magic 0/1 message sets, which are converted to v2 batches on the way in.
// acks=0 sends no response; acks 1 and -1 are the same on one node (the leader is the whole ISR);
// other values get INVALID_REQUIRED_ACKS. Produce never auto-creates topics (Kafka leaves that to Metadata).
// Writes to internal topics from clients are refused (INVALID_TOPIC_EXCEPTION), as in Kafka.
// A topic compression.type other than "producer" re-encodes the batch in that codec (Produce/Recompression.cs).
// Idempotent/transactional producers (KIP-98): the partition's producer state (Storage/ProducerState.cs)
// checks epoch and sequence under the append lock; a retry of one of the producer's last five batches gets
// the original base offset back and is not appended again; a gap is OUT_OF_ORDER_SEQUENCE_NUMBER, an older
// epoch INVALID_PRODUCER_EPOCH. Transaction verification (KIP-890 part 1, Kafka 3.6+): the first transactional
// batch of a producer in a partition takes the partition's verification guard, asks the transaction coordinator
// whether the partition is in the producer's ongoing transaction (INVALID_TXN_STATE if not, INVALID_PRODUCER_EPOCH
// for a fenced epoch, NOT_ENOUGH_REPLICAS while the transaction is being completed, as Kafka's ReplicaManager
// translates CONCURRENT_TRANSACTIONS) and appends with the guard; later batches go into the open transaction
// without asking. The marker clears both under the partition lock, so a batch that loses the race against EndTxn is
// refused (INVALID_TXN_STATE) and never lands after the marker.
// In an in-process cluster (issue 14) a partition this broker does not lead is NOT_LEADER_OR_FOLLOWER, with the
// current leader and its endpoint (KIP-951: CurrentLeader, NodeEndpoints) from v10. acks=-1 with min.insync.replicas
// above the ISR's size is NOT_ENOUGH_REPLICAS before anything is appended (a single broker keeps accepting it, as
// before); otherwise it waits, as Kafka's delayed produce, until the high watermark (the ISR's smallest log end) passes
// the appended records, up to the request's timeout (REQUEST_TIMED_OUT), and is NOT_ENOUGH_REPLICAS_AFTER_APPEND when
// the ISR shrank below min.insync.replicas meanwhile. On a single broker nothing waits.
// ACLs (KafkaApis.handleProduceRequest): transactional records need WRITE on the TRANSACTIONAL_ID (else every partition
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED), each topic WRITE (TOPIC_AUTHORIZATION_FAILED, before its existence is told).
// Idempotent producers are checked at InitProducerId, as in Kafka 4.0.
// Throttling (client quotas, KIP-219) is applied around the handler: Quotas/ClientQuotas.cs.
using System.Buffers;
using Kayak.Broker.Security;
using Kayak.Broker.Produce;
using Kayak.Broker.Services;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using Kayak.Protocol.Compression;
using Kayak.Protocol.Records;
using Kayak.Storage;

namespace Kayak.Broker.Handlers;

internal sealed class ProduceHandler(ITopicCatalog catalog, ITransactionVerifier transactions, IPartitionLeadership leadership, ClusterInfo cluster,
    IAuthorizer? authorizer = null, TimeProvider? time = null) : ApiHandler<ProduceRequest>
{
    // Optional so unit tests that build the handler alone run it without ACLs.
    private readonly IAuthorizer _authorizer = authorizer ?? AllowAllAuthorizer.Instance;
    // acks=all waits for the ISR on the broker's clock (a handler built alone in a test has no replication, no wait).
    private readonly TimeProvider _time = time ?? TimeProvider.System;

    public override ApiKey Key => ApiKey.Produce;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, ProduceRequest request)
    {
        var response = new ProduceResponse();
        List<(PartitionLog, long, int, ProduceResponse.PartitionProduceResponse, int)>? pending = null;
        bool validAcks = request.Acks is 0 or 1 or -1;
        bool txnDenied = ProduceAuthorization.TransactionDenied(_authorizer, context, request);
        foreach (var t in request.TopicData)
        {
            var rt = new ProduceResponse.TopicProduceResponse { Name = t.Name };
            response.Responses.Add(rt);
            var topic = catalog.Lookup(t.Name);
            bool topicDenied = !txnDenied && !_authorizer.Topic(context, AclOperation.Write, t.Name);
            foreach (var p in t.PartitionData)
            {
                var rp = new ProduceResponse.PartitionProduceResponse { Index = p.Index, BaseOffset = -1, LogAppendTimeMs = -1, LogStartOffset = -1 };
                rt.PartitionResponses.Add(rp);
                if (txnDenied)
                    rp.SetError(ErrorCode.TransactionalIdAuthorizationFailed);
                else if (topicDenied)
                    rp.SetError(ErrorCode.TopicAuthorizationFailed);
                else if (!validAcks)
                    rp.SetError(ErrorCode.InvalidRequiredAcks);
                else if (!topic.TryGetPartition(p.Index, out var log, out var missing) && missing.Code != ErrorCode.NotLeaderOrFollower)
                    rp.SetError(missing);
                else if (TopicService.IsInternal(t.Name))
                    rp.SetError(new(ErrorCode.InvalidTopicException, $"Cannot append to internal topic {t.Name}"));
                // No log here: a partition this cluster member is not a replica of (issue 14), so not its leader either;
                // the answer carries the leader (KIP-951) as for any other non-leader.
                else if (log is null || !leadership.IsLocalLeader(t.Name, p.Index))
                    NotLeader(context, response, t.Name, rp);
                else if (request.Acks == -1 && !leadership.EnoughInSyncReplicas(t.Name, p.Index, topic.Topic!.Config.MinInSyncReplicas, out int isr))
                    rp.SetError(new(ErrorCode.NotEnoughReplicas,
                        $"The size of the current ISR : {isr} is insufficient to satisfy the min.isr requirement of {topic.Topic!.Config.MinInSyncReplicas} for partition {t.Name}-{p.Index}"));
                else
                {
                    long lastOffset = -1;
                    Append(context, request.TransactionalId, topic.Topic!, log, p.Records ?? ReadOnlyMemory<byte>.Empty, rp, ref lastOffset);
                    if (lastOffset >= 0 && leadership.Replicated)
                    {
                        leadership.LeaderAppended(log);
                        if (request.Acks == -1 && log.HighWatermark <= lastOffset)
                            (pending ??= new()).Add((log, lastOffset, LeaderEpoch(log), rp, topic.Topic!.Config.MinInSyncReplicas));
                    }
                }
            }
        }
        if (pending is not null) return WaitForIsrAsync(request, response, pending);
        return Done(request.Acks == 0 ? null : response);
    }

    /// <summary>
    /// In a cluster the leader stamps its leader epoch on each batch (Kafka's appendAsLeader), so OffsetForLeaderEpoch can
    /// tell epochs apart after a failover; a single broker keeps storing the client's value, as before.
    /// </summary>
    private int LeaderEpoch(PartitionLog log) => leadership.AppendLeaderEpoch(log.TopicName, log.Partition);

    /// <summary>
    /// acks=all in a cluster (Kafka's DelayedProduce): each appended partition completes when its high watermark passes
    /// its last record (the whole ISR has it), checked against min.insync.replicas then (NOT_ENOUGH_REPLICAS_AFTER_APPEND),
    /// with NOT_LEADER_OR_FOLLOWER as soon as this broker stops leading it at the epoch it appended under, or at the
    /// request's timeout on the broker's clock (REQUEST_TIMED_OUT; the records stay in the log, as in Kafka).
    /// </summary>
    private async ValueTask<IApiMessage?> WaitForIsrAsync(ProduceRequest request, ProduceResponse response,
        List<(PartitionLog Log, long LastOffset, int LeaderEpoch, ProduceResponse.PartitionProduceResponse Response, int MinIsr)> pending)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMilliseconds(Math.Max(0, request.TimeoutMs)), _time);
        foreach (var (log, last, epoch, rp, minIsr) in pending)
        {
            var error = await leadership.WaitForIsrAsync(log, last, epoch, timeout.Token).ConfigureAwait(false);
            if (error == ErrorCode.RequestTimedOut)
                rp.SetError(new(error, $"Timed out waiting for the in-sync replicas of {log.TopicName}-{log.Partition} to reach offset {last}"));
            else if (error != ErrorCode.None)
                rp.SetError(new(error, $"Leadership of {log.TopicName}-{log.Partition} moved while waiting for its replicas"));
            else if (!leadership.EnoughInSyncReplicas(log.TopicName, log.Partition, minIsr, out int isr))
                rp.SetError(new(ErrorCode.NotEnoughReplicasAfterAppend,
                    $"The size of the current ISR : {isr} is insufficient to satisfy the min.isr requirement of {minIsr} for partition {log.TopicName}-{log.Partition}"));
        }
        return response;
    }

    /// <summary>KIP-951: from v10 the client learns the new leader from the error itself, without a Metadata round trip.</summary>
    private void NotLeader(RequestContext context, ProduceResponse response, string topic, ProduceResponse.PartitionProduceResponse rp)
    {
        rp.SetError(ErrorCode.NotLeaderOrFollower);
        if (context.ApiVersion < 10) return;
        var current = leadership.Describe(topic, rp.Index);
        rp.CurrentLeader = new ProduceResponse.LeaderIdAndEpoch { LeaderId = current.Leader, LeaderEpoch = current.LeaderEpoch };
        if (current.Leader < 0 || cluster.Broker(current.Leader) is not { } leader) return;
        foreach (var n in response.NodeEndpoints)
            if (n.NodeId == leader.NodeId) return;
        var endpoint = leader.EndpointFor(context.ListenerName);
        response.NodeEndpoints.Add(new ProduceResponse.NodeEndpoint { NodeId = leader.NodeId, Host = endpoint.Host, Port = endpoint.Port, Rack = null });
    }

    /// <summary>
    /// LogValidator.validateKey for a compacted topic: every keyless record is reported (batch_index, message), the
    /// partition fails with INVALID_RECORD and Kafka's message, nothing is appended; the log start offset is
    /// answered as Kafka's ReplicaManager does for a RecordValidationException.
    /// </summary>
    private static bool RefuseKeyless(PartitionLog log, ReadOnlySpan<byte> batches, ProduceResponse.PartitionProduceResponse rp)
    {
        List<int>? keyless = null;
        foreach (var batch in new BatchEnumerator(batches))
            if (CompactedTopicKeys.FindKeyless(batch) is { } found) (keyless ??= new List<int>()).AddRange(found);
        if (keyless is null) return false;
        var (message, errors) = CompactedTopicKeys.Describe(log.TopicName, log.Partition, keyless);
        rp.SetError(new(ErrorCode.InvalidRecord, message));
        foreach (var (index, text) in errors)
            rp.RecordErrors.Add(new ProduceResponse.BatchIndexAndErrorMessage { BatchIndex = index, BatchIndexErrorMessage = text });
        rp.LogStartOffset = log.LogStartOffset;
        return true;
    }

    private void Append(RequestContext context, string? transactionalId, TopicLog topic, PartitionLog log, ReadOnlyMemory<byte> records, ProduceResponse.PartitionProduceResponse rp, ref long lastOffset)
    {
        var span = records.Span;
        int maxBytes = topic.Config.MaxMessageBytes;
        int offset = 0, batches = 0;
        bool legacy = false;
        var target = Recompression.TargetFor(topic.Config.CompressionType);
        var firstCompression = CompressionType.None;
        VerificationGuard? guard = null;
        while (offset < span.Length)
        {
            RecordBatchHeader header;
            int size;
            try
            {
                if (!RecordBatch.TryReadBatch(span[offset..], out header, out size))
                {
                    rp.SetError(new(ErrorCode.CorruptMessage, "Truncated record batch"));
                    return;
                }
            }
            catch (CorruptRecordException e)
            {
                rp.SetError(new(ErrorCode.CorruptMessage, e.Message));
                return;
            }
            sbyte magic = (sbyte)span[offset + RecordBatchHeader.MagicOffset];
            if (magic is < 0 or > 2)
            {
                rp.SetError(new(ErrorCode.CorruptMessage, $"Invalid magic {magic}"));
                return;
            }
            if (magic < 2)
            {
                if (context.ApiVersion >= 3)
                {
                    rp.SetError(new(ErrorCode.InvalidRecord, "Produce requests with version 3+ are only allowed to contain record batches with magic version 2"));
                    return;
                }
                legacy = true;
            }
            else
            {
                // KIP-110: zstd needs Produce v7. Kafka's ProduceRequest.validateRecords refuses a zstd batch in
                // v3-6 per partition with UNSUPPORTED_COMPRESSION_TYPE before any other record validation
                // (sarama 1.22 sends exactly that: zstd in Produce v3).
                if (batches == 0 && context.ApiVersion is >= 3 and < 7 && header.Compression == CompressionType.Zstd)
                {
                    rp.SetError(new(ErrorCode.UnsupportedCompressionType, $"Produce requests with version {context.ApiVersion} are not allowed to use ZStandard compression"));
                    return;
                }
                if (size > maxBytes)
                {
                    rp.SetError(new(ErrorCode.MessageTooLarge, $"The request included a message larger than the max message size the server will accept ({size} > {maxBytes})"));
                    return;
                }
                var result = RecordBatch.Validate(span.Slice(offset, size));
                if (!result.IsValid)
                {
                    rp.SetError(new(result.Error, result.Message ?? "Invalid record batch"));
                    return;
                }
                if (batches == 0) firstCompression = header.Compression;
                if (header.IsControl)
                {
                    rp.SetError(new(ErrorCode.InvalidRecord, "Clients are not allowed to write control records"));
                    return;
                }
                // The guard is taken before the coordinator is asked: a marker written after the answer clears it.
                if (header.IsTransactional && header.ProducerId >= 0
                    && (guard = log.MaybeStartTransactionVerification(header.ProducerId, header.ProducerEpoch)) is not null)
                {
                    var txnError = transactions.CheckProduce(transactionalId, header.ProducerId, header.ProducerEpoch, log.TopicName, log.Partition);
                    if (txnError != ErrorCode.None)
                    {
                        // Kafka's ReplicaManager: a coordinator that is busy, loading, moving or unreachable makes the
                        // batch retriable (NOT_ENOUGH_REPLICAS) rather than fatal to the producer (KIP-890).
                        if (txnError is ErrorCode.ConcurrentTransactions or ErrorCode.CoordinatorLoadInProgress or ErrorCode.CoordinatorNotAvailable
                            or ErrorCode.NotCoordinator or ErrorCode.NetworkException)
                            rp.SetError(new(ErrorCode.NotEnoughReplicas, $"Unable to verify the partition has been added to the transaction. Underlying error: {txnError}"));
                        else
                            rp.SetError(new(txnError, txnError == ErrorCode.InvalidProducerEpoch
                                ? $"Producer epoch {header.ProducerEpoch} of producer {header.ProducerId} is fenced"
                                : $"Partition {log.TopicName}-{log.Partition} is not part of an ongoing transaction of producer {header.ProducerId} with epoch {header.ProducerEpoch}"));
                        return;
                    }
                }
            }
            offset += size;
            batches++;
        }
        if (batches == 0 || (context.ApiVersion >= 3 && batches != 1))
        {
            rp.SetError(new(ErrorCode.InvalidRecord, "Produce requests with version 3+ must have exactly one record batch per partition"));
            return;
        }

        try
        {
            AppendResult appended;
            if (legacy)
            {
                // Old clients: store what they sent as one v2 batch, as Kafka does for a v2 log.
                using var converted = new PooledBufferWriter(span.Length + 128);
                int convertedCount = LegacyConverter.ToV2(span, converted, new LegacyConversionOptions { TargetCompression = target });
                if (convertedCount == 0)
                {
                    rp.SetError(new(ErrorCode.InvalidRecord, "Message set has no records"));
                    return;
                }
                if (topic.Config.Compact && RefuseKeyless(log, converted.WrittenSpan, rp)) return;
                if (converted.WrittenCount > maxBytes)
                {
                    rp.SetError(new(ErrorCode.MessageTooLarge, $"The request included a message larger than the max message size the server will accept ({converted.WrittenCount} > {maxBytes})"));
                    return;
                }
                appended = log.Append(converted.WrittenSpan, 1, LeaderEpoch(log));
            }
            else if (topic.Config.Compact && RefuseKeyless(log, span, rp))
            {
                return;
            }
            else if (target is { } codec && batches == 1 && firstCompression != codec)
            {
                using var recompressed = new PooledBufferWriter(span.Length + 128);
                Recompression.Recompress(span, codec, recompressed);
                appended = log.AppendFromClient(recompressed.WrittenSpan, 1, guard, LeaderEpoch(log));
            }
            else
            {
                appended = log.AppendFromClient(span, batches, guard, LeaderEpoch(log));
            }
            rp.BaseOffset = appended.BaseOffset;
            lastOffset = appended.LastOffset;
            rp.LogAppendTimeMs = appended.LogAppendTime;
            rp.LogStartOffset = appended.LogStartOffset;
        }
        catch (ProtocolException e)
        {
            rp.SetError(new(ErrorCode.CorruptMessage, e.Message));
        }
        catch (ProducerStateException e)
        {
            rp.SetError(e.KafkaError);
        }
        catch (StorageErrorException e)
        {
            // The append path answers only these two as themselves; anything else Storage reports while appending
            // (a partition closed by a concurrent delete, an I/O failure) is the partition's storage error, as in Kafka.
            rp.SetError(e.Code is ErrorCode.MessageTooLarge or ErrorCode.CorruptMessage ? e.KafkaError : new(ErrorCode.KafkaStorageError, e.Message));
        }
    }
}
