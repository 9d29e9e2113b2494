// DescribeProducers (key 61), v0 (KIP-664): the active idempotent/transactional producers of each partition
// as its producer state knows them (epoch, last sequence, last timestamp, open transaction's first offset).
// ACLs: READ on each topic (TOPIC_AUTHORIZATION_FAILED).
using Kayak.Broker.Security;
using Kayak.Broker.Services;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class DescribeProducersHandler(ITopicCatalog catalog, IAuthorizer authorizer) : ApiHandler<DescribeProducersRequest>
{
    public override ApiKey Key => ApiKey.DescribeProducers;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, DescribeProducersRequest request)
    {
        var response = new DescribeProducersResponse();
        foreach (var t in request.Topics)
        {
            var rt = new DescribeProducersResponse.TopicResponse { Name = t.Name };
            response.Topics.Add(rt);
            if (!authorizer.Topic(context, AclOperation.Read, t.Name))
            {
                foreach (int p in t.PartitionIndexes)
                    rt.Partitions.Add(new DescribeProducersResponse.PartitionResponse { PartitionIndex = p }.SetError(ErrorCode.TopicAuthorizationFailed));
                continue;
            }
            catalog.AnswerPartitions(t.Name, t.PartitionIndexes, rt.Partitions, 0, static (_, topic, p) => Describe(topic, p));
        }
        return Done(response);
    }

    private static DescribeProducersResponse.PartitionResponse Describe(TopicLookup topic, int partition)
    {
        var rp = new DescribeProducersResponse.PartitionResponse { PartitionIndex = partition };
        if (!topic.TryGetPartition(partition, out var log, out var missing)) return rp.SetError(missing);
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
        return rp;
    }
}
