using Kayak.Protocol.Records;
using Kayak.Storage;

namespace Kayak.Broker.Tests;

/// <summary>The partition leader epoch of each batch in a log, in offset order (control batches only, if asked).</summary>
internal static class BatchEpochs
{
    public static List<int> Of(PartitionLog log, bool controlOnly = false)
    {
        var epochs = new List<int>();
        log.Replay(chunk =>
        {
            var span = chunk.Span;
            while (RecordBatchHeader.TryRead(span, out var h) && span.Length >= h.TotalSize)
            {
                if (!controlOnly || h.IsControl) epochs.Add(h.PartitionLeaderEpoch);
                span = span[h.TotalSize..];
            }
        });
        return epochs;
    }
}
