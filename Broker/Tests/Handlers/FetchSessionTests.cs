using Kayak.Broker.Handlers;
using Kayak.Protocol;
using Kayak.Protocol.Messages;
using Microsoft.Extensions.Logging.Abstractions;
using NUnit.Framework;

namespace Kayak.Broker.Tests.Handlers;

/// <summary>
/// Fetch called directly, incremental fetch sessions (KIP-227) in particular: epoch 0 opens a session, later epochs
/// send only what changed and get back only partitions with news, forgotten partitions leave the session, and a
/// wrong epoch or an unknown session is a top-level error. MaxWaitMs 0 everywhere: nothing here waits.
/// </summary>
public class FetchSessionTests
{
    private const short Version = 12; // names topics (v13+ uses ids, covered separately)

    private static FetchHandler Handler(ServiceHarness h) => new(h.Catalog, h.Sessions, TimeProvider.System, NullLogger.Instance, h.Leadership, h.Cluster);

    private static FetchRequest Request(int sessionId, int epoch, params (string Topic, int Partition, long Offset)[] partitions)
    {
        var request = new FetchRequest { SessionId = sessionId, SessionEpoch = epoch, MaxWaitMs = 0, MinBytes = 1, MaxBytes = 1 << 20 };
        foreach (var group in partitions.GroupBy(p => p.Topic))
            request.Topics.Add(new FetchRequest.FetchTopic
            {
                Topic = group.Key,
                Partitions = group.Select(p => new FetchRequest.FetchPartition { Partition = p.Partition, FetchOffset = p.Offset, PartitionMaxBytes = 1 << 20 }).ToList(),
            });
        return request;
    }

    private static async Task<FetchResponse> Fetch(FetchHandler handler, FetchRequest request, short version = Version)
    {
        var result = await handler.HandleAsync(ServiceHarness.Context(ApiKey.Fetch, version), request);
        var response = (FetchResponse)result.Message!;
        // The response owns the slices it carries: exactly one segment per partition with records.
        int withRecords = response.Responses.Sum(t => t.Partitions.Count(p => p.Records is { Length: > 0 } r && (result.Segments?.TryFind(r, out _) ?? false)));
        Assert.That(withRecords, Is.EqualTo(response.Responses.Sum(t => t.Partitions.Count(p => p.Records is { Length: > 0 }))));
        result.Segments?.Dispose(); // what the connection does once written: the fetched slices are released
        return response;
    }

    /// <summary>Partition → (high watermark, bytes of records) of every partition in the response.</summary>
    private static Dictionary<string, (long HighWatermark, int Bytes)> Answered(FetchResponse response) =>
        response.Responses.SelectMany(t => t.Partitions.Select(p => ($"{t.Topic}-{p.PartitionIndex}", (p.HighWatermark, p.Records?.Length ?? 0))))
            .ToDictionary(x => x.Item1, x => x.Item2);

    [Test]
    public async Task FullFetchWithoutASessionAnswersEveryPartitionAndOpensNothing()
    {
        using var h = new ServiceHarness();
        var topic = h.CreateTopic("t", 2);
        ServiceHarness.Append(topic.Partitions[0], 3);
        var handler = Handler(h);

        var response = await Fetch(handler, Request(0, -1, ("t", 0, 0), ("t", 1, 0)));

        Assert.That((ErrorCode)response.ErrorCode, Is.EqualTo(ErrorCode.None));
        Assert.That(response.SessionId, Is.EqualTo(0));
        var answered = Answered(response);
        Assert.That(answered.Keys, Is.EquivalentTo(new[] { "t-0", "t-1" }));
        Assert.That(answered["t-0"].HighWatermark, Is.EqualTo(3));
        Assert.That(answered["t-0"].Bytes, Is.GreaterThan(0));
    }

    [Test]
    public async Task IncrementalFetchAnswersOnlyPartitionsWithNews()
    {
        using var h = new ServiceHarness();
        var topic = h.CreateTopic("t", 3);
        ServiceHarness.Append(topic.Partitions[0], 2);
        var handler = Handler(h);

        // Epoch 0: a full fetch that creates the session; every partition is answered.
        var created = await Fetch(handler, Request(0, 0, ("t", 0, 0), ("t", 1, 0), ("t", 2, 0)));
        Assert.That(created.SessionId, Is.Not.EqualTo(0));
        Assert.That(Answered(created).Keys, Is.EquivalentTo(new[] { "t-0", "t-1", "t-2" }));
        int session = created.SessionId;

        // Epoch 1, the client moved past what it read on t-0 and sends only that: nothing has news.
        var quiet = await Fetch(handler, Request(session, 1, ("t", 0, 2)));
        Assert.That((ErrorCode)quiet.ErrorCode, Is.EqualTo(ErrorCode.None));
        Assert.That(quiet.SessionId, Is.EqualTo(session));
        Assert.That(Answered(quiet), Is.Empty, "unchanged partitions are left out");

        // An append to t-2 (not sent in this request: the session remembers it) is news; t-0 and t-1 are not.
        ServiceHarness.Append(topic.Partitions[2], 1);
        var news = Answered(await Fetch(handler, Request(session, 2)));
        Assert.That(news.Keys, Is.EquivalentTo(new[] { "t-2" }));
        Assert.That(news["t-2"].HighWatermark, Is.EqualTo(1));
        Assert.That(news["t-2"].Bytes, Is.GreaterThan(0));

        // The client moves t-2 to its end: no data, and the high watermark it was told has not moved.
        var again = Answered(await Fetch(handler, Request(session, 3, ("t", 2, 1))));
        Assert.That(again, Is.Empty, "t-2 read to its end and its high watermark was already sent");
    }

    [Test]
    public async Task ForgottenPartitionsLeaveTheSession()
    {
        using var h = new ServiceHarness();
        var topic = h.CreateTopic("t", 2);
        var handler = Handler(h);
        int session = (await Fetch(handler, Request(0, 0, ("t", 0, 0), ("t", 1, 0)))).SessionId;

        var forget = Request(session, 1);
        forget.ForgottenTopicsData.Add(new FetchRequest.ForgottenTopic { Topic = "t", Partitions = [1] });
        Assert.That(Answered(await Fetch(handler, forget)), Is.Empty);

        ServiceHarness.Append(topic.Partitions[0], 1);
        ServiceHarness.Append(topic.Partitions[1], 1);
        var news = Answered(await Fetch(handler, Request(session, 2)));
        Assert.That(news.Keys, Is.EquivalentTo(new[] { "t-0" }), "t-1 was forgotten; its append is not reported");
    }

    [Test]
    public async Task PartitionsAddedLaterAreAnsweredAndUnknownOnesAreErrors()
    {
        using var h = new ServiceHarness();
        h.CreateTopic("t", 2);
        var handler = Handler(h);
        int session = (await Fetch(handler, Request(0, 0, ("t", 0, 0)))).SessionId;

        var added = await Fetch(handler, Request(session, 1, ("t", 1, 0), ("gone", 0, 0)));

        var byName = added.Responses.SelectMany(t => t.Partitions.Select(p => (Name: $"{t.Topic}-{p.PartitionIndex}", Error: (ErrorCode)p.ErrorCode))).ToList();
        Assert.That(byName, Is.EquivalentTo(new[] { ("t-1", ErrorCode.None), ("gone-0", ErrorCode.UnknownTopicOrPartition) }),
            "a newly added partition is news (its high watermark was never sent); an error always is");
    }

    [Test]
    public async Task WrongEpochAndUnknownSessionAreTopLevelErrors()
    {
        using var h = new ServiceHarness();
        h.CreateTopic("t", 1);
        var handler = Handler(h);
        int session = (await Fetch(handler, Request(0, 0, ("t", 0, 0)))).SessionId;

        var skipped = await Fetch(handler, Request(session, 2));
        Assert.That(((ErrorCode)skipped.ErrorCode, skipped.SessionId, skipped.Responses.Count), Is.EqualTo((ErrorCode.InvalidFetchSessionEpoch, 0, 0)));

        // A refused epoch does not advance the session: epoch 1 is still the next one.
        var next = await Fetch(handler, Request(session, 1));
        Assert.That((ErrorCode)next.ErrorCode, Is.EqualTo(ErrorCode.None));

        var unknown = await Fetch(handler, Request(session + 1 == 0 ? 1 : session + 1, 1));
        Assert.That((ErrorCode)unknown.ErrorCode, Is.EqualTo(ErrorCode.FetchSessionIdNotFound));
    }

    [Test]
    public async Task EpochMinusOneClosesTheSession()
    {
        using var h = new ServiceHarness();
        h.CreateTopic("t", 1);
        var handler = Handler(h);
        int session = (await Fetch(handler, Request(0, 0, ("t", 0, 0)))).SessionId;

        var closing = await Fetch(handler, Request(session, -1, ("t", 0, 0)));
        Assert.That(((ErrorCode)closing.ErrorCode, closing.SessionId), Is.EqualTo((ErrorCode.None, 0)));
        Assert.That(Answered(closing).Keys, Is.EquivalentTo(new[] { "t-0" }), "a closing fetch is a full fetch");

        var after = await Fetch(handler, Request(session, 1));
        Assert.That((ErrorCode)after.ErrorCode, Is.EqualTo(ErrorCode.FetchSessionIdNotFound));
    }

    [Test]
    public async Task ByTopicIdAnUnknownIdIsUnknownTopicId()
    {
        using var h = new ServiceHarness();
        var topic = h.CreateTopic("t", 1);
        ServiceHarness.Append(topic.Partitions[0], 1);
        var handler = Handler(h);
        var request = new FetchRequest { MaxWaitMs = 0, MinBytes = 1 };
        foreach (var id in new[] { topic.TopicId, Uuid.NewRandom() })
            request.Topics.Add(new FetchRequest.FetchTopic { TopicId = id, Partitions = [new() { Partition = 0, PartitionMaxBytes = 1 << 20 }] });

        var response = await Fetch(handler, request, version: 13);

        var errors = response.Responses.Select(t => (t.TopicId, (ErrorCode)t.Partitions.Single().ErrorCode)).ToList();
        Assert.That(errors, Is.EqualTo(new[] { (topic.TopicId, ErrorCode.None), (request.Topics[1].TopicId, ErrorCode.UnknownTopicId) }));
    }
}
