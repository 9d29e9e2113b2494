using Kayak.Coordinator.ConsumerGroups;
using NUnit.Framework;

namespace Kayak.Coordinator.Tests.ConsumerGroups;

/// <summary>
/// KIP-848 SubscribedTopicRegex: RE2 syntax translated to a non-backtracking .NET regex that must match the whole
/// topic name (Kafka's RE2J Matcher.matches), internal topics never matched, and a group whose members subscribe by
/// regex following topics as they are created, grown and deleted (each change bumps the group epoch).
/// </summary>
public class RegexSubscriptionTests
{
    [TestCase("orders-.*", "orders-1", true)]
    [TestCase("^orders-.*", "orders-eu", true)]
    [TestCase("orders", "orders-1", false)] // the whole name must match
    [TestCase("(?i)ORDERS-[0-9]+", "orders-12", true)]
    [TestCase("(?P<kind>orders|payments)-x", "payments-x", true)]
    [TestCase("\\Qa.b\\E", "a.b", true)]
    [TestCase("\\Qa.b\\E", "axb", false)]
    [TestCase("t[[:digit:]]+", "t42", true)]
    [TestCase("t[[:digit:]]+", "tx", false)]
    [TestCase("\\pL+-1", "abc-1", true)]
    [TestCase(".*", "__consumer_offsets", false)] // internal topics are left out
    [TestCase("__transaction.*", "__transaction_state", false)]
    public void Re2SyntaxMatchesWholeTopicNames(string pattern, string topic, bool matches)
    {
        var regex = TopicRegex.TryCompile(pattern, out var error);
        Assert.That(regex, Is.Not.Null, error);
        Assert.That(TopicRegex.Matches(regex!, topic), Is.EqualTo(matches));
    }

    [TestCase("t(")]
    [TestCase("[z-a]")]
    [TestCase("(a)\\1")]
    [TestCase("(?<=a)b")]
    [TestCase("(?!a)b")]
    [TestCase("(?>a)")]
    [TestCase("(?#comment)a")]
    [TestCase("a\\")]
    [TestCase("[[:nope:]]")]
    public void InvalidPatternsAreRefused(string pattern)
    {
        Assert.That(TopicRegex.TryCompile(pattern, out var error), Is.Null);
        Assert.That(error, Does.Contain(pattern));
    }

    /// <summary>Patterns that make a backtracking engine run for ages finish (linear time) or are refused, never hang.</summary>
    [TestCase("(a*)*b")]
    [TestCase("(a|aa)+c")]
    [TestCase("(x+x+)+y")]
    [TestCase("((a{100}){100}){100}")]
    public void HostilePatternsCannotBlowUp(string pattern)
    {
        var regex = TopicRegex.TryCompile(pattern, out _);
        if (regex is null) return; // refused as too large: INVALID_REGULAR_EXPRESSION
        Assert.That(TopicRegex.Matches(regex, new string('a', 240) + "!"), Is.False);
        Assert.That(TopicRegex.Matches(regex, new string('x', 240)), Is.False);
    }

    [Test]
    public void ARegexGroupFollowsTopicsAsTheyComeAndGo()
    {
        using var d = new ConsumerGroupDriver();
        d.CreateTopic("orders-1", 2);
        d.CreateTopic("payments", 3);
        d.CreateTopic("__consumer_offsets", 50);
        var m = d.Add("m1", regex: "orders-.*");
        d.Stabilise();
        Assert.That(m.Owned.Keys, Is.EquivalentTo(new[] { d.IdOf("orders-1") }));
        int epoch = d.State!.GroupEpoch;

        d.CreateTopic("orders-2", 4);
        d.Stabilise();
        Assert.That(d.State!.GroupEpoch, Is.GreaterThan(epoch), "a new matching topic bumps the group epoch");
        Assert.That(m.Owned[d.IdOf("orders-2")], Is.EqualTo(new[] { 0, 1, 2, 3 }));

        epoch = d.State!.GroupEpoch;
        d.Catalog["orders-2"] = (d.IdOf("orders-2"), 6); // partitions added
        d.Stabilise();
        Assert.That(d.State!.GroupEpoch, Is.GreaterThan(epoch));
        Assert.That(m.Owned[d.IdOf("orders-2")], Has.Count.EqualTo(6));

        var gone = d.IdOf("orders-1");
        d.Catalog.Remove("orders-1");
        d.Stabilise();
        Assert.That(m.Owned.ContainsKey(gone), Is.False, "a deleted topic's partitions are taken away");

        // A second member by names and regex at once: its subscription is the union.
        var m2 = d.Add("m2", ["payments"], regex: "orders-.*");
        d.Stabilise();
        Assert.That(d.OwnedOf("payments")["m2"], Has.Count.EqualTo(3), "only m2 subscribes to payments");
        Assert.That(d.OwnedOf("orders-2").Values.Sum(s => s.Count), Is.EqualTo(6));
        // Uniform balances members' totals: m2 has payments' three, so m1 takes more of orders-2.
        int m1Total = m.Owned.Values.Sum(x => x.Count), m2Total = m2.Owned.Values.Sum(x => x.Count);
        Assert.That(Math.Abs(m1Total - m2Total), Is.LessThanOrEqualTo(1));
        Assert.That(m.Owned.Keys.Concat(m2.Owned.Keys), Does.Not.Contain(d.IdOf("__consumer_offsets")));
    }

    [Test]
    public void TheRegexSurvivesAReload()
    {
        using var d = new ConsumerGroupDriver();
        d.CreateTopic("orders-1", 2);
        d.Add("m1", regex: "orders-.*");
        d.Stabilise();
        using var reloaded = new Harness(d.H.Log, new ManualTimeProvider());
        var g = reloaded.Coordinator.AllGroups.Single();
        lock (g.Lock) Assert.That(g.Consumer!.Members["m1"].SubscribedTopicRegex, Is.EqualTo("orders-.*"));
    }

    /// <summary>A subscription to thousands of topics stays one group with every partition assigned once.</summary>
    [Test]
    public void ThousandsOfTopicsByRegexAndByName()
    {
        using var d = new ConsumerGroupDriver();
        var names = new List<string>();
        for (int i = 0; i < 3000; i++)
        {
            names.Add($"topic-{i:D4}");
            d.CreateTopic(names[^1], 1 + i % 3);
        }
        d.Add("byRegex", regex: "topic-.*");
        d.Add("byName", names.ToArray());
        d.Stabilise();
        int total = d.Catalog.Values.Sum(t => t.Partitions);
        Assert.That(d.Members.Values.Sum(m => m.Owned.Values.Sum(s => s.Count)), Is.EqualTo(total));
        Assert.That(d.State!.SubscriptionMetadata, Has.Count.EqualTo(3000));
    }

    private sealed class DescribeOnly(params string[] allowed) : IRegexTopicAuthorizer
    {
        public readonly List<(string Topic, int RefCount)> Asked = new();
        public bool MayDescribe(string topic, int refCount)
        {
            Asked.Add((topic, refCount));
            return allowed.Contains(topic);
        }
    }

    /// <summary>
    /// Kafka 4.0's filterTopicDescribeAuthorizedTopics: every topic the group's regexes matched is asked once, with the
    /// number of regexes that matched it, and a denied one leaves every regex (and so the assignment).
    /// </summary>
    [Test]
    public void UndescribableMatchesAreDroppedFromEveryRegex()
    {
        using var d = new ConsumerGroupDriver();
        d.CreateTopic("orders-eu", 2);
        d.CreateTopic("orders-us", 2);
        d.CreateTopic("other", 1);
        var auth = new DescribeOnly("orders-eu");
        d.RegexAuthorizer = auth;
        var a = d.Add("a", regex: "orders-.*");
        var b = d.Add("b", regex: "orders-(eu|us)");
        d.Heartbeat(a);
        auth.Asked.Clear();
        d.Heartbeat(b);
        Assert.That(auth.Asked, Is.EquivalentTo(new[] { ("orders-eu", 2), ("orders-us", 2) }), "once per topic, refCount = regexes matching");
        d.Stabilise();
        Assert.That(d.State!.SubscriptionMetadata.Keys, Is.EquivalentTo(new[] { "orders-eu" }));
        Assert.That(d.Members.Values.SelectMany(m => m.Owned.Keys).Distinct(), Is.EquivalentTo(new[] { d.IdOf("orders-eu") }));
    }
}
