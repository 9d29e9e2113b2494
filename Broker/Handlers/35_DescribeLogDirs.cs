// DescribeLogDirs (key 35), v0-4. One result per configured log dir (absolute path, as Kafka reports
// File.getAbsolutePath), each listing the requested partitions that live in it with their size in bytes.
// Null Topics means every partition; requested partitions that do not exist are left out, as Kafka does.
// OffsetLag is 0 (no future replicas, no inter-dir moves; IsFutureKey false). v3+ carries the top-level
// ErrorCode (always NONE; no ACLs so never CLUSTER_AUTHORIZATION_FAILED); v4+ total and usable bytes of the
// dir's file system (KIP-827), -1 when the drive cannot be queried. A dir that is missing or unreadable
// answers KAFKA_STORAGE_ERROR for that dir.
// ACLs: DESCRIBE on the cluster, else no log dirs (and CLUSTER_AUTHORIZATION_FAILED from v3).
using Kayak.Broker.Security;
using Kayak.Broker.Services;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using Kayak.Storage;

namespace Kayak.Broker.Handlers;

internal sealed class DescribeLogDirsHandler(ITopicCatalog catalog, IReadOnlyList<string> logDirs, IAuthorizer authorizer) : ApiHandler<DescribeLogDirsRequest>
{
    public override ApiKey Key => ApiKey.DescribeLogDirs;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, DescribeLogDirsRequest request)
    {
        var response = new DescribeLogDirsResponse();
        if (!authorizer.Cluster(context, AclOperation.Describe))
        {
            // KafkaApis: no log dirs, and from v3 the top-level error.
            if (context.ApiVersion >= 3) response.SetError(ErrorCode.ClusterAuthorizationFailed);
            return Done(response);
        }
        var results = new DescribeLogDirsResponse.DescribeLogDirsResult[logDirs.Count];
        for (int i = 0; i < logDirs.Count; i++)
        {
            var path = Path.GetFullPath(logDirs[i]);
            var result = new DescribeLogDirsResponse.DescribeLogDirsResult { LogDir = path };
            if (!Directory.Exists(path)) result.SetError(ErrorCode.KafkaStorageError);
            else if (context.ApiVersion >= 4) FillSpace(path, result);
            results[i] = result;
            response.Results.Add(result);
        }

        if (request.Topics is null)
        {
            foreach (var topic in catalog.All)
                foreach (var p in topic.Partitions)
                    if (p is not null) Add(results, logDirs, topic, p); // null: not a replica here (a cluster member)
        }
        else
        {
            foreach (var t in request.Topics)
            {
                if (!catalog.TryGet(t.Topic, out var topic)) continue;
                foreach (int index in t.Partitions)
                    if (topic.GetPartition(index) is { } p) Add(results, logDirs, topic, p);
            }
        }
        return Done(response);
    }

    private static void Add(DescribeLogDirsResponse.DescribeLogDirsResult[] results, IReadOnlyList<string> logDirs, TopicLog topic, PartitionLog log)
    {
        int dir = FindDir(logDirs, topic.Name, log.Partition);
        if (dir < 0 || results[dir].ErrorCode != 0) return;
        var result = results[dir];
        DescribeLogDirsResponse.DescribeLogDirsTopic? rt = null;
        foreach (var existing in result.Topics)
            if (existing.Name == topic.Name) { rt = existing; break; }
        if (rt is null)
        {
            rt = new DescribeLogDirsResponse.DescribeLogDirsTopic { Name = topic.Name };
            result.Topics.Add(rt);
        }
        foreach (var existing in rt.Partitions)
            if (existing.PartitionIndex == log.Partition) return; // asked twice: Kafka answers each partition once
        rt.Partitions.Add(new DescribeLogDirsResponse.DescribeLogDirsPartition
        {
            PartitionIndex = log.Partition,
            PartitionSize = log.Size,
            OffsetLag = 0,
            IsFutureKey = false,
        });
    }

    /// <summary>Which log dir holds the partition: Storage lays partitions out as &lt;dir&gt;/&lt;topic&gt;-&lt;n&gt;.</summary>
    private static int FindDir(IReadOnlyList<string> logDirs, string topic, int partition)
    {
        if (logDirs.Count == 1) return 0;
        string name = topic + "-" + partition.ToString(System.Globalization.CultureInfo.InvariantCulture);
        for (int i = 0; i < logDirs.Count; i++)
            if (Directory.Exists(Path.Combine(logDirs[i], name))) return i;
        return -1;
    }

    private static void FillSpace(string path, DescribeLogDirsResponse.DescribeLogDirsResult result)
    {
        try
        {
            var drive = new DriveInfo(path);
            result.TotalBytes = drive.TotalSize;
            result.UsableBytes = drive.AvailableFreeSpace;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            result.TotalBytes = -1;
            result.UsableBytes = -1;
        }
    }
}
