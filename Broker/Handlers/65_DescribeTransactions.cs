// DescribeTransactions (key 65), v0 (KIP-664): state, timeout, start time, producer id/epoch and partitions
// of each transactional id; unknown ids get TRANSACTIONAL_ID_NOT_FOUND.
// ACLs: DESCRIBE on each transactional id (TRANSACTIONAL_ID_AUTHORIZATION_FAILED); only topics it may DESCRIBE are listed.
using Kayak.Broker.Security;
using Kayak.Coordinator.Transactions;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

internal sealed class DescribeTransactionsHandler(TransactionCoordinator transactions, IAuthorizer authorizer) : ApiHandler<DescribeTransactionsRequest>
{
    public override ApiKey Key => ApiKey.DescribeTransactions;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, DescribeTransactionsRequest request)
    {
        var response = new DescribeTransactionsResponse();
        foreach (var id in request.TransactionalIds)
        {
            var d = transactions.Describe(id);
            var s = new DescribeTransactionsResponse.TransactionStateData { TransactionalId = id };
            response.TransactionStates.Add(s);
            if (!authorizer.TransactionalId(context, AclOperation.Describe, id))
            {
                s.SetError(ErrorCode.TransactionalIdAuthorizationFailed);
                continue;
            }
            if (d is null)
            {
                s.SetError(ErrorCode.TransactionalIdNotFound);
                continue;
            }
            s.TransactionState = TransactionMetadata.StateName(d.State);
            s.TransactionTimeoutMs = d.TimeoutMs;
            s.TransactionStartTimeMs = d.StartTimestampMs;
            s.ProducerId = d.ProducerId;
            s.ProducerEpoch = d.ProducerEpoch;
            var byTopic = new Dictionary<string, DescribeTransactionsResponse.TopicData>(StringComparer.Ordinal);
            foreach (var p in d.Partitions)
            {
                if (!authorizer.Topic(context, AclOperation.Describe, p.Topic)) continue; // only topics the principal may DESCRIBE
                if (!byTopic.TryGetValue(p.Topic, out var td))
                {
                    byTopic[p.Topic] = td = new DescribeTransactionsResponse.TopicData { Topic = p.Topic };
                    s.Topics.Add(td);
                }
                td.Partitions.Add(p.Partition);
            }
        }
        return Done(response);
    }
}
