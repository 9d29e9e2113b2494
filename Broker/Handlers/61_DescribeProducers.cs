// DescribeProducers (key 61), v0 (KIP-664): the active idempotent/transactional producers of each partition
// as its producer state knows them (epoch, last sequence, last timestamp, open transaction's first offset).
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

public sealed class DescribeProducersHandler : ApiHandler<DescribeProducersRequest>
{
    public override ApiKey Key => ApiKey.DescribeProducers;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, DescribeProducersRequest request)
    {
        var response = new DescribeProducersResponse();
        foreach (var t in request.Topics)
        {
            var rt = new DescribeProducersResponse.TopicResponse { Name = t.Name };
            response.Topics.Add(rt);
            context.Broker.Logs.TryGetTopic(t.Name, out var topic);
            foreach (int p in t.PartitionIndexes)
            {
                var rp = new DescribeProducersResponse.PartitionResponse { PartitionIndex = p };
                rt.Partitions.Add(rp);
                var log = topic?.GetPartition(p);
                if (log is null)
                {
                    rp.ErrorCode = (short)ErrorCode.UnknownTopicOrPartition;
                    continue;
                }
                foreach (var e in log.ActiveProducers())
                    rp.ActiveProducers.Add(new DescribeProducersResponse.ProducerState
                    {
                        ProducerId = e.ProducerId,
                        ProducerEpoch = e.ProducerEpoch,
                        LastSequence = e.LastSeq,
                        LastTimestamp = e.LastTimestamp,
                        CoordinatorEpoch = e.CoordinatorEpoch,
                        CurrentTxnStartOffset = e.CurrentTxnFirstOffset,
                    });
            }
        }
        return Done(response);
    }
}
