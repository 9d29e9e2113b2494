using Kayak.Broker.Cluster;
using Kayak.Broker.Config;
using Kayak.Protocol;
using NUnit.Framework;

namespace Kayak.Broker.Tests;

/// <summary>Issue 14: the controller's ElectLeaders (KIP-183, KIP-460) on metadata set up by hand, without sockets.</summary>
public class ElectLeadersControllerTests
{
    private string _dir = "";
    private ClusterController _controller = null!;

    [SetUp]
    public void SetUp()
    {
        _dir = Path.Combine(Path.GetTempPath(), "kayak-elect-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
        new ClusterMetadata("cluster", new Dictionary<string, TopicAssignment>
        {
            ["t"] = new("t", Uuid.NewRandom(), [new PartitionAssignment([1, 2, 3], 1, 0, [1, 2, 3])]),
        }).Save(Path.Combine(_dir, ClusterMetadata.FileName));
        _controller = new ClusterController(_dir);
        for (int n = 1; n <= 3; n++) _controller.SetLive(n, [new ListenerEndpoint("PLAINTEXT", "127.0.0.1", 9091 + n)]);
    }

    [TearDown]
    public void TearDown()
    {
        try { Directory.Delete(_dir, recursive: true); }
        catch (IOException) { }
    }

    private PartitionAssignment Partition => _controller.Topic("t")!.Partitions[0];

    [Test]
    public void PreferredElectionReturnsLeadershipToFirstReplicaOnceBackInIsr()
    {
        Assert.That(_controller.Elect("t", 0, unclean: false).Code, Is.EqualTo(ErrorCode.ElectionNotNeeded));
        _controller.Detach(1);
        Assert.That(Partition.Leader, Is.EqualTo(2));
        Assert.That(_controller.Elect("t", 0, unclean: false).Code, Is.EqualTo(ErrorCode.PreferredLeaderNotAvailable));
        _controller.SetLive(1, [new ListenerEndpoint("PLAINTEXT", "127.0.0.1", 9092)]);
        // Running but not yet back in the ISR.
        Assert.That(_controller.Elect("t", 0, unclean: false).Code, Is.EqualTo(ErrorCode.PreferredLeaderNotAvailable));
        Assert.That(_controller.ChangeIsr("t", 0, 2, Partition.LeaderEpoch, [2, 3, 1]), Is.True);
        int epoch = Partition.LeaderEpoch;
        Assert.That(_controller.Elect("t", 0, unclean: false).Code, Is.EqualTo(ErrorCode.None));
        Assert.That(Partition.Leader, Is.EqualTo(1));
        Assert.That(Partition.LeaderEpoch, Is.EqualTo(epoch + 1));
        Assert.That(_controller.Elect("t", 0, unclean: false).Code, Is.EqualTo(ErrorCode.ElectionNotNeeded));
    }

    [Test]
    public void UncleanElectionPicksRunningReplicaOnlyForLeaderlessPartition()
    {
        Assert.That(_controller.Elect("t", 0, unclean: true).Code, Is.EqualTo(ErrorCode.ElectionNotNeeded));
        _controller.Detach(2);
        _controller.Detach(3);
        _controller.Detach(1); // last ISR member: the partition is offline
        Assert.That(Partition.Leader, Is.EqualTo(-1));
        Assert.That(_controller.Elect("t", 0, unclean: true).Code, Is.EqualTo(ErrorCode.EligibleLeadersNotAvailable));
        _controller.SetLive(3, [new ListenerEndpoint("PLAINTEXT", "127.0.0.1", 9094)]);
        Assert.That(_controller.Elect("t", 0, unclean: true).Code, Is.EqualTo(ErrorCode.None));
        Assert.That(Partition.Leader, Is.EqualTo(3));
        Assert.That(Partition.Isr, Is.EqualTo(new[] { 3 }));
        Assert.That(_controller.Elect("nope", 0, unclean: true).Code, Is.EqualTo(ErrorCode.UnknownTopicOrPartition));
    }
}
