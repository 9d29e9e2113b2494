using Kayak.Broker.Handlers;
using Kayak.Protocol.Messages;
using Kayak.Protocol.Records;

namespace Kayak.Broker.Security;

internal static class ProduceAuthorization
{
    /// <summary>
    /// KafkaApis.handleProduceRequest: a request whose records are transactional (RequestUtils.hasTransactionalRecords
    /// looks at each partition's first batch) needs a transactional id the principal may WRITE.
    /// </summary>
    public static bool TransactionDenied(IAuthorizer authorizer, RequestContext context, ProduceRequest request)
    {
        if (authorizer.Acls is null || !HasTransactionalRecords(request)) return false;
        return request.TransactionalId is not { } id || !authorizer.TransactionalId(context, AclOperation.Write, id);
    }

    private static bool HasTransactionalRecords(ProduceRequest request)
    {
        foreach (var t in request.TopicData)
            foreach (var p in t.PartitionData)
            {
                var span = (p.Records ?? ReadOnlyMemory<byte>.Empty).Span;
                if (span.Length < RecordBatchHeader.AttributesOffset + 2 || span[RecordBatchHeader.MagicOffset] != 2) continue;
                if ((span[RecordBatchHeader.AttributesOffset + 1] & 0x10) != 0) return true; // big-endian int16, bit 4
            }
        return false;
    }
}
