using System.Diagnostics.CodeAnalysis;
using System.Text;

namespace Kayak.Protocol;

/// <summary>
/// Error messages are free text for people (Kafka's clients show them, none parses them), but they often quote what
/// the request named, and a name may be as long as a string can be: "Topic name is illegal, ... topic name: " and a
/// 32,767-byte name cannot be written, which closed the connection instead of answering the error (issue 15, K14).
/// The generator passes every *ErrorMessage field through <see cref="Fit"/>, so such a message is cut to fit.
/// </summary>
public static class FreeText
{
    /// <summary>Marks a message that was cut.</summary>
    public const string Ellipsis = "...";

    /// <summary>The text itself when it fits in a protocol string, else its longest prefix that fits with "...".</summary>
    [return: NotNullIfNotNull(nameof(text))]
    public static string? Fit(string? text)
    {
        // Three UTF-8 bytes at most per UTF-16 char: the common case costs no counting.
        if (text is null || text.Length <= KafkaWriter.MaxStringBytes / 3) return text;
        if (Encoding.UTF8.GetByteCount(text) <= KafkaWriter.MaxStringBytes) return text;
        int i = PrefixLength(text, KafkaWriter.MaxStringBytes - Ellipsis.Length);
        return string.Concat(text.AsSpan(0, i), Ellipsis);
    }

    /// <summary>The text, or its longest prefix of at most <paramref name="maxBytes"/> UTF-8 bytes.</summary>
    public static string Prefix(string text, int maxBytes)
    {
        if (text.Length <= maxBytes / 3 || Encoding.UTF8.GetByteCount(text) <= maxBytes) return text;
        return text[..PrefixLength(text, maxBytes)];
    }

    private static int PrefixLength(string text, int maxBytes)
    {
        int bytes = 0, i = 0;
        while (i < text.Length)
        {
            // A surrogate pair is cut whole, never in half.
            int chars = char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]) ? 2 : 1;
            int n = Encoding.UTF8.GetByteCount(text.AsSpan(i, chars));
            if (bytes + n > maxBytes) break;
            bytes += n;
            i += chars;
        }
        return i;
    }
}
