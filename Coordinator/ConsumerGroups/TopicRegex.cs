using System.Text;
using System.Text.RegularExpressions;
using Kayak.Storage;

namespace Kayak.Coordinator.ConsumerGroups;

/// <summary>
/// KIP-848 SubscribedTopicRegex. Kafka 4.0 compiles it with RE2J and keeps the topics it fully matches
/// (Matcher.matches), internal topics excluded. Here the RE2 syntax is translated to a .NET pattern run with
/// <see cref="RegexOptions.NonBacktracking"/>, so matching is linear in the topic name whatever the pattern (RE2's
/// own guarantee). Translated: (?P&lt;name&gt;…) groups, \Q…\E literals, \pL one-letter classes and the POSIX classes
/// [[:alpha:]] and the like. Refused as INVALID_REGULAR_EXPRESSION, like RE2J: backreferences, lookarounds, atomic
/// groups, .NET-only inline options; also the ungreedy flag (?U), which .NET lacks, and patterns too large for the
/// non-backtracking engine.
/// </summary>
internal static class TopicRegex
{
    private static readonly Dictionary<string, string> Posix = new(StringComparer.Ordinal)
    {
        ["alnum"] = "0-9A-Za-z", ["alpha"] = "A-Za-z", ["ascii"] = "\\x00-\\x7F", ["blank"] = "\\t ",
        ["cntrl"] = "\\x00-\\x1F\\x7F", ["digit"] = "0-9", ["graph"] = "!-~", ["lower"] = "a-z", ["print"] = " -~",
        ["punct"] = "!-/:-@\\[-`{-~", ["space"] = "\\t\\n\\v\\f\\r ", ["upper"] = "A-Z", ["word"] = "0-9A-Za-z_",
        ["xdigit"] = "0-9A-Fa-f",
    };

    /// <summary>
    /// Patterns compiled so far, valid or not (clients repeat their regex in heartbeats). Bounded: cleared when it
    /// reaches <see cref="CacheLimit"/> entries, so hostile clients sending ever new patterns cannot grow it.
    /// </summary>
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, (Regex? Regex, string? Error)> Cache = new(StringComparer.Ordinal);
    private const int CacheLimit = 1024;

    /// <summary>The compiled full-match regex, or null with Kafka's style of message in <paramref name="error"/>.</summary>
    public static Regex? TryCompile(string pattern, out string? error)
    {
        if (Cache.TryGetValue(pattern, out var cached))
        {
            error = cached.Error;
            return cached.Regex;
        }
        var regex = Compile(pattern, out error);
        if (Cache.Count >= CacheLimit) Cache.Clear();
        Cache[pattern] = (regex, error);
        return regex;
    }

    private static Regex? Compile(string pattern, out string? error)
    {
        error = null;
        try
        {
            string translated = Translate(pattern);
            return new Regex("^(?:" + translated + ")\\z", RegexOptions.NonBacktracking | RegexOptions.CultureInvariant);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or FormatException)
        {
            error = $"SubscribedTopicRegex `{pattern}` is not a valid regular expression: {e.Message}";
            return null;
        }
    }

    /// <summary>Whether a topic is one a regex may pick: Kafka leaves internal topics out of regex subscriptions.</summary>
    public static bool Matches(Regex regex, string topic) => !InternalTopics.IsInternal(topic) && regex.IsMatch(topic);

    private static string Translate(string p)
    {
        var sb = new StringBuilder(p.Length + 8);
        int depth = 0; // inside a character class
        for (int i = 0; i < p.Length; i++)
        {
            char c = p[i];
            if (c == '\\')
            {
                if (i + 1 >= p.Length) throw new FormatException("trailing backslash");
                char n = p[i + 1];
                if (n == 'Q')
                {
                    int end = p.IndexOf("\\E", i + 2, StringComparison.Ordinal);
                    string literal = end < 0 ? p[(i + 2)..] : p[(i + 2)..end];
                    sb.Append(depth > 0 ? EscapeInClass(literal) : Regex.Escape(literal));
                    i = end < 0 ? p.Length : end + 1;
                    continue;
                }
                if (n is 'p' or 'P' && i + 2 < p.Length && p[i + 2] != '{')
                {
                    sb.Append('\\').Append(n).Append('{').Append(p[i + 2]).Append('}');
                    i += 2;
                    continue;
                }
                // RE2 has no backreferences or named references; \C (any byte) has no .NET meaning.
                if (n is >= '1' and <= '9' || n is 'k' or 'C' or 'G' or 'R' or 'X')
                    throw new FormatException($"invalid escape sequence \\{n}");
                sb.Append(c).Append(n);
                i++;
                continue;
            }
            if (depth > 0)
            {
                if (c == '[' && i + 1 < p.Length && p[i + 1] == ':')
                {
                    int end = p.IndexOf(":]", i + 2, StringComparison.Ordinal);
                    if (end < 0) throw new FormatException("unterminated POSIX class");
                    string name = p[(i + 2)..end];
                    if (name.StartsWith('^') || !Posix.TryGetValue(name, out var set))
                        throw new FormatException($"unsupported POSIX class [:{name}:]");
                    sb.Append(set);
                    i = end + 1;
                    continue;
                }
                if (c == '[') sb.Append("\\["); // RE2 reads a nested '[' as a literal; .NET would read subtraction
                else if (c == ']') { depth = 0; sb.Append(c); }
                else sb.Append(c);
                continue;
            }
            if (c == '[')
            {
                depth = 1;
                sb.Append(c);
                // A ']' right after '[' or '[^' is a literal in RE2 as in .NET.
                if (i + 1 < p.Length && p[i + 1] == '^') { sb.Append('^'); i++; }
                if (i + 1 < p.Length && p[i + 1] == ']') { sb.Append("\\]"); i++; }
                continue;
            }
            if (c == '(' && i + 1 < p.Length && p[i + 1] == '?')
            {
                i = TranslateGroup(p, i, sb);
                continue;
            }
            sb.Append(c);
        }
        if (depth > 0) throw new FormatException("missing closing ]");
        return sb.ToString();
    }

    /// <summary>The "(?" constructs RE2 knows: named groups and the flags i, m, s (U is refused); nothing else.</summary>
    private static int TranslateGroup(string p, int i, StringBuilder sb)
    {
        if (i + 3 < p.Length && p[i + 2] == 'P' && p[i + 3] == '<')
        {
            sb.Append("(?<");
            return i + 3;
        }
        if (i + 2 < p.Length && p[i + 2] == '<' && i + 3 < p.Length && p[i + 3] is not ('=' or '!'))
        {
            sb.Append("(?<");
            return i + 2;
        }
        int j = i + 2;
        while (j < p.Length && p[j] is 'i' or 'm' or 's' or 'U' or '-') j++;
        if (j == i + 2 || j >= p.Length || p[j] is not (':' or ')'))
            throw new FormatException("invalid or unsupported Perl syntax (?" + (j < p.Length ? p[(i + 2)..Math.Min(p.Length, j + 1)] : ""));
        string flags = p[(i + 2)..j];
        if (flags.Contains('U')) throw new FormatException("the ungreedy flag (?U) is not supported");
        sb.Append("(?").Append(flags);
        return j - 1;
    }

    private static string EscapeInClass(string literal)
    {
        var sb = new StringBuilder(literal.Length * 2);
        foreach (char c in literal)
        {
            if (c is '\\' or ']' or '[' or '^' or '-') sb.Append('\\');
            sb.Append(c);
        }
        return sb.ToString();
    }
}
