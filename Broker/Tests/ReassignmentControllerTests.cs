using Kayak.Broker.Cluster;
using Kayak.Broker.Config;
using Kayak.Protocol;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>Issue 14: the controller's partition reassignments (KIP-455) on metadata set up by hand, without sockets.</summary>
public class ReassignmentControllerTests
{
    private string _dir = "";
    private ClusterController _controller = null!;

    [SetUp]
    public void SetUp()
    {
        _dir = Path.Combine(Path.GetTempPath(), "kayak-reassign-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
        new ClusterMetadata("cluster", new Dictionary<string, TopicAssignment>
        {
            ["t"] = new("t", Uuid.NewRandom(), [new PartitionAssignment([1, 2], 1, 0, [1, 2])]),
        }).Save(Path.Combine(_dir, ClusterMetadata.FileName));
        _controller = new ClusterController(_dir);
        for (int n = 1; n <= 4; n++) _controller.SetLive(n, [new ListenerEndpoint("PLAINTEXT", "127.0.0.1", 9091 + n)]);
    }

    [TearDown]
    public void TearDown()
    {
        try { Directory.Delete(_dir, recursive: true); }
        catch (IOException) { }
    }

    private PartitionAssignment Partition => _controller.Topic("t")!.Partitions[0];

    [Test]
    public void NewReplicasAreAddingUntilInIsrThenOldOnesLeaveAndLeadershipMoves()
    {
        Assert.That(_controller.Reassign("t", 0, [3, 4]).Code, Is.EqualTo(ErrorCode.None));
        Assert.That(Partition.Replicas, Is.EqualTo(new[] { 3, 4, 1, 2 }));
        Assert.That(Partition.Adding, Is.EqualTo(new[] { 3, 4 }));
        Assert.That(Partition.Removing, Is.EqualTo(new[] { 1, 2 }));
        Assert.That(Partition.Leader, Is.EqualTo(1));
        var listed = _controller.Reassignments(null);
        Assert.That(listed, Has.Count.EqualTo(1));
        Assert.That(listed[0].Adding, Is.EqualTo(new[] { 3, 4 }));

        // One new replica caught up: not complete yet.
        Assert.That(_controller.ChangeIsr("t", 0, 1, 0, [1, 2, 3]), Is.True);
        Assert.That(Partition.Reassigning, Is.True);
        Assert.That(Partition.Leader, Is.EqualTo(1));
        // Both in the ISR: the old replicas go, the removed leader hands over to the first target replica.
        Assert.That(_controller.ChangeIsr("t", 0, 1, 0, [1, 2, 3, 4]), Is.True);
        Assert.That(Partition.Reassigning, Is.False);
        Assert.That(Partition.Replicas, Is.EqualTo(new[] { 3, 4 }));
        Assert.That(Partition.Isr, Is.EqualTo(new[] { 3, 4 }));
        Assert.That(Partition.Leader, Is.EqualTo(3));
        Assert.That(Partition.LeaderEpoch, Is.EqualTo(1));
        Assert.That(_controller.Reassignments(null), Is.Empty);
    }

    [Test]
    public void InProgressReassignmentIsPersistedAndCancelRestoresOriginalReplicas()
    {
        Assert.That(_controller.Reassign("t", 0, [1, 3]).Code, Is.EqualTo(ErrorCode.None));
        var reloaded = new ClusterController(_dir);
        var p = reloaded.Topic("t")!.Partitions[0];
        Assert.That(p.Replicas, Is.EqualTo(new[] { 1, 3, 2 }));
        Assert.That(p.Adding, Is.EqualTo(new[] { 3 }));
        Assert.That(p.Removing, Is.EqualTo(new[] { 2 }));

        Assert.That(_controller.Reassign("t", 0, null).Code, Is.EqualTo(ErrorCode.None));
        Assert.That(Partition.Replicas, Is.EqualTo(new[] { 1, 2 }));
        Assert.That(Partition.Isr, Is.EqualTo(new[] { 1, 2 }));
        Assert.That(Partition.Reassigning, Is.False);
        Assert.That(_controller.Reassign("t", 0, null).Code, Is.EqualTo(ErrorCode.NoReassignmentInProgress));
    }

    [Test]
    public void RemovingOnlyCompletesAtOnce()
    {
        Assert.That(_controller.Reassign("t", 0, [2]).Code, Is.EqualTo(ErrorCode.None));
        Assert.That(Partition.Reassigning, Is.False);
        Assert.That(Partition.Replicas, Is.EqualTo(new[] { 2 }));
        Assert.That(Partition.Isr, Is.EqualTo(new[] { 2 }));
        Assert.That(Partition.Leader, Is.EqualTo(2));
    }

    [Test]
    public void InvalidTargetsAndUnknownPartitionsAreRefusedWithKafkasErrors()
    {
        Assert.That(_controller.Reassign("t", 0, []).Code, Is.EqualTo(ErrorCode.InvalidReplicaAssignment));
        var dup = _controller.Reassign("t", 0, [3, 3]);
        Assert.That(dup.Code, Is.EqualTo(ErrorCode.InvalidReplicaAssignment));
        Assert.That(dup.Message, Is.EqualTo("The manual partition assignment includes the broker 3 more than once."));
        var unknown = _controller.Reassign("t", 0, [1, 9]);
        Assert.That(unknown.Message, Is.EqualTo("The manual partition assignment includes broker 9, but no such broker is registered."));
        Assert.That(_controller.Reassign("nope", 0, [1]).Code, Is.EqualTo(ErrorCode.UnknownTopicOrPartition));
        Assert.That(_controller.Reassign("t", 5, [1]).Code, Is.EqualTo(ErrorCode.UnknownTopicOrPartition));
        Assert.That(Partition.Replicas, Is.EqualTo(new[] { 1, 2 }));
        Assert.That(_controller.Reassignments([("nope", [0]), ("t", [0, 7])]), Is.Empty);
    }
}
