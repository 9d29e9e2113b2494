using NUnit.Framework;
using System.Buffers;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Coordinator.Tests;

/// <summary>A coordinator on a manual clock and an in-memory log, with request shorthands.</summary>
internal sealed class Harness : IDisposable
{
    public const string Group = "g1";
    public const int Session = 10_000;
    public const int Rebalance = 30_000;

    public ManualTimeProvider Time { get; }
    public InMemoryGroupLog Log { get; }
    public GroupCoordinator Coordinator { get; }

    public Harness(InMemoryGroupLog? log = null, ManualTimeProvider? time = null, int initialDelayMs = 3000, int maxGroupSize = int.MaxValue)
    {
        Time = time ?? new ManualTimeProvider();
        Log = log ?? new InMemoryGroupLog();
        Coordinator = new GroupCoordinator(Options(Time, initialDelayMs, maxGroupSize), Log);
        Coordinator.Load();
    }

    /// <summary>With options built on the harness's manual clock.</summary>
    public Harness(Func<ManualTimeProvider, GroupCoordinatorOptions> options)
    {
        Time = new ManualTimeProvider();
        Log = new InMemoryGroupLog();
        Coordinator = new GroupCoordinator(options(Time), Log);
        Coordinator.Load();
    }

    /// <summary>With options on the harness's clock, over a log that may refuse appends (its inner log is <see cref="Log"/>).</summary>
    public Harness(Func<ManualTimeProvider, GroupCoordinatorOptions> options, FaultyGroupLog log)
    {
        Time = new ManualTimeProvider();
        Log = log.Inner;
        Coordinator = new GroupCoordinator(options(Time), log);
        Coordinator.Load();
    }

    /// <summary>Over another log (Storage); <see cref="Log"/> is then unavailable.</summary>
    public Harness(IGroupLog groupLog, ManualTimeProvider time)
    {
        Time = time;
        Log = null!;
        Coordinator = new GroupCoordinator(Options(Time), groupLog);
        Coordinator.Load();
    }

    public static GroupCoordinatorOptions Options(ManualTimeProvider time, int initialDelayMs = 3000, int maxGroupSize = int.MaxValue) => new()
    {
        Time = time,
        InitialRebalanceDelayMs = initialDelayMs,
        MaxGroupSize = maxGroupSize,
        OffsetsRetentionMinutes = 60,
        OffsetsRetentionCheckIntervalMs = 60_000,
    };

    public static byte[] Subscription(params string[] topics)
    {
        var sub = new ConsumerProtocolSubscription { Topics = new List<string>(topics) };
        var buffer = new ArrayBufferWriter<byte>();
        var w = new KafkaWriter(buffer);
        w.WriteInt16(1);
        sub.Write(ref w, 1);
        w.Flush();
        return buffer.WrittenSpan.ToArray();
    }

    public Task<JoinGroupResponse> Join(string memberId = "", string? instanceId = null, short version = 7,
        string group = Group, string clientId = "client", byte[]? metadata = null, string protocol = "range", params string[] more)
    {
        var request = new JoinGroupRequest
        {
            GroupId = group,
            SessionTimeoutMs = Session,
            RebalanceTimeoutMs = Rebalance,
            MemberId = memberId,
            GroupInstanceId = instanceId,
            ProtocolType = "consumer",
        };
        request.Protocols.Add(new JoinGroupRequest.JoinGroupRequestProtocol { Name = protocol, Metadata = metadata ?? Subscription("t1") });
        foreach (var p in more) request.Protocols.Add(new JoinGroupRequest.JoinGroupRequestProtocol { Name = p, Metadata = metadata ?? Subscription("t1") });
        return Coordinator.JoinGroupAsync(request, version, new ClientInfo(clientId, "/127.0.0.1"));
    }

    /// <summary>The v4+ handshake: first JoinGroup gets MEMBER_ID_REQUIRED and an id, the second one parks.</summary>
    public (string MemberId, Task<JoinGroupResponse> Join) JoinDynamic(string group = Group, string clientId = "client", byte[]? metadata = null)
    {
        var first = Join(group: group, clientId: clientId, metadata: metadata);
        Assert.That(first.IsCompleted, Is.True);
        Assert.That(first.R().ErrorCode, Is.EqualTo(GroupErrors.MemberIdRequired));
        string id = first.R().MemberId;
        return (id, Join(id, group: group, clientId: clientId, metadata: metadata));
    }

    public Task<SyncGroupResponse> Sync(string memberId, int generation, Dictionary<string, byte[]>? assignments = null,
        string? instanceId = null, short version = 5, string group = Group)
    {
        var request = new SyncGroupRequest { GroupId = group, GenerationId = generation, MemberId = memberId, GroupInstanceId = instanceId };
        if (version >= 5) { request.ProtocolType = "consumer"; request.ProtocolName = "range"; }
        if (assignments is not null)
            foreach (var (m, a) in assignments) request.Assignments.Add(new SyncGroupRequest.SyncGroupRequestAssignment { MemberId = m, Assignment = a });
        return Coordinator.SyncGroupAsync(request, version);
    }

    public short Heartbeat(string memberId, int generation, string? instanceId = null, string group = Group) =>
        Coordinator.Heartbeat(new HeartbeatRequest { GroupId = group, MemberId = memberId, GenerationId = generation, GroupInstanceId = instanceId }).ErrorCode;

    public LeaveGroupResponse Leave(string memberId, string? instanceId = null, short version = 4, string group = Group)
    {
        var request = new LeaveGroupRequest { GroupId = group };
        if (version >= 3) request.Members.Add(new LeaveGroupRequest.MemberIdentity { MemberId = memberId, GroupInstanceId = instanceId });
        else request.MemberId = memberId;
        return Coordinator.LeaveGroup(request, version);
    }

    public OffsetCommitResponse Commit(string topic, int partition, long offset, string memberId = "", int generation = -1,
        string group = Group, short version = 8, string? metadata = "", string? instanceId = null)
    {
        var request = new OffsetCommitRequest { GroupId = group, MemberId = memberId, GenerationIdOrMemberEpoch = generation, GroupInstanceId = instanceId };
        var t = new OffsetCommitRequest.OffsetCommitRequestTopic { Name = topic };
        t.Partitions.Add(new OffsetCommitRequest.OffsetCommitRequestPartition { PartitionIndex = partition, CommittedOffset = offset, CommittedMetadata = metadata });
        request.Topics.Add(t);
        return Coordinator.CommitOffsets(request, version);
    }

    public static short CommitError(OffsetCommitResponse r) => r.Topics[0].Partitions[0].ErrorCode;

    public long Fetched(string topic, int partition, string group = Group)
    {
        var request = new OffsetFetchRequest { GroupId = group, Topics = [new OffsetFetchRequest.OffsetFetchRequestTopic { Name = topic, PartitionIndexes = [partition] }] };
        var response = Coordinator.FetchOffsets(request, 7);
        Assert.That(response.ErrorCode, Is.EqualTo(GroupErrors.None));
        return response.Topics[0].Partitions[0].CommittedOffset;
    }

    /// <summary>One member alone in the group, through join, initial delay and sync: returns (id, generation).</summary>
    public (string MemberId, int Generation) StableSingle(string group = Group, byte[]? assignment = null, byte[]? metadata = null)
    {
        var (id, join) = JoinDynamic(group, metadata: metadata);
        Time.AdvanceMs(3000);
        Assert.That(join.IsCompleted, Is.True, "the initial rebalance delay completes the join");
        var j = join.R();
        Assert.That(j.ErrorCode, Is.EqualTo(GroupErrors.None));
        var sync = Sync(id, j.GenerationId, new() { [id] = assignment ?? [1, 2, 3] }, group: group);
        Assert.That(sync.IsCompleted, Is.True);
        Assert.That(sync.R().ErrorCode, Is.EqualTo(GroupErrors.None));
        return (id, j.GenerationId);
    }

    public GroupState State(string group = Group) => Coordinator.Describe(group)?.State ?? GroupState.Dead;

    public void Dispose() => Coordinator.Dispose();
}

internal static class TaskTestExtensions
{
    /// <summary>The result of a task that must already have completed (never blocks a test).</summary>
    public static T R<T>(this Task<T> task)
    {
        Assert.That(task.IsCompleted, Is.True, "the response should have been sent by now");
        return task.Result;
    }
}
