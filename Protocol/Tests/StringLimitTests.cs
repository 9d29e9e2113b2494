using System.Buffers;
using System.Text;
using Kayak.Protocol.Messages;
using NUnit.Framework;

namespace Kayak.Protocol.Tests;

/// <summary>
/// Kafka strings are at most 32,767 UTF-8 bytes, compact or not (issue 15, K14): longer ones do not parse, are refused
/// by Size before a byte is written, and error messages (free text) are cut to fit instead.
/// </summary>
public class StringLimitTests
{
    private static byte[] CompactString(int bytes)
    {
        var buf = new ArrayBufferWriter<byte>();
        var w = new KafkaWriter(buf);
        w.WriteUnsignedVarInt((uint)bytes + 1);
        w.Flush();
        buf.Write(Enumerable.Repeat((byte)'a', bytes).ToArray());
        return buf.WrittenSpan.ToArray();
    }

    [Test]
    public void CompactStringAtTheLimitParses()
    {
        var r = new KafkaReader(CompactString(KafkaWriter.MaxStringBytes));
        Assert.That(r.ReadCompactString(), Has.Length.EqualTo(KafkaWriter.MaxStringBytes));
        r = new KafkaReader(CompactString(KafkaWriter.MaxStringBytes));
        Assert.That(r.ReadCompactNullableString(), Has.Length.EqualTo(KafkaWriter.MaxStringBytes));
    }

    [Test]
    public void CompactStringOverTheLimitDoesNotParse()
    {
        Assert.Throws<ProtocolException>(() => { var r = new KafkaReader(CompactString(KafkaWriter.MaxStringBytes + 1)); r.ReadCompactString(); });
        Assert.Throws<ProtocolException>(() => { var r = new KafkaReader(CompactString(KafkaWriter.MaxStringBytes + 1)); r.ReadCompactNullableString(); });
    }

    [Test]
    public void SizeRefusesAStringTooLongForTheWireCompactOrNot()
    {
        string ok = new('a', KafkaWriter.MaxStringBytes);
        Assert.That(VarInt.SizeOfString(ok), Is.EqualTo(KafkaWriter.MaxStringBytes));
        Assert.Throws<StringTooLongException>(() => VarInt.SizeOfString(ok + "a"));
        Assert.Throws<StringTooLongException>(() => VarInt.SizeOfCompactString(ok + "a"));
        // Counted in bytes: 16,384 two-byte characters are 32,768 bytes.
        Assert.Throws<StringTooLongException>(() => VarInt.SizeOfString(new string('\u00e9', 16_384)));
        Assert.That(VarInt.SizeOfString(new string('\u00e9', 16_383)), Is.EqualTo(32_766));
    }

    [Test]
    public void ResponseWithAnOverlongNameIsRefusedBySize()
    {
        var response = new MetadataResponse { Topics = [new MetadataResponse.MetadataResponseTopic { Name = new string('t', 40_000) }] };
        Assert.Throws<StringTooLongException>(() => response.Size(12));
        Assert.Throws<StringTooLongException>(() => response.Size(1));
    }

    [Test]
    public void FitLeavesShortTextAlone()
    {
        string s = "Topic 'x' does not exist.";
        Assert.That(FreeText.Fit(s), Is.SameAs(s));
        Assert.That(FreeText.Fit(null), Is.Null);
        string atLimit = new('a', KafkaWriter.MaxStringBytes);
        Assert.That(FreeText.Fit(atLimit), Is.SameAs(atLimit));
    }

    [TestCase('a', 1)]
    [TestCase('\u00e9', 2)]
    [TestCase('\u2603', 3)]
    public void FitCutsByBytesAndMarksTheCut(char c, int width)
    {
        string message = "Topic name is illegal: " + new string(c, 40_000);
        string fit = FreeText.Fit(message);
        int bytes = Encoding.UTF8.GetByteCount(fit);
        Assert.That(bytes, Is.LessThanOrEqualTo(KafkaWriter.MaxStringBytes));
        Assert.That(bytes, Is.GreaterThan(KafkaWriter.MaxStringBytes - width - FreeText.Ellipsis.Length));
        Assert.That(fit, Does.StartWith("Topic name is illegal: ").And.EndWith(FreeText.Ellipsis));
    }

    [Test]
    public void FitNeverSplitsASurrogatePair()
    {
        string fit = FreeText.Fit("x" + string.Concat(Enumerable.Repeat("\U0001F600", 10_000)));
        string body = fit[..^FreeText.Ellipsis.Length];
        Assert.That(char.IsHighSurrogate(body[^1]), Is.False);
        Assert.That(Encoding.UTF8.GetByteCount(fit), Is.LessThanOrEqualTo(KafkaWriter.MaxStringBytes));
    }

    [TestCase((short)4)]
    [TestCase((short)7)]
    public void ErrorMessageQuotingALongNameIsCutToFit(short version)
    {
        string name = new('n', KafkaWriter.MaxStringBytes);
        var response = new CreateTopicsResponse
        {
            Topics = [new CreateTopicsResponse.CreatableTopicResult { Name = name, ErrorCode = 17, ErrorMessage = "Topic name is illegal, it can't be longer than 249 characters, topic name: " + name }],
        };
        var buf = new ArrayBufferWriter<byte>();
        var w = new KafkaWriter(buf);
        response.Write(ref w, version);
        w.Flush();
        Assert.That(buf.WrittenCount, Is.EqualTo(response.Size(version)));
        var r = new KafkaReader(buf.WrittenMemory);
        var back = new CreateTopicsResponse();
        back.Read(ref r, version);
        Assert.That(back.Topics[0].Name, Is.EqualTo(name));
        Assert.That(back.Topics[0].ErrorMessage, Does.StartWith("Topic name is illegal").And.EndWith(FreeText.Ellipsis));
    }
}
