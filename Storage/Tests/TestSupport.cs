using System.Buffers.Binary;
using System.Text;
using Kayak.Protocol;
using Kayak.Protocol.Records;

namespace Kayak.Storage.Tests;

/// <summary>A TimeProvider whose clock only moves when the test says so.</summary>
internal sealed class FakeTime : TimeProvider
{
    private long _nowMs;
    public FakeTime(long startMs = 1_700_000_000_000) => _nowMs = startMs;
    public long NowMs => Interlocked.Read(ref _nowMs);
    public void Advance(long ms) => Interlocked.Add(ref _nowMs, ms);
    public override DateTimeOffset GetUtcNow() => DateTimeOffset.FromUnixTimeMilliseconds(NowMs);
}

/// <summary>Writes uncompressed magic v2 record batches with a correct CRC-32C, independent of the Protocol encoder.</summary>
internal static class BatchBuilder
{
    /// <summary>One batch of <paramref name="count"/> records with timestamps firstTimestamp + i*tsStep and values "v{i}" padded to valueSize.</summary>
    public static byte[] Build(int count, long firstTimestamp, int valueSize = 10, long tsStep = 1, string? tag = null, long baseOffset = 0)
    {
        var records = new List<byte[]>();
        for (int i = 0; i < count; i++)
        {
            var value = new byte[valueSize];
            var text = Encoding.ASCII.GetBytes((tag ?? "v") + i);
            text.AsSpan(0, Math.Min(text.Length, valueSize)).CopyTo(value);
            records.Add(Record(i, i * tsStep, Encoding.ASCII.GetBytes("k" + i), value));
        }
        int recordsLen = 0;
        foreach (var r in records) recordsLen += r.Length;
        var buf = new byte[RecordBatchHeader.Size + recordsLen];
        var s = buf.AsSpan();
        BinaryPrimitives.WriteInt64BigEndian(s, baseOffset);
        BinaryPrimitives.WriteInt32BigEndian(s[8..], buf.Length - 12);
        BinaryPrimitives.WriteInt32BigEndian(s[12..], -1);
        s[16] = 2;
        BinaryPrimitives.WriteInt16BigEndian(s[21..], 0);
        BinaryPrimitives.WriteInt32BigEndian(s[23..], count - 1);
        BinaryPrimitives.WriteInt64BigEndian(s[27..], firstTimestamp);
        BinaryPrimitives.WriteInt64BigEndian(s[35..], firstTimestamp + (count - 1) * tsStep);
        BinaryPrimitives.WriteInt64BigEndian(s[43..], -1);
        BinaryPrimitives.WriteInt16BigEndian(s[51..], -1);
        BinaryPrimitives.WriteInt32BigEndian(s[53..], -1);
        BinaryPrimitives.WriteInt32BigEndian(s[57..], count);
        int pos = RecordBatchHeader.Size;
        foreach (var r in records) { r.CopyTo(buf, pos); pos += r.Length; }
        FixCrc(buf);
        return buf;
    }

    public static void FixCrc(Span<byte> batch) =>
        BinaryPrimitives.WriteUInt32BigEndian(batch[17..], Crc32C.Compute(batch[21..]));

    public static bool CrcValid(ReadOnlySpan<byte> batch) =>
        BinaryPrimitives.ReadUInt32BigEndian(batch[17..]) == Crc32C.Compute(batch[21..]);

    private static byte[] Record(int offsetDelta, long tsDelta, byte[] key, byte[] value)
    {
        Span<byte> body = stackalloc byte[64 + key.Length + value.Length];
        int n = 0;
        body[n++] = 0; // attributes
        n += VarInt.WriteVarLong(body[n..], tsDelta);
        n += VarInt.WriteVarInt(body[n..], offsetDelta);
        n += VarInt.WriteVarInt(body[n..], key.Length);
        key.CopyTo(body[n..]); n += key.Length;
        n += VarInt.WriteVarInt(body[n..], value.Length);
        value.CopyTo(body[n..]); n += value.Length;
        n += VarInt.WriteVarInt(body[n..], 0); // headers
        var result = new byte[VarInt.SizeOf(n) + n];
        int h = VarInt.WriteVarInt(result, n);
        body[..n].CopyTo(result.AsSpan(h));
        return result;
    }

    public static IEnumerable<(long BaseOffset, int Length, byte[] Bytes)> Split(ReadOnlySpan<byte> data)
    {
        var list = new List<(long, int, byte[])>();
        int pos = 0;
        while (pos < data.Length)
        {
            int len = BinaryPrimitives.ReadInt32BigEndian(data[(pos + 8)..]) + 12;
            list.Add((BinaryPrimitives.ReadInt64BigEndian(data[pos..]), len, data.Slice(pos, len).ToArray()));
            pos += len;
        }
        return list;
    }

    public static long LastOffset(ReadOnlySpan<byte> batch) =>
        BinaryPrimitives.ReadInt64BigEndian(batch) + BinaryPrimitives.ReadInt32BigEndian(batch[23..]);
}

/// <summary>Temp log dir + LogManager factory; deletes the directory on dispose.</summary>
internal sealed class TempLogs : IDisposable
{
    public string Root { get; } = Path.Combine(Path.GetTempPath(), "kayak-storage-" + Guid.NewGuid().ToString("N"));
    public FakeTime Time { get; } = new();

    public LogOptions Options(Func<LogOptions, LogOptions>? tweak = null)
    {
        var o = new LogOptions { LogDirs = [Root], Time = Time, SegmentBytes = 64 * 1024, SegmentIndexBytes = 4096, IndexIntervalBytes = 256 };
        return tweak is null ? o : tweak(o);
    }

    public LogManager Open(LogOptions? options = null)
    {
        var m = new LogManager(options ?? Options());
        m.Open();
        return m;
    }

    public void Dispose()
    {
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
    }
}

internal static class KeyedBatch
{
    /// <summary>An uncompressed v2 batch with explicit keys / values (null value = tombstone, null key = keyless).</summary>
    public static byte[] Build(long timestamp, params (string? Key, string? Value)[] records)
    {
        var bodies = new List<byte[]>();
        for (int i = 0; i < records.Length; i++)
        {
            var buf = new byte[256];
            int n = 0;
            buf[n++] = 0;
            n += VarInt.WriteVarLong(buf.AsSpan(n), 0);
            n += VarInt.WriteVarInt(buf.AsSpan(n), i);
            n += WriteBytes(buf.AsSpan(n), records[i].Key);
            n += WriteBytes(buf.AsSpan(n), records[i].Value);
            n += VarInt.WriteVarInt(buf.AsSpan(n), 0);
            var rec = new byte[VarInt.SizeOf(n) + n];
            int h = VarInt.WriteVarInt(rec, n);
            buf.AsSpan(0, n).CopyTo(rec.AsSpan(h));
            bodies.Add(rec);
        }
        var batch = new byte[RecordBatchHeader.Size + bodies.Sum(b => b.Length)];
        var s = batch.AsSpan();
        BinaryPrimitives.WriteInt32BigEndian(s[8..], batch.Length - 12);
        BinaryPrimitives.WriteInt32BigEndian(s[12..], -1);
        s[16] = 2;
        BinaryPrimitives.WriteInt32BigEndian(s[23..], records.Length - 1);
        BinaryPrimitives.WriteInt64BigEndian(s[27..], timestamp);
        BinaryPrimitives.WriteInt64BigEndian(s[35..], timestamp);
        BinaryPrimitives.WriteInt64BigEndian(s[43..], -1);
        BinaryPrimitives.WriteInt16BigEndian(s[51..], -1);
        BinaryPrimitives.WriteInt32BigEndian(s[53..], -1);
        BinaryPrimitives.WriteInt32BigEndian(s[57..], records.Length);
        int pos = RecordBatchHeader.Size;
        foreach (var b in bodies) { b.CopyTo(batch, pos); pos += b.Length; }
        BatchBuilder.FixCrc(batch);
        return batch;
    }

    private static int WriteBytes(Span<byte> dst, string? v)
    {
        if (v is null) return VarInt.WriteVarInt(dst, -1);
        var bytes = Encoding.ASCII.GetBytes(v);
        int n = VarInt.WriteVarInt(dst, bytes.Length);
        bytes.CopyTo(dst[n..]);
        return n + bytes.Length;
    }

    /// <summary>(offset, key, value) of every record in a run of uncompressed batches.</summary>
    public static List<(long Offset, string? Key, string? Value)> Records(ReadOnlySpan<byte> data)
    {
        var result = new List<(long, string?, string?)>();
        int pos = 0;
        while (pos < data.Length)
        {
            var b = data[pos..];
            int total = BinaryPrimitives.ReadInt32BigEndian(b[8..]) + 12;
            long baseOffset = BinaryPrimitives.ReadInt64BigEndian(b);
            int count = BinaryPrimitives.ReadInt32BigEndian(b[57..]);
            var r = b[RecordBatchHeader.Size..total];
            for (int i = 0; i < count; i++)
            {
                VarInt.TryReadVarInt(r, out int len, out int n);
                var rec = r.Slice(n, len);
                int p = 1;
                VarInt.TryReadVarLong(rec[p..], out _, out int m); p += m;
                VarInt.TryReadVarInt(rec[p..], out int od, out m); p += m;
                string? key = ReadString(rec, ref p);
                string? value = ReadString(rec, ref p);
                result.Add((baseOffset + od, key, value));
                r = r[(n + len)..];
            }
            pos += total;
        }
        return result;
    }

    private static string? ReadString(ReadOnlySpan<byte> rec, ref int p)
    {
        VarInt.TryReadVarInt(rec[p..], out int len, out int m);
        p += m;
        if (len < 0) return null;
        var s = Encoding.ASCII.GetString(rec.Slice(p, len));
        p += len;
        return s;
    }
}
